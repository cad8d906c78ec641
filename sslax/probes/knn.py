"""Weighted k-nearest-neighbour classification of frozen features (Wu et al.
2018, "Unsupervised feature learning via non-parametric instance
discrimination"): features are L2-normalised, the k most cosine-similar training
examples vote for their class with weight exp(similarity / temperature)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sslax.losses import l2_normalize


@functools.partial(jax.jit, static_argnames=("k", "num_classes"))
def knn_scores(queries, bank, bank_labels, *, k, num_classes, temperature):
  """Class scores [n_queries, num_classes] from the k nearest bank rows."""
  sims = l2_normalize(queries) @ l2_normalize(bank).T
  top_sims, top_idx = jax.lax.top_k(sims, k)
  weights = jnp.exp(top_sims / temperature)
  votes = jax.nn.one_hot(bank_labels[top_idx], num_classes) * weights[..., None]
  return votes.sum(axis=1)


def knn_accuracy(train_x, train_y, test_x, test_y, *, k, num_classes,
                 temperature=0.07, batch_size=1000):
  """Top-1 accuracy of the weighted kNN vote, computed a query batch at a time."""
  bank = jnp.asarray(train_x, jnp.float32)
  labels = jnp.asarray(train_y)
  k = min(k, bank.shape[0])
  correct = 0
  for start in range(0, len(test_x), batch_size):
    q = jnp.asarray(test_x[start:start + batch_size], jnp.float32)
    scores = knn_scores(q, bank, labels, k=k, num_classes=num_classes,
                        temperature=temperature)
    correct += int(np.sum(np.asarray(jnp.argmax(scores, -1)) ==
                          np.asarray(test_y[start:start + batch_size])))
  return correct / len(test_x)
