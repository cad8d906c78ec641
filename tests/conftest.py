"""Shared test settings.

Tests under ``tests/multidevice/`` need JAX to see 8 CPU devices, which must be
set before JAX is imported; ``test_multidevice.py`` runs them in a separate
pytest process with XLA_FLAGS set, so the main run skips collecting them.
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

collect_ignore = [] if os.environ.get("SSLAX_MULTIDEVICE") else ["multidevice"]


@pytest.fixture
def smoke_config():
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  return load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke"))
