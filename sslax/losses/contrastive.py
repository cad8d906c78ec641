"""Contrastive losses over a batch: SimCLR's NT-Xent (Chen et al. 2020), MoCo's
InfoNCE with a queue (He et al. 2020) and CPC's InfoNCE over future codes
(van den Oord et al. 2018)."""

from typing import Optional

import jax
import jax.numpy as jnp

_LARGE_NEGATIVE = -1e9


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """x / ||x||, with the norm clamped away from zero."""
  sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sq, eps * eps))


def nt_xent(z1: jax.Array, z2: jax.Array, *, temperature: float,
            axis_name: Optional[str] = None) -> jax.Array:
  """SimCLR's normalised temperature-scaled cross entropy (Chen et al. 2020).

  ``z1[i]`` and ``z2[i]`` are the projections of two views of example i. Each of
  the 2N views is an anchor whose positive is the other view of its example and
  whose negatives are the remaining 2N - 2 views; similarity is cosine
  similarity divided by ``temperature``. Returns the mean over all 2N anchors
  (Algorithm 1 of the paper).

  With ``axis_name`` the call runs inside ``jax.shard_map``: ``z1`` and ``z2``
  are this device's rows, the other devices' rows are gathered with
  ``all_gather``, and each device computes only its own rows of the logits
  (2n_local x 2N). The result is the global mean on every device.
  """
  if z1.shape != z2.shape or z1.ndim != 2:
    raise ValueError(f"nt_xent needs two [n, d] arrays of equal shape, got "
                     f"{z1.shape} and {z2.shape}")
  z1 = l2_normalize(z1.astype(jnp.float32))
  z2 = l2_normalize(z2.astype(jnp.float32))
  n_local = z1.shape[0]
  if axis_name is None:
    k1, k2, offset = z1, z2, 0
  else:
    k1 = jax.lax.all_gather(z1, axis_name, tiled=True)
    k2 = jax.lax.all_gather(z2, axis_name, tiled=True)
    offset = jax.lax.axis_index(axis_name) * n_local
  n_global = k1.shape[0]
  anchors = jnp.concatenate([z1, z2], axis=0)            # [2n, d]
  keys = jnp.concatenate([k1, k2], axis=0)               # [2N, d]
  logits = anchors @ keys.T / temperature                # [2n, 2N]
  # Global column index of each local anchor, and of its positive.
  local = jnp.arange(n_local) + offset
  self_col = jnp.concatenate([local, local + n_global])
  pos_col = jnp.concatenate([local + n_global, local])
  cols = jnp.arange(2 * n_global)
  logits = jnp.where(cols[None, :] == self_col[:, None], _LARGE_NEGATIVE, logits)
  log_prob = jax.nn.log_softmax(logits, axis=-1)
  loss = -jnp.mean(jnp.take_along_axis(log_prob, pos_col[:, None], axis=-1))
  if axis_name is not None:
    loss = jax.lax.pmean(loss, axis_name)
  return loss


def moco_infonce(q: jax.Array, k: jax.Array, queue: jax.Array, *,
                 temperature: float) -> jax.Array:
  """MoCo's InfoNCE (He et al. 2020, eq. 1): each query's positive is the key
  of the same example, its negatives the K keys in the queue.

  ``q`` [n, d] from the query encoder, ``k`` [n, d] from the momentum key
  encoder (no gradient flows into it), ``queue`` [K, d] of past keys. Queries
  and keys are L2-normalised here (the queue holds normalised keys); logits are
  cosine similarities divided by ``temperature``. Returns the mean over queries.
  """
  if q.shape != k.shape or q.ndim != 2 or queue.ndim != 2 or queue.shape[1] != q.shape[1]:
    raise ValueError(f"moco_infonce needs q, k [n, d] and queue [K, d]; got "
                     f"{q.shape}, {k.shape}, {queue.shape}")
  q = l2_normalize(q.astype(jnp.float32))
  k = jax.lax.stop_gradient(l2_normalize(k.astype(jnp.float32)))
  queue = jax.lax.stop_gradient(queue.astype(jnp.float32))
  positive = jnp.sum(q * k, axis=-1, keepdims=True)                # [n, 1]
  negatives = q @ queue.T                                          # [n, K]
  logits = jnp.concatenate([positive, negatives], axis=1) / temperature
  return -jnp.mean(jax.nn.log_softmax(logits, axis=-1)[:, 0])


def cpc_infonce(predictions: jax.Array, codes: jax.Array, *, offsets,
                axis_name: Optional[str] = None) -> jax.Array:
  """Contrastive Predictive Coding's InfoNCE (van den Oord et al. 2018, eq. 4).

  ``codes`` [n, T, d] are the encodings z of n sequences of T steps and
  ``predictions`` [n, T, K, d] are ``W_k c_t`` for the K offsets in ``offsets``
  (``predictions[:, t, i]`` predicts ``codes[:, t + offsets[i]]``), so the score
  of a candidate z is ``z^T W_k c_t``. For every offset k and every step t with
  t + k < T, the positive is the true z_{t+k} of the same sequence and the
  negatives are the codes of every other step of every sequence of the batch.
  Returns the mean over offsets of the mean cross-entropy over those queries.

  With ``axis_name`` (inside ``jax.shard_map``) ``codes`` and ``predictions``
  are this device's sequences; every device's codes are gathered as candidates,
  and the result is the loss of the global batch on every device.
  """
  n, steps, num_offsets, dim = predictions.shape
  offsets = tuple(int(k) for k in offsets)
  if codes.shape != (n, steps, dim) or len(offsets) != num_offsets:
    raise ValueError(f"cpc_infonce needs predictions [n, T, K, d], codes [n, T, d] "
                     f"and K offsets; got {predictions.shape}, {codes.shape}, {offsets}")
  if min(offsets) < 1 or max(offsets) >= steps:
    raise ValueError(f"offsets {offsets} must lie in 1..{steps - 1}")
  predictions = predictions.astype(jnp.float32)
  codes = codes.astype(jnp.float32)
  if axis_name is None:
    candidates, first = codes, 0
  else:
    candidates = jax.lax.all_gather(codes, axis_name, tiled=True)
    first = jax.lax.axis_index(axis_name) * n
  candidates = candidates.reshape(-1, dim)                     # [N * T, d]
  total = 0.0
  for i, k in enumerate(offsets):
    queries = predictions[:, :steps - k, i].reshape(-1, dim)  # [n (T - k), d]
    rows = jnp.arange(n)[:, None] + first
    positive = (rows * steps + jnp.arange(k, steps)[None, :]).reshape(-1)
    log_prob = jax.nn.log_softmax(queries @ candidates.T, axis=-1)
    total += -jnp.mean(jnp.take_along_axis(log_prob, positive[:, None], axis=-1))
  loss = total / num_offsets
  if axis_name is not None:
    loss = jax.lax.pmean(loss, axis_name)
  return loss
