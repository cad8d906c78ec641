"""Runs each module of tests/multidevice/ in a pytest process that sees 8 CPU
devices, compiled as XLA's default optimisation level computes (``xla_flags``); one
process a module, so that parallel test workers share them out."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT, xla_flags

MODULES = sorted(f for f in os.listdir(os.path.join(ROOT, "tests", "multidevice"))
                 if f.startswith("test_") and f.endswith(".py"))
# Modules split into shards of their own (conftest: SSLAX_TEST_SHARD): two
# steps of 19 methods on 1 and on 8 devices take 10 minutes in one process.
SHARDS = {"test_sharded_methods.py": 4}
# Modules run on XLA's default CPU path rather than sslax's fast one, whose
# YNN kernels round differently at different shapes: on denoising_ae's first
# step (AMD family-25 EPYC) the one-device gradients differ from the default
# path's by 7e-4 of a leaf's largest magnitude, the eight-device ones (a
# per-device batch of 2) by 1.4e-6, so under it the comparison would be of
# two kernels, not of two shardings. The fast path's own steps are compared
# with the default path's in tests/test_fast_cpu.py.
DEFAULT_CPU_PATH = {"test_sharded_methods.py"}
RUNS = [(m, f"{i}/{SHARDS.get(m, 1)}") for m in MODULES for i in range(SHARDS.get(m, 1))]


def test_every_module_is_run():
  assert "test_sharded_methods.py" in MODULES and len(MODULES) >= 5


@pytest.mark.parametrize("module,shard", RUNS)
def test_multidevice_module(module, shard):
  env = dict(os.environ, SSLAX_MULTIDEVICE="1", SSLAX_TEST_SHARD=shard,
             XLA_FLAGS=xla_flags(8),
             JAX_PLATFORMS="cpu")
  if module in DEFAULT_CPU_PATH:
    env["SSLAX_FAST_CPU"] = "0"
  proc = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
       os.path.join(ROOT, "tests", "multidevice", module)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  print(proc.stdout[-6000:], proc.stderr[-3000:])
  assert proc.returncode == 0, proc.stdout[-6000:]
  assert " passed" in proc.stdout and " failed" not in proc.stdout
