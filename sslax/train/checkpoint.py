"""Orbax checkpoints of the TrainState: saving, restoring (moving damaged
ones aside), and reading a checkpoint's model variables alone."""


from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax.errors import NonFinite, UserError
from sslax.train.workdir import system_error, workdir_path

CHECKPOINT_DIR = "checkpoints"
def checkpoint_dir(workdir: str) -> epath.Path:
  return workdir_path(workdir) / CHECKPOINT_DIR


def manager(workdir: str, *, keep: int = 3, read_only: bool = False):
  """The training run's CheckpointManager. Readers need none (``latest_step``,
  ``restore_encoder``, ``restore_model`` read the step directories directly):
  Orbax warns on every read-only manager it opens."""
  if read_only:
    options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                           save_interval_steps=0, max_to_keep=None,
                                           cleanup_tmp_directories=True)
  else:
    # A save cut short (a killed run, a full disk) leaves N.orbax-checkpoint-tmp:
    # removed when the next run starts.
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           cleanup_tmp_directories=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def latest_step(workdir: str):
  """The newest saved (finalized) step, or None if the workdir holds no
  checkpoint: a listing of the checkpoint directory, as the manager's own
  ``latest_step`` makes, without opening a manager."""
  directory = checkpoint_dir(workdir)
  if not directory.is_dir():
    return None
  found = ocp.step.latest_step_metadata(directory, ocp.step.standard_name_format())
  return None if found is None else found.step


def saved_steps(workdir: str) -> list:
  """The steps of the workdir's finalized checkpoints, oldest first."""
  directory = checkpoint_dir(workdir)
  return sorted(ocp.step.checkpoint_steps(directory)) if directory.is_dir() else []


def _item_dir(workdir: str, step: int) -> epath.Path:
  """Where the manager saved the TrainState of ``step`` (its single item,
  ``default``)."""
  step_dir = ocp.step.build_step_path(checkpoint_dir(workdir),
                                      ocp.step.standard_name_format(), int(step))
  if not step_dir.is_dir():
    raise UserError(f"{workdir} holds no checkpoint of step {step}; its steps: "
                    f"{sorted(ocp.step.checkpoint_steps(checkpoint_dir(workdir)))}")
  return step_dir / "default"


def restore_subtrees(workdir: str, step: int, item):
  """The arrays of ``item`` (a dict of subtrees of the saved TrainState, as
  ``jax.ShapeDtypeStruct`` with shardings) from ``step``'s checkpoint; the
  rest of the state (optimizer, method state) is not read."""
  restore_args = jax.tree.map(lambda s: ocp.ArrayRestoreArgs(sharding=s.sharding), item)
  try:
    with ocp.PyTreeCheckpointer() as ckptr:
      return ckptr.restore(_item_dir(workdir, step), args=ocp.args.PyTreeRestore(
          item=item, restore_args=restore_args, partial_restore=True))
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise _unreadable(workdir, step, e) from None


def _unreadable(workdir: str, step: int, exc: BaseException) -> UserError:
  return UserError(f"checkpoint step {step} in {workdir} cannot be read "
                   f"({_first_line(exc)}); `sslax train` on this --workdir moves it "
                   f"aside into {DAMAGED_DIR}/ and resumes from the newest one that reads")


def _inexact_leaves(tree):
  return [x for x in jax.tree.leaves(tree)
          if jax.numpy.issubdtype(jax.numpy.result_type(x), jax.numpy.inexact)]


@jax.jit
def _all_finite(parts):
  """``{name: bool}``: whether every array of each list in ``parts`` is finite."""
  return {name: jax.numpy.all(jax.numpy.stack([jax.numpy.isfinite(x).all() for x in leaves]))
          for name, leaves in parts.items()}


def non_finite_parts(parts: dict) -> list:
  """The names of ``parts`` (a dict of pytrees) holding a NaN or inf in a
  floating-point array: one reduction on the arrays' devices, a few booleans
  fetched."""
  leaves = {name: _inexact_leaves(tree) for name, tree in parts.items()}
  leaves = {name: ls for name, ls in leaves.items() if ls}
  finite = jax.device_get(_all_finite(leaves)) if leaves else {}
  return [name for name in parts if name in finite and not bool(finite[name])]


def all_finite(tree) -> bool:
  """Whether every floating-point array of ``tree`` is free of NaN and inf."""
  return not non_finite_parts({"tree": tree})


# The TrainState's fields as a non-finite save names them.
_STATE_PARTS = (("params", "parameters"),
                ("model_state", "model state (e.g. BatchNorm statistics)"),
                ("opt_state", "optimizer state"), ("method_state", "method state"),
                ("probe", "online probe"))


def save(mngr, state, *, force=False, check_finite=True):
  """Saves ``state`` at its step. A state with a NaN or inf anywhere is never
  saved (``check_finite``): ``NonFinite`` (exit status 3) instead, so the
  checkpoints kept are the last finite ones."""
  step = int(jax.device_get(state.step))
  if check_finite:
    bad = non_finite_parts({name: getattr(state, field) for field, name in _STATE_PARTS})
    if bad:
      raise NonFinite(f"step {step}: the {' and the '.join(bad)} went non-finite (NaN "
                      "or inf); stopped without saving it (the checkpoints kept are "
                      "finite); lower --config.optimizer.learning_rate and train into "
                      "a new --workdir")
  mngr.save(step, args=ocp.args.StandardSave(state), force=force)


DAMAGED_DIR = "damaged_checkpoints"


