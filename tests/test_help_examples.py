"""Every example that a launch script's ``--help`` shows runs as shown.

Each example is taken from the script's own ``--help`` text and run as a
subprocess, with arguments appended that only shrink it (fewer steps, smaller
batches, a temporary directory) so the suite stays short. An example that is
new or changed and has no entry in ``SHRINK`` fails the test: it must be
looked at. The shell scripts' ``--help`` prints their usage and starts
nothing."""

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT

SMALL_TRAINING = ["--override", "num_steps=2", "--override", "model.widths=(8,16)",
                  "--override", "head.hidden_dim=32", "--override", "head.output_dim=16"]
# example as shown (after `python `) -> arguments appended to run it here;
# "{tmp}" is a temporary directory, shared by one script's examples in order.
SHRINK = {
    "launch/benchmark.py --workdir runs/bench --run simclr=configs/simclr.py:fashion_mnist "
    "--run moco_v2=configs/moco_v2.py:fashion_mnist":
        ["--workdir", "{tmp}/bench", "--fractions", "0.01"] + SMALL_TRAINING,
    "launch/pipeline_bench.py --make-folder /tmp/jpegs":
        ["--make-folder", "{tmp}/jpegs", "--count", "24", "--size", "40"],
    "launch/pipeline_bench.py /tmp/jpegs --workers 0 1 2":
        ["--batches", "1", "--warmup", "0", "--batch", "8", "--size", "40"],
    "launch/probe_penalties.py --workdir "
    "runs/protocol/simclr/learning_rate1_temperature0.2/seed0":
        ["--workdir", "{tmp}/run", "--subsets", "2"],
    "launch/results.py": ["--workdir", "{tmp}/results", "--list"],
    "launch/results.py --list": ["--workdir", "{tmp}/results"],
    "launch/results.py --budget-minutes 170": ["--workdir", "{tmp}/results", "--list"],
    "launch/results.py --tables": ["--workdir", "{tmp}/results"],
    "launch/results.py --ledger /tmp/mine.json": ["--ledger", "{tmp}/mine.json", "--workdir",
                                                  "{tmp}/results", "--list"],
    # a budget spent before the first run starts
    "launch/results.py --redo-other-machines": ["--ledger", "{tmp}/mine.json", "--workdir",
                                                "{tmp}/results", "--budget-minutes", "1e-9"],
    "launch/step_benchmark.py": ["--batch", "8", "--steps", "1", "--warmup", "1"],
    "launch/step_benchmark.py --configs configs/simclr.py:fashion_mnist --batch 256 "
    "--dtypes float32 --steps 20 --profile": ["--batch", "8", "--steps", "1", "--warmup", "1"],
    "launch/step_benchmark.py --only sslax": ["--batch", "8", "--steps", "1", "--warmup", "1",
                                              "--dtypes", "float32", "--configs",
                                              "configs/simclr.py:fashion_mnist"],
    "launch/throughput.py configs/simclr.py:fashion_mnist configs/byol.py:fashion_mnist":
        ["--steps", "1", "--warmup", "0", "--config.global_batch_size=16",
         "--config.model.widths=(8,16)"],
    "launch/throughput.py configs/simclr.py:fashion_mnist --profile --trace /tmp/trace":
        ["--steps", "1", "--warmup", "0", "--config.global_batch_size=16",
         "--config.model.widths=(8,16)", "--trace", "{tmp}/trace"],
    "launch/throughput.py configs/simclr.py:imagenet --config.data.name=synthetic":
        ["--steps", "1", "--warmup", "0", "--config.global_batch_size=2",
         "--config.data.image_size=32,32", "--config.model.encoder=convnet",
         "--config.model.widths=(8,16)"],
}
# example -> lines its output must hold, where running is not proof enough
# (a table that an empty input would silently leave out).
OUTPUT = {
    "launch/throughput.py configs/simclr.py:fashion_mnist --profile --trace /tmp/trace":
        ["| event | ms a step | calls a step |", "| loss ms | loss and gradients ms | step ms |"],
}
# script -> commands (after `python `) run before its examples, e.g. the
# training of the run an example reads.
PREPARE = {
    "launch/probe_penalties.py": [
        ["-m", "sslax", "train", "--config", "configs/simclr.py:smoke", "--workdir",
         "{tmp}/run", "--config.num_steps=2", "--config.progress_bar=False"]],
}


def help_text(script):
  return subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True,
                        text=True, check=True).stdout


def examples(script):
  """The ``python launch/...`` lines of a script's --help: continuations
  joined, comments and [optional] parts dropped, whitespace collapsed."""
  text = help_text(script).replace("\\\n", " ")
  found = []
  for line in text.splitlines():
    line = line.strip()
    if line.startswith("python launch/"):
      line = re.sub(r"\s+#.*$", "", line)
      line = re.sub(r"\[[^\]]*\]", "", line)
      found.append(" ".join(line.split()[1:]))
  return found


SCRIPTS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "launch", "*.py")))
SHELL = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "launch", "*.sh")))


def test_every_example_has_an_entry():
  shown = {e for s in SCRIPTS for e in examples(os.path.join(ROOT, s))}
  assert shown == set(SHRINK), ("examples without an entry in SHRINK: "
                                f"{sorted(shown - set(SHRINK))}; stale entries: "
                                f"{sorted(set(SHRINK) - shown)}")
  assert set(OUTPUT) <= shown, f"stale OUTPUT entries: {sorted(set(OUTPUT) - shown)}"


def torch_missing():
  try:
    import torch  # noqa: F401
  except ImportError:
    return True
  return False


@pytest.mark.parametrize("script", [s for s in SCRIPTS if examples(os.path.join(ROOT, s))])
def test_examples_run(script, tmp_path):
  for command in PREPARE.get(script, []):
    proc = subprocess.run([sys.executable] + [a.replace("{tmp}", str(tmp_path))
                                              for a in command],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
  for example in examples(os.path.join(ROOT, script)):
    args = shlex.split(example)
    args += [a.replace("{tmp}", str(tmp_path)) for a in SHRINK[example]]
    if "/tmp/jpegs" in args:  # the folder the script's first example makes
      args = [a.replace("/tmp/jpegs", str(tmp_path / "jpegs")) for a in args]
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True)
    needs_torch = script.endswith("step_benchmark.py") and "--only" not in args
    if needs_torch and torch_missing():
      # the documented refusal: one line naming the extra, exit status 2
      assert proc.returncode == 2 and "bench" in proc.stderr, proc.stderr
      assert "Traceback" not in proc.stderr
      continue
    assert proc.returncode == 0, f"{example}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    for line in OUTPUT.get(example, []):
      assert line in proc.stdout, f"{example}: no {line!r} in\n{proc.stdout[-3000:]}"


@pytest.mark.parametrize("script", SHELL)
def test_shell_scripts_print_usage_and_start_nothing(script, tmp_path):
  for flag in ("--help", "-h"):
    proc = subprocess.run(["bash", script, flag], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "SSLAX": "false"})
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^Usage: launch/", proc.stdout, re.M | re.I), proc.stdout
  assert not os.path.exists(os.path.join(ROOT, "runs", "--help"))
