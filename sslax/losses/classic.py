"""Classic metric-learning and contrastive losses.

Pair and triplet losses (Chopra et al. 2005, Hadsell et al. 2006, Schroff et al.
2015), lifted structured loss (Song et al. 2016), multi-class N-pair loss (Sohn
2016), noise-contrastive estimation (Gutmann & Hyvarinen 2010), InfoNCE (van den
Oord et al. 2018) and the soft nearest neighbour loss (Frosst et al. 2019).

Every function is a pure function of arrays that returns a scalar mean loss.
The maths is done in float32 whatever the input dtype; matrix products use
``Precision.HIGHEST`` so that distances and scores stay float32-accurate on
accelerators whose default matmul precision is lower.
"""

import jax
import jax.numpy as jnp

_LARGE_NEGATIVE = -1e9
_HIGHEST = jax.lax.Precision.HIGHEST


def _f32(x: jax.Array) -> jax.Array:
  return jnp.asarray(x).astype(jnp.float32)


def _safe_sqrt(sq: jax.Array) -> jax.Array:
  """sqrt with a zero (not infinite) gradient at 0."""
  positive = sq > 0.0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _pairwise_sq_dist(x: jax.Array) -> jax.Array:
  """[n, n] squared Euclidean distances, ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j,
  clamped at 0 and with an exact zero (and zero gradient) on the diagonal."""
  sq = jnp.sum(jnp.square(x), axis=-1)
  gram = jnp.matmul(x, x.T, precision=_HIGHEST)
  d = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
  return jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, d)


def _check_embeddings_labels(name: str, x: jax.Array, labels: jax.Array):
  if x.ndim != 2 or labels.shape != (x.shape[0],):
    raise ValueError(f"{name} needs embeddings [n, d] and labels [n], got "
                     f"{x.shape} and {labels.shape}")


def contrastive_pair_loss(x1: jax.Array, x2: jax.Array, same: jax.Array, *,
                          margin: float) -> jax.Array:
  """Contrastive loss over pairs (Chopra et al. 2005; Hadsell et al. 2006, eq. 4).

  With ``d_i = ||x1[i] - x2[i]||`` and ``same[i]`` in {0, 1} (1: similar pair):
  ``mean_i same_i d_i^2 / 2 + (1 - same_i) max(0, margin - d_i)^2 / 2``.
  The distance uses a safe square root, so the gradient is finite (zero through
  ``d``) where ``x1[i] == x2[i]``.
  """
  if x1.shape != x2.shape or x1.ndim != 2 or same.shape != (x1.shape[0],):
    raise ValueError(f"contrastive_pair_loss needs x1, x2 [n, d] and same [n], "
                     f"got {x1.shape}, {x2.shape}, {same.shape}")
  same = _f32(same)
  sq = jnp.sum(jnp.square(_f32(x1) - _f32(x2)), axis=-1)
  d = _safe_sqrt(sq)
  per_pair = same * sq + (1.0 - same) * jnp.square(jnp.maximum(margin - d, 0.0))
  return 0.5 * jnp.mean(per_pair)


def triplet_loss(anchor: jax.Array, positive: jax.Array, negative: jax.Array, *,
                 margin: float) -> jax.Array:
  """Triplet loss of FaceNet (Schroff et al. 2015, eq. 1/3) on given triplets:
  ``mean_i max(0, ||a_i - p_i||^2 - ||a_i - n_i||^2 + margin)`` with squared
  Euclidean distances (the paper's embeddings are L2-normalised; normalise
  before calling if you want that)."""
  if not (anchor.shape == positive.shape == negative.shape) or anchor.ndim != 2:
    raise ValueError(f"triplet_loss needs three [n, d] arrays of equal shape, got "
                     f"{anchor.shape}, {positive.shape}, {negative.shape}")
  a, p, n = _f32(anchor), _f32(positive), _f32(negative)
  d_ap = jnp.sum(jnp.square(a - p), axis=-1)
  d_an = jnp.sum(jnp.square(a - n), axis=-1)
  return jnp.mean(jnp.maximum(d_ap - d_an + margin, 0.0))


