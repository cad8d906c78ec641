"""The encoders a run hands over: their descriptions in the workdir
(``encoders/<name>.json``, the primary one also as ``encoder.json``, which
is all that workdirs written before named encoders hold), the files saved
beside them (``encoders/<name>/``: a vocabulary) and their variables at
initialisation (``encoder_init/``: the random-init baseline of the primary).
Evaluation, export and pictures rebuild an encoder from these and the
checkpoint's variables alone: never the method, its optimizer or its data."""

import jax
import orbax.checkpoint as ocp

from sslax import encoder as encoder_lib
from sslax.errors import UserError
from sslax.train.checkpoint import (restore_subtrees, all_finite, checkpoint_dir,
                                    latest_step, local_replicated)
from sslax.train.workdir import workdir_path

ENCODER_INIT_DIR = "encoder_init"
ENCODERS_DIR = "encoders"


def write_encoders(workdir: str, method, state, config, source):
  """Writes every encoder of ``method`` (``encoders/<name>.json``, the
  primary also as ``encoder.json``), the assets its ``assets(source)``
  gives, and the primary's variables at step 0 (``encoder_init/``)."""
  root = workdir_path(workdir)
  assets = method.assets(source) if method.assets is not None else {}
  if jax.process_index() == 0:
    (root / ENCODERS_DIR).mkdir(parents=True, exist_ok=True)
    for name, definition in method.encoders.items():
      variables = definition.select(state.params, state.model_state)
      info = {"name": name, "primary": name == method.encoder_name,
              "method": config.method, "dataset": config.data.name}
      if definition.output == "vector":
        info["feature_dim"] = encoder_lib.feature_dim(definition, variables)
      encoder_lib.write_definition(root / ENCODERS_DIR / f"{name}.json", definition, **info)
      if name == method.encoder_name:
        encoder_lib.write_definition(root / encoder_lib.INFO_FILE, definition, **info)
      for file_name, text in assets.get(name, {}).items():
        (root / ENCODERS_DIR / name).mkdir(parents=True, exist_ok=True)
        (root / ENCODERS_DIR / name / file_name).write_text(text)
  if (root / ENCODER_INIT_DIR).exists():
    return  # a restarted fresh run: the same seed gave the same variables
  primary = method.encoder.select(state.params, state.model_state)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(root / ENCODER_INIT_DIR, primary)


def damaged(workdir: str, method) -> list:
  """The encoder files of a run that are missing or unreadable: each
  description (``encoder.json``, ``encoders/<name>.json``) and
  ``encoder_init/`` (restored in full: it is small). What ``write_encoders``
  rewrites, after removing a damaged ``encoder_init/``."""
  root = workdir_path(workdir)
  paths = [root / encoder_lib.INFO_FILE] + [root / ENCODERS_DIR / f"{n}.json"
                                            for n in method.encoders]
  bad = []
  for path in paths:
    try:
      encoder_lib.read_definition(path)
    except (UserError, OSError, KeyError, TypeError, ValueError):
      bad.append(path)
  init = root / ENCODER_INIT_DIR
  try:
    shapes = method.encoder.abstract_variables()
    with ocp.StandardCheckpointer() as ckptr:
      ckptr.restore(init, jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=local_replicated()),
          shapes))
  except Exception:  # pylint: disable=broad-except
    # Orbax reports a missing or damaged directory in many types.
    bad.append(init)
  return bad


def repair(workdir: str, method, state, config, source, paths):
  """Rewrites the ``damaged`` ``paths`` from a state at initialisation."""
  init = workdir_path(workdir) / ENCODER_INIT_DIR
  if init in paths and init.exists() and jax.process_index() == 0:
    init.rmtree()
  write_encoders(workdir, method, state, config, source)


