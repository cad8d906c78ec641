"""A few SimCLR steps as 1 process x 8 devices and as 2 processes x 4 devices
(jax.distributed on 127.0.0.1, gloo collectives) end in the same checkpoint,
leaf by leaf, with the same losses and online kNN and probe accuracies; and
both equal 1 process x 1 device on the same global batches to float
tolerance, so that an error common to every sharded layout shows."""

import os
import socket
import subprocess
import sys

import numpy as np

import states
from conftest import ROOT, xla_flags
from sslax.train.metrics import read_metrics

# float32 leaves after six steps (rtol, atol); see below.
FLOAT32 = (1e-5, 1e-6)
OVERRIDES = ["--config.num_steps=6", "--config.log_every=1",
             "--config.checkpoint_every=3", "--config.progress_bar=False"]


def _command(workdir, *extra):
  return [sys.executable, "-m", "sslax", "train", "--config",
          os.path.join(ROOT, "configs", "simclr.py:smoke"), "--workdir", workdir,
          *OVERRIDES, *extra]


def _env(devices):
  return dict(os.environ, JAX_PLATFORMS="cpu",
              XLA_FLAGS=xla_flags(devices))


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _losses(workdir):
  return np.array([r["loss"] for r in read_metrics(workdir)])


def test_one_process_eight_devices_equals_two_processes_four_devices(tmp_path):
  single = str(tmp_path / "1x8")
  multi = str(tmp_path / "2x4")
  out = subprocess.run(_command(single), env=_env(8), cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  port = _free_port()
  procs = [subprocess.Popen(
      _command(multi, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
               "--process-id", str(i)),
      env=_env(4), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  logs = [p.communicate(timeout=600)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]
  final_multi = states.read_checkpoint(multi, 6)
  final_single = states.read_checkpoint(single, 6)
  # First against 1 process x 1 device on the same global batches (an error
  # common to every sharded layout shows here): one device sums its rows
  # in another order than 8 devices' partial sums (measured: at most 2.4e-7).
  one = str(tmp_path / "1x1")
  out = subprocess.run(_command(one, "--config.online_eval_every=0"), env=_env(1),
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  final_one = states.read_checkpoint(one, 6)
  for name, final in (("1 x 8", final_single), ("2 x 4", final_multi)):
    states.assert_states_equal(final, final_one, float_tolerance=FLOAT32,
                               context=f"{name} vs 1 x 1:")
  states.assert_moved(states.read_checkpoint(one, 3), final_one, "params")
  a, b, c = _losses(single), _losses(multi), _losses(one)
  np.testing.assert_allclose(a, c, rtol=1e-5)
  assert len(a) == 6 and len(b) == 6
  np.testing.assert_allclose(b, a, rtol=1e-5)
  # The final checkpoints, every leaf of the TrainState: the same rows are on
  # the same devices either way, but gloo's all-reduce adds the processes'
  # partial sums in an order of its own (measured: at most 3.6e-7 on leaves
  # of order 1; integers and keys exact).
  states.assert_states_equal(final_multi, final_single, float_tolerance=FLOAT32,
                             context="2 x 4 vs 1 x 8:")
  # Losses change from step to step: equal lists are not a constant.
  assert len(set(np.round(a, 6))) > 1
  # The online evaluation (steps 4 and 6) runs over both processes' devices.
  keys = ("online_knn_top1_k20", "online_probe_top1")
  online = [[(r["step"], *(r[k] for k in keys)) for r in read_metrics(d) if keys[0] in r]
            for d in (single, multi)]
  assert [r[0] for r in online[0]] == [4, 6]
  np.testing.assert_allclose(np.asarray(online[1]), np.asarray(online[0]), atol=1e-3)
