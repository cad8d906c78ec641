"""Linear probe: stratified label subsets and a classifier with known answers."""

import numpy as np
import pytest

from sslax.errors import UserError
from sslax.probes import linear


def test_stratified_subset_is_per_class_and_seed_fixed():
  labels = np.repeat(np.arange(10), 100)
  sub = linear.stratified_subset(labels, 0.1, seed=0)
  assert len(sub) == 100
  assert np.bincount(labels[sub]).tolist() == [10] * 10
  np.testing.assert_array_equal(sub, linear.stratified_subset(labels, 0.1, seed=0))
  assert not np.array_equal(sub, linear.stratified_subset(labels, 0.1, seed=1))
  tiny = linear.stratified_subset(labels, 0.001, seed=0)  # at least one per class
  assert np.bincount(labels[tiny]).tolist() == [1] * 10


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_outside_unit_interval_is_refused(fraction):
  with pytest.raises(UserError, match="outside"):
    linear.check_fraction(fraction)


def test_separable_data_is_classified_perfectly():
  rng = np.random.default_rng(0)
  centers = rng.normal(size=(4, 8)) * 10
  y = np.repeat(np.arange(4), 200)
  x = centers[y] + rng.normal(size=(800, 8))
  order = rng.permutation(800)
  x, y = x[order].astype(np.float32), y[order].astype(np.int32)
  result = linear.linear_probe(x[:600], y[:600], x[600:], y[600:], fraction=1.0,
                               num_classes=4)
  assert result["top1"] == 1.0
  assert result["num_labels"] == 600


def test_uninformative_features_give_chance_accuracy():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2000, 5)).astype(np.float32)
  y = rng.integers(0, 4, size=2000).astype(np.int32)
  result = linear.linear_probe(x[:1500], y[:1500], x[1500:], y[1500:], fraction=1.0,
                               num_classes=4)
  assert 0.15 < result["top1"] < 0.35


def test_one_label_per_class_still_fits():
  rng = np.random.default_rng(2)
  centers = rng.normal(size=(3, 6)) * 10
  y = np.repeat(np.arange(3), 50).astype(np.int32)
  x = (centers[y] + rng.normal(size=(150, 6))).astype(np.float32)
  result = linear.linear_probe(x, y, x, y, fraction=0.02, num_classes=3)
  assert result["num_labels"] == 3 and result["validation_top1"] == {}
  assert result["top1"] > 0.9
