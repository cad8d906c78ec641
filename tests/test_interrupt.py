"""SIGTERM (preemption) and SIGINT (Ctrl-C) stop ``sslax train`` at a step
boundary: that step's checkpoint is saved, one line says where it stopped and
how to resume, the exit status is 0 (SIGTERM) or 130 (SIGINT), and the resumed
run equals an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from sslax.train import checkpoint
from sslax.train.loop import train_and_evaluate
from sslax.train.metrics import read_metrics
import states

# Signals, kills and locks: run apart from the parallel tests (setup.cfg).
pytestmark = pytest.mark.serial

NUM_STEPS = 400
# Only the signal-triggered save can exist.
OVERRIDES = [f"--config.num_steps={NUM_STEPS}", f"--config.checkpoint_every={NUM_STEPS}",
             "--config.log_every=1", "--config.progress_bar=False"]


def _command(workdir):
  return [sys.executable, "-m", "sslax", "train", "--config",
          os.path.join(ROOT, "configs", "simclr.py:smoke"), "--workdir", workdir,
          *OVERRIDES]


def _signal_after_steps(workdir, signum, steps=3):
  """Runs ``sslax train`` until ``steps`` steps are logged, sends ``signum``;
  (exit status, stderr)."""
  proc = subprocess.Popen(_command(workdir), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  try:
    while time.time() < deadline and proc.poll() is None:
      if len(read_metrics(workdir)) >= steps:
        break
      time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  return proc.returncode, err


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signal_saves_the_step_and_resumes_to_the_same_state(tmp_path, smoke_config,
                                                             signum, status):
  workdir = str(tmp_path / "interrupted")
  code, err = _signal_after_steps(workdir, signum)
  lines = [l for l in err.splitlines() if not l.startswith("step ")]
  assert code == status, err[-3000:]
  stopped = checkpoint.latest_step(workdir)
  assert stopped is not None and 3 <= stopped < NUM_STEPS
  # The one line: the signal, the step, how to resume.
  assert len(lines) == 1, err[-3000:]
  assert signal.Signals(signum).name in lines[0]
  assert f"after step {stopped};" in lines[0]
  assert f"--workdir {workdir}" in lines[0] and "sslax train" in lines[0]
  # ...as this command was started (`python -m sslax`), so it runs as printed.
  assert f"resume with the same command and --workdir: {sys.executable} -m sslax train" \
      in lines[0], lines[0]
  # The only checkpoint is the signal's; every step up to it has its row.
  assert os.listdir(os.path.join(workdir, "checkpoints")) == [str(stopped)]
  assert [r["step"] for r in read_metrics(workdir)] == list(range(1, stopped + 1))
  # Resumed (as the same command would) a few steps past the stop, it equals
  # an uninterrupted run.
  config = smoke_config
  config.num_steps, config.checkpoint_every = NUM_STEPS, NUM_STEPS
  config.log_every, config.progress_bar = 1, False
  target = stopped + 3
  resumed = train_and_evaluate(config, workdir, stop_at=target)
  full = train_and_evaluate(config, str(tmp_path / "full"), stop_at=target)
  states.assert_states_equal(resumed, full)
  assert ([r["loss"] for r in read_metrics(workdir)] ==
          [r["loss"] for r in read_metrics(str(tmp_path / "full"))])


def test_handlers_are_restored_after_the_loop(tmp_path, smoke_config):
  before = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
  smoke_config.num_steps = 2
  smoke_config.progress_bar = False
  train_and_evaluate(smoke_config, str(tmp_path / "run"))
  assert [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)] == before


def test_second_signal_gets_the_previous_handler():
  """After the first SIGINT the default handler is back: a second Ctrl-C
  raises KeyboardInterrupt at once."""
  from sslax.train.interrupt import StopOnSignal  # pylint: disable=g-import-not-at-top
  before = signal.getsignal(signal.SIGINT)
  stop = StopOnSignal()
  try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.1)
    assert stop.agreed() == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before
    assert signal.getsignal(signal.SIGTERM) == stop._handle  # pylint: disable=protected-access
  finally:
    stop.restore()
  assert signal.getsignal(signal.SIGINT) is before


MP_STEPS = 30


def _mp_run(workdir, port):
  from conftest import xla_flags  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(4))
  command = [sys.executable, "-m", "sslax", "train", "--config",
             os.path.join(ROOT, "configs", "simclr.py:smoke"), "--workdir", workdir,
             f"--config.num_steps={MP_STEPS}", f"--config.checkpoint_every={MP_STEPS}",
             "--config.log_every=1", "--config.progress_bar=False",
             # Online evaluation (tested elsewhere) would be 80% of each run.
             "--config.online_eval_every=0",
             "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
  return [subprocess.Popen(command + ["--process-id", str(i)], env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
          for i in range(2)]


@pytest.mark.slow
def test_two_processes_stop_at_the_same_step(tmp_path):
  """SIGTERM sent to both processes of a 2 x 4-device run, a little apart:
  both stop at one step, save it, exit 0; rerun to the end, the final
  checkpoint equals an uninterrupted 2 x 4 run's."""
  from test_multiprocess import _free_port  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "interrupted")
  procs = _mp_run(workdir, _free_port())
  try:
    deadline = time.time() + 300
    while time.time() < deadline and all(p.poll() is None for p in procs):
      if len(read_metrics(workdir)) >= 3:
        break
      time.sleep(0.1)
    assert all(p.poll() is None for p in procs), "the run ended before the signal"
    procs[1].send_signal(signal.SIGTERM)
    time.sleep(0.3)
    procs[0].send_signal(signal.SIGTERM)
    errs = [p.communicate(timeout=120)[1] for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, err in zip(procs, errs):
    assert p.returncode == 0, err[-3000:]
  stopped = checkpoint.latest_step(workdir)
  assert stopped is not None and 3 <= stopped < MP_STEPS
  for err in errs:
    assert f"SIGTERM after step {stopped};" in err, err[-3000:]
  assert os.listdir(os.path.join(workdir, "checkpoints")) == [str(stopped)]
  full = str(tmp_path / "full")
  for target in (workdir, full):
    procs = _mp_run(target, _free_port())
    errs = [p.communicate(timeout=300)[1] for p in procs]
    for p, err in zip(procs, errs):
      assert p.returncode == 0, err[-3000:]
  states.assert_states_equal(states.read_checkpoint(workdir, MP_STEPS),
                             states.read_checkpoint(full, MP_STEPS))
  states.assert_moved(states.read_checkpoint(workdir, stopped),
                      states.read_checkpoint(workdir, MP_STEPS), "params")
  assert ([r["loss"] for r in read_metrics(workdir)] ==
          [r["loss"] for r in read_metrics(full)])
