"""Word2vec's losses with negative sampling (Mikolov et al. 2013): skip-gram
(SGNS) and CBOW, and the draw of the negatives.

Both are pure functions of the vectors the caller looked up: the *input*
vectors (gensim's ``wv.vectors``, ``syn0``) and the *output* vectors
(``syn1neg``). Gensim trains with SGD one pair at a time at learning rate
``alpha``; the mean these return (``reduction="mean"``) needs a learning rate
of ``alpha`` times the number of pairs (or centres) for the same step, and
``reduction="sum"`` takes ``alpha`` itself.

Gensim conventions that are options here:

- ``negative_mask``: gensim skips a negative that draws the positive target
  itself; pass ``negative_ids != target_ids[..., None]``.
- ``saturate_at``: gensim skips a term whose logit is beyond +-6 (``MAX_EXP``);
  here such a term gets no gradient (its value still counts).
- ``score_negatives_with="context"`` in ``sgns_loss``: gensim (like
  word2vec.c) scores the context's input vector against the centre's output
  vector and the negatives, the transpose of the paper's formula; over a
  corpus both see the same pairs.
- ``gensim_gradient`` in ``cbow_loss``: gensim adds the whole gradient of the
  context mean to each context vector (not divided by their number) and, with
  ``cbow_mean=False``, divides that of the sum by it.

Not matched: gensim's sigmoid is a 1000-entry table; here it is exact.
"""

from typing import Optional

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST


def _f32(x) -> jax.Array:
  return jnp.asarray(x).astype(jnp.float32)


def _scores(many: jax.Array, one: jax.Array) -> jax.Array:
  """``[b, m]`` dot products of ``many`` [b, m, d] with ``one`` [b, d]: a
  batched matrix-vector product (XLA:CPU runs an einsum of this shape with
  the vector side first several times slower)."""
  return jax.lax.dot_general(many, one, (((2,), (1,)), ((0,), (0,))), precision=_HIGHEST)


def _saturate(logits: jax.Array, saturate_at: Optional[float]) -> jax.Array:
  """``logits`` with no gradient where ``|logit| >= saturate_at``."""
  if saturate_at is None:
    return logits
  return jnp.where(jnp.abs(logits) < saturate_at, logits, jax.lax.stop_gradient(logits))


def _reduce(per_item: jax.Array, valid: jax.Array, reduction: str) -> jax.Array:
  total = jnp.sum(jnp.where(valid, per_item, 0.0))
  if reduction == "sum":
    return total
  if reduction == "mean":
    return total / jnp.maximum(jnp.sum(valid), 1).astype(jnp.float32)
  raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _pair_loss(positive: jax.Array, negative: jax.Array, negative_mask) -> jax.Array:
  """-log s(positive) - sum_k log s(-negative_k) over the last axis."""
  negative_terms = jax.nn.log_sigmoid(-negative)
  if negative_mask is not None:
    negative_terms = jnp.where(negative_mask, negative_terms, 0.0)
  return -jax.nn.log_sigmoid(positive) - jnp.sum(negative_terms, axis=-1)


def sgns_loss(centre_vectors: jax.Array, context_vectors: jax.Array,
              context_mask: jax.Array, negative_vectors: jax.Array, *,
              negative_mask: Optional[jax.Array] = None,
              score_negatives_with: str = "centre",
              saturate_at: Optional[float] = None,
              reduction: str = "mean") -> jax.Array:
  """Skip-gram with negative sampling, a scalar.

  Per valid pair (``context_mask[i, j]``): ``-log s(u_i . v_ij) - sum_k log
  s(-w . n_ijk)``, u = ``centre_vectors`` [n, d], v = ``context_vectors`` [n,
  c, d], n = ``negative_vectors`` [n, c, k, d], w = u (the paper's formula:
  centre input vectors, context and negative output vectors) or, with
  ``score_negatives_with="context"``, w = v (gensim's: centre output vectors,
  context input vectors, negatives replacing the centre). The mean over valid
  pairs (0 when there is none), or their sum.
  """
  n, c, d = context_vectors.shape
  k = negative_vectors.shape[2] if negative_vectors.ndim == 4 else -1
  if (centre_vectors.shape != (n, d) or context_mask.shape != (n, c)
      or negative_vectors.shape != (n, c, k, d)
      or (negative_mask is not None and negative_mask.shape != (n, c, k))):
    raise ValueError(
        "sgns_loss needs centre_vectors [n, d], context_vectors [n, c, d], "
        "context_mask [n, c], negative_vectors [n, c, k, d] (negative_mask "
        f"[n, c, k]), got {centre_vectors.shape}, {context_vectors.shape}, "
        f"{context_mask.shape}, {negative_vectors.shape}"
        f"{'' if negative_mask is None else ', ' + str(negative_mask.shape)}")
  if score_negatives_with not in ("centre", "context"):
    raise ValueError("score_negatives_with must be 'centre' or 'context', got "
                     f"{score_negatives_with!r}")
  u, v, neg = _f32(centre_vectors), _f32(context_vectors), _f32(negative_vectors)
  positive = _scores(v, u)
  if score_negatives_with == "centre":
    negative = _scores(neg.reshape(n, c * k, d), u).reshape(n, c, k)
  else:
    negative = _scores(neg.reshape(n * c, k, d), v.reshape(n * c, d)).reshape(n, c, k)
  per_pair = _pair_loss(_saturate(positive, saturate_at),
                        _saturate(negative, saturate_at), negative_mask)
  return _reduce(per_pair, context_mask.astype(bool), reduction)


