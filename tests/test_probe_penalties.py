"""launch/probe_penalties.py: its rules choose as the linear probe does, and
its figures are the probe's own."""

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, load_launch_script
from sslax.errors import UserError
from sslax.probes import linear

probe_penalties = load_launch_script("probe_penalties")


def _blobs(seed, n=400, dim=6, classes=4, spread=2.5):
  """Gaussian classes, offset and scaled far from standardised (so a test set
  left unstandardised would be classified differently)."""
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, dim)) * spread
  y = np.repeat(np.arange(classes), n // classes).astype(np.int32)
  x = (centers[y] + rng.normal(size=(len(y), dim))) * 50.0 + 100.0
  order = rng.permutation(len(y))
  return x[order].astype(np.float32), y[order]


def _naive_test_top1(x, y, rows, test_x, test_y, wd):
  """Test top-1 of a fit from zeros of ``rows`` of ``x``, standardised with
  the statistics of every row of ``x`` computed here in float64."""
  mean, std = x.astype(np.float64).mean(0), x.astype(np.float64).std(0)
  std_x = jnp.asarray(((x - mean) / std).astype(np.float32))
  std_test = jnp.asarray(((test_x - mean) / std).astype(np.float32))
  params, _ = linear.fit_logistic_regression(std_x[rows], jnp.asarray(y[rows]), wd,
                                             num_classes=4)
  return linear.accuracy(params, std_test, jnp.asarray(test_y))


def test_at_full_labels_the_scores_and_the_choice_are_the_probes():
  """The --full comparison fits the probe's fitting split along the probe's
  path: its validation figures are those the probe reports, cross entropy's
  choice is the probe's penalty, and the strongest penalty's test top-1 is
  that of the fitting split fitted from zeros."""
  x, y = _blobs(0)
  test_x, test_y = _blobs(1)
  probe = linear.linear_probe(x, y, test_x, test_y, fraction=1.0, num_classes=4)
  scores = probe_penalties.full_study(x, y, test_x, test_y, num_classes=4,
                                      grid=probe_penalties.THREE)
  for wd in probe_penalties.THREE:
    assert scores[wd]["validation_top1"] == probe["validation_top1"][str(wd)]
    assert scores[wd]["validation_cross_entropy"] == pytest.approx(
        probe["validation_cross_entropy"][str(wd)], rel=1e-6)
  assert probe_penalties.least_cross_entropy(scores, probe_penalties.THREE) == \
      probe["weight_decay"]
  fit = np.setdiff1d(np.arange(len(y)), linear.stratified_subset(y, 0.2, 1))
  assert scores[0.1]["test_top1"] == pytest.approx(
      _naive_test_top1(x, y, fit, test_x, test_y, 0.1), abs=1.01 / len(test_y))


def test_a_subsets_figures_are_the_probes():
  """Each penalty's validation figures on a subset are the probe's at that
  penalty alone (the same subset, standardisation, split and fit), and its
  test top-1 that of the whole subset fitted from zeros on features
  standardised by every training example, to one test example."""
  x, y = _blobs(2, n=800)
  test_x, test_y = _blobs(3)
  grid = (1e-2, 1.0)
  scores = probe_penalties.subset_study(x, y, test_x, test_y, fraction=0.1, subsets=2,
                                        num_classes=4, grid=grid)
  assert len(scores) == 2
  for seed, by_penalty in enumerate(scores):
    subset = linear.stratified_subset(y, 0.1, seed)
    for wd in grid:
      probe = linear.linear_probe(x, y, test_x, test_y, fraction=0.1, seed=seed,
                                  num_classes=4, weight_decays=(wd,))
      assert by_penalty[wd]["validation_top1"] == probe["validation_top1"][str(wd)]
      assert by_penalty[wd]["validation_cross_entropy"] == pytest.approx(
          probe["validation_cross_entropy"][str(wd)], rel=1e-6)
      assert by_penalty[wd]["test_top1"] == pytest.approx(
          _naive_test_top1(x, y, subset, test_x, test_y, wd), abs=1.01 / len(test_y))


def test_a_class_of_one_label_is_refused():
  x, y = _blobs(4, n=40)
  with pytest.raises(UserError, match="--fraction"):
    probe_penalties.subset_study(x, y, x, y, fraction=0.01, subsets=1, num_classes=4)


def _scores(by_penalty):
  """{penalty: (validation top-1, cross entropy, test top-1)} as the study's dicts."""
  return {wd: {"validation_top1": a, "validation_cross_entropy": c, "test_top1": t}
          for wd, (a, c, t) in by_penalty.items()}


def test_the_rules_break_ties_to_the_stronger_penalty_and_skip_nan():
  grid = (1e-3, 1e-2, 1e-1)
  tied = _scores({1e-3: (0.9, 0.30, 0.80), 1e-2: (0.9, 0.30, 0.82), 1e-1: (0.8, 0.40, 0.82)})
  assert probe_penalties.most_accurate(tied, grid) == 1e-2
  assert probe_penalties.least_cross_entropy(tied, grid) == 1e-2
  assert probe_penalties.best_on_test(tied, grid) == 1e-1
  nan = _scores({1e-3: (0.9, float("nan"), 0.8), 1e-2: (0.5, 0.9, 0.7), 1e-1: (0.4, 1.2, 0.6)})
  assert probe_penalties.least_cross_entropy(nan, grid) == 1e-2
  assert probe_penalties.most_accurate(nan, grid) == 1e-3


def test_paired_difference_and_rule_rows_by_hand():
  grid = probe_penalties.THREE
  first = _scores({1e-3: (0.90, 0.50, 0.70), 1e-2: (0.80, 0.40, 0.74), 1e-1: (0.7, 0.6, 0.6)})
  second = _scores({1e-3: (0.90, 0.30, 0.81), 1e-2: (0.80, 0.40, 0.75), 1e-1: (0.7, 0.6, 0.6)})
  # accuracy chooses 1e-3 on both (70, 81); cross entropy 1e-2 (74), then 1e-3
  d = probe_penalties.paired_difference([first, second], grid)
  assert (d["equal"], d["behind"], d["ahead"]) == (1, 0, 1)
  assert d["mean"] == pytest.approx(2.0) and d["sd"] == pytest.approx(2.8284271)
  assert (d["least"], d["most"]) == pytest.approx((0.0, 4.0))
  rows = probe_penalties.rule_rows([first, second], (("three", grid),))
  assert rows == ["| most validation accuracy, three | 75.50 ± 7.78 | 1e-3 1e-3 |",
                  "| least validation cross entropy, three | 77.50 ± 4.95 | 1e-2 1e-3 |",
                  "| best on test (reads test: a bound), three | 77.50 ± 4.95 | 1e-2 1e-3 |"]


def test_penalties_print_with_two_significant_digits_at_most():
  assert [probe_penalties.penalty_text(wd) for wd in probe_penalties.NINE] == [
      "1e-4", "3.2e-4", "1e-3", "3.2e-3", "1e-2", "3.2e-2", "1e-1", "3.2e-1", "1"]


def test_a_missing_run_is_one_line_and_status_2(tmp_path):
  proc = subprocess.run([sys.executable, "launch/probe_penalties.py", "--workdir",
                         str(tmp_path / "none")], cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 2
  assert proc.stderr.startswith("probe_penalties: error: ") and "sslax train" in proc.stderr
  assert proc.stderr.count("\n") == 1
