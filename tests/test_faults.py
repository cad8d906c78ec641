"""Fault injection on the real ``sslax train`` command (subprocesses, the
SimCLR smoke config): damaged checkpoints, stale save directories, a config
that no longer matches its checkpoints, a missing config.json, a workdir that
is a file, two runs on one workdir, a read-only filesystem, a full disk and a
torn metrics row. Each test checks the exit status, the one line printed, and
that every committed step is still there and bitwise equal to an
uninterrupted run.

SIGKILL mid-save is in test_resume.py, SIGTERM and Ctrl-C in
test_interrupt.py, a non-finite loss in test_nonfinite.py.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import states
from conftest import ROOT
from sslax.config_loading import load_config_file
from sslax.train import checkpoint, workdir as workdir_lib
from sslax.train.loop import train_and_evaluate
from sslax.train.metrics import read_metrics

# Kills, locks and mounts: the tests marked serial run apart from the
# parallel ones (setup.cfg); the others damage files of their own workdirs.
serial = pytest.mark.serial

NUM_STEPS, EVERY, BASE_STEP = 16, 4, 12
OVERRIDES = {"num_steps": NUM_STEPS, "checkpoint_every": EVERY, "keep_checkpoints": 5,
             "log_every": 1, "online_eval_every": 0, "progress_bar": False}


def _config():
  config = load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke"))
  config.update(OVERRIDES)
  return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """``(full, base)``: an uninterrupted run (checkpoints 4, 8, 12, 16) and the
  same run stopped after step 12 (checkpoints 4, 8, 12), which each test
  copies and damages."""
  root = tmp_path_factory.mktemp("faults")
  full, base = str(root / "full"), str(root / "base")
  train_and_evaluate(_config(), full)
  train_and_evaluate(_config(), base, stop_at=BASE_STEP)
  assert checkpoint.saved_steps(full) == [4, 8, 12, 16]
  assert checkpoint.saved_steps(base) == [4, 8, 12]
  return full, base


def _copy(base, target):
  shutil.copytree(base, target)
  return str(target)


def _train(workdir, *extra, wait=True):
  """``sslax train`` on the smoke config: (exit status, the stderr lines that
  are not step lines or the closing line of what to run next), or the
  process when not ``wait``."""
  command = [sys.executable, "-m", "sslax", "train", "--config",
             os.path.join(ROOT, "configs", "simclr.py:smoke"), "--workdir", str(workdir),
             *[f"--config.{k}={v}" for k, v in OVERRIDES.items()], *extra]
  proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  if not wait:
    return proc
  _, err = proc.communicate(timeout=300)
  return proc.returncode, [l for l in err.splitlines()
                           if not l.startswith(("step ", "sslax: trained to step "))]


def _assert_step_equal(workdir, reference, step):
  """Checkpoint ``step`` of ``workdir`` equals the reference's, every leaf of
  the TrainState bitwise."""
  states.assert_states_equal(states.read_checkpoint(workdir, step),
                             states.read_checkpoint(reference, step), context=f"step {step}:")


def _assert_like_uninterrupted(workdir, full):
  """Every checkpoint of ``workdir`` and every loss row equal the full run's."""
  steps = checkpoint.saved_steps(workdir)
  assert steps and steps[-1] == NUM_STEPS
  for step in steps:
    _assert_step_equal(workdir, full, step)
  assert ([(r["step"], r["loss"]) for r in read_metrics(workdir)] ==
          [(r["step"], r["loss"]) for r in read_metrics(full)])
  assert not os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))


def _largest_data_file(step_dir):
  """The largest array data file (``d/`` directories of the OCDBT store)."""
  files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(step_dir, "default"))
           for f in fs if os.path.basename(d) == "d"]
  return max(files, key=os.path.getsize)


def _truncate(step_dir):
  path = _largest_data_file(step_dir)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 3)


def _empty(step_dir):
  shutil.rmtree(step_dir)
  os.mkdir(step_dir)


