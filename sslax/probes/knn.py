"""Weighted k-nearest-neighbour classification of frozen features (Wu et al.
2018, "Unsupervised feature learning via non-parametric instance
discrimination"): features are L2-normalised, the k most cosine-similar training
examples vote for their class with weight exp(similarity / temperature)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sslax.losses import l2_normalize


def _weighted_votes(queries, bank, bank_labels, *, k, num_classes, temperature):
  """Votes [n_queries, k, num_classes] of the k nearest bank rows, nearest
  first: one-hot labels weighted by exp(similarity / temperature). The
  similarities are full float32 products on every backend (a GPU's default
  TF32 would put ~1e-3 into them, 1.4% of the weight at temperature 0.07)."""
  sims = jnp.matmul(l2_normalize(queries), l2_normalize(bank).T,
                    precision=jax.lax.Precision.HIGHEST)
  top_sims, top_idx = jax.lax.top_k(sims, k)
  weights = jnp.exp(top_sims / temperature)
  return jax.nn.one_hot(bank_labels[top_idx], num_classes) * weights[..., None]


@functools.partial(jax.jit, static_argnames=("k", "num_classes"))
def knn_scores(queries, bank, bank_labels, *, k, num_classes, temperature):
  """Class scores [n_queries, num_classes] from the k nearest bank rows."""
  return _weighted_votes(queries, bank, bank_labels, k=k, num_classes=num_classes,
                         temperature=temperature).sum(axis=1)


@functools.partial(jax.jit, static_argnames=("ks", "num_classes"))
def _predictions(queries, bank, bank_labels, *, ks, num_classes, temperature):
  """The predicted class of each query for each k in ``ks``, from one
  similarity matrix and one top-k at the largest k (the nearest k of a
  larger sorted top-k are the top-k of the smaller)."""
  votes = _weighted_votes(queries, bank, bank_labels, k=max(ks), num_classes=num_classes,
                          temperature=temperature)
  return jnp.stack([jnp.argmax(votes[:, :k].sum(axis=1), -1) for k in ks])


def knn_accuracies(train_x, train_y, test_x, test_y, *, ks, num_classes,
                   temperature=0.07, batch_size=1000):
  """{k: top-1 accuracy of the weighted kNN vote} for each k in ``ks``, a
  query batch at a time, each batch's similarities computed once for all k."""
  bank = jnp.asarray(train_x, jnp.float32)
  labels = jnp.asarray(train_y)
  ks = tuple(int(k) for k in ks)
  clipped = tuple(min(k, bank.shape[0]) for k in ks)
  correct = np.zeros(len(ks), np.int64)
  for start in range(0, len(test_x), batch_size):
    q = jnp.asarray(test_x[start:start + batch_size], jnp.float32)
    predicted = np.asarray(_predictions(q, bank, labels, ks=clipped, num_classes=num_classes,
                                        temperature=temperature))
    correct += np.sum(predicted == np.asarray(test_y[start:start + batch_size])[None], axis=1)
  return {k: int(c) / len(test_x) for k, c in zip(ks, correct)}


def knn_accuracy(train_x, train_y, test_x, test_y, *, k, num_classes,
                 temperature=0.07, batch_size=1000):
  """Top-1 accuracy of the weighted kNN vote, computed a query batch at a time."""
  return knn_accuracies(train_x, train_y, test_x, test_y, ks=(k,), num_classes=num_classes,
                        temperature=temperature, batch_size=batch_size)[int(k)]
