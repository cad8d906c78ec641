"""Losses without negatives: BYOL (Grill et al. 2020), Barlow Twins
(Zbontar et al. 2021), SimSiam (Chen & He 2021) and VICReg (Bardes et al.
2022)."""

import functools
from typing import Optional

import jax
import jax.numpy as jnp

from sslax.losses.contrastive import l2_normalize


def _global_sum(x, axis_name: Optional[str]):
  """``x`` summed over the devices of ``axis_name`` (inside ``jax.shard_map``),
  or ``x`` itself without one: the sums behind global-batch statistics."""
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def byol_loss(p: jax.Array, z: jax.Array) -> jax.Array:
  """BYOL's regression loss (Grill et al. 2020, eq. 2): the mean over the batch
  of ``||p/||p|| - z/||z||||^2 = 2 - 2 cos(p, z)``, with ``p`` the online
  prediction and ``z`` the target projection behind a stop-gradient. The method
  adds the loss with the views swapped (the symmetrised loss)."""
  if p.shape != z.shape or p.ndim != 2:
    raise ValueError(f"byol_loss needs two [n, d] arrays of equal shape, got "
                     f"{p.shape} and {z.shape}")
  p = l2_normalize(p.astype(jnp.float32))
  z = jax.lax.stop_gradient(l2_normalize(z.astype(jnp.float32)))
  return jnp.mean(2.0 - 2.0 * jnp.sum(p * z, axis=-1))


def barlow_twins(z1: jax.Array, z2: jax.Array, *, lambd: float,
                 axis_name: Optional[str] = None, eps: float = 1e-5) -> jax.Array:
  """Barlow Twins' redundancy-reduction loss (Zbontar et al. 2021, eq. 1).

  Each embedding dimension is standardised over the batch (mean 0, biased
  variance 1, ``eps`` added to the variance), ``C = z1^T z2 / N`` is the
  cross-correlation matrix, and the loss is ``sum_i (1 - C_ii)^2 + lambd *
  sum_{i != j} C_ij^2``.

  With ``axis_name`` (inside ``jax.shard_map``) the batch statistics and ``C``
  are summed over every device's rows, so the result is the single-device loss
  of the global batch, on every device.
  """
  if z1.shape != z2.shape or z1.ndim != 2:
    raise ValueError(f"barlow_twins needs two [n, d] arrays of equal shape, got "
                     f"{z1.shape} and {z2.shape}")
  total = functools.partial(_global_sum, axis_name=axis_name)

  z1, z2 = z1.astype(jnp.float32), z2.astype(jnp.float32)
  n = total(jnp.asarray(z1.shape[0], jnp.float32))

  def standardise(z):
    mean = total(z.sum(0)) / n
    var = total(jnp.square(z - mean).sum(0)) / n
    return (z - mean) * jax.lax.rsqrt(var + eps)

  c = total(standardise(z1).T @ standardise(z2)) / n           # [d, d]
  on_diag = jnp.sum(jnp.square(1.0 - jnp.diagonal(c)))
  off_diag = jnp.sum(jnp.square(c)) - jnp.sum(jnp.square(jnp.diagonal(c)))
  return on_diag + lambd * off_diag


def simsiam_loss(p: jax.Array, z: jax.Array) -> jax.Array:
  """SimSiam's negative cosine similarity (Chen & He 2021, eq. 1 and
  Algorithm 1): ``D(p, z) = -mean_i cos(p_i, stopgrad(z_i))``, with ``p`` the
  predictor's output for one view and ``z`` the projection of the other view
  behind a stop-gradient. The method symmetrises it: ``D(p1, z2) / 2 +
  D(p2, z1) / 2``. Per-example, so it needs no collective: under a mesh the
  mean of the global batch is the mean of equal shards' means."""
  if p.shape != z.shape or p.ndim != 2:
    raise ValueError(f"simsiam_loss needs two [n, d] arrays of equal shape, got "
                     f"{p.shape} and {z.shape}")
  p = l2_normalize(p.astype(jnp.float32))
  z = jax.lax.stop_gradient(l2_normalize(z.astype(jnp.float32)))
  return -jnp.mean(jnp.sum(p * z, axis=-1))


def vicreg(z1: jax.Array, z2: jax.Array, *, sim_coeff: float = 25.0,
           std_coeff: float = 25.0, cov_coeff: float = 1.0, eps: float = 1e-4,
           axis_name: Optional[str] = None) -> jax.Array:
  """VICReg's variance-invariance-covariance loss (Bardes, Ponce & LeCun 2022,
  eq. 6), as the authors' code computes it (facebookresearch/vicreg,
  ``main_vicreg.py``).

  With ``n`` rows and ``d`` dimensions:

  * invariance ``s = mean_{i,j} (z1_ij - z2_ij)^2`` (mean over batch and dims);
  * variance ``v(Z) = mean_j relu(1 - sqrt(Var(Z_:j) + eps))`` with the
    unbiased variance (``/ (n - 1)``, as ``torch.var``); the loss takes
    ``(v(z1) + v(z2)) / 2`` as the official code does, where the paper's
    eq. 6 writes the sum ``v(z1) + v(z2)``: ``std_coeff = 25`` here (and in
    the code that produced the paper's results) is mu = 12.5 in eq. 6;
  * covariance ``c(Z) = sum_{i != j} C(Z)_ij^2 / d`` with
    ``C(Z) = (Z - mean)^T (Z - mean) / (n - 1)``; the loss takes
    ``c(z1) + c(z2)`` (summed, in the paper and the code).

  ``loss = sim_coeff * s + std_coeff * (v(z1) + v(z2)) / 2 + cov_coeff *
  (c(z1) + c(z2))``.

  With ``axis_name`` (inside ``jax.shard_map``) the sums behind every mean,
  variance and covariance matrix, and the row count, are summed over the
  devices' rows, so the result is the single-device loss of the global batch,
  on every device. (The official code takes the invariance term over each
  GPU's rows and the rest over the gathered batch; with equal shards the
  invariance means agree.)
  """
  if z1.shape != z2.shape or z1.ndim != 2:
    raise ValueError(f"vicreg needs two [n, d] arrays of equal shape, got "
                     f"{z1.shape} and {z2.shape}")
  total = functools.partial(_global_sum, axis_name=axis_name)

  z1, z2 = z1.astype(jnp.float32), z2.astype(jnp.float32)
  d = z1.shape[1]
  n = total(jnp.asarray(z1.shape[0], jnp.float32))

  invariance = total(jnp.sum(jnp.square(z1 - z2))) / (n * d)

  def variance_and_covariance(z):
    centred = z - total(z.sum(0)) / n
    cov = total(centred.T @ centred) / (n - 1.0)                     # [d, d]
    var = jnp.diagonal(cov)
    variance = jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(var + eps)))
    off_diagonal = jnp.where(jnp.eye(d, dtype=bool), 0.0, cov)
    covariance = jnp.sum(jnp.square(off_diagonal)) / d
    return variance, covariance

  v1, c1 = variance_and_covariance(z1)
  v2, c2 = variance_and_covariance(z2)
  return (sim_coeff * invariance + std_coeff * (v1 + v2) / 2.0
          + cov_coeff * (c1 + c2))
