"""The trainer: ``train_and_evaluate(config, workdir)``, the loop of jitted,
donated steps (``sslax.train.step``) over a run (``sslax.train.run``), with
checkpoints, logged metrics, online evaluation and signals."""

import contextlib
import sys
import time

import jax
import numpy as np

from sslax.data import modality, pipeline, workers
from sslax.errors import NonFinite, UserError
from sslax.sharding import data_sharding
from sslax.train import artifact, checkpoint, interrupt, online, run_config
from sslax.train import workdir as workdir_lib
from sslax.train.metrics import MetricWriter
from sslax.train.run import Run, abstract_state, init_state, setup
from sslax.train.step import compile_step


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
                       stop_at: int = None, eval_sources=None, extend_to: int = None):
  """Trains ``config`` in ``workdir``, resuming from its latest checkpoint.

  ``source`` and ``method`` replace the config's own (see ``setup``): e.g.
  images held in memory as ``sslax.data.arrays.ArraySource``. ``stop_at``
  ends the run after that step's checkpoint, as a preemption would (used by
  tests). ``eval_sources`` (train, test) are what online evaluation scores
  (default: the config's ``data.eval_train_split`` and ``data.eval_split``;
  off when ``source`` is given without them). Returns the final TrainState.
  SIGTERM or SIGINT during the steps saves the step reached and raises
  ``interrupt.Interrupted`` (its ``step``, ``signum`` and ``state``), at the
  last step too (the final online evaluation is then skipped); before the
  first step (set-up, restoring, compilation) it raises ``Interrupted`` at
  once, naming what is saved.
  ``extend_to`` continues the workdir's run to that many steps
  (``run_config.extend``: its schedules keep their length).
  """
  # From here to the end a signal stops the run with one line, never the
  # default action (which would leave the lock behind).
  stop = interrupt.StopOnSignal()
  try:
    return _set_up_and_train(config, workdir, source, method, stop_at, eval_sources,
                             extend_to, stop)
  finally:
    stop.restore()


def _set_up_and_train(config, workdir, source, method, stop_at, eval_sources, extend_to,
                      stop):
  own_source = source is not None
  if own_source:  # config.json says so: evaluations then refuse its data.name
    config = run_config.record_given_source(config, source)
  extend_line = None
  if extend_to is not None:
    config, extend_line = run_config.extend(config, workdir, extend_to)
  run = setup(config, source=source, method=method)
  # Before anything is written: a refused evaluation split costs nothing.
  evaluate = online.make_online_eval(config, run.method.encoder, run.mesh, run.source,
                                     eval_sources, own_source=own_source)
  for note in modality.of_config(config.data).notes(config, run.source):
    _report(f"sslax: note: {note}")
  probe_off = online.probe_note(run.method.encoder, run.source)
  if probe_off:
    _report(f"sslax: note: the online linear probe is off: {probe_off}")
  stop.check("set-up", checkpoint.latest_step(workdir), workdir)
  with workdir_lib.claim(workdir, config.get("lock_timeout", 300), report=_report):
    try:
      return _train(run, workdir, evaluate, stop_at, extend_line, stop)
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


def _train(run: Run, workdir: str, evaluate, stop_at, extend_line, stop):
  """The steps of ``train_and_evaluate``, with ``workdir`` claimed."""
  config, mesh, source = run.config, run.mesh, run.source
  run_config.check_or_write_config(workdir, config, extending=extend_line is not None)
  if extend_line:
    _report(extend_line)
  state = None
  if checkpoint.latest_step(workdir) is not None:
    state = stop.wait_for("restoring the checkpoint", checkpoint.restore_newest, workdir,
                          abstract_state(run), _report, workdir=workdir)
  saved = checkpoint.latest_step(workdir) if state is not None else None
  if state is None:
    state = stop.wait_for("initialisation", init_state, run, workdir=workdir)
    artifact.write_encoders(workdir, run.method, state, config, run.source)
  else:
    # What evaluation and export read besides the checkpoints: rewritten from
    # the config when missing or damaged (encoder_init/ is the seed's).
    damaged = artifact.damaged(workdir, run.method)
    if damaged:
      artifact.repair(workdir, run.method, init_state(run), config, run.source, damaged)
      _report(f"sslax: note: rewrote {', '.join(p.name for p in damaged)} of {workdir} "
              "(missing or damaged) from the config")
  # Made after the restore: a damaged checkpoint moved aside is not listed.
  mngr = checkpoint.manager(workdir, keep=config.keep_checkpoints)
  start = int(jax.device_get(state.step))
  train_step = compile_step(run, state)

  writer = MetricWriter(workdir, resume_step=start)
  if pipeline.resolve_workers(config.data.get("workers", 0)):
    count, size = workers.reclaim_orphaned_segments()
    if count:
      _report(f"sslax: note: removed {count} shared-memory segments ({size / 2**20:.0f} "
              f"MiB in {workers.SHM_DIR}) left by input workers of runs that died")
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
  # SIGTERM/SIGINT: stop at the next step boundary, after saving that step;
  # during the first step's compilation, at once.
  interrupted = None
  stop.check("the input pipeline's start", saved, workdir)
  try:
    for step, batch in batches:
      if step >= config.num_steps:
        break
      if step == start:
        state, metrics = stop.wait_for("compilation and the first step", train_step,
                                       state, batch, saved=saved, workdir=workdir)
      else:
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
                                   done == config.num_steps) and not (
                                       jax.process_count() == 1 and stop.signum):
        # (a signal already came: the run stops after saving this step;
        # with several processes every one evaluates, a collective)
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
      if signum:  # at the last step too: its checkpoint is saved above
        if mngr.latest_step() != done:
          checkpoint.save(mngr, state, force=True)
        interrupted = interrupt.Interrupted(done, signum, state, workdir)
        break
  except workers.InputWorkerDied as e:
    saved_step = mngr.latest_step()
    kept = (f"the checkpoint of step {saved_step} is saved in {workdir}"
            if saved_step is not None else "nothing is saved yet")
    raise workers.InputWorkerDied(
        f"{e}; {kept}; rerun the same command to resume (with a smaller "
        "--config.data.workers if memory ran out)") from None
  finally:
    # Each cleanup runs even when one before it raises (a failed async save
    # surfaces in wait_until_finished); callbacks run last-registered first.
    with contextlib.ExitStack() as cleanup:
      if bar is not None:
        cleanup.callback(bar.close)
      cleanup.callback(writer.close)
      cleanup.callback(mngr.close)
      cleanup.callback(mngr.wait_until_finished)
      cleanup.callback(batches.close)
  if interrupted is not None:
    raise interrupted
  return state
