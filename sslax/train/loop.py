"""The trainer: one jitted, donated ``train_step`` over a data mesh, and
``train_and_evaluate(config, workdir)`` around it."""

import contextlib
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax.data import modality, pipeline
from sslax.data.source import LABEL, Source
from sslax.data.sources import split_source
from sslax.errors import NonFinite, UserError
from sslax import encoder as encoder_lib
from sslax.methods import build_method
from sslax.methods.base import Method
from sslax.train import artifact, checkpoint, interrupt, online, run_config
from sslax.train import workdir as workdir_lib
from sslax.sharding import data_sharding, make_mesh, replicated
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
  modality.of_config(config.data).check_config(config, source)


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


def make_train_step(method, tx, schedule, probe_tx):
  """``step(state, batch) -> (state, metrics)``, pure; jit it with donation.

  The online probe is fitted on the method's stop-gradient features of the same
  batch when the batch is labelled and the method gives vector features
  (``probe_on``, decided at trace time); it never touches the method's
  parameters."""

  def step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)

    def loss_of(params):
      return method.loss_fn(params, state.model_state, state.method_state, batch,
                            key)

    (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    method_state, side_metrics = aux.method_state, {}
    if method.side_update is not None:
      method_state, side_metrics = method.side_update(
          method_state, jax.lax.stop_gradient(aux.outputs))
    method_state = method.after_update(method_state, params, state.step)
    probe, probe_metrics = state.probe, {}
    if online.probe_on(state.probe, batch, aux.features):
      probe, probe_metrics = online.update_probe(state.probe, probe_tx, aux.features,
                                                 batch["label"])
    metrics = {"loss": loss, "lr": schedule(state.step),
               "grad_norm": optax.global_norm(grads), **aux.metrics,
               **side_metrics, **probe_metrics}
    new_state = state.replace(step=state.step + 1, params=params,
                              model_state=aux.model_state, opt_state=opt_state,
                              method_state=method_state, probe=probe)
    return new_state, metrics

  return step


def check_finite(done: int, metrics, config):
  """Raises ``NonFinite`` (exit status 3) when step ``done``'s loss or gradient
  norm (``metrics``' scalars, fetched) is NaN or infinite; the run then stops
  before saving that step, so its checkpoints stay finite."""
  bad = [name for key, name in (("loss", "loss"), ("grad_norm", "gradient norm"))
         if key in metrics and not np.all(np.isfinite(np.asarray(metrics[key])))]
  if bad:
    values = ", ".join(f"{k} {float(np.asarray(metrics[k]))}" for k in ("loss", "grad_norm")
                       if k in metrics)
    raise NonFinite(f"step {done}: the {' and the '.join(bad)} went non-finite "
                    f"({values}); stopped without saving it (the checkpoints kept "
                    "are finite); lower --config.optimizer.learning_rate (now "
                    f"{config.optimizer.learning_rate}) and train into a new --workdir")


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
  key = method.encoder.input_key
  if key not in source.element_spec:
    raise UserError(f"{config.method} reads examples' {key!r} but the training data's "
                    f"examples have {', '.join(sorted(source.element_spec))}; train it "
                    f"on data with {key!r} (config.data.name, config.data.modality)")
  tx, schedule = make_optimizer(config.optimizer, config.global_batch_size,
                                config.num_steps)
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


def compile_step(run: Run, state, *, probe_tx=None, wrap=None):
  """The jitted, donated step; it is traced and run under the run's mesh
  (``jax.set_mesh``), where global-batch losses find it. ``probe_tx``
  replaces the online probe's optimizer and ``wrap`` wraps the pure step
  before jit (tests count traces with it)."""
  state_shardings = jax.tree.map(lambda x: x.sharding, state)
  pure = make_train_step(run.method, run.tx, run.schedule,
                         probe_tx or online.probe_optimizer(run.config))
  step = jax.jit(wrap(pure) if wrap else pure,
                 in_shardings=(state_shardings, data_sharding(run.mesh)),
                 out_shardings=(state_shardings, replicated(run.mesh)),
                 donate_argnums=0)

  def step_under_mesh(state, batch):
    with jax.set_mesh(run.mesh):
      return step(state, batch)

  return step_under_mesh


def global_batch(run: Run, step: int):
  """The global batch of ``step`` as arrays split over the mesh (the
  pipeline's, for tests and tools that step by hand)."""
  idx = pipeline.global_batch_indices(run.config.seed, step, run.config.global_batch_size,
                                      len(run.source))
  return pipeline.to_global(data_sharding(run.mesh), pipeline.read_examples(run.source, idx))


def _progress(total, initial, enabled):
  if not enabled:
    return None
  try:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


def log_line(done: int, num_steps: int, record: dict, global_batch: int) -> str:
  """One plain line of a logged step, for logs without a terminal:
  ``step 50/1000  loss 4.1234  examples/s 651  data_wait 1.2%  eta 0:09:44``
  (``data_wait`` and online evaluation figures when the record has them; the
  ETA from the interval's examples/s)."""
  parts = [f"step {done}/{num_steps}", f"loss {float(record['loss']):.4f}"]
  rate = float(record.get("examples_per_second", 0.0))
  parts.append(f"examples/s {rate:.0f}")
  if "data_wait" in record:
    parts.append(f"data_wait {100 * float(record['data_wait']):.1f}%")
  parts.extend(f"{k} {float(v):.4f}" for k, v in record.items() if k.startswith("online_"))
  if rate > 0:
    seconds = round((num_steps - done) * global_batch / rate)
    parts.append(f"eta {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")
  return "  ".join(parts)


def train_and_evaluate(config, workdir: str, *, source=None, method=None,
                       stop_at: int = None, eval_sources=None):
  """Trains ``config`` in ``workdir``, resuming from its latest checkpoint.

  ``source`` and ``method`` replace the config's own (see ``setup``): e.g.
  images held in memory as ``sslax.data.arrays.ArraySource``. ``stop_at``
  ends the run after that step's checkpoint, as a preemption would (used by
  tests). ``eval_sources`` (train, test) are what online evaluation scores
  (default: the config's ``data.eval_train_split`` and ``data.eval_split``;
  off when ``source`` is given without them). Returns the final TrainState.
  SIGTERM or SIGINT during the steps saves the step reached and raises
  ``interrupt.Interrupted`` (its ``step``, ``signum`` and ``state``).
  """
  own_source = source is not None
  run = setup(config, source=source, method=method)
  # Before anything is written: a refused evaluation split costs nothing.
  evaluate = online.make_online_eval(config, run.method.encoder, run.mesh, run.source,
                                     eval_sources, own_source=own_source)
  probe_off = online.probe_note(run.method.encoder, run.source)
  if probe_off:
    _report(f"sslax: note: the online linear probe is off: {probe_off}")
  with workdir_lib.claim(workdir):
    try:
      return _train(run, workdir, evaluate, stop_at)
    except (OSError, ValueError) as e:
      problem = workdir_lib.system_error(e)
      if problem is None:
        raise
      raise UserError(_system_error_line(workdir, problem, e)) from None


def _system_error_line(workdir, problem, exc) -> str:
  """One line for a full disk or an unwritable path met while training."""
  try:
    steps = sorted(checkpoint.saved_steps(workdir))
  except OSError:
    steps = []
  where = getattr(exc, "filename", None) or workdir
  kept = (f"the checkpoints of steps {steps} are intact; rerun the same command to "
          f"resume from step {steps[-1]}" if steps else "no checkpoint was saved yet")
  fix = {"the disk is full": "free space on its disk",
         "the disk quota is exceeded": "free space within your quota"}.get(
             problem, "make it writable")
  return (f"cannot write {where}: {problem}; {fix} or use another --workdir; {kept}")


def _report(line: str):
  if jax.process_index() == 0:
    print(line, file=sys.stderr, flush=True)


def _train(run: Run, workdir: str, evaluate, stop_at):
  """The steps of ``train_and_evaluate``, with ``workdir`` claimed."""
  config, mesh, source = run.config, run.mesh, run.source
  run_config.check_or_write_config(workdir, config)
  state = None
  if checkpoint.latest_step(workdir) is not None:
    state = checkpoint.restore_newest(workdir, abstract_state(run), report=_report)
  if state is None:
    state = init_state(run)
    artifact.write_encoders(workdir, run.method, state, config, run.source)
  # Made after the restore: a damaged checkpoint moved aside is not listed.
  mngr = checkpoint.manager(workdir, keep=config.keep_checkpoints)
  start = int(jax.device_get(state.step))
  train_step = compile_step(run, state)

  writer = MetricWriter(workdir, resume_step=start)
  batches = pipeline.BatchIterator(source, seed=config.seed,
                                   global_batch=config.global_batch_size,
                                   sharding=data_sharding(mesh), start_step=start,
                                   stop_step=config.num_steps,
                                   workers=config.data.get("workers", 0))
  show = config.progress_bar and sys.stderr.isatty() and jax.process_index() == 0
  bar = _progress(config.num_steps, start, show)
  # Without a progress bar (no terminal: a log file, a batch job), one line per
  # logged step on stderr, from process 0 only.
  print_lines = bar is None and jax.process_index() == 0
  # data_wait: the fraction of each logged interval's wall time spent waiting
  # for the next batch (BatchIterator.wait_seconds).
  last_time, last_step, last_wait = time.perf_counter(), start, batches.wait_seconds
  # SIGTERM/SIGINT: stop at the next step boundary, after saving that step.
  stop, interrupted = interrupt.StopOnSignal(), None
  try:
    for step, batch in batches:
      if step >= config.num_steps:
        break
      state, metrics = train_step(state, batch)
      done = step + 1
      # Non-finite guard: every logged step and every step about to be saved
      # (two scalars fetched; checkpoint.save also checks the parameters).
      if (done % config.log_every == 0 or done % config.checkpoint_every == 0 or
          done == config.num_steps or (stop_at is not None and done >= stop_at)):
        check_finite(done, jax.device_get({k: metrics[k] for k in ("loss", "grad_norm")
                                           if k in metrics}), config)
      record = {}
      if done % config.log_every == 0 or done == config.num_steps:
        metrics = jax.device_get(metrics)
        now = time.perf_counter()
        rate = (done - last_step) * config.global_batch_size / (now - last_time)
        data_wait = (batches.wait_seconds - last_wait) / (now - last_time)
        record.update(metrics, examples_per_second=rate, data_wait=data_wait)
        if bar is not None:
          bar.set_postfix(loss=f"{float(metrics['loss']):.4f}", ex_s=f"{rate:.0f}")
      if evaluate is not None and (done % config.online_eval_every == 0 or
                                   done == config.num_steps):
        record.update(evaluate(state))
      if record:
        writer.write(done, record)
        if print_lines and "loss" in record:
          print(log_line(done, config.num_steps, record, config.global_batch_size),
                file=sys.stderr, flush=True)
        # Evaluation time is not training time: the rate counts from here.
        last_time, last_step, last_wait = time.perf_counter(), done, batches.wait_seconds
      if bar is not None:
        bar.update(1)
      if done % config.checkpoint_every == 0 or done == config.num_steps:
        checkpoint.save(mngr, state)
      if stop_at is not None and done >= stop_at:
        if mngr.latest_step() != done:
          checkpoint.save(mngr, state, force=True)
        break
      signum = stop.agreed()  # the same on every process
      if signum and done < config.num_steps:
        if mngr.latest_step() != done:
          checkpoint.save(mngr, state, force=True)
        interrupted = interrupt.Interrupted(done, signum, state, workdir)
        break
  finally:
    # Each cleanup runs even when one before it raises (a failed async save
    # surfaces in wait_until_finished); callbacks run last-registered first.
    with contextlib.ExitStack() as cleanup:
      cleanup.callback(stop.restore)
      if bar is not None:
        cleanup.callback(bar.close)
      cleanup.callback(writer.close)
      cleanup.callback(mngr.close)
      cleanup.callback(mngr.wait_until_finished)
      cleanup.callback(batches.close)
  if interrupted is not None:
    raise interrupted
  return state
