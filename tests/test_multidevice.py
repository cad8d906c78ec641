"""Runs tests/multidevice/ in a pytest process that sees 8 CPU devices."""

import os
import subprocess
import sys

from conftest import ROOT, xla_flags


def test_multidevice_suite():
  env = dict(os.environ, SSLAX_MULTIDEVICE="1",
             XLA_FLAGS=xla_flags(8),
             JAX_PLATFORMS="cpu")
  proc = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
       os.path.join(ROOT, "tests", "multidevice")],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  print(proc.stdout[-6000:], proc.stderr[-3000:])
  assert proc.returncode == 0, proc.stdout[-6000:]
  assert " passed" in proc.stdout