def _key_name(key) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def _leaf_specs(tree) -> dict:
  """``{"params.encoder.Conv_0.kernel": (shape, dtype)}`` of a tree's arrays
  (a state, its abstract form, or a checkpoint's metadata tree)."""
  return {".".join(_key_name(k) for k in path): (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
          if leaf is not None}


def _first_line(exc: BaseException) -> str:
  text = str(exc).strip().splitlines()
  text = text[0].split(" See full TensorStore details")[0][:200] if text else ""
  return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_matches(workdir: str, step: int, saved_tree, abstract):
  """One line when the checkpoint's arrays are not the ones the config builds."""
  saved, wanted = _leaf_specs(saved_tree), _leaf_specs(abstract)
  if saved == wanted:
    return
  only_saved = sorted(set(saved) - set(wanted))
  only_wanted = sorted(set(wanted) - set(saved))
  reshaped = sorted(k for k in set(saved) & set(wanted) if saved[k] != wanted[k])
  parts = []
  if reshaped:
    k = reshaped[0]
    parts.append(f"{len(reshaped)} arrays differ in shape or dtype, e.g. {k} "
                 f"{saved[k]} saved vs {wanted[k]} now")
  if only_saved:
    parts.append(f"{len(only_saved)} saved arrays are not in this config's state, "
                 f"e.g. {only_saved[0]}")
  if only_wanted:
    parts.append(f"{len(only_wanted)} arrays of this config's state are not saved, "
                 f"e.g. {only_wanted[0]}")
  raise UserError(f"{workdir}: checkpoint step {step} does not match the state this "
                  f"config builds ({'; '.join(parts)}); resume it with the sslax version "
                  "and config that wrote it, or train into a new --workdir")


def _move_aside(workdir: str, step: int) -> epath.Path:
  """Moves a step's checkpoint directory into ``WORKDIR/damaged_checkpoints``
  (never deleted: its files may still be recovered by hand)."""
  source = ocp.step.build_step_path(checkpoint_dir(workdir), ocp.step.standard_name_format(),
                                    int(step))
  aside = workdir_path(workdir) / DAMAGED_DIR
  aside.mkdir(parents=True, exist_ok=True)
  target, n = aside / str(step), 1
  while target.exists():
    target, n = aside / f"{step}.{n}", n + 1
  source.rename(target)
  return target


def _agreed(ok: bool) -> bool:
  """Whether ``ok`` holds on every process (one all-gather with several)."""
  if jax.process_count() == 1:
    return ok
  return bool(np.all(multihost_utils.process_allgather(np.asarray([ok]))))


def restore_newest(workdir: str, abstract_state, report=None):
  """The TrainState of the newest checkpoint that reads, restored onto the
  shardings of ``abstract_state`` (arrays or ``jax.ShapeDtypeStruct`` with
  shardings, so any device count works); None when the workdir holds none.

  A checkpoint that fails to read (a truncated or missing file, an empty or
  half-removed step directory) is reported in one line through ``report``,
  moved into ``WORKDIR/damaged_checkpoints/`` and the next older one is tried.
  A checkpoint that reads but holds other arrays than the config builds is a
  ``UserError``: it is not damaged, and nothing is moved."""
  directory = checkpoint_dir(workdir)
  if not directory.is_dir():
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
  for step in sorted(ocp.step.checkpoint_steps(directory), reverse=True):
    state, error = None, None
    try:
      item_dir = _item_dir(workdir, step)
      handler = ocp.PyTreeCheckpointHandler()
      try:
        saved_tree = handler.metadata(item_dir).tree
      finally:
        handler.close()
      _check_matches(workdir, step, saved_tree, abstract)
      with ocp.StandardCheckpointer() as ckptr:
        state = ckptr.restore(item_dir, abstract)
    except UserError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      if system_error(e) == "permission denied":
        raise UserError(f"cannot read checkpoint step {step} of {workdir}: permission "
                        "denied; run as a user who can read it") from None
      error = e
    if _agreed(error is None):
      return state
    where = None
    if jax.process_index() == 0:
      where = _move_aside(workdir, step)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"sslax:move_aside_{step}")
    if report is not None:
      reason = _first_line(error) if error is not None else "another process could not read it"
      report(f"sslax: checkpoint step {step} in {workdir} cannot be read ({reason}); "
             f"moved it to {where or DAMAGED_DIR}; trying the next older one")
  return None


def local_replicated():
  """Replicated over this process's devices."""
  mesh = jax.make_mesh((len(jax.local_devices()),), ("replica",),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.local_devices())
  return NamedSharding(mesh, P())


def restore_model(workdir: str, step=None):
  """``(params, model_state)`` of a workdir's newest checkpoint (or ``step``)
  as host arrays, read without the optimizer state, shaped by the checkpoint's
  own metadata (no method or train state is built)."""
  step = latest_step(workdir) if step is None else step
  if step is None:
    raise UserError(f"{workdir} holds no checkpoint; train first with "
                    f"`sslax train --config ... --workdir {workdir}`")
  sharding = local_replicated()
  # The item's own metadata (the step's _CHECKPOINT_METADATA is not needed).
  handler = ocp.PyTreeCheckpointHandler()
  try:
    tree = handler.metadata(_item_dir(workdir, step)).tree
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise _unreadable(workdir, step, e) from None
  finally:
    handler.close()
  item = {k: jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
                          tree[k]) for k in ("params", "model_state")}
  restored = restore_subtrees(workdir, step, item)
  return jax.device_get((restored["params"], restored["model_state"]))