def semi_hard_triplet_loss(embeddings: jax.Array, labels: jax.Array, *,
                           margin: float) -> jax.Array:
  """FaceNet's triplet loss with online semi-hard negative mining in the batch
  (Schroff et al. 2015, sec. 3.2), on squared Euclidean distances ``d``.

  Every anchor-positive pair (i, j), i != j, ``labels[i] == labels[j]``, is
  used. Its negative k (``labels[k] != labels[i]``) is the semi-hard one: the
  smallest ``d(i, k)`` that is strictly greater than ``d(i, j)``. Fallback: if
  no negative is farther than the positive, the negative with the largest
  ``d(i, k)`` (the easiest one) is used. The loss is the mean over the pairs of
  ``max(0, d(i, j) - d(i, k) + margin)``. Pairs whose anchor has no negative in
  the batch are left out of the mean; with no usable pair the loss is 0.

  Vectorised without an [n, n, n] tensor: each anchor's negative distances are
  sorted once, and the semi-hard negative of (i, j) is found by a binary search
  of ``d(i, j)`` in anchor i's sorted row.
  """
  _check_embeddings_labels("semi_hard_triplet_loss", embeddings, labels)
  n = embeddings.shape[0]
  d = _pairwise_sq_dist(_f32(embeddings))
  same = labels[:, None] == labels[None, :]
  pos_mask = same & ~jnp.eye(n, dtype=bool)
  neg_mask = ~same
  num_neg = jnp.sum(neg_mask, axis=1)                                  # [n]
  # Anchor i's negative distances in increasing order, non-negatives last.
  neg_sorted = jnp.sort(jnp.where(neg_mask, d, jnp.inf), axis=1)      # [n, n]
  # First position in row i holding a distance > d(i, j).
  first_above = jax.vmap(
      lambda row, q: jnp.searchsorted(row, q, side="right"))(neg_sorted, d)
  largest = jnp.maximum(num_neg - 1, 0)[:, None]                       # [n, 1]
  pick = jnp.where(first_above < num_neg[:, None], first_above, largest)
  pick = jnp.minimum(pick, n - 1)
  d_neg = jnp.take_along_axis(neg_sorted, pick, axis=1)                # [n, n]
  valid = pos_mask & (num_neg > 0)[:, None]
  d_neg = jnp.where(valid, d_neg, 0.0)
  hinge = jnp.where(valid, jnp.maximum(d - d_neg + margin, 0.0), 0.0)
  return jnp.sum(hinge) / jnp.maximum(jnp.sum(valid), 1)


def lifted_structured_loss(embeddings: jax.Array, labels: jax.Array, *,
                           margin: float) -> jax.Array:
  """Lifted structured embedding loss (Song et al. 2016, eq. 4).

  ``D`` is the Euclidean distance matrix and ``N`` the negatives of a positive
  pair (the examples whose label differs from theirs). For each positive pair
  (i, j), i < j: ``J_ij = log(sum_{k in N} exp(margin - D_ik) + sum_{l in N}
  exp(margin - D_jl)) + D_ij``, computed with logsumexp, and the loss is
  ``1 / (2 |P|) sum_{(i,j) in P} max(0, J_ij)^2``. A pair with no negative in
  the batch contributes 0; with no positive pair the loss is 0.
  """
  _check_embeddings_labels("lifted_structured_loss", embeddings, labels)
  n = embeddings.shape[0]
  dist = _safe_sqrt(_pairwise_sq_dist(_f32(embeddings)))
  same = labels[:, None] == labels[None, :]
  # log sum_{k: y_k != y_i} exp(margin - D_ik), one value per example.
  neg_logits = jnp.where(same, _LARGE_NEGATIVE, margin - dist)
  neg_lse = jax.nn.logsumexp(neg_logits, axis=1)                       # [n]
  has_neg = jnp.any(~same, axis=1)
  j = jnp.logaddexp(neg_lse[:, None], neg_lse[None, :]) + dist         # [n, n]
  upper = jnp.triu(jnp.ones((n, n), dtype=bool), k=1)
  pos = same & upper
  valid = pos & has_neg[:, None]
  per_pair = jnp.where(valid, jnp.square(jnp.maximum(j, 0.0)), 0.0)
  return jnp.sum(per_pair) / (2.0 * jnp.maximum(jnp.sum(pos), 1))


def n_pair_loss(anchors: jax.Array, positives: jax.Array, *,
                l2_reg: float = 0.0) -> jax.Array:
  """Multi-class N-pair loss (Sohn 2016, eq. 6), N pairs from N distinct classes.

  ``mean_i log(1 + sum_{j != i} exp(f_i . f+_j - f_i . f+_i))``, i.e. softmax
  cross entropy of the logits ``anchors @ positives^T`` with the diagonal as
  target, plus the embedding L2 regulariser ``l2_reg * (1/N) sum_i (||f_i||^2 +
  ||f+_i||^2)``. (TensorFlow's ``npairs_loss`` uses a quarter of this
  regulariser: ``0.25 * reg_lambda`` times the same sum.)
  """
  if anchors.shape != positives.shape or anchors.ndim != 2:
    raise ValueError(f"n_pair_loss needs two [n, d] arrays of equal shape, got "
                     f"{anchors.shape} and {positives.shape}")
  a, p = _f32(anchors), _f32(positives)
  logits = jnp.matmul(a, p.T, precision=_HIGHEST)
  xent = -jnp.mean(jnp.diagonal(jax.nn.log_softmax(logits, axis=-1)))
  reg = jnp.mean(jnp.sum(jnp.square(a), axis=-1) + jnp.sum(jnp.square(p), axis=-1))
  return xent + l2_reg * reg


