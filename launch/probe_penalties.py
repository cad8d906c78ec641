"""The linear probe's penalty rule against others, on one trained run's
features (RESULTS.md, "The linear probe", is its output on the protocol's
SimCLR seed-0 run).

For each of ``--subsets`` labelled subsets (``--fraction`` of the labels,
drawn with seeds 0, 1, ...), every penalty of a grid is fitted from zeros on
the subset's fitting split (the probe's: 80% of each class), scored on its
validation split by accuracy and by cross entropy, refitted on the whole
subset and tested. Printed per feature kind (the run's encoder and its
modality's raw baseline): the test top-1 (mean +- SD over the subsets) of the
penalty each rule chooses, over the probe's three penalties and over nine in
half-decades from 1e-4 to 1:

  most validation accuracy   the probe's version-2 rule (ties: the stronger)
  least validation cross entropy   the probe's rule now (ties: the stronger)
  best on test               a bound, not a probe: it reads test

then the paired difference of the two rules (mean, SD, least and most, and on
how many subsets they are equal), and each penalty's own test top-1 with the
number of subsets on which it is below cross entropy's choice. With
``--full`` also the whole training set: its fitting split (80%) fitted along
the probe's path from the strongest penalty down, with each penalty's
validation accuracy and cross entropy and its test top-1.

  python launch/probe_penalties.py --workdir runs/protocol/simclr/learning_rate1_temperature0.2/seed0

(RESULTS.md's figures: that command with ``--full``; about 11 minutes on a
2-core CPU.)
"""

import argparse
import sys

import jax.numpy as jnp
import numpy as np

from sslax.data import modality
from sslax.errors import UserError, exit_on_user_error
from sslax.eval import features as features_lib
from sslax.eval.evaluate import load_classified_config
from sslax.probes import linear

THREE = linear.WEIGHT_DECAYS
# Half-decades from 1e-4 to 1 (the probe's three among them, as literals).
NINE = (1e-4, 10 ** -3.5, 1e-3, 10 ** -2.5, 1e-2, 10 ** -1.5, 1e-1, 10 ** -0.5, 1.0)
# Penalties of the --full comparison: the probe's three and two weaker (3e-4
# here is 3e-4, not NINE's 10^-3.5).
FULL = (1e-1, 1e-2, 1e-3, 3e-4, 1e-4)


def most_accurate(scores, grid):
  """The penalty of ``grid`` of most validation accuracy (the stronger on a tie)."""
  return max(grid, key=lambda wd: (scores[wd]["validation_top1"], wd))


def least_cross_entropy(scores, grid):
  """The penalty of ``grid`` of least validation cross entropy (the stronger
  on a tie; a NaN sorts last), as ``linear.linear_probe`` chooses."""
  return linear.least_loss_penalty({wd: scores[wd]["validation_cross_entropy"]
                                    for wd in grid})


def best_on_test(scores, grid):
  """The penalty of ``grid`` of highest test top-1: a bound, not a rule."""
  return max(grid, key=lambda wd: (scores[wd]["test_top1"], wd))


RULES = (("most validation accuracy", most_accurate),
         ("least validation cross entropy", least_cross_entropy),
         ("best on test (reads test: a bound)", best_on_test))


def _fit(x, y, wd, num_classes, init):
  return linear.fit_logistic_regression(x, y, wd, num_classes=num_classes, init=init,
                                        tolerance=linear.TOLERANCE,
                                        max_steps=linear.MAX_STEPS)


