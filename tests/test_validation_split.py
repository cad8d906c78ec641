"""The validation split carved from the training data
(``config.data.validation_fraction``) and the guard of tuning runs
(``config.data.tuning``): scored on that split, never on test."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from conftest import ROOT, xla_flags
from sslax.config_base import base_config
from sslax.data import sources
from sslax.data.source import ArraySource, labelled
from sslax.data.sources import get_source, split_source, validation_indices
from sslax.errors import UnknownSplit, UserError
from sslax.train import run as run_lib, run_config

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")
TUNING_ON_TEST = ("config.data.tuning is set (a tuning run is scored on validation only) "
                  "but config.data.eval_split is 'test'; set "
                  "--config.data.eval_split=validation and "
                  "--config.data.validation_fraction=0.1")
# Classes of unequal size: 7, 13, 30 and 50 examples.
COUNTS = (7, 13, 30, 50)


def _tiny(labelled_data=True):
  """A source of 100 examples whose "x" is the example's index."""
  labels = np.repeat(np.arange(len(COUNTS)), COUNTS)
  labels = labels[np.random.default_rng(0).permutation(len(labels))]
  x = np.arange(len(labels), dtype=np.int32)
  if labelled_data:
    return ArraySource(arrays={"x": x}, labels=labels, num_classes=len(COUNTS))
  return ArraySource(arrays={"x": x})


@pytest.fixture
def tiny(monkeypatch):
  """data configs of the in-memory "tiny" source (train and test splits);
  ``data(labelled=False)`` for unlabelled data."""
  def read(data_config, split):
    if split not in ("train", "test"):
      raise UnknownSplit(f"tiny has splits train and test, not {split!r}")
    return _tiny(data_config.get("labelled", True))
  monkeypatch.setitem(sources.SOURCES, "tiny", read)

  def data(**values):
    return ml_collections.ConfigDict(dict(dict(
        name="tiny", train_split="train", eval_train_split="train", eval_split="test",
        validation_fraction=0.25, validation_seed=0, tuning=False), **values))
  return data


def _xs(source):
  return np.asarray(source.get(np.arange(len(source)))["x"])


def test_validation_and_train_are_disjoint_and_make_the_train_split(tiny):
  data = tiny()
  train, val = get_source(data, "train"), get_source(data, "validation")
  assert len(val) == sum(round(0.25 * c) for c in COUNTS)
  assert not set(_xs(train)) & set(_xs(val))
  assert sorted([*_xs(train), *_xs(val)]) == list(range(100))
  # Every reader: the probes' training set and the scored split are the same two.
  bank = split_source(data, "eval_train_split")
  scored = split_source(tiny(eval_split="validation"), "eval_split")
  assert list(_xs(bank)) == list(_xs(train)) and list(_xs(scored)) == list(_xs(val))
  assert labelled(bank) and labelled(scored)
  assert list(_xs(get_source(data, "test"))) == list(range(100))  # test untouched


def test_the_carving_is_deterministic_in_the_seed():
  labels = _tiny().labels
  first = validation_indices(labels, 100, 0.25, 3)
  again = validation_indices(labels, 100, 0.25, 3)
  other = validation_indices(labels, 100, 0.25, 4)
  assert all(np.array_equal(a, b) for a, b in zip(first, again))
  assert not np.array_equal(first[1], other[1])
  for train, val in (first, other):
    assert list(val) == sorted(val) and list(train) == sorted(train)


def test_the_carving_is_stratified(tiny):
  labels = _tiny().labels
  for fraction in (0.1, 0.25, 0.5):
    train_idx, val_idx = validation_indices(labels, 100, fraction, 0)
    for c, count in enumerate(COUNTS):
      assert np.sum(labels[val_idx] == c) == round(fraction * count), (fraction, c)
      assert np.sum(labels[train_idx] == c) == count - round(fraction * count)
  val = get_source(tiny(validation_seed=7), "validation")
  assert np.bincount(val.labels).tolist() == [round(0.25 * c) for c in COUNTS]


def test_unlabelled_data_gets_a_uniform_fraction(tiny):
  data = tiny(labelled=False, validation_fraction=0.3)
  train, val = get_source(data, "train"), get_source(data, "validation")
  assert "label" not in val.element_spec
  assert len(val) == 30 and len(train) == 70
  assert sorted([*_xs(train), *_xs(val)]) == list(range(100))
  train_idx, val_idx = validation_indices(None, 100, 0.3, 0)
  assert list(_xs(val)) == list(val_idx) and list(_xs(train)) == list(train_idx)
  assert not np.array_equal(val_idx, validation_indices(None, 100, 0.3, 1)[1])


