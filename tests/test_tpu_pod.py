"""launch/tpu_pod.sh: its dry run prints the gcloud commands and their remote
scripts; run for real against stand-ins for gcloud (which runs the remote
script here, as worker 0), git, curl and uv, `launch` starts a detached
training process with a per-host log and `stop` ends it with SIGTERM."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

SCRIPT = os.path.join(ROOT, "launch", "tpu_pod.sh")
REPO = "https://example.com/sslax.git"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LAUNCH = ["launch", "my-v4-64", "us-central2-b", "configs/simclr.py:imagenet",
          "gs://bucket/runs/simclr", "gs://bucket/tfds"]
OWN_VARS = ("DRY_RUN", "RUN", "PROJECT", "ACCELERATOR_TYPE", "RUNTIME_VERSION",
            "STOP_WAIT", "PYTHON_VERSION")


def _executable(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("#!/bin/bash\n" + text)
  path.chmod(0o755)


def _env(bin_dir, **extra):
  env = {k: v for k, v in os.environ.items() if k not in OWN_VARS}
  env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", REPO=REPO, COMMIT=COMMIT, **extra)
  return env


@pytest.fixture
def env(tmp_path):
  """An environment whose gcloud fails loudly: a dry run must not call it."""
  _executable(tmp_path / "bin" / "gcloud", "echo 'gcloud was called' >&2\nexit 97\n")
  return _env(tmp_path / "bin")


def _run(env, *args, cwd=ROOT, timeout=60):
  return subprocess.run(["bash", SCRIPT, *args], env=env, cwd=cwd, capture_output=True,
                        text=True, timeout=timeout, check=False)


def _dry(env, *args):
  result = _run(env, "--dry-run", *args)
  assert result.returncode == 0, result.stderr
  return result.stdout


def test_syntax_and_documented_usage():
  assert subprocess.run(["bash", "-n", SCRIPT], check=False).returncode == 0
  with open(SCRIPT) as f:
    text = f.read()
  assert "# Usage: launch/tpu_pod.sh [--dry-run] COMMAND TPU_NAME ZONE" in text
  assert "\nset -euo pipefail\n" in text


def test_dry_run_launch(env):
  out = _dry(env, *LAUNCH, "--config.num_steps=5")
  assert out.startswith("gcloud compute tpus tpu-vm ssh my-v4-64 --zone us-central2-b "
                        "--worker=all --command ")
  assert out.count("gcloud ") == 1
  for part in (
      # the repository at one commit
      f"repo={REPO}\n", f"commit={COMMIT}\n", 'git clone -q "$repo" "$dir"',
      'git checkout -q --detach "$commit"',
      # Python >= 3.11 where the VM's python3 is older
      "python_version=3.11\n", "sys.version_info < (3, 11)",
      'uv python install "$python_version"', 'uv venv -q --python "$python_version" .venv',
      "-c constraints.txt -e '.[gcp]' 'jax[tpu]'",
      # training, detached, one log per host
      "config=configs/simclr.py:imagenet\n", "workdir=gs://bucket/runs/simclr\n",
      "data_dir=gs://bucket/tfds\n", "extra=( --config.num_steps=5 )",
      '.venv/bin/sslax train --distributed --config "$config" --workdir "$workdir"',
      '--config.data.data_dir="$data_dir" "${extra[@]}"', "setsid nohup ",
      "run=simclr\n", 'log="$logs/$run-worker$worker.log"', 'logs="$HOME/sslax-logs"',
      '> "$log" 2>&1 < /dev/null &', "agent-worker-number"):
    assert part in out, part
  # DRY_RUN=1 is the same as --dry-run; RUN names the logs.
  same = _run({**env, "DRY_RUN": "1", "RUN": "imagenet-a"}, *LAUNCH)
  assert same.returncode == 0 and "run=imagenet-a\n" in same.stdout


def test_dry_run_create_watch_stop_delete(env):
  assert _dry({**env, "ACCELERATOR_TYPE": "v4-32"}, "create", "tpu", "zone", "--spot") == (
      "gcloud compute tpus tpu-vm create tpu --zone zone --spot --accelerator-type v4-32 "
      "--version tpu-ubuntu2204-base\n")
  assert _dry({**env, "PROJECT": "proj"}, "create", "tpu", "zone",
              "--accelerator-type=v5litepod-16", "--version=v2-alpha-tpuv5-lite") == (
      "gcloud compute tpus tpu-vm create tpu --zone zone --project proj "
      "--accelerator-type=v5litepod-16 --version=v2-alpha-tpuv5-lite\n")
  watch = _dry(env, "watch", "tpu", "zone", "simclr")
  assert "--worker=0 --command" in watch and "run=simclr\n" in watch
  assert 'log="$logs/$run-worker0.log"' in watch and 'tail -n 100 -F "$log"' in watch
  stop = _dry({**env, "STOP_WAIT": "30"}, "stop", "tpu", "zone")
  assert "--worker=all --command" in stop and "run=''\nwait_s=30\n" in stop
  assert 'kill -TERM "$pid"' in stop and '*"sslax train"*' in stop
  assert _dry(env, "delete", "tpu", "zone") == (
      "gcloud compute tpus tpu-vm delete tpu --zone zone\n")


def test_dry_run_prints_what_runs(tmp_path):
  """The printed command, run by bash, gives gcloud the same arguments."""
  record = tmp_path / "args"
  _executable(tmp_path / "bin" / "gcloud", f"printf '%s\\0' \"$@\" >> {record}\n")
  env = _env(tmp_path / "bin", PROJECT="my project")
  args = [*LAUNCH, "--config.num_steps=5", "--config.note=it's \"quoted\" $HOME"]
  assert _run(env, *args).returncode == 0
  ran = record.read_bytes()
  record.unlink()
  printed = _run(env, "--dry-run", *args).stdout
  assert subprocess.run(["bash", "-c", printed], env=env, check=False).returncode == 0
  assert record.read_bytes() == ran
  assert b"--config.note=it\\'s\\ \\\"quoted\\\"\\ \\$HOME" in ran


@pytest.mark.parametrize("args, match", [
    ([], "no command given"),
    (["my-v4-64", "zone", "cfg", "wd", "data"], "unknown command 'my-v4-64'"),
    (["launch", "tpu", "zone", "cfg", "wd"], "launch: wrong number of arguments (4)"),
    (["launch", "tpu"], "launch TPU_NAME ZONE CONFIG WORKDIR DATA_DIR"),
    (["watch", "tpu"], "watch: wrong number of arguments (1)"),
    (["stop"], "stop TPU_NAME ZONE [RUN]"),
    (["stop", "tpu", "zone", "run", "more"], "stop: wrong number of arguments (4)"),
    (["create", "tpu"], "create TPU_NAME ZONE"),
    (["delete"], "delete TPU_NAME ZONE"),
    (["create", "tpu", "zone"], "set ACCELERATOR_TYPE"),
    ([*LAUNCH[:4], "gs://bucket/runs/a b/", "data"], "set RUN"),
])
def test_usage_mistakes_are_one_line(env, args, match):
  for dry in ([], ["--dry-run"]):
    result = _run(env, *dry, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("tpu_pod.sh: error: ") and match in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_launch_needs_a_repository(env, tmp_path):
  del env["REPO"]
  result = _run(env, "--dry-run", *LAUNCH, cwd=tmp_path)  # not a git checkout
  assert result.returncode == 2 and "set REPO" in result.stderr


def _one_line_error(result, match):
  assert result.returncode == 2 and result.stdout == "", result.stdout
  assert result.stderr.startswith("tpu_pod.sh: error: ") and match in result.stderr
  assert result.stderr.count("\n") == 1, result.stderr


def test_launch_refuses_a_repository_the_workers_cannot_reach(env, tmp_path):
  for repo in ("/work/sslax", "./sslax", "file:///work/sslax", "sslax"):
    env["REPO"] = repo
    _one_line_error(_run(env, "--dry-run", *LAUNCH), "workers cannot clone")
  env["REPO"] = "git@github.com:me/sslax.git"
  assert _run(env, "--dry-run", *LAUNCH).returncode == 0


def test_launch_refuses_a_commit_that_origin_lacks(env, tmp_path):
  """A checkout whose origin's branches (as last fetched) hold its first
  commit but not the second: HEAD is refused, the pushed commit launches."""
  repo = tmp_path / "checkout"
  repo.mkdir()

  def git(*args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

  git("init", "-q")
  git("commit", "-q", "--allow-empty", "-m", "pushed")
  pushed = git("rev-parse", "HEAD")
  git("remote", "add", "origin", "https://example.com/sslax.git")
  git("update-ref", "refs/remotes/origin/main", pushed)
  git("commit", "-q", "--allow-empty", "-m", "local only")
  del env["REPO"], env["COMMIT"]
  _one_line_error(_run(env, "--dry-run", *LAUNCH, cwd=repo),
                  "is not on any branch of origin")
  env["COMMIT"] = pushed
  result = _run(env, "--dry-run", *LAUNCH, cwd=repo)
  assert result.returncode == 0 and pushed in result.stdout, result.stderr


def _worker_stand_ins(bin_dir, home):
  """gcloud running the remote script here; git, curl and uv recording their
  calls; uv's venv holding an sslax that waits for SIGTERM."""
  calls = home / "calls"
  _executable(bin_dir / "gcloud", 'while (($#)); do\n'
              '  if [ "$1" = --command ]; then exec bash -c "$2"; fi\n  shift\ndone\n'
              'exit 3\n')
  _executable(bin_dir / "git", f'echo "git $*" >> {calls}\n'
              'if [ "$1" = clone ]; then mkdir -p "${@: -1}/.git"; fi\n')
  _executable(bin_dir / "curl", f'echo "curl $*" >> {calls}\necho 0\n')
  _executable(bin_dir / "fake-sslax", 'trap \'echo "SIGTERM: checkpoint saved"; exit 0\' TERM\n'
              'echo "sslax $*"\nwhile :; do sleep 0.1; done\n')
  _executable(bin_dir / "uv", f'echo "uv $*" >> {calls}\n'
              'case "$1 $2" in\n'
              '  "python find") exit 1 ;;\n'
              '  "venv -q") mkdir -p .venv/bin\n'
              f'    ln -s {os.path.realpath(sys.executable)} .venv/bin/python\n'
              f'    cp {bin_dir / "fake-sslax"} .venv/bin/sslax ;;\n'
              'esac\n')
  return calls


