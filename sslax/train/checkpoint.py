"""Orbax checkpoints of the TrainState, and the run's saved config."""

import json
import os

from etils import epath
import jax
import ml_collections
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from sslax.errors import UserError

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
# Keys that control how a run is watched, not what it computes: they may change
# between a run and its resumption.
RUN_CONTROL_KEYS = ("log_every", "checkpoint_every", "keep_checkpoints",
                    "progress_bar", "online_eval_every")


def workdir_path(workdir: str) -> epath.Path:
  """Local directories are made absolute; gs:// and other URLs pass through."""
  if "://" not in str(workdir):
    workdir = os.path.abspath(workdir)
  return epath.Path(workdir)


def checkpoint_dir(workdir: str) -> epath.Path:
  return workdir_path(workdir) / CHECKPOINT_DIR


def manager(workdir: str, *, keep: int = 3, read_only: bool = False):
  return ocp.CheckpointManager(
      checkpoint_dir(workdir),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                           read_only=read_only))


def latest_step(workdir: str):
  """The newest saved step, or None if the workdir holds no checkpoint."""
  if not checkpoint_dir(workdir).is_dir():
    return None
  with manager(workdir, read_only=True) as mngr:
    return mngr.latest_step()


def save(mngr, state, *, force=False):
  mngr.save(int(jax.device_get(state.step)), args=ocp.args.StandardSave(state),
            force=force)


def restore(mngr, step, abstract_state):
  """Restores onto the shardings carried by ``abstract_state`` (arrays or
  ``jax.ShapeDtypeStruct`` with shardings), so any device count works."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def _comparable(config_dict):
  return {k: v for k, v in config_dict.items() if k not in RUN_CONTROL_KEYS}


def _read_json(path: epath.Path):
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError:
    raise UserError(f"{path} is not valid JSON; restore it or use a new workdir") from None


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = workdir_path(workdir) / CONFIG_FILE
  if not path.exists():
    raise UserError(f"{workdir} holds no {CONFIG_FILE}; train into it first with "
                    "`sslax train --config ... --workdir " + str(workdir) + "`")
  return ml_collections.ConfigDict(_read_json(path))


def check_or_write_config(workdir: str, config: ml_collections.ConfigDict):
  """Writes the run's config; refuses a workdir whose checkpoints were made by a
  different config (only run-control keys may differ)."""
  path = workdir_path(workdir) / CONFIG_FILE
  new = json.loads(config.to_json())
  # Every process takes the same branches (latest_step opens a manager, whose
  # barriers all processes must reach): checkpoints are only created after the
  # barrier below, while config.json may already be written by process 0.
  if latest_step(workdir) is not None and path.exists():
    old = _read_json(path)
    if _comparable(old) != _comparable(new):
      diff = sorted(k for k in set(old) | set(new)
                    if k not in RUN_CONTROL_KEYS and old.get(k) != new.get(k))
      raise UserError(f"{workdir} holds checkpoints of a different config "
                      f"(differs in {', '.join(diff)}); use a new --workdir or the "
                      "original config")
  if jax.process_index() == 0 and (not path.exists() or _read_json(path) != new):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(new, indent=2, sort_keys=True))
    tmp.replace(path)  # atomic on local filesystems
  if jax.process_count() > 1:  # no process creates checkpoints before all have checked
    multihost_utils.sync_global_devices("sslax:check_or_write_config")
