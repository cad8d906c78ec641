"""Logs a person can follow without a terminal: `sslax train` with stderr
not a TTY prints one plain line per `log_every` steps, and no command of a
normal run prints Orbax or absl warnings."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from sslax.train.loop import log_line

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")
LINE = re.compile(r"^step (\d+)/8  loss -?\d+\.\d{4}  examples/s \d+"
                  r"(  data_wait \d+\.\d%)?"
                  r"(  online_knn_top1_k20 \d\.\d{4}  online_probe_top1 \d\.\d{4})?"
                  r"  eta \d+:\d\d:\d\d$")
NOISE = re.compile(r"warning|absl|orbax", re.IGNORECASE)


def _sslax(*argv):
  """Runs the command line in a subprocess whose stdin, stdout and stderr
  are pipes (no terminal anywhere)."""
  return subprocess.run([sys.executable, "-m", "sslax.cli", *argv], cwd=ROOT,
                        stdin=subprocess.DEVNULL, capture_output=True, text=True,
                        timeout=600, check=False)


def test_log_line():
  record = {"loss": 5.12344, "lr": 0.1, "examples_per_second": 640.4,
            "data_wait": 0.0123, "online_knn_top1_k20": 0.5}
  assert log_line(50, 1000, record, 256) == (
      "step 50/1000  loss 5.1234  examples/s 640  data_wait 1.2%  "
      "online_knn_top1_k20 0.5000  eta 0:06:20")  # 950 steps x 256 / 640.4 s
  assert log_line(1000, 1000, {"loss": 1.0, "examples_per_second": 9.0}, 8) == (
      "step 1000/1000  loss 1.0000  examples/s 9  eta 0:00:00")
  assert log_line(1, 3, {"loss": 1.0, "examples_per_second": 1.0}, 3600) == (
      "step 1/3  loss 1.0000  examples/s 1  eta 2:00:00")


@pytest.mark.slow
def test_train_and_evaluate_without_a_terminal(tmp_path):
  workdir = str(tmp_path / "run")
  train = _sslax("train", "--config", SMOKE, "--workdir", workdir)
  assert train.returncode == 0, train.stderr
  assert train.stdout == ""
  lines = train.stderr.splitlines()
  # The last line names what to run next, as this command was run.
  done = lines.pop()
  assert done.startswith(f"sslax: trained to step 8 in {workdir}; next: "), done
  assert f"{sys.executable} -m sslax eval linear --workdir {workdir}" in done
  assert f"-m sslax viz --workdir {workdir}" in done and "export --workdir" in done
  assert all(LINE.match(line) for line in lines), train.stderr
  assert [int(LINE.match(line).group(1)) for line in lines] == [2, 4, 6, 8]
  # online evaluation every 4 steps shows on those lines
  assert [bool(LINE.match(line).group(3)) for line in lines] == [False, True, False, True]
  assert not any(NOISE.search(line) for line in lines)

  # Again: the run restores its last checkpoint and has nothing left to do.
  again = _sslax("train", "--config", SMOKE, "--workdir", workdir)
  assert again.returncode == 0 and again.stderr == done + "\n", again.stderr

  # Evaluation, export and pictures read the checkpoints: nothing on stderr.
  for argv in (["eval", "knn"], ["export", "--out", str(tmp_path / "exported")],
               ["viz"]):
    result = _sslax(*argv, "--workdir", workdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", (argv, result.stderr)
    assert not NOISE.search(result.stdout)