DAMAGE = {
    "truncated data file": _truncate,
    "missing data file": lambda d: os.remove(_largest_data_file(d)),
    "_METADATA removed": lambda d: os.remove(os.path.join(d, "default", "_METADATA")),
    "manifest.ocdbt removed": lambda d: os.remove(os.path.join(d, "default", "manifest.ocdbt")),
    "item directory removed": lambda d: shutil.rmtree(os.path.join(d, "default")),
    "empty step directory": _empty,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_newest_checkpoint_is_moved_aside_and_the_older_one_resumes(
    runs, tmp_path, damage):
  full, base = runs
  workdir = _copy(base, tmp_path / "run")
  step_dir = os.path.join(workdir, "checkpoints", str(BASE_STEP))
  DAMAGE[damage](step_dir)
  damaged_files = sorted(os.path.relpath(os.path.join(d, f), step_dir)
                         for d, _, fs in os.walk(step_dir) for f in fs)
  code, lines = _train(workdir)
  assert code == 0, lines
  assert len(lines) == 1, "\n".join(lines)
  assert f"checkpoint step {BASE_STEP} in {workdir} cannot be read" in lines[0]
  aside = os.path.join(workdir, checkpoint.DAMAGED_DIR, str(BASE_STEP))
  assert f"moved it to {aside}" in lines[0]
  # Moved, never deleted: every file the damage left is still there.
  assert sorted(os.path.relpath(os.path.join(d, f), aside)
                for d, _, fs in os.walk(aside) for f in fs) == damaged_files
  # Resumed from step 8 (steps 9-12 recomputed): equal to the uninterrupted run.
  _assert_like_uninterrupted(workdir, full)


def test_two_damaged_checkpoints_fall_back_to_the_third(runs, tmp_path):
  full, base = runs
  workdir = _copy(base, tmp_path / "run")
  _truncate(os.path.join(workdir, "checkpoints", "12"))
  _empty(os.path.join(workdir, "checkpoints", "8"))
  code, lines = _train(workdir)
  assert code == 0, lines
  assert [l.split(" in ")[0] for l in lines] == ["sslax: checkpoint step 12",
                                                  "sslax: checkpoint step 8"]
  assert sorted(os.listdir(os.path.join(workdir, checkpoint.DAMAGED_DIR))) == ["12", "8"]
  _assert_like_uninterrupted(workdir, full)


def test_stale_tmp_directory_is_removed_on_start(runs, tmp_path):
  full, base = runs
  workdir = _copy(base, tmp_path / "run")
  # A save of step 13 cut short (a step never saved again in this run).
  stale = os.path.join(workdir, "checkpoints", "13.orbax-checkpoint-tmp")
  os.makedirs(os.path.join(stale, "default"))
  with open(os.path.join(stale, "default", "_METADATA"), "w") as f:
    f.write("{")
  code, lines = _train(workdir)
  assert (code, lines) == (0, [])
  assert not os.path.exists(stale)
  _assert_like_uninterrupted(workdir, full)


def test_checkpoint_that_does_not_match_the_config_is_refused_and_kept(runs, tmp_path):
  _, base = runs
  workdir = _copy(base, tmp_path / "run")
  # A config.json edited to wider layers: the config check passes, the arrays differ.
  path = os.path.join(workdir, "config.json")
  with open(path) as f:
    config = json.load(f)
  config["model"]["widths"] = [8, 24]
  with open(path, "w") as f:
    json.dump(config, f)
  code, lines = _train(workdir, "--config.model.widths=(8,24)")
  assert code == 2 and len(lines) == 1, lines
  assert "checkpoint step 12 does not match the state this config builds" in lines[0]
  assert "saved vs" in lines[0]
  assert checkpoint.saved_steps(workdir) == [4, 8, 12]
  assert not os.path.exists(os.path.join(workdir, checkpoint.DAMAGED_DIR))
  for step in (4, 8, 12):
    _assert_step_equal(workdir, base, step)


def test_checkpoints_without_config_json_are_refused(runs, tmp_path):
  _, base = runs
  workdir = _copy(base, tmp_path / "run")
  os.remove(os.path.join(workdir, "config.json"))
  code, lines = _train(workdir)
  assert code == 2 and len(lines) == 1, lines
  assert "holds checkpoints but no config.json" in lines[0]
  assert checkpoint.saved_steps(workdir) == [4, 8, 12]
  assert not os.path.exists(os.path.join(workdir, "config.json"))


def test_workdir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("keep me")
  code, lines = _train(path)
  assert code == 2 and len(lines) == 1, lines
  assert "is a file, not a directory" in lines[0]
  assert path.read_text() == "keep me"


@serial
def test_second_run_on_a_workdir_is_refused_and_a_killed_runs_lock_is_stale(tmp_path):
  workdir = str(tmp_path / "run")
  longer = ("--config.num_steps=400", "--config.checkpoint_every=100")
  # The first run: long enough to be running when the second starts.
  first = _train(workdir, *longer, wait=False)
  lock = os.path.join(workdir, workdir_lib.LOCK_FILE)
  try:
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
      if len(read_metrics(workdir)) >= 3:
        break
      time.sleep(0.1)
    assert first.poll() is None, "the first run ended too early"
    with open(lock) as f:
      assert json.load(f)["pid"] == first.pid
    code, lines = _train(workdir, *longer)
    assert code == 2 and len(lines) == 1, lines
    assert f"is in use by another run (process {first.pid} on" in lines[0]
    assert first.poll() is None  # the first run goes on
    first.send_signal(signal.SIGKILL)
    first.wait()
  finally:
    if first.poll() is None:
      first.kill()
  # The killed run's lock stays; its process is gone, so the next run takes
  # it over, and says so.
  assert os.path.exists(lock)
  code, lines = _train(workdir, *longer)
  assert code == 0 and len(lines) == 1, lines
  assert lines[0].startswith(f"sslax: note: took over {lock} of process {first.pid} on ")
  assert lines[0].endswith(": its process is gone")
  assert checkpoint.saved_steps(workdir)[-1] == 400
  assert not os.path.exists(lock)


@serial
def test_lock_of_another_host_is_refused(runs, tmp_path):
  _, base = runs
  workdir = _copy(base, tmp_path / "run")
  lock = os.path.join(workdir, workdir_lib.LOCK_FILE)
  with open(lock, "w") as f:
    json.dump({"host": "some-other-host", "pid": 1, "since": time.time()}, f)
  code, lines = _train(workdir)
  assert code == 2 and len(lines) == 1, lines
  assert "process 1 on some-other-host" in lines[0] and f"delete {lock}" in lines[0]
  assert checkpoint.saved_steps(workdir) == [4, 8, 12]


def _can_mount():
  return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount")


@contextlib.contextmanager
def _tmpfs(path, size):
  """A small tmpfs at ``path`` (root only); skips the test where mounting is
  not allowed."""
  os.makedirs(path)
  if not _can_mount() or subprocess.run(
      ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
      capture_output=True).returncode != 0:
    pytest.skip("mounting a tmpfs needs root and CAP_SYS_ADMIN")
  try:
    yield str(path)
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


@serial
def test_read_only_workdir_is_refused_and_nothing_is_lost(runs, tmp_path):
  _, base = runs
  with _tmpfs(tmp_path / "mnt", "8m") as mnt:
    workdir = _copy(base, os.path.join(mnt, "run"))
    subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
    code, lines = _train(workdir)
    assert code == 2 and len(lines) == 1, lines
    assert "the filesystem is read-only" in lines[0] and workdir in lines[0]
    for step in (4, 8, 12):
      _assert_step_equal(workdir, base, step)
    code, lines = _train(os.path.join(mnt, "new"))
    assert code == 2 and len(lines) == 1, lines
    assert "cannot create --workdir" in lines[0]


@serial
def test_full_disk_stops_with_one_line_and_resumes_once_freed(runs, tmp_path):
  full, base = runs
  with _tmpfs(tmp_path / "mnt", "8m") as mnt:
    workdir = _copy(base, os.path.join(mnt, "run"))
    # Fill the disk, leaving room for a few metrics rows but not a checkpoint.
    filler = os.path.join(mnt, "filler")
    free = shutil.disk_usage(mnt).free
    with open(filler, "wb") as f:
      f.write(b"\0" * (free - 64 * 1024))
    code, lines = _train(workdir)
    assert code == 2 and len(lines) == 1, lines
    assert "the disk is full" in lines[0]
    assert "the checkpoints of steps [4, 8, 12] are intact" in lines[0]
    for step in (4, 8, 12):
      _assert_step_equal(workdir, base, step)
    os.remove(filler)
    code, lines = _train(workdir)
    assert (code, lines) == (0, [])
    _assert_like_uninterrupted(workdir, full)
    assert not [n for n in os.listdir(os.path.join(workdir, "checkpoints"))
                if "tmp" in n]


def test_torn_metrics_row_is_rewritten_whole(runs, tmp_path):
  full, base = runs
  workdir = _copy(base, tmp_path / "run")
  # A run killed while writing step 13's row (after step 12's checkpoint).
  with open(os.path.join(full, "metrics.jsonl")) as f:
    row_13 = [l for l in f if json.loads(l)["step"] == 13][0]
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write(row_13[:len(row_13) // 2])
  code, lines = _train(workdir)
  assert (code, lines) == (0, [])
  with open(os.path.join(workdir, "metrics.jsonl")) as f, \
       open(os.path.join(full, "metrics.jsonl")) as g:
    rows, want = [json.loads(l) for l in f], [json.loads(l) for l in g]
  assert [(r["step"], r["loss"]) for r in rows] == [(r["step"], r["loss"]) for r in want]


def test_torn_row_of_a_saved_step_keeps_what_is_readable(runs, tmp_path):
  """Damage from outside a run: the row cannot be recomputed, so its readable
  values are kept rather than dropped."""
  _, base = runs
  workdir = _copy(base, tmp_path / "run")
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path) as f:
    rows = f.readlines()
  last = json.loads(rows[-1])
  assert last["step"] == BASE_STEP
  text = json.dumps({"step": BASE_STEP, "loss": last["loss"], "lr": last["lr"]})
  with open(path, "w") as f:
    f.writelines(rows[:-1])
    f.write(text[:-1] + ', "grad_no')  # torn inside the next key
  salvaged = read_metrics(workdir)[-1]
  assert salvaged == {"step": BASE_STEP, "loss": last["loss"], "lr": last["lr"]}


def test_eval_of_a_damaged_checkpoint_is_one_line_and_moves_nothing(runs, tmp_path):
  _, base = runs
  workdir = _copy(base, tmp_path / "run")
  # Every data file (the largest alone may hold only optimizer state, which
  # an export never reads).
  step_dir = os.path.join(workdir, "checkpoints", str(BASE_STEP))
  for d, _, files in os.walk(step_dir):
    for name in files:
      if os.path.basename(d) == "d":
        os.truncate(os.path.join(d, name), 10)
  proc = subprocess.run([sys.executable, "-m", "sslax", "export", "--workdir", workdir,
                         "--out", str(tmp_path / "export")], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  lines = proc.stderr.splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
  assert f"checkpoint step {BASE_STEP} in {workdir} cannot be read" in lines[0]
  assert "`sslax train` on this --workdir moves it aside" in lines[0]
  assert checkpoint.saved_steps(workdir) == [4, 8, 12]


_UNRETRIEVED_TASKS = r"""
import asyncio, gc, os, sys
import numpy as np
import tensorstore as ts
from sslax import logs
logs.quiet_orbax_shutdown_noise()
logs.filter_library_logs()
spec = {"driver": "zarr", "kvstore": {"driver": "ocdbt", "base": "file://%s/"}, "path": "x"}

async def read():
  return await ts.open(spec, open=True)

# An array whose data file goes missing after it was opened: its read fails
# with an error that names no spec ("NOT_FOUND: Error reading ...").
kept = "%s"
kept_spec = {"driver": "zarr", "kvstore": {"driver": "ocdbt", "base": f"file://{kept}/"},
             "path": "x", "recheck_cached_data": False}
written = ts.open({**kept_spec, "metadata": {"shape": [4096], "chunks": [4096], "dtype": "<f4"}},
                  create=True).result()
written.write(np.random.default_rng(0).random(4096, dtype=np.float32)).result()
array = ts.open(kept_spec).result()
for d, _, files in os.walk(kept):
  for name in files:
    if os.path.basename(d) == "d":
      os.remove(os.path.join(d, name))

async def read_data():
  return await array.read()

async def ours():
  raise ValueError("an error of sslax's own")

async def main():
  tasks = [asyncio.ensure_future(ts.open(spec, open=True)), asyncio.ensure_future(read()),
           asyncio.ensure_future(read_data())]
  for failing in (read, read_data):
    try:
      await failing()
      raise AssertionError(f"{failing.__name__} did not fail")
    except ValueError as e:  # a bare future holding the error, without a traceback
      bare = asyncio.get_running_loop().create_future()
      bare.set_exception(e.with_traceback(None))
      tasks.append(bare)
  if sys.argv[1] == "also-ours":
    tasks.append(asyncio.ensure_future(ours()))
  await asyncio.sleep(0.5)
  tasks.clear()
  gc.collect()

asyncio.run(main())
gc.collect()
"""


@pytest.mark.parametrize("also_ours", [False, True])
def test_unretrieved_tensorstore_tasks_print_nothing_other_failures_still_print(
    tmp_path, also_ours):
  """The copies of a failed checkpoint read that asyncio logs when Orbax's
  TensorStore tasks are collected stay quiet (sslax printed its one line);
  any other never-retrieved failure still prints."""
  code = _UNRETRIEVED_TASKS % (tmp_path / "missing", tmp_path / "kept")
  proc = subprocess.run([sys.executable, "-c", code, "also-ours" if also_ours else "-"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "tensorstore_spec" not in proc.stderr, proc.stderr[-3000:]
  assert "Error reading" not in proc.stderr, proc.stderr[-3000:]
  if also_ours:
    assert "an error of sslax's own" in proc.stderr
  else:
    assert proc.stderr == "", proc.stderr[-3000:]


_UNAWAITED = r"""
import gc, sys
from orbax.checkpoint._src.path import async_path
from sslax import logs
logs.quiet_orbax_shutdown_noise()

async def ours():
  pass

# Coroutines created and dropped unawaited, as Orbax's writes are when a full
# disk ends a save.
pending = [async_path.mkdir(None)]
if sys.argv[1] == "also-ours":
  pending.append(ours())
pending.clear()
gc.collect()
"""


@pytest.mark.parametrize("also_ours", [False, True])
def test_unawaited_orbax_coroutines_print_nothing_ours_still_print(also_ours):
  """The "coroutine ... was never awaited" warnings of Orbax's abandoned
  writes (after a full disk, below sslax's one line) stay quiet; an unawaited
  coroutine of any other code still prints."""
  proc = subprocess.run([sys.executable, "-c", _UNAWAITED, "also-ours" if also_ours else "-"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "mkdir" not in proc.stderr, proc.stderr[-3000:]
  if also_ours:
    assert "coroutine 'ours' was never awaited" in proc.stderr, proc.stderr[-3000:]
  else:
    assert proc.stderr == "", proc.stderr[-3000:]
