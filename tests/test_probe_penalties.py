"""launch/probe_penalties.py: its rules choose as the linear probe does, and
its figures are the probe's own."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, load_launch_script
from sslax.probes import linear

study = load_launch_script("probe_penalties")


def _blobs(seed, n=400, dim=6, classes=4, spread=2.5):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, dim)) * spread
  y = np.repeat(np.arange(classes), n // classes).astype(np.int32)
  x = (centers[y] + rng.normal(size=(len(y), dim))).astype(np.float32)
  order = rng.permutation(len(y))
  return x[order], y[order]


def test_at_full_labels_the_scores_and_the_choice_are_the_probes():
  """The --full comparison fits the probe's fitting split along the probe's
  path: its validation figures are those the probe reports, and cross
  entropy's choice is the probe's penalty."""
  x, y = _blobs(0)
  test_x, test_y = _blobs(1)
  probe = linear.linear_probe(x, y, test_x, test_y, fraction=1.0, num_classes=4)
  scores = study.full_study(x, y, test_x, test_y, num_classes=4, grid=study.THREE)
  for wd in study.THREE:
    assert scores[wd]["validation_top1"] == probe["validation_top1"][str(wd)]
    assert scores[wd]["validation_cross_entropy"] == probe["validation_cross_entropy"][str(wd)]
  assert study.least_cross_entropy(scores, study.THREE) == probe["weight_decay"]


def test_a_subsets_validation_figures_are_the_probes():
  """Each penalty's validation figures on a subset are the probe's at that
  penalty alone: the same subset, standardisation, split and fit. (Its test
  top-1 is not compared: the probe refits the subset from the fitting
  split's solution, the study from zeros, the same minimum to L-BFGS's
  tolerance, which on these 80 labels moves a few test examples.)"""
  x, y = _blobs(2, n=800)
  test_x, test_y = _blobs(3)
  grid = (1e-2, 1.0)
  scores = study.subset_study(x, y, test_x, test_y, fraction=0.1, subsets=2,
                              num_classes=4, grid=grid)
  assert len(scores) == 2
  for seed, by_penalty in enumerate(scores):
    for wd in grid:
      probe = linear.linear_probe(x, y, test_x, test_y, fraction=0.1, seed=seed,
                                  num_classes=4, weight_decays=(wd,))
      assert by_penalty[wd]["validation_top1"] == probe["validation_top1"][str(wd)]
      assert (by_penalty[wd]["validation_cross_entropy"]
              == probe["validation_cross_entropy"][str(wd)])


def _scores(**by_penalty):
  """{penalty: scores} from keyword (validation top-1, cross entropy, test top-1)."""
  return {float(k[1:].replace("_", "-")): {"validation_top1": a,
                                           "validation_cross_entropy": c, "test_top1": t}
          for k, (a, c, t) in by_penalty.items()}


def test_the_rules_break_ties_to_the_stronger_penalty_and_skip_nan():
  grid = (1e-3, 1e-2, 1e-1)
  tied = _scores(p1e_3=(0.9, 0.30, 0.80), p1e_2=(0.9, 0.30, 0.82), p1e_1=(0.8, 0.40, 0.82))
  assert study.most_accurate(tied, grid) == 1e-2
  assert study.least_cross_entropy(tied, grid) == 1e-2
  assert study.best_on_test(tied, grid) == 1e-1
  nan = _scores(p1e_3=(0.9, float("nan"), 0.8), p1e_2=(0.5, 0.9, 0.7), p1e_1=(0.4, 1.2, 0.6))
  assert study.least_cross_entropy(nan, grid) == 1e-2
  assert study.most_accurate(nan, grid) == 1e-3


def test_paired_difference_and_rule_rows_by_hand():
  grid = study.THREE
  first = _scores(p1e_3=(0.90, 0.50, 0.70), p1e_2=(0.80, 0.40, 0.74), p1e_1=(0.70, 0.60, 0.60))
  second = _scores(p1e_3=(0.90, 0.30, 0.81), p1e_2=(0.80, 0.40, 0.75), p1e_1=(0.70, 0.60, 0.60))
  # accuracy chooses 1e-3 on both; cross entropy 1e-2, then 1e-3
  mean, sd, equal, behind, ahead = study.paired_difference([first, second], grid)
  assert (equal, behind, ahead) == (1, 0, 1)
  assert mean == pytest.approx(2.0) and sd == pytest.approx(np.std([4.0, 0.0], ddof=1))
  rows = study.rule_rows([first, second], (("three", grid),))
  assert rows[0] == f"| most validation accuracy, three | 75.50 ± {np.std([70, 81], ddof=1):.2f} " \
                    "| 1e-3 1e-3 |"
  assert rows[1].startswith("| least validation cross entropy, three | 77.50 ± ")
  assert rows[1].endswith("| 1e-2 1e-3 |")
  assert rows[2].startswith("| best on test (reads test: a bound), three | 77.50 ± ")


def test_a_missing_run_is_one_line_and_status_2(tmp_path):
  proc = subprocess.run([sys.executable, "launch/probe_penalties.py", "--workdir",
                         str(tmp_path / "none")], cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 2
  assert proc.stderr.startswith("probe_penalties: error: ") and "sslax train" in proc.stderr
  assert proc.stderr.count("\n") == 1
