"""Shared test settings.

Tests under ``tests/multidevice/`` need JAX to see 8 CPU devices, which must be
set before JAX is imported; ``test_multidevice.py`` runs them in a separate
pytest process with XLA_FLAGS set, so the main run skips collecting them.
"""

import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The tests compile many small programs and run each a few times: XLA's CPU
# backend at optimisation level 1 without its expensive LLVM passes compiles
# them in about a third less time than the default level and computes as the
# default level does, to rounding. (Level 0 compiles no faster, runs slower,
# and computes some programs differently on one device, e.g. SimCLR's
# encoder gradients 1% off those of 8 devices and of the default level where
# sslax's users run, which the step tests of tests/multidevice/ catch.)
TEST_COMPILE = "--xla_backend_optimization_level=1 --xla_llvm_disable_expensive_passes=true"


def load_launch_script(name: str):
  """``launch/<name>.py`` imported as a module (launch/ is not a package)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "launch",
                                                                   f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def xla_flags(devices=None):
  """XLA_FLAGS for the tests' subprocesses (``TEST_COMPILE``), with
  ``devices`` simulated CPU devices."""
  count = f" --xla_force_host_platform_device_count={devices}" if devices else ""
  return TEST_COMPILE + count


# Set before anything imports JAX; flags made by xla_flags (a test's pytest
# subprocess) are kept as they are, and a caller's own device count too.
if TEST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_COMPILE}".strip()

# Programs compiled by one test process are reused by the others (the
# parallel workers, the subprocesses of `sslax train`): XLA's persistent
# compilation cache, keyed by the program, the flags and the JAX version, so a
# stale entry is never used. Compiles under 0.2 s are not worth a file.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(ROOT, ".pytest_cache", "xla_compilation_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

collect_ignore = [] if os.environ.get("SSLAX_MULTIDEVICE") else ["multidevice"]


# The longest tests and modules, longest first (a fresh clone's
# --durations): `make test` hands tests to its workers one at a time in
# collection order (--dist load), so these start first and the workers end
# together instead of one waiting on a long test started last. Whole modules,
# or single tests of modules whose fixtures are cheap, so that a module's
# fixtures are still built once per worker.
LONGEST_FIRST = (
    "test_multidevice.py::test_multidevice_module[test_sharded_methods.py",
    "test_multiprocess.py",
    "test_help_examples.py::test_examples_run[launch/benchmark.py",
    "test_multidevice.py",
    "test_end_to_end.py",
    "test_help_examples.py::test_examples_run[launch/probe_penalties.py",
    "test_results_runner.py::test_a_tiny_grid",
    "test_logs.py",
    "test_cpc.py",
    "test_fast_cpu.py",
    "test_methods.py",
    "test_vicreg_simsiam.py",
)


def _rank(item) -> int:
  for rank, prefix in enumerate(LONGEST_FIRST):
    if item.nodeid.startswith("tests/" + prefix) or item.nodeid.startswith(prefix):
      return rank
  return len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
  """The longest tests first (``LONGEST_FIRST``, otherwise in file order);
  ``SSLAX_TEST_SHARD=i/n`` keeps every n-th test from the i-th on (how
  test_multidevice.py splits a long module over parallel workers)."""
  items.sort(key=_rank)
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


TINY_TEXT_TOPICS = (("king", "queen", "prince", "crown", "throne", "royal"),
                    ("cat", "dog", "horse", "cow", "sheep", "goat"),
                    ("red", "blue", "green", "yellow", "white", "black"),
                    ("one", "two", "three", "four", "five", "six"))
TINY_TEXT_FILLER = ("the", "a", "and", "of", "is", "was", "to", "in")


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
  """A text corpus in the layout of ``sslax data make-text``: 2000 sentences
  (and 200 held out) each mixing filler words with the words of one of four
  topics, so that words of a topic share their contexts."""
  import json  # pylint: disable=g-import-not-at-top
  out = tmp_path_factory.mktemp("text")
  rng = np.random.default_rng(0)

  def sentence():
    topic = TINY_TEXT_TOPICS[rng.integers(len(TINY_TEXT_TOPICS))]
    words = [rng.choice(topic) if rng.random() < 0.6 else rng.choice(TINY_TEXT_FILLER)
             for _ in range(rng.integers(5, 13))]
    return " ".join(words)

  lines = [sentence() for _ in range(2200)]
  (out / "train.txt").write_text("\n".join(lines[:2000]) + "\n")
  (out / "heldout.txt").write_text("\n".join(lines[2000:]) + "\n")
  words = {split: sum(len(l.split()) for l in part)
           for split, part in (("train", lines[:2000]), ("heldout", lines[2000:]))}
  (out / "meta.json").write_text(json.dumps(
      {"splits": {k: {"words": v} for k, v in words.items()}}))
  return str(out)


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
