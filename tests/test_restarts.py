"""Restarts that a preemptible fleet makes unattended: the workdir lock's
heartbeat and its take-over from a run that died on another host, damaged
run files, signals before the first step and after the last, input workers
that die with the trainer, and extending a finished run. In the style of
test_faults.py: the real ``sslax train`` where a process must die, the exit
status, the one line printed, and every committed step kept."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import states
from conftest import ROOT
from sslax.config_loading import load_config_file
from sslax.data import workers as workers_lib
from sslax.errors import UserError
from sslax.train import checkpoint, workdir as workdir_lib
from sslax.train.artifact import restore_encoder
from sslax.train.loop import train_and_evaluate
from sslax.train.optim import extended_schedule

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
  assert re.search(r"its heartbeat stopped 6\d s ago \(config.lock_timeout = 60 s\)$",
                   lines[0]), lines
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
  assert len(lines) == 1 and re.search(r"of an unknown run: it is not a JSON object and "
                                       r"was last written 12\d s ago$", lines[0]), lines


# --- damaged run files -------------------------------------------------------


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
  with pytest.raises(UserError, match="add --extend-to 16"):
    train_and_evaluate(_config(num_steps=16), workdir)
  with pytest.raises(UserError, match="below the run's 12 steps"):
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


def _signal_during_compilation(workdir, signum, *extra, marker="encoder_init"):
  """Starts ``sslax train``, sends ``signum`` a second after ``marker`` is
  written (encoder_init/ of a new run, run.lock of a resumed one; what
  follows is starting the input pipeline, then compiling the step, which
  takes seconds: the persistent compilation cache, which other tests fill
  with this very program, is off for it); (exit status, stderr lines)."""
  command = [sys.executable, "-m", "sslax", "train", "--config", SMOKE, "--workdir",
             str(workdir), *[f"--config.{k}={v}" for k, v in OVERRIDES.items()], *extra]
  proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false"))
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
  # (on a loaded machine the signal may land just before compilation starts)
  assert re.match(f"sslax: stopped by {name} during (compilation and the first step|the "
                  "input pipeline's start); nothing is saved yet; resume with the same "
                  "command", lines[0]), lines
  assert not os.path.exists(_lock(workdir))
  assert not os.path.exists(workdir / "checkpoints") or not os.listdir(workdir / "checkpoints")


@serial
def test_a_signal_while_a_resumed_run_compiles_names_the_saved_step(trained, tmp_path):
  workdir = _copy(trained, tmp_path / "run")
  code, lines = _signal_during_compilation(workdir, signal.SIGTERM, "--extend-to", "12",
                                           marker="run.lock")
  assert code == 0, lines
  lines = [l for l in lines if "extending" not in l]
  assert len(lines) == 1 and re.match(
      "sslax: stopped by SIGTERM during (compilation and the first step|the input "
      f"pipeline's start); the checkpoint of step 8 is saved in {re.escape(workdir)}; "
      "resume with the same command", lines[0]), lines
  assert not os.path.exists(_lock(workdir))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "8"]


# --- input workers die with the trainer ---------------------------------------


def _children(pid):
  out = []
  for entry in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{entry}/stat") as f:
        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
          out.append(int(entry))
    except (OSError, ValueError):
      continue
  return out


def _alive(pids):
  alive = []
  for pid in pids:
    try:
      with open(f"/proc/{pid}/stat") as f:
        if f.read().rsplit(")", 1)[1].split()[0] != "Z":
          alive.append(pid)
    except OSError:
      continue
  return alive


def _segments():
  return {n for n in os.listdir(workers_lib.SHM_DIR) if n.startswith(workers_lib.SEGMENT_PREFIX)}


def _start_with_workers(workdir):
  command = [sys.executable, "-m", "sslax", "train", "--config", SMOKE, "--workdir",
             str(workdir), "--config.num_steps=100000", "--config.checkpoint_every=1000",
             "--config.log_every=1", "--config.progress_bar=False", "--config.data.workers=2"]
  proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  metrics = os.path.join(workdir, "metrics.jsonl")
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 3:
      break
    time.sleep(0.1)
  assert proc.poll() is None, proc.communicate()[1]
  # the two workers and the resource tracker
  return proc, _children(proc.pid)


def _wait_gone(pids, seconds=30):
  deadline = time.time() + seconds
  while time.time() < deadline and _alive(pids):
    time.sleep(0.1)
  return _alive(pids)


@serial
@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="Linux shared memory")
def test_sigkill_of_the_trainer_leaves_no_worker_and_no_shared_memory(tmp_path):
  before = _segments()
  proc, helpers = _start_with_workers(tmp_path / "run")
  assert len(helpers) == 3, helpers
  assert _segments() - before  # batches are crossing in shared memory
  proc.kill()
  proc.wait()
  assert _wait_gone(helpers) == []
  deadline = time.time() + 10
  while time.time() < deadline and _segments() - before:
    time.sleep(0.1)
  assert _segments() - before == set()
  assert proc.stderr.read().strip().splitlines()[-1].startswith("step ")  # nothing else said


@serial
@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="Linux shared memory")
def test_a_killed_worker_ends_the_run_with_one_line_and_status_4(tmp_path):
  before = _segments()
  workdir = tmp_path / "run"
  proc, helpers = _start_with_workers(workdir)
  workers = [p for p in helpers if "spawn_main" in open(f"/proc/{p}/cmdline").read()]
  assert len(workers) == 2, helpers
  os.kill(workers[0], signal.SIGKILL)
  _, err = proc.communicate(timeout=120)
  lines = [l for l in err.splitlines() if not l.startswith("step ")]
  assert proc.returncode == 4 and len(lines) == 1, lines
  assert re.match(r"sslax: error: an input worker process was killed by SIGKILL \(the "
                  r"out-of-memory killer sends it\) while reading batch \d+; nothing is "
                  r"saved yet; rerun the same command to resume", lines[0]), lines
  assert _wait_gone(helpers) == []
  assert _segments() - before == set()
  assert not os.path.exists(_lock(workdir))


@serial
@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="Linux shared memory")
def test_segments_that_outlived_every_process_are_reclaimed():
  def segment(name, age, hold=False):
    path = os.path.join(workers_lib.SHM_DIR, name)
    with open(path, "wb") as f:
      f.write(b"\0" * 4096)
    os.utime(path, (time.time() - age, time.time() - age))
    return open(path, "rb") if hold else None

  tag = f"psm_sslaxtest{os.getpid()}"
  held = segment(f"{tag}_held", 3600, hold=True)
  segment(f"{tag}_young", 5)
  segment(f"{tag}_orphan", 3600)
  try:
    count, size = workers_lib.reclaim_orphaned_segments(min_age_s=600)
    left = {n for n in _segments() if n.startswith(tag)}
    assert left == {f"{tag}_held", f"{tag}_young"}
    assert count >= 1 and size >= 4096
  finally:
    held.close()
    for name in (f"{tag}_held", f"{tag}_young", f"{tag}_orphan"):
      if os.path.exists(os.path.join(workers_lib.SHM_DIR, name)):
        os.unlink(os.path.join(workers_lib.SHM_DIR, name))
