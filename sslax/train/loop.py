"""The trainer: one jitted, donated ``train_step`` over a data mesh, and
``train_and_evaluate(config, workdir)`` around it."""

import sys
import time

import jax
import jax.numpy as jnp
import optax

from sslax.data import inputs, pipeline
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.methods import build_method
from sslax.methods.base import eval_input
from sslax.train import checkpoint, online
from sslax.train.mesh import data_sharding, make_mesh, replicated
from sslax.train.metrics import MetricWriter
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
  if inputs.modality(config.data) != "image":
    return
  if len(config.data.image_size) != 2:
    raise UserError(f"config.data.image_size must be (height, width), got "
                    f"{tuple(config.data.image_size)}")
  channels = source.image_shape[-1]
  for key in ("mean", "std"):
    if len(config.data[key]) != channels:
      raise UserError(f"config.data.{key} has {len(config.data[key])} values but "
                      f"{config.data.name} images have {channels} channels")


def make_train_step(method, tx, schedule, mesh, probe_tx):
  """``step(state, batch) -> (state, metrics)``, pure; jit it with donation.

  The online probe is fitted on the method's stop-gradient features of the same
  batch; it never touches the method's parameters."""

  def step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)

    def loss_of(params):
      return method.loss_fn(params, state.model_state, state.method_state, batch,
                            key, mesh)

    (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    method_state = method.after_update(aux.method_state, params, state.step)
    probe, probe_metrics = online.update_probe(state.probe, probe_tx, aux.features,
                                               batch["label"])
    metrics = {"loss": loss, "lr": schedule(state.step), **aux.metrics,
               **probe_metrics}
    new_state = state.replace(step=state.step + 1, params=params,
                              model_state=aux.model_state, opt_state=opt_state,
                              method_state=method_state, probe=probe)
    return new_state, metrics

  return step


def _initializer(method, tx, config, source):
  """(init, key): ``init(key)`` builds the step-0 TrainState of ``config``."""
  rng = jax.random.PRNGKey(config.seed)
  init_key, run_key = jax.random.split(rng)
  images, _ = source.get(list(range(2)))
  probe_tx = online.probe_optimizer(config)

  def init(key):
    params, model_state, method_state = method.init(key, jnp.asarray(images))
    variables = method.encoder_variables(params, model_state)
    x = eval_input(method, jnp.asarray(images), config.data)
    feature_dim = jax.eval_shape(
        lambda v: method.encoder.apply(v, x, train=False), variables).shape[-1]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      model_state=model_state, opt_state=tx.init(params),
                      method_state=method_state,
                      probe=online.init_probe(feature_dim, source.num_classes, probe_tx),
                      rng=run_key)

  return init, init_key


def abstract_state(method, tx, config, source, mesh):
  """The TrainState's shapes and dtypes, replicated over the mesh, computed
  without running or compiling anything: the target a checkpoint restores onto."""
  init, init_key = _initializer(method, tx, config, source)
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated(mesh)),
      jax.eval_shape(init, init_key))


def init_state(method, tx, config, source, mesh):
  """The step-0 state, replicated over the mesh; deterministic in config.seed."""
  init, init_key = _initializer(method, tx, config, source)
  shardings = jax.tree.map(lambda _: replicated(mesh), jax.eval_shape(init, init_key))
  return jax.jit(init, out_shardings=shardings)(init_key)


def initial_or_restored_state(method, tx, config, source, mesh, mngr):
  """The latest checkpoint of ``mngr`` if it holds one, else the step-0 state."""
  step = mngr.latest_step()
  if step is None:
    return init_state(method, tx, config, source, mesh)
  return checkpoint.restore(mngr, step, abstract_state(method, tx, config, source, mesh))


def compile_step(method, tx, schedule, mesh, state, config):
  state_shardings = jax.tree.map(lambda x: x.sharding, state)
  step = make_train_step(method, tx, schedule, mesh, online.probe_optimizer(config))
  return jax.jit(step,
                 in_shardings=(state_shardings, data_sharding(mesh)),
                 out_shardings=(state_shardings, replicated(mesh)),
                 donate_argnums=0)


def _progress(total, initial, enabled):
  if not enabled:
    return None
  try:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


def train_and_evaluate(config, workdir: str, *, stop_at: int = None):
  """Trains ``config`` in ``workdir``, resuming from its latest checkpoint.

  ``stop_at`` ends the run after that step's checkpoint, as a preemption would
  (used by tests). Returns the final TrainState.
  """
  mesh = make_mesh(config.global_batch_size)
  source = get_source(config.data, "train")
  validate_config(config, source)
  method = build_method(config)
  tx, schedule = make_optimizer(config.optimizer, config.global_batch_size,
                                config.num_steps)
  checkpoint.check_or_write_config(workdir, config)

  mngr = checkpoint.manager(workdir, keep=config.keep_checkpoints)
  state = initial_or_restored_state(method, tx, config, source, mesh, mngr)
  start = int(jax.device_get(state.step))
  train_step = compile_step(method, tx, schedule, mesh, state, config)
  evaluate = online.OnlineEval(config, method, mesh) if config.online_eval_every else None

  writer = MetricWriter(workdir, resume_step=start)
  batches = pipeline.BatchIterator(source, seed=config.seed,
                                   global_batch=config.global_batch_size,
                                   sharding=data_sharding(mesh), start_step=start)
  show = config.get("progress_bar", True) and sys.stderr.isatty() and jax.process_index() == 0
  bar = _progress(config.num_steps, start, show)
  last_time, last_step = time.perf_counter(), start
  try:
    for step, batch in batches:
      if step >= config.num_steps:
        break
      state, metrics = train_step(state, batch)
      done = step + 1
      record = {}
      if done % config.log_every == 0 or done == config.num_steps:
        metrics = jax.device_get(metrics)
        now = time.perf_counter()
        rate = (done - last_step) * config.global_batch_size / (now - last_time)
        record.update(metrics, images_per_second=rate)
        if bar is not None:
          bar.set_postfix(loss=f"{float(metrics['loss']):.4f}", img_s=f"{rate:.0f}")
      if evaluate is not None and (done % config.online_eval_every == 0 or
                                   done == config.num_steps):
        record.update(evaluate(state))
      if record:
        writer.write(done, record)
        # Evaluation time is not training time: the rate counts from here.
        last_time, last_step = time.perf_counter(), done
      if bar is not None:
        bar.update(1)
      if done % config.checkpoint_every == 0 or done == config.num_steps:
        checkpoint.save(mngr, state)
      if stop_at is not None and done >= stop_at:
        if mngr.latest_step() != done:
          checkpoint.save(mngr, state, force=True)
        break
  finally:
    batches.close()
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
    if bar is not None:
      bar.close()
  return state