def test_a_fraction_of_zero_leaves_the_splits_as_they_were(tiny):
  data = tiny(validation_fraction=0.0)
  assert isinstance(get_source(data, "train"), ArraySource)
  assert list(_xs(get_source(data, "train"))) == list(range(100))
  with pytest.raises(UnknownSplit, match="not 'validation'"):
    get_source(data, "validation")
  config = base_config("simclr")
  assert config.data.validation_fraction == 0.0 and not config.data.tuning
  assert len(get_source(config.data, "train")) == 60000  # Fashion-MNIST, whole


@pytest.mark.parametrize("fraction", [1.0, 1.5, -0.1])
def test_a_fraction_outside_the_unit_interval_is_one_line(tiny, fraction):
  with pytest.raises(UserError) as e:
    get_source(tiny(validation_fraction=fraction), "test")
  assert str(e.value) == (
      f"config.data.validation_fraction is {fraction}, outside (0, 1); set it to the "
      "share of split 'train' held out for validation (e.g. 0.1), or 0 for none")


def test_data_with_a_validation_split_of_its_own_is_refused(tiny, monkeypatch):
  monkeypatch.setitem(sources.SOURCES, "tiny", lambda c, split: _tiny())
  with pytest.raises(UserError) as e:
    get_source(tiny(validation_fraction=0.1), "train")
  assert str(e.value) == (
      "tiny has a split of its own called 'validation', which "
      "config.data.validation_fraction=0.1 would replace by one carved from 'train'; "
      "set --config.data.validation_fraction=0 to read its own")


def test_a_split_joining_train_is_refused(tiny):
  with pytest.raises(UserError, match="split 'train\\+test' of tiny holds all of split"):
    get_source(tiny(), "train+test")


def test_tuning_on_test_is_refused_by_split_source(tiny):
  with pytest.raises(UserError) as e:
    split_source(tiny(tuning=True, validation_fraction=0.0), "eval_split")
  assert str(e.value) == TUNING_ON_TEST
  with pytest.raises(UserError) as e:
    split_source(tiny(tuning=True, eval_split="validation", validation_fraction=0.0),
                 "eval_split")
  assert str(e.value) == (
      "config.data.tuning is set (a tuning run is scored on validation only) but "
      "config.data.validation_fraction is 0; set --config.data.validation_fraction=0.1")
  scored = split_source(tiny(tuning=True, eval_split="validation"), "eval_split")
  assert len(scored) == sum(round(0.25 * c) for c in COUNTS)
  assert len(split_source(tiny(tuning=True), "eval_train_split")) == 100 - len(scored)


@pytest.mark.parametrize("online_eval_every", [4, 0])
def test_tuning_on_test_is_refused_at_set_up(smoke_config, online_eval_every):
  smoke_config.data.tuning = True
  smoke_config.online_eval_every = online_eval_every
  with pytest.raises(UserError) as e:
    run_lib.setup(smoke_config)
  assert str(e.value) == TUNING_ON_TEST


def test_a_tuning_run_on_validation_trains_on_the_rest(smoke_config):
  smoke_config.data.update(tuning=True, eval_split="validation", validation_fraction=0.1)
  run = run_lib.setup(smoke_config)
  assert len(run.source) == 54000


def test_train_command_with_tuning_on_test_exits_2_with_one_line(tmp_path):
  env = dict(os.environ, XLA_FLAGS=xla_flags(), JAX_PLATFORMS="cpu")
  workdir = tmp_path / "run"
  proc = subprocess.run(
      [sys.executable, "-m", "sslax", "train", "--config", SMOKE, "--workdir",
       str(workdir), "--config.data.tuning=True"],
      env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip() == f"sslax: error: {TUNING_ON_TEST}", proc.stderr
  assert not (workdir / "checkpoints").exists()


def test_a_config_saved_without_the_keys_resumes_and_evaluates(smoke_config, tmp_path,
                                                               monkeypatch):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  path = os.path.join(workdir, run_config.CONFIG_FILE)

  def save_old():  # config.json as versions before these keys wrote it
    old = json.loads(smoke_config.to_json())
    for key in ("validation_fraction", "validation_seed", "tuning"):
      del old["data"][key]
    with open(path, "w") as f:
      json.dump(old, f)

  monkeypatch.setattr(run_config, "latest_step", lambda workdir: 8)  # checkpoints there
  tuned = smoke_config.copy_and_resolve_references()
  tuned.data.update(tuning=True, eval_split="validation", validation_fraction=0.0)
  carved = smoke_config.copy_and_resolve_references()
  carved.data.validation_fraction = 0.1
  for config in (smoke_config, tuned):  # the defaults; tuning is run control
    save_old()
    run_config.check_or_write_config(workdir, config)
  save_old()
  with pytest.raises(UserError, match=r"differs in data\.validation_fraction"):
    run_config.check_or_write_config(workdir, carved)  # another training set
  loaded = run_config.load_config(workdir, ["data.eval_split=validation",
                                            "data.validation_fraction=0.1"])
  assert loaded.data.validation_fraction == 0.1 and loaded.data.tuning is False
  assert run_config.load_config(workdir).data.validation_seed == 0
