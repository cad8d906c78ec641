"""Restarts that a preemptible fleet makes unattended: the workdir lock's
heartbeat and its take-over from a run that died on another host, damaged
run files, signals before the first step and after the last, input workers
that die with the trainer, and extending a finished run. In the style of
test_faults.py: the real ``sslax train`` where a process must die, the exit
status, the one line printed, and every committed step kept."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from sslax.errors import UserError
from sslax.train import workdir as workdir_lib

# Locks, heartbeats, kills: run apart from the parallel tests (setup.cfg).
serial = pytest.mark.serial


def _lock(workdir):
  return os.path.join(workdir, workdir_lib.LOCK_FILE)


def _write_lock(workdir, holder):
  os.makedirs(workdir, exist_ok=True)
  with open(_lock(workdir), "w") as f:
    f.write(holder if isinstance(holder, str) else json.dumps(holder))


def _claim(workdir, timeout=60.0):
  lines = []
  return workdir_lib.claim(str(workdir), timeout, report=lines.append), lines


@serial
def test_a_live_lock_of_another_host_is_refused_a_silent_one_taken_over(tmp_path):
  workdir = str(tmp_path / "run")
  now = time.time()
  _write_lock(workdir, {"host": "other-host", "pid": 1, "since": now - 100, "heartbeat": now})
  hold, lines = _claim(workdir)
  with pytest.raises(UserError, match=r"in use by another run \(process 1 on other-host.*"
                                      r"heartbeat \d+ s ago\).*60 s at most"):
    with hold:
      pass
  assert json.load(open(_lock(workdir)))["host"] == "other-host"  # untouched
  # The same lock, silent for longer than the timeout: its run died (preempted).
  _write_lock(workdir, {"host": "other-host", "pid": 1, "since": now - 900,
                        "heartbeat": now - 61})
  hold, lines = _claim(workdir)
  with hold:
    mine = json.load(open(_lock(workdir)))
    assert mine["host"] == socket.gethostname() and mine["pid"] == os.getpid()
  assert len(lines) == 1 and lines[0].startswith(f"sslax: note: took over {_lock(workdir)} "
                                                 "of process 1 on other-host")
  assert "its heartbeat stopped 61 s ago (config.lock_timeout = 60 s)" in lines[0]
  assert not os.path.exists(_lock(workdir))  # released


@serial
def test_the_holder_keeps_its_heartbeat_fresh(tmp_path):
  workdir = str(tmp_path / "run")
  hold, _ = _claim(workdir, timeout=0.5)  # a heartbeat every 0.05 s
  with hold:
    first = json.load(open(_lock(workdir)))["heartbeat"]
    time.sleep(0.4)
    later = json.load(open(_lock(workdir)))
    assert later["heartbeat"] > first + 0.1
    # another run, on any host, sees a live lock
    with pytest.raises(UserError, match="in use by another run"):
      with _claim(workdir, timeout=0.5)[0]:
        pass


@serial
def test_a_dead_holder_on_this_host_is_stale_at_once(tmp_path):
  workdir = str(tmp_path / "run")
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  _write_lock(workdir, {"host": socket.gethostname(), "pid": dead.pid, "since": time.time(),
                        "heartbeat": time.time()})
  hold, lines = _claim(workdir)
  with hold:
    pass
  assert len(lines) == 1 and "its process is gone" in lines[0]


@serial
@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "\x00\xff garbage", ""])
def test_a_malformed_lock_is_one_line_naming_it_or_taken_once_old(tmp_path, text):
  workdir = str(tmp_path / "run")
  _write_lock(workdir, text)
  hold, lines = _claim(workdir)
  with pytest.raises(UserError, match=f"{_lock(workdir)} is not a lock that sslax wrote "
                                      r"\(not a JSON object\); delete it if no run"):
    with hold:
      pass
  old = time.time() - 120
  os.utime(_lock(workdir), (old, old))
  hold, lines = _claim(workdir)
  with hold:
    pass
  assert len(lines) == 1 and "of an unknown run: it is not a JSON object and was last " \
                             "written 120 s ago" in lines[0]


# --- damaged run files -------------------------------------------------------

import shutil  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from conftest import ROOT  # noqa: E402
from sslax.config_loading import load_config_file  # noqa: E402
from sslax.train.artifact import restore_encoder  # noqa: E402
from sslax.train.loop import train_and_evaluate  # noqa: E402

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")
OVERRIDES = {"num_steps": 8, "checkpoint_every": 4, "log_every": 4, "online_eval_every": 0,
             "progress_bar": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  config = load_config_file(SMOKE)
  config.update(OVERRIDES)
  workdir = str(tmp_path_factory.mktemp("restarts") / "run")
  train_and_evaluate(config, workdir)
  return workdir


def _sslax(*argv, workdir):
  extra = ([f"--config.{k}={v}" for k, v in OVERRIDES.items()] + ["--config", SMOKE]
           if argv[0] == "train" else [])
  proc = subprocess.run([sys.executable, "-m", "sslax", *argv, "--workdir", str(workdir),
                         *extra], cwd=ROOT, capture_output=True, text=True, timeout=300)
  lines = [l for l in proc.stderr.splitlines()
           if not l.startswith(("step ", "sslax: trained to step "))]
  return proc.returncode, lines


def _copy(workdir, target):
  shutil.copytree(workdir, target)
  return str(target)


def test_a_config_json_of_random_bytes_is_one_line_for_every_command(trained, tmp_path):
  workdir = _copy(trained, tmp_path / "run")
  path = os.path.join(workdir, "config.json")
  with open(path, "wb") as f:
    f.write(np.random.default_rng(0).bytes(300))
  for argv in (("train",), ("eval", "knn"), ("export", "--out", str(tmp_path / "x"))):
    code, lines = _sslax(*argv, workdir=workdir)
    assert code == 2 and len(lines) == 1, (argv, lines)
    assert lines[0] == (f"sslax: error: {path} is damaged (not UTF-8 JSON holding an "
                        "object); restore it from a copy, or train into a new --workdir")
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "8"]


def test_train_rewrites_a_broken_encoder_json_and_a_lost_encoder_init(trained, tmp_path):
  workdir = _copy(trained, tmp_path / "run")
  encoder_json = os.path.join(workdir, "encoder.json")
  original = open(encoder_json).read()
  with open(encoder_json, "w") as f:
    f.write(original[:len(original) // 2])
  init_dir = os.path.join(workdir, "encoder_init")
  shutil.rmtree(init_dir)
  code, lines = _sslax("eval", "knn", workdir=workdir)
  assert code == 2 and len(lines) == 1 and "encoder.json is damaged" in lines[0], lines
  assert "rerun the `sslax train` command of its workdir" in lines[0]
  # The advice works: train (nothing left to train) rewrites both, exit 0.
  code, lines = _sslax("train", workdir=workdir)
  assert code == 0 and lines == [f"sslax: note: rewrote encoder.json, encoder_init of "
                                 f"{workdir} (missing or damaged) from the config"], lines
  assert open(encoder_json).read() == original
  # encoder_init/ is the seed's initialisation again, every array bitwise
  before = restore_encoder(trained, random_init=True).variables
  after = restore_encoder(workdir, random_init=True).variables
  assert jax.tree.structure(before) == jax.tree.structure(after)
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "8"]
  code, lines = _sslax("eval", "linear", "--features", "random_init", "--label-fraction",
                       "0.01", workdir=workdir)
  assert code == 0, lines


# --- extending a run ---------------------------------------------------------

import states  # noqa: E402
from sslax.errors import UserError as _UserError  # noqa: E402,F811
from sslax.train import checkpoint  # noqa: E402
from sslax.train.optim import extended_schedule  # noqa: E402


def _config(**overrides):
  config = load_config_file(SMOKE)
  config.update({**OVERRIDES, **overrides})
  return config


@pytest.mark.parametrize("how", ["tail", "hold"])
def test_an_extended_run_equals_one_trained_that_long_from_the_start(trained, tmp_path,
                                                                     capsys, how):
  workdir = _copy(trained, tmp_path / "run")  # 8 steps, finished
  config = _config()
  config.optimizer.extend = how
  # the extension continues the run's own checkpoint at step 8
  train_and_evaluate(config, workdir, extend_to=12)
  line = [l for l in capsys.readouterr().err.splitlines() if "extending" in l]
  assert line == [f"sslax: note: extending {workdir} from 8 to 12 steps; the learning "
                  "rate keeps its 8-step schedule, then " +
                  ("a new cosine from 0.1 x its peak to zero over steps 8-12"
                   if how == "tail" else "its end value from step 8 on") +
                  f" (config.optimizer.extend='{how}'; 'tail' or 'hold')"]
  reference = str(tmp_path / "reference")
  ref_config = _config(num_steps=12, schedule_steps=8)
  ref_config.optimizer.extend = how
  train_and_evaluate(ref_config, reference)
  assert checkpoint.latest_step(workdir) == 12
  states.assert_states_equal(states.read_checkpoint(workdir, 12),
                             states.read_checkpoint(reference, 12), context="step 12:")
  # A plain rerun of the old command names the flag that extends it.
  with pytest.raises(_UserError, match="add --extend-to 16"):
    train_and_evaluate(_config(num_steps=16), workdir)
  with pytest.raises(_UserError, match="below the run's 12 steps"):
    train_and_evaluate(_config(), workdir, extend_to=10)


def test_the_extended_schedule():
  opt = _config().optimizer
  base = extended_schedule(opt, 32, 8, 8)
  tail = extended_schedule(opt, 32, 12, 8)
  peak = opt.learning_rate * 32 / 256
  assert [float(tail(s)) for s in range(8)] == [float(base(s)) for s in range(8)]
  assert float(tail(8)) == pytest.approx(0.1 * peak)
  assert float(tail(10)) == pytest.approx(0.05 * peak)  # half-way down the cosine
  assert float(tail(12)) == pytest.approx(0.0)
  opt.extend = "hold"
  hold = extended_schedule(opt, 32, 12, 8)
  assert [float(hold(s)) for s in range(13)] == [float(base(s)) for s in range(13)]


# --- signals before the first step -------------------------------------------

import signal  # noqa: E402


def _signal_during_compilation(workdir, signum, *extra, marker="encoder_init"):
  """Starts ``sslax train``, sends ``signum`` a second after ``marker`` is
  written (encoder_init/ of a new run, run.lock of a resumed one; what
  follows is starting the input pipeline, then compiling the step, which
  takes seconds); (exit status, stderr lines)."""
  command = [sys.executable, "-m", "sslax", "train", "--config", SMOKE, "--workdir",
             str(workdir), *[f"--config.{k}={v}" for k, v in OVERRIDES.items()], *extra]
  proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  marker = os.path.join(workdir, *({"encoder_init": ("encoder_init", "_CHECKPOINT_METADATA"),
                                    "run.lock": (workdir_lib.LOCK_FILE,)}[marker]))
  try:
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not os.path.exists(marker):
      time.sleep(0.02)
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  return proc.returncode, err.splitlines()


@serial
@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_a_signal_during_compilation_is_one_line_and_releases_the_lock(tmp_path, signum,
                                                                       status):
  workdir = tmp_path / "run"
  code, lines = _signal_during_compilation(workdir, signum)
  name = signal.Signals(signum).name
  assert code == status and len(lines) == 1, lines
  assert lines[0].startswith(f"sslax: stopped by {name} during compilation and the first "
                             "step; nothing is saved yet; resume with the same command"), lines
  assert not os.path.exists(_lock(workdir))
  assert not os.path.exists(workdir / "checkpoints") or not os.listdir(workdir / "checkpoints")


@serial
def test_a_signal_while_a_resumed_run_compiles_names_the_saved_step(trained, tmp_path):
  workdir = _copy(trained, tmp_path / "run")
  code, lines = _signal_during_compilation(workdir, signal.SIGTERM, "--extend-to", "12",
                                           marker="run.lock")
  assert code == 0, lines
  lines = [l for l in lines if "extending" not in l]
  assert len(lines) == 1 and lines[0].startswith(
      "sslax: stopped by SIGTERM during compilation and the first step; the checkpoint "
      f"of step 8 is saved in {workdir}; resume with the same command"), lines
  assert not os.path.exists(_lock(workdir))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "8"]
