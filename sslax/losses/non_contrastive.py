"""Losses without negatives: BYOL (Grill et al. 2020) and Barlow Twins
(Zbontar et al. 2021)."""

from typing import Optional

import jax
import jax.numpy as jnp

from sslax.losses.contrastive import l2_normalize


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
  def total(x):
    return x if axis_name is None else jax.lax.psum(x, axis_name)

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