def score_penalties(x, y, test_x, test_y, grid, *, seed, num_classes):
  """{penalty: {validation_top1, validation_cross_entropy, test_top1}} on
  standardised features ``x`` of one labelled subset (its validation split
  drawn as the probe draws it for ``seed``), each fit from zeros."""
  if np.unique(y, return_counts=True)[1].min() < 2:
    raise UserError("a class has fewer than 2 labels in the subset, so the probe chooses no "
                    "penalty on it; use a larger --fraction")
  val = linear.stratified_subset(y, 0.2, seed + 1)
  fit = np.setdiff1d(np.arange(len(y)), val)
  zeros = linear.zero_params(x.shape[1], num_classes)
  x_fit, y_fit, x_val, y_val = x[fit], jnp.asarray(y[fit]), x[val], jnp.asarray(y[val])
  scores = {}
  for wd in grid:
    params, _ = _fit(x_fit, y_fit, wd, num_classes, zeros)
    whole, _ = _fit(x, jnp.asarray(y), wd, num_classes, zeros)
    scores[wd] = {"validation_top1": linear.accuracy(params, x_val, y_val),
                  "validation_cross_entropy": linear.cross_entropy(params, x_val, y_val),
                  "test_top1": linear.accuracy(whole, test_x, test_y)}
  return scores


def subset_study(train_x, train_y, test_x, test_y, *, fraction, subsets, num_classes,
                 grid=NINE):
  """``score_penalties`` of each subset (seeds 0..subsets-1), standardised
  with every training example's statistics as the probe does."""
  stats = linear.feature_statistics(train_x)
  test_x, test_y = linear.standardize(stats, test_x), jnp.asarray(test_y)
  study = []
  for seed in range(subsets):
    subset = linear.stratified_subset(train_y, fraction, seed)
    study.append(score_penalties(linear.standardize(stats, train_x[subset]),
                                 np.asarray(train_y)[subset], test_x, test_y, grid,
                                 seed=seed, num_classes=num_classes))
  return study


def sample_sd(values):
  """The standard deviation with n - 1 (NaN of one value)."""
  return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def mean_sd(values):
  """Fractions as "mean ± SD" in points (the mean alone of one value)."""
  values = 100 * np.asarray(values)
  if len(values) < 2:
    return f"{np.mean(values):.2f}"
  return f"{np.mean(values):.2f} ± {sample_sd(values):.2f}"


def penalty_text(wd):
  """1e-3, 3.2e-4, 1: two significant digits at most."""
  mantissa, exponent = f"{wd:.1e}".split("e")
  mantissa = mantissa.rstrip("0").rstrip(".")
  return mantissa if int(exponent) == 0 else f"{mantissa}e{int(exponent)}"


def rule_rows(study, grids):
  """Markdown rows: each rule over each grid, the test top-1 of its choices
  (mean +- SD) and the choices."""
  rows = []
  for grid_name, grid in grids:
    for rule_name, rule in RULES:
      chosen = [rule(scores, grid) for scores in study]
      top1 = [scores[wd]["test_top1"] for scores, wd in zip(study, chosen)]
      rows.append(f"| {rule_name}, {grid_name} | {mean_sd(top1)} | "
                  f"{' '.join(penalty_text(wd) for wd in chosen)} |")
  return rows


def paired_difference(study, grid):
  """Cross entropy's choice's test top-1 less accuracy's, in points, over the
  subsets: {mean, sd, least, most, equal, behind, ahead}."""
  d = np.array([100 * (s[least_cross_entropy(s, grid)]["test_top1"]
                       - s[most_accurate(s, grid)]["test_top1"]) for s in study])
  return {"mean": float(np.mean(d)), "sd": sample_sd(d), "least": float(d.min()),
          "most": float(d.max()), "equal": int(np.sum(d == 0)), "behind": int(np.sum(d < 0)),
          "ahead": int(np.sum(d > 0))}


def print_subset_study(kind, study, fraction, num_labels):
  print(f"\n{kind}: {len(study)} subsets of {100 * fraction:g}% of the labels "
        f"({num_labels} labelled examples each)\n")
  print("| rule, penalties | test top-1 (mean ± SD) | chosen, subset by subset |")
  print("|---|---|---|")
  grids = (("the probe's three", THREE), ("nine, 1e-4 to 1", NINE))
  for row in rule_rows(study, grids):
    print(row)
  d = paired_difference(study, THREE)
  print(f"\ncross entropy's choice less accuracy's (three penalties): {d['mean']:+.2f} ± "
        f"{d['sd']:.2f} points, from {d['least']:+.2f} to {d['most']:+.2f}; equal on "
        f"{d['equal']}, behind on {d['behind']}, ahead on {d['ahead']}")
  chosen = [s[least_cross_entropy(s, THREE)]["test_top1"] for s in study]
  print("each penalty's test top-1, and on how many subsets it is below cross entropy's "
        "choice of three:")
  for wd in NINE:
    top1 = [s[wd]["test_top1"] for s in study]
    below = sum(t < c for t, c in zip(top1, chosen))
    print(f"  {penalty_text(wd)}: {mean_sd(top1)}, below on {below} of {len(study)}")


