"""A run stopped after a checkpoint (or killed) and resumed ends bitwise equal
to an uninterrupted run: every leaf of the whole TrainState, for one method of
each kind of method state."""

import os
import signal
import subprocess
import sys
import time

import pytest

import states
from conftest import ROOT
from sslax.config_loading import load_config_file
from sslax.train import checkpoint
from sslax.train.loop import train_and_evaluate
from sslax.train.metrics import read_metrics


def _config(smoke_config):
  c = smoke_config
  c.num_steps = 12
  c.checkpoint_every = 3
  c.log_every = 1
  c.progress_bar = False
  return c


# Config file -> the kind of method state its resume exercises.
KINDS = {
    "simclr": {},  # none: parameters, optimizer and BatchNorm statistics only
    "moco_v2": {},  # a queue of keys and a momentum key encoder
    "byol": {},  # an EMA target network
    "exemplar": {"exemplar": {"variant": "memory_bank"}},  # constants and a bank
    "context_encoder": {"context_encoder": {"adversarial_weight": 0.001}},  # a
    # discriminator with its own optimizer
}


def _kind_config(name):
  config = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  for group, values in KINDS[name].items():
    config[group].update(values)
  config.update(num_steps=6, checkpoint_every=3, log_every=1, progress_bar=False,
                online_eval_every=0)  # (scoring is not state; the probe trains)
  return config


@pytest.mark.parametrize("name", sorted(KINDS))
def test_preempted_and_resumed_equals_uninterrupted(tmp_path, name):
  config = _kind_config(name)
  full = states.leaves(train_and_evaluate(config, str(tmp_path / "full")))
  partial = states.leaves(train_and_evaluate(config, str(tmp_path / "resumed"), stop_at=3))
  assert int(partial["step"]) == 3
  assert checkpoint.latest_step(str(tmp_path / "resumed")) == 3
  resumed = train_and_evaluate(config, str(tmp_path / "resumed"))
  states.assert_states_equal(resumed, full, context=name)
  # Steps 4 to 6 moved every parameter, the probe and the method's state
  # (its queue, target, bank or discriminator; constants stay): the resumed
  # run had to restore all of it to end equal.
  states.assert_moved(partial, full, "params")
  states.assert_moved(partial, full, "probe.params")
  states.assert_moved(partial, full, "opt_state", every=False)
  if name != "simclr":  # (the exemplar seeds, uint8 constants, are not floats)
    states.assert_moved(partial, full, "method_state")
  losses_full = [r["loss"] for r in read_metrics(str(tmp_path / "full"))]
  losses_resumed = [r["loss"] for r in read_metrics(str(tmp_path / "resumed"))]
  assert losses_full == losses_resumed and len(losses_full) == 6


@pytest.mark.serial  # a kill timed on the run's progress
def test_sigkilled_process_resumes_to_the_same_state(tmp_path, smoke_config):
  config = _config(smoke_config)
  config.num_steps = 400
  config.checkpoint_every = 2
  workdir = str(tmp_path / "killed")
  overrides = ["--config.num_steps=400", "--config.checkpoint_every=2",
               "--config.log_every=1", "--config.progress_bar=False"]
  proc = subprocess.Popen(
      [sys.executable, "-m", "sslax", "train", "--config",
       os.path.join(ROOT, "configs", "simclr.py:smoke"), "--workdir", workdir,
       *overrides], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  deadline = time.time() + 300
  try:
    while time.time() < deadline:
      step = checkpoint.latest_step(workdir) if os.path.isdir(
          os.path.join(workdir, "checkpoints")) else None
      if step is not None and step >= 4 or proc.poll() is not None:
        break
      time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  finally:
    if proc.poll() is None:
      proc.kill()
  killed_at = checkpoint.latest_step(workdir)
  assert killed_at is not None and 4 <= killed_at < 400
  # A few steps past the kill are enough: both runs stop at the same step
  # (checkpointing only there: checkpoint_every is a run-control key).
  config.checkpoint_every = 400
  target = killed_at + 4
  resumed = train_and_evaluate(config, workdir, stop_at=target)
  full = train_and_evaluate(config, str(tmp_path / "full"), stop_at=target)
  assert int(full.step) == target
  states.assert_states_equal(resumed, full)