def _wait_for(predicate, seconds=15):
  deadline = time.time() + seconds
  while not predicate():
    assert time.time() < deadline, "timed out"
    time.sleep(0.1)


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  with open(f"/proc/{pid}/stat") as f:
    return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_launch_watch_stop_on_one_simulated_worker(tmp_path):
  home, bin_dir = tmp_path / "home", tmp_path / "bin"
  home.mkdir()
  calls = _worker_stand_ins(bin_dir, home)
  env = _env(bin_dir, HOME=str(home), STOP_WAIT="20")
  log = home / "sslax-logs" / "simclr-worker0.log"
  pidfile = home / "sslax-logs" / "simclr-worker0.pid"
  pid = None
  try:
    launched = _run(env, *LAUNCH, "--config.num_steps=5")
    assert launched.returncode == 0, launched.stderr
    assert "worker 0: sslax train started" in launched.stdout
    _wait_for(lambda: "sslax train" in (log.read_text() if log.exists() else ""))
    pid = int(pidfile.read_text())
    assert log.read_text().splitlines()[0] == (
        "sslax train --distributed --config configs/simclr.py:imagenet --workdir "
        "gs://bucket/runs/simclr --config.data.data_dir=gs://bucket/tfds --config.num_steps=5")
    with open(f"/proc/{pid}/stat") as f:  # its own session, SIGHUP ignored
      assert int(f.read().rsplit(")", 1)[1].split()[3]) == pid
    with open(f"/proc/{pid}/status") as f:
      sig_ign = next(line for line in f if line.startswith("SigIgn:")).split()[1]
    assert int(sig_ign, 16) & (1 << (signal.SIGHUP - 1))
    recorded = calls.read_text()
    for call in (f"git clone -q {REPO} sslax", f"git checkout -q --detach {COMMIT}",
                 "uv python install 3.11", "uv venv -q --python 3.11 .venv",
                 "uv pip install -q --python .venv/bin/python -c constraints.txt "
                 "-e .[gcp] jax[tpu]"):
      assert call in recorded, call

    again = _run(env, *LAUNCH)
    assert again.returncode != 0 and f"run simclr is running (pid {pid})" in again.stderr

    with subprocess.Popen(["bash", SCRIPT, "watch", "tpu", "zone"], env=env,
                          stdout=subprocess.PIPE, text=True) as watch:
      try:
        assert watch.stdout.readline().startswith("sslax train --distributed")
      finally:
        watch.terminate()

    stopped = _run(env, "stop", "tpu", "zone", "simclr")
    assert stopped.returncode == 0, stopped.stderr
    assert f"SIGTERM to sslax train (pid {pid}" in stopped.stdout
    assert stopped.stdout.strip().endswith("stopped")
    assert not _alive(pid)
    assert log.read_text().splitlines()[-1] == "SIGTERM: checkpoint saved"
    assert _run(env, "stop", "tpu", "zone").stdout.strip().endswith("no sslax run to stop")
  finally:
    if pid is not None and _alive(pid):
      os.kill(pid, signal.SIGKILL)
