"""sslax's fast XLA:CPU path (``sslax.FAST_CPU_FLAG``): added to XLA_FLAGS on
import unless the user set it or opted out, and giving the same step as
XLA's default CPU path to float tolerance."""

import json
import os
import subprocess
import sys

import numpy as np

import sslax
from conftest import ROOT


def test_flag_is_added_unless_set_or_turned_off():
  assert sslax.fast_cpu_xla_flags({}) == sslax.FAST_CPU_FLAG
  assert (sslax.fast_cpu_xla_flags({"XLA_FLAGS": "--xla_foo=1"}) ==
          f"--xla_foo=1 {sslax.FAST_CPU_FLAG}")
  mine = "--xla_cpu_experimental_ynn_fusion_type="
  assert sslax.fast_cpu_xla_flags({"XLA_FLAGS": mine}) == mine
  assert sslax.fast_cpu_xla_flags({"XLA_FLAGS": "--xla_foo=1", "SSLAX_FAST_CPU": "0"}) == "--xla_foo=1"
  assert sslax.FAST_CPU_FLAG in os.environ["XLA_FLAGS"]  # this test process


# Three steps of the SimCLR smoke config (ConvNet, BatchNorm, NT-Xent, LARS) on a
# fixed batch: the losses, gradient norms and a parameter checksum.
_STEPS = """
import json, os, sys
import sslax, jax, numpy as np
from sslax.config_loading import load_config_file
from sslax.train.run import global_batch, init_state, setup
from sslax.train.step import compile_step
config = load_config_file(os.path.join(sys.argv[1], "configs", "simclr.py:smoke"))
run = setup(config)
state = init_state(run)
step = compile_step(run, state)
out = []
for i in range(3):
  state, metrics = step(state, global_batch(run, i))
  out.append([float(metrics["loss"]), float(metrics["grad_norm"])])
kernel = np.asarray(state.params["encoder"]["Conv_0"]["kernel"])
print(json.dumps({"flags": os.environ.get("XLA_FLAGS", ""), "steps": out,
                  "kernel": float(np.abs(kernel).sum())}))
"""


def _run(env):
  out = subprocess.run([sys.executable, "-c", _STEPS, ROOT], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_fast_path_gives_the_default_paths_steps():
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  fast = _run(env)
  default = _run({**env, "SSLAX_FAST_CPU": "0"})
  assert sslax.FAST_CPU_FLAG in fast["flags"] and "ynn" not in default["flags"]
  np.testing.assert_allclose(fast["steps"], default["steps"], rtol=2e-4)
  np.testing.assert_allclose(fast["kernel"], default["kernel"], rtol=1e-4)