def sgns_loss_shared_negatives(centre_vectors: jax.Array, context_vectors: jax.Array,
                               context_mask: jax.Array, negative_vectors: jax.Array, *,
                               reduction: str = "mean") -> jax.Array:
  """``sgns_loss`` when the pairs of one centre share its negatives
  (``negative_vectors`` [n, k, d]): per valid pair ``-log s(u_i . v_ij) -
  sum_k log s(-u_i . n_ik)``, the same value as ``sgns_loss`` with
  ``n_ijk = n_ik``, with k dot products per centre instead of per pair. Each
  pair still meets k negatives drawn from the noise distribution (an unbiased
  gradient), correlated across the pairs of a centre."""
  n, c, d = context_vectors.shape
  if (centre_vectors.shape != (n, d) or context_mask.shape != (n, c)
      or negative_vectors.ndim != 3 or negative_vectors.shape[::2] != (n, d)):
    raise ValueError(
        "sgns_loss_shared_negatives needs centre_vectors [n, d], context_vectors "
        "[n, c, d], context_mask [n, c], negative_vectors [n, k, d], got "
        f"{centre_vectors.shape}, {context_vectors.shape}, {context_mask.shape}, "
        f"{negative_vectors.shape}")
  u, v, neg = _f32(centre_vectors), _f32(context_vectors), _f32(negative_vectors)
  mask = context_mask.astype(bool)
  positive = -jax.nn.log_sigmoid(_scores(v, u))                           # [n, c]
  negative = -jnp.sum(jax.nn.log_sigmoid(-_scores(neg, u)), axis=-1)      # [n]
  pairs = jnp.sum(mask, axis=1)
  total = jnp.sum(jnp.where(mask, positive, 0.0)) + jnp.sum(pairs * negative)
  if reduction == "sum":
    return total
  if reduction == "mean":
    return total / jnp.maximum(jnp.sum(pairs), 1).astype(jnp.float32)
  raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def cbow_loss(centre_vectors: jax.Array, context_vectors: jax.Array,
              context_mask: jax.Array, negative_vectors: jax.Array, *,
              negative_mask: Optional[jax.Array] = None, cbow_mean: bool = True,
              gensim_gradient: bool = False, saturate_at: Optional[float] = None,
              reduction: str = "mean") -> jax.Array:
  """CBOW with negative sampling, a scalar.

  Per centre with at least one valid context: h = the mean (``cbow_mean``,
  gensim's default) or sum of its valid ``context_vectors`` [n, c, d] (input
  vectors); loss ``-log s(h . u_i) - sum_k log s(-h . n_ik)``, u =
  ``centre_vectors`` [n, d] and n = ``negative_vectors`` [n, k, d] (output
  vectors). The mean over those centres (0 when there is none), or their sum.
  ``gensim_gradient``: the same value, with gensim's context gradients (see
  the module docstring) in place of the true ones.
  """
  n, c, d = context_vectors.shape
  k = negative_vectors.shape[1] if negative_vectors.ndim == 3 else -1
  if (centre_vectors.shape != (n, d) or context_mask.shape != (n, c)
      or negative_vectors.shape != (n, k, d)
      or (negative_mask is not None and negative_mask.shape != (n, k))):
    raise ValueError(
        "cbow_loss needs centre_vectors [n, d], context_vectors [n, c, d], "
        "context_mask [n, c], negative_vectors [n, k, d] (negative_mask [n, k]), "
        f"got {centre_vectors.shape}, {context_vectors.shape}, "
        f"{context_mask.shape}, {negative_vectors.shape}"
        f"{'' if negative_mask is None else ', ' + str(negative_mask.shape)}")
  mask = context_mask.astype(bool)
  count = jnp.sum(mask, axis=1, keepdims=True).astype(jnp.float32)
  total = jnp.sum(jnp.where(mask[..., None], _f32(context_vectors), 0.0), axis=1)
  mean = total / jnp.maximum(count, 1.0)
  if not gensim_gradient:
    h = mean if cbow_mean else total
  elif cbow_mean:  # the mean's value, the sum's gradient
    h = total + jax.lax.stop_gradient(mean - total)
  else:  # the sum's value, the mean's gradient
    h = mean + jax.lax.stop_gradient(total - mean)
  u, neg = _f32(centre_vectors), _f32(negative_vectors)
  positive = jnp.sum(h * u, axis=-1)
  negative = _scores(neg, h)
  per_centre = _pair_loss(_saturate(positive, saturate_at),
                          _saturate(negative, saturate_at), negative_mask)
  return _reduce(per_centre, count[:, 0] > 0, reduction)


def draw_negatives(key: jax.Array, noise_probs: jax.Array, shape) -> jax.Array:
  """int32 word ids of ``shape`` drawn from ``noise_probs`` [V] (need not sum
  to 1), by gensim's method: an integer cumulative table (weights rounded to
  multiples of 2**-30 of the total; a word below half of that is never
  drawn) and a binary search of uniform integers. O(size * log V)."""
  p = _f32(noise_probs)
  weights = jnp.round(p / jnp.sum(p) * 2.0 ** 30).astype(jnp.int32)
  table = jnp.cumsum(weights)
  draws = jax.random.randint(key, tuple(shape), 0, table[-1])
  return jnp.searchsorted(table, draws, side="right").astype(jnp.int32)
