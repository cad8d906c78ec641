"""Shared test settings.

Tests under ``tests/multidevice/`` need JAX to see 8 CPU devices, which must be
set before JAX is imported; ``test_multidevice.py`` runs them in a separate
pytest process with XLA_FLAGS set, so the main run skips collecting them.
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The tests compile many small programs and run each a few times: XLA's CPU
# backend without LLVM's expensive passes compiles them faster and computes
# the same. (Not --xla_backend_optimization_level=0, which would halve
# compile times again: at that level XLA:CPU computes SimCLR's encoder
# gradients on one device 1% off those of 8 devices and of the default level,
# which tests/multidevice/test_sharded_methods.py and test_multiprocess.py
# catch.)
FAST_COMPILE = "--xla_llvm_disable_expensive_passes=true"


def xla_flags(devices=None):
  """XLA_FLAGS for the tests (and their subprocesses), with ``devices``
  simulated CPU devices."""
  count = f" --xla_force_host_platform_device_count={devices}" if devices else ""
  return FAST_COMPILE + count


# Set before anything imports JAX; a caller's own device count is kept.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

collect_ignore = [] if os.environ.get("SSLAX_MULTIDEVICE") else ["multidevice"]


@pytest.fixture
def smoke_config():
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  return load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke"))


def fails_cleanly(capsys, argv, match):
  """Runs ``sslax`` in this process with ``argv``: it must exit with status 2
  and one line on stderr, ``sslax: error: ...``, containing ``match``; returns
  that line. What earlier commands printed (training's log lines) is cleared
  first."""
  from sslax import cli  # pylint: disable=g-import-not-at-top
  capsys.readouterr()
  with pytest.raises(SystemExit) as exit_info:
    cli.main(argv)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("sslax: error: "), err
  assert "\n" not in err, err
  assert match in err, err
  return err
