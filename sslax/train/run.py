"""What a run is made of before its first step: the training source, the
method, the optimizer and the mesh of a config (``setup``), checked, and the
step-0 train state built from them (``init_state``, ``abstract_state``)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax import encoder as encoder_lib
from sslax.config_base import schedule_steps
from sslax.data import modality, pipeline
from sslax.data.source import LABEL, Source
from sslax.data.sources import check_tuning, split_source, validation_fraction
from sslax.errors import UserError
from sslax.methods import build_method
from sslax.methods.base import Method
from sslax.sharding import data_sharding, make_mesh, replicated
from sslax.train import online
from sslax.train.optim import make_optimizer
from sslax.train.state import TrainState


def validate_config(config, source):
  """One-line errors for config values that would otherwise fail deep inside."""
  for key in ("global_batch_size", "num_steps", "log_every", "checkpoint_every",
              "keep_checkpoints", "eval.online_knn_k"):
    value = config
    for part in key.split("."):
      value = value[part]
    if int(value) <= 0:
      raise UserError(f"config.{key} must be positive, got {value}")
  if int(config.online_eval_every) < 0:
    raise UserError("config.online_eval_every must be >= 0 (0 turns online "
                    f"evaluation off), got {config.online_eval_every}")
  validation_fraction(config.data)
  check_tuning(config.data)  # with online evaluation off too: the config is wrong
  modality.check_config(config, source)


def check_source(source):
  """One line for a training source that does not follow the protocol of
  ``sslax.data.source`` (e.g. one written for the (images, labels) tuples of
  earlier versions), or that has labels without their number."""
  if not isinstance(source, Source):
    raise UserError(f"{type(source).__name__} is not a source: give it element_spec "
                    "({name: (shape, dtype)}), __len__ and get(indices) -> {name: array} "
                    "(docs/architecture.md), or use sslax.data.arrays.ArraySource")
  if LABEL in source.element_spec and not getattr(source, "num_classes", 0):
    raise UserError(f"{type(source).__name__} gives a \"label\" but num_classes is "
                    f"{getattr(source, 'num_classes', None)}; set num_classes to the "
                    "number of classes (or drop \"label\" for unlabelled data)")


class Run(NamedTuple):
  """What a run is made of before its first step (``setup``)."""
  config: Any
  source: Any        # the training source
  method: Method
  tx: optax.GradientTransformation
  schedule: Any      # step -> learning rate
  mesh: jax.sharding.Mesh


def setup(config, *, source=None, method=None) -> Run:
  """The training source, the method, the optimizer and the mesh of
  ``config``: what the trainer, the throughput tool and the tests build on.
  ``source`` (default: the split ``config.data.train_split``) and ``method``
  (default: ``build_method(config)``) replace the config's own."""
  mesh = make_mesh(config.global_batch_size)
  source = source if source is not None else split_source(config.data, "train_split")
  check_source(source)
  validate_config(config, source)
  method = method if method is not None else build_method(config)
  for key in method.reads or (method.encoder.input_key,):
    if key not in source.element_spec:
      raise UserError(f"{config.method} reads examples' {key!r} but the training data's "
                      f"examples have {', '.join(sorted(source.element_spec))}; train it "
                      f"on data with {key!r} (config.data.name, config.data.modality)")
  tx, schedule = make_optimizer(config.optimizer, config.global_batch_size,
                                config.num_steps, schedule_steps(config))
  return Run(config, source, method, tx, schedule, mesh)


def _initializer(run: Run):
  """(init, key): ``init(key, constants)`` builds the step-0 TrainState of the
  run (``constants``: the method's, or None)."""
  method, config = run.method, run.config
  rng = jax.random.PRNGKey(config.seed)
  init_key, run_key = jax.random.split(rng)
  examples = pipeline.read_examples(run.source, np.arange(min(2, len(run.source))))
  probe_tx = online.probe_optimizer(config)
  vector = method.encoder.output == "vector"
  feature_dim = encoder_lib.feature_dim(method.encoder) if vector else 0

  def init(key, constants):
    first = jax.tree.map(jnp.asarray, examples)
    if method.constants is None:
      params, model_state, method_state = method.init(key, first)
    else:
      params, model_state, method_state = method.init(key, first, constants)
    # A vector encoder has the probe (idle on unlabelled data); others none.
    probe = (online.init_probe(feature_dim, getattr(run.source, "num_classes", 0),
                               probe_tx) if vector else {})
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      model_state=model_state, opt_state=run.tx.init(params),
                      method_state=method_state, probe=probe, rng=run_key)

  return init, init_key


def method_constants(run: Run):
  """The method's constants computed from the training data (None if it has
  none). A resumed run restores their values from the checkpoint; computing
  them is how it learns their shapes."""
  if run.method.constants is None:
    return None
  return jax.tree.map(np.asarray, run.method.constants(run.source))


def abstract_state(run: Run):
  """The TrainState's shapes and dtypes, replicated over the mesh, computed
  without running or compiling anything: the target a checkpoint restores onto."""
  constants = jax.tree.map(lambda c: jax.ShapeDtypeStruct(c.shape, c.dtype),
                           method_constants(run))
  init, init_key = _initializer(run)
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated(run.mesh)),
      jax.eval_shape(init, init_key, constants))


def init_state(run: Run):
  """The step-0 state, replicated over the mesh; deterministic in config.seed."""
  init, init_key = _initializer(run)
  constants = method_constants(run)
  shardings = jax.tree.map(lambda _: replicated(run.mesh),
                           jax.eval_shape(init, init_key, constants))
  return jax.jit(init, out_shardings=shardings)(init_key, constants)


def global_batch(run: Run, step: int):
  """The global batch of ``step`` as arrays split over the mesh (the
  pipeline's, for tests and tools that step by hand)."""
  idx = pipeline.global_batch_indices(run.config.seed, step, run.config.global_batch_size,
                                      len(run.source))
  return pipeline.to_global(data_sharding(run.mesh), pipeline.read_examples(run.source, idx))