def encoder_names(workdir: str) -> list:
  """The names of a workdir's encoders, the primary first (a workdir written
  before named encoders has one, ``encoder``)."""
  root = workdir_path(workdir) / ENCODERS_DIR
  if not root.exists():
    return ["encoder"] if (workdir_path(workdir) / encoder_lib.INFO_FILE).exists() else []
  names = sorted(p.name[:-len(".json")] for p in root.glob("*.json"))
  primary = [n for n in names if encoder_lib.read_definition(root / f"{n}.json")[1].get(
      "primary")]
  return primary + [n for n in names if n not in primary]


def _description_path(workdir: str, name):
  root = workdir_path(workdir)
  if name is None:
    return root / encoder_lib.INFO_FILE
  path = root / ENCODERS_DIR / f"{name}.json"
  if path.exists():
    return path
  names = encoder_names(workdir)
  if not names:
    return root / encoder_lib.INFO_FILE  # reported by the caller
  if name in names:  # "encoder" of a workdir written before named encoders
    return root / encoder_lib.INFO_FILE
  raise UserError(f"{workdir} has no encoder {name!r}; its encoders are "
                  f"{', '.join(names)}")


def read_encoder_definition(workdir: str, name=None):
  """``(EncoderDef, info)`` of a workdir's encoder ``name`` (default: the
  primary, ``encoder.json``)."""
  path = _description_path(workdir, name)
  if not path.exists():
    raise UserError(f"{workdir} holds no {encoder_lib.INFO_FILE}; rerun the `sslax "
                    "train` command of this workdir: it rewrites it from the config, "
                    "without retraining")
  return encoder_lib.read_definition(path)


def asset_paths(workdir: str, name, definition) -> dict:
  """{file name: path} of an encoder's assets."""
  if not definition.assets:
    return {}
  if name is None:
    name = encoder_names(workdir)[0]
  root = workdir_path(workdir) / ENCODERS_DIR / name
  return {f: root / f for f in definition.assets}


def restore_encoder(workdir: str, *, name=None, random_init: bool = False, step=None,
                    sharding=None):
  """The run's ``Encoder`` ``name`` (default: the primary): the variables of
  its newest checkpoint (or ``step``), or at initialisation with
  ``random_init`` (the primary only). Reads only the encoder's arrays, onto
  ``sharding`` (default: replicated over this process's devices); builds no
  method, optimizer or train state."""
  definition, _ = read_encoder_definition(workdir, name)
  assets = asset_paths(workdir, name, definition)
  sharding = sharding or local_replicated()
  shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                        definition.abstract_variables())
  if random_init:
    path = workdir_path(workdir) / ENCODER_INIT_DIR
    if not path.exists():
      raise UserError(f"{workdir} holds no {ENCODER_INIT_DIR}/; rerun the `sslax train` "
                      "command of this workdir: it rewrites it from the config, without "
                      "retraining")
    with ocp.StandardCheckpointer() as ckptr:
      return encoder_lib.Encoder(definition, ckptr.restore(path, shapes), assets)
  step = latest_step(workdir) if step is None else step
  if step is None:
    raise UserError(f"{workdir} holds no checkpoint; train first with "
                    f"`sslax train --config ... --workdir {workdir}`")
  params, model_state = definition.place(shapes)
  restored = restore_subtrees(workdir, step, {"params": params, "model_state": model_state})
  variables = definition.select(restored["params"], restored["model_state"])
  if not all_finite(variables):
    older = sorted(s for s in ocp.step.checkpoint_steps(checkpoint_dir(workdir)) if s < step)
    hint = (f"use an earlier checkpoint (steps {older}): move "
            f"{checkpoint_dir(workdir) / str(step)} aside" if older else
            "it holds no earlier checkpoint; train again with a lower "
            "--config.optimizer.learning_rate in a new --workdir")
    raise UserError(f"{workdir}: the encoder of checkpoint step {step} has non-finite "
                    f"(NaN or inf) parameters; {hint}")
  return encoder_lib.Encoder(definition, variables, assets)
