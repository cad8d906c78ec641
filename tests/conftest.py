"""Shared test settings.

Tests under ``tests/multidevice/`` need JAX to see 8 CPU devices, which must be
set before JAX is imported; ``test_multidevice.py`` runs them in a separate
pytest process with XLA_FLAGS set, so the main run skips collecting them.
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The tests compile many small programs and run each a few times: XLA's CPU
# backend without its expensive optimisations compiles them 2-3x faster.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
# For the tests whose claim is a numerical equality between device layouts
# (tests/multidevice/, test_multiprocess.py): at backend optimisation level
# 0, XLA:CPU computes some programs differently on one device, e.g. SimCLR's
# encoder gradients 1% off those of 8 devices and of the default level where
# sslax's users run (the step tests of tests/multidevice/ catch it).
EXACT_COMPILE = "--xla_llvm_disable_expensive_passes=true"


def xla_flags(devices=None, *, exact=False):
  """XLA_FLAGS for the tests' subprocesses, with ``devices`` simulated CPU
  devices; ``exact``: at XLA's default optimisation level."""
  count = f" --xla_force_host_platform_device_count={devices}" if devices else ""
  return (EXACT_COMPILE if exact else FAST_COMPILE) + count


# Set before anything imports JAX; flags made by xla_flags (a test's pytest
# subprocess) are kept as they are, and a caller's own device count too.
if EXACT_COMPILE not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

collect_ignore = [] if os.environ.get("SSLAX_MULTIDEVICE") else ["multidevice"]


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
  """``SSLAX_TEST_SHARD=i/n`` keeps every n-th test from the i-th on (how
  test_multidevice.py splits a long module over parallel workers)."""
  shard = os.environ.get("SSLAX_TEST_SHARD")
  if shard:
    i, n = (int(x) for x in shard.split("/"))
    items[:] = [item for k, item in enumerate(items) if k % n == i]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
  """An espeak-ng speaker corpus: 4 speakers, 6 training and 2 test clips of
  1 s each."""
  from sslax.data import speech  # pylint: disable=g-import-not-at-top
  out = str(tmp_path_factory.mktemp("speech") / "corpus")
  speech.make_corpus(out, num_speakers=4, train_per_speaker=6, test_per_speaker=2,
                     clip_seconds=1.0, log=lambda *_: None)
  return out


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