def nce_loss(log_model_data: jax.Array, log_model_noise: jax.Array,
             log_noise_data: jax.Array, log_noise_noise: jax.Array, *,
             num_noise: int) -> jax.Array:
  """Noise-contrastive estimation (Gutmann & Hyvarinen 2010, eq. 8 with nu = K).

  Inputs are the model's unnormalised log density at the N data points [N] and
  at K noise samples per data point [N, K], and the noise distribution's log
  density at the same points. With ``G(u) = log p_model(u) - log(K p_noise(u))``
  the loss is ``mean_i -[log sigmoid(G(x_i)) + sum_k log(1 - sigmoid(G(y_ik)))]``
  (computed as softplus terms). ``K`` must equal ``num_noise``.
  """
  n = log_model_data.shape
  if (log_model_data.ndim != 1 or log_noise_data.shape != n
      or log_model_noise.ndim != 2 or log_model_noise.shape[0] != n[0]
      or log_noise_noise.shape != log_model_noise.shape):
    raise ValueError(f"nce_loss needs data log densities [N] and noise log "
                     f"densities [N, K], got {log_model_data.shape}, "
                     f"{log_model_noise.shape}, {log_noise_data.shape}, "
                     f"{log_noise_noise.shape}")
  if log_model_noise.shape[1] != num_noise:
    raise ValueError(f"nce_loss: noise arrays hold K={log_model_noise.shape[1]} "
                     f"samples per data point, but num_noise={num_noise}")
  log_k = jnp.log(jnp.float32(num_noise))
  g_data = _f32(log_model_data) - _f32(log_noise_data) - log_k          # [N]
  g_noise = _f32(log_model_noise) - _f32(log_noise_noise) - log_k       # [N, K]
  # -log sigmoid(g) = softplus(-g);  -log(1 - sigmoid(g)) = softplus(g).
  per_example = jax.nn.softplus(-g_data) + jnp.sum(jax.nn.softplus(g_noise), axis=1)
  return jnp.mean(per_example)


def infonce(query: jax.Array, positive: jax.Array, negatives: jax.Array, *,
            temperature: float = 1.0) -> jax.Array:
  """InfoNCE with explicit negatives (van den Oord et al. 2018, eq. 4).

  Scores are dot products divided by ``temperature`` (normalise the inputs for
  cosine scores). ``query`` and ``positive`` are [N, D]; ``negatives`` is
  [K, D] (shared by all queries) or [N, K, D] (per query). The loss is
  ``mean_i -log(exp(s(q_i, p_i)) / (exp(s(q_i, p_i)) + sum_k exp(s(q_i, n_k))))``.
  """
  if (query.shape != positive.shape or query.ndim != 2
      or negatives.ndim not in (2, 3) or negatives.shape[-1] != query.shape[1]
      or (negatives.ndim == 3 and negatives.shape[0] != query.shape[0])):
    raise ValueError(f"infonce needs query, positive [N, D] and negatives [K, D] "
                     f"or [N, K, D]; got {query.shape}, {positive.shape}, "
                     f"{negatives.shape}")
  q, p, neg = _f32(query), _f32(positive), _f32(negatives)
  pos_score = jnp.sum(q * p, axis=-1, keepdims=True)                    # [N, 1]
  if neg.ndim == 2:
    neg_score = jnp.matmul(q, neg.T, precision=_HIGHEST)                # [N, K]
  else:
    neg_score = jnp.einsum("nd,nkd->nk", q, neg, precision=_HIGHEST)
  logits = jnp.concatenate([pos_score, neg_score], axis=1) / temperature
  return -jnp.mean(jax.nn.log_softmax(logits, axis=-1)[:, 0])


def soft_nearest_neighbour_loss(x: jax.Array, labels: jax.Array, *,
                                temperature: float) -> jax.Array:
  """Soft nearest neighbour loss (Frosst et al. 2019, eq. 1).

  ``-(1/b) sum_i log(sum_{j != i, y_j = y_i} exp(-||x_i - x_j||^2 / T) /
  sum_{k != i} exp(-||x_i - x_k||^2 / T))``, computed with logsumexp. An example
  with no same-class partner in the batch has an empty numerator (log 0); it is
  left out, and ``b`` counts only the examples that have a partner. With no
  such example the loss is 0.
  """
  _check_embeddings_labels("soft_nearest_neighbour_loss", x, labels)
  n = x.shape[0]
  logits = -_pairwise_sq_dist(_f32(x)) / temperature
  not_self = ~jnp.eye(n, dtype=bool)
  partner = (labels[:, None] == labels[None, :]) & not_self
  log_num = jax.nn.logsumexp(jnp.where(partner, logits, _LARGE_NEGATIVE), axis=1)
  log_den = jax.nn.logsumexp(jnp.where(not_self, logits, _LARGE_NEGATIVE), axis=1)
  has_partner = jnp.any(partner, axis=1)
  per_example = jnp.where(has_partner, log_den - log_num, 0.0)
  return jnp.sum(per_example) / jnp.maximum(jnp.sum(has_partner), 1)