def full_study(train_x, train_y, test_x, test_y, *, num_classes, grid=FULL):
  """At 100% of the labels: each penalty of ``grid`` (strongest first) fitted
  on the probe's fitting split along its path; {penalty: scores}."""
  stats = linear.feature_statistics(train_x)
  x = linear.standardize(stats, train_x)
  test_x, test_y = linear.standardize(stats, test_x), jnp.asarray(test_y)
  val = linear.stratified_subset(train_y, 0.2, 1)
  fit = np.setdiff1d(np.arange(len(train_y)), val)
  x_fit, y_fit = x[fit], jnp.asarray(train_y[fit])
  x_val, y_val = x[val], jnp.asarray(train_y[val])
  params, scores = linear.zero_params(x.shape[1], num_classes), {}
  for wd in sorted(grid, reverse=True):
    params, done = _fit(x_fit, y_fit, wd, num_classes, params)
    scores[wd] = {"validation_top1": linear.accuracy(params, x_val, y_val),
                  "validation_cross_entropy": linear.cross_entropy(params, x_val, y_val),
                  "test_top1": linear.accuracy(params, test_x, test_y),
                  "lbfgs_steps": int(done["steps"]),
                  "converged": bool(done["gradient_norm"] < linear.TOLERANCE)}
  return scores


def print_full_study(kind, scores, num_fit, num_val):
  print(f"\n{kind}: 100% of the labels, fitted on {num_fit} examples, validated on "
        f"{num_val}\n")
  print("| penalty | validation top-1 | validation cross entropy | test top-1 | "
        "L-BFGS steps | converged |")
  print("|---|---|---|---|---|---|")
  for wd, s in scores.items():
    print(f"| {penalty_text(wd)} | {100 * s['validation_top1']:.2f} | "
          f"{s['validation_cross_entropy']:.4f} | {100 * s['test_top1']:.2f} | "
          f"{s['lbfgs_steps']} | {s['converged']} |")
  for rule_name, rule in RULES[:2]:
    print(f"{rule_name}, the probe's three: {penalty_text(rule(scores, THREE))}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a trained run")
  parser.add_argument("--subsets", type=int, default=10,
                      help="labelled subsets, drawn with seeds 0, 1, ... (default 10)")
  parser.add_argument("--fraction", type=float, default=0.01,
                      help="the subsets' fraction of the labels (default 0.01)")
  parser.add_argument("--full", action="store_true",
                      help="also compare the penalties at 100%% of the labels")
  args = parser.parse_args(argv)
  if args.subsets < 1:
    raise UserError(f"--subsets must be at least 1, got {args.subsets}")
  linear.check_fraction(args.fraction)
  config = load_classified_config(args.workdir)
  kinds = tuple(modality.of_config(config.data).RAW_FEATURES) + ("encoder",)
  for kind in kinds:
    train_x, train_y, test_x, test_y, num_classes = features_lib.features(
        config, kind, args.workdir, "the penalty study")
    study = subset_study(train_x, train_y, test_x, test_y, fraction=args.fraction,
                         subsets=args.subsets, num_classes=num_classes)
    num_labels = len(linear.stratified_subset(train_y, args.fraction, 0))
    print_subset_study(kind, study, args.fraction, num_labels)
    if args.full:
      scores = full_study(train_x, train_y, test_x, test_y, num_classes=num_classes)
      num_val = len(linear.stratified_subset(train_y, 0.2, 1))
      print_full_study(kind, scores, len(train_y) - num_val, num_val)
    sys.stdout.flush()


if __name__ == "__main__":
  exit_on_user_error("probe_penalties", main)
