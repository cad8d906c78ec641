"""The run's saved config (``config.json``): what a workdir was trained with,
and whether a config may resume it."""

import json

from etils import epath
import jax
import ml_collections
from jax.experimental import multihost_utils

from sslax.config_loading import apply_overrides
from sslax.errors import UserError
from sslax.train.checkpoint import latest_step
from sslax.train.workdir import workdir_path

CONFIG_FILE = "config.json"
# Keys that control how a run is watched, not what it computes: they may change
# between a run and its resumption.
RUN_CONTROL_KEYS = ("log_every", "checkpoint_every", "keep_checkpoints",
                    "progress_bar", "online_eval_every",
                    "eval", "evals")  # evaluation settings: never what training computes

# Data keys that change how batches are read, never which: a run may resume
# with another worker count; or that training never reads: the evaluation splits.
RUN_CONTROL_DATA_KEYS = ("workers", "eval_train_split", "eval_split")


def _comparable(config_dict):
  out = {k: v for k, v in config_dict.items() if k not in RUN_CONTROL_KEYS}
  if isinstance(out.get("data"), dict):
    out["data"] = {k: v for k, v in out["data"].items()
                   if k not in RUN_CONTROL_DATA_KEYS}
  return out


def _read_json(path: epath.Path):
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError:
    raise UserError(f"{path} is not valid JSON; restore it or use a new workdir") from None


def load_config(workdir: str, overrides=()) -> ml_collections.ConfigDict:
  """The run's saved config, with ``overrides`` (``key=value`` strings, as
  ``--config.key=value`` on the command line) applied: e.g. the data's new
  ``data.data_dir`` or ``eval.batch_size`` for an evaluation."""
  path = workdir_path(workdir) / CONFIG_FILE
  if not path.exists():
    raise UserError(f"{workdir} holds no {CONFIG_FILE}; train into it first with "
                    "`sslax train --config ... --workdir " + str(workdir) + "`")
  return apply_overrides(ml_collections.ConfigDict(_read_json(path)), overrides)


def check_or_write_config(workdir: str, config: ml_collections.ConfigDict):
  """Writes the run's config; refuses a workdir whose checkpoints were made by a
  different config (only run-control keys may differ)."""
  path = workdir_path(workdir) / CONFIG_FILE
  new = json.loads(config.to_json())
  # Every process takes the same branches: checkpoints are only created after
  # the barrier below, while config.json may already be written by process 0.
  if latest_step(workdir) is not None and not path.exists():
    raise UserError(f"{workdir} holds checkpoints but no {CONFIG_FILE}, so nothing "
                    "says which config made them; put back its config.json, or train "
                    "into a new --workdir")
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
