"""Weighted kNN against a hand-built answer and a naive loop."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from sslax.probes import knn
from sslax.probes.knn import knn_accuracies, knn_accuracy, knn_scores


def naive_scores(query, bank, labels, k, num_classes, temperature):
  sims = []
  for i, row in enumerate(bank):
    sims.append((float(query @ row / (np.linalg.norm(query) * np.linalg.norm(row))), i))
  sims.sort(key=lambda t: -t[0])
  scores = [0.0] * num_classes
  for s, i in sims[:k]:
    scores[labels[i]] += math.exp(s / temperature)
  return scores


def test_weighted_vote_matches_naive_loop():
  rng = np.random.default_rng(0)
  bank = rng.normal(size=(40, 6)).astype(np.float32)
  labels = rng.integers(0, 3, size=40)
  queries = rng.normal(size=(5, 6)).astype(np.float32)
  got = np.asarray(knn_scores(queries, bank, labels, k=7, num_classes=3, temperature=0.5))
  for q, row in zip(queries, got):
    np.testing.assert_allclose(row, naive_scores(q, bank, labels, 7, 3, 0.5), rtol=1e-4)


def test_weights_can_outvote_the_majority():
  """Two far neighbours of class 0 lose to one very close neighbour of class 1."""
  bank = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]], np.float32)
  labels = np.array([1, 0, 0])
  query = np.array([[1.0, 0.05]], np.float32)
  assert knn_accuracy(bank, labels, query, np.array([1]), k=3, num_classes=2,
                      temperature=0.1) == 1.0
  # With a huge temperature every vote counts the same and the majority wins.
  assert knn_accuracy(bank, labels, query, np.array([0]), k=3, num_classes=2,
                      temperature=1e6) == 1.0


def test_clusters_are_recovered():
  rng = np.random.default_rng(1)
  centers = rng.normal(size=(4, 16)) * 5
  y = np.repeat(np.arange(4), 50)
  x = centers[y] + rng.normal(size=(200, 16))
  assert knn_accuracy(x[::2], y[::2], x[1::2], y[1::2], k=20, num_classes=4,
                      batch_size=30) == 1.0


def test_several_k_in_one_pass_equal_the_naive_vote_of_each():
  """One similarity matrix and one top-k at the largest k give, for every k,
  the naive loop's vote (noisy classes, so that the k disagree)."""
  rng = np.random.default_rng(2)
  bank = rng.normal(size=(60, 5)).astype(np.float32)
  labels = rng.integers(0, 4, size=60)
  queries = rng.normal(size=(23, 5)).astype(np.float32)
  ks = (1, 3, 10, 60, 100)  # 100 > the bank: all of it
  truth = rng.integers(0, 4, size=23)
  got = knn_accuracies(bank, labels, queries, truth, ks=ks, num_classes=4, temperature=0.3,
                       batch_size=7)
  want = {k: float(np.mean([np.argmax(naive_scores(q, bank, labels, k, 4, 0.3)) == t
                            for q, t in zip(queries, truth)])) for k in ks}
  assert got == want
  assert len(set(want.values())) > 1  # the k do disagree


def test_similarities_are_full_float32_products_on_every_backend():
  """(A GPU's default precision for float32 products is TF32.)"""
  votes = functools.partial(knn._weighted_votes, k=1, num_classes=2, temperature=0.07)
  jaxpr = jax.make_jaxpr(votes)(jnp.ones((3, 4)), jnp.ones((5, 4)), jnp.zeros(5, jnp.int32))
  dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
  assert dots and all(e.params["precision"] == (jax.lax.Precision.HIGHEST,) * 2 for e in dots)
