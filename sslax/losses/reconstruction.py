"""Reconstruction losses.

The emphasised squared error of denoising autoencoders (Vincent et al. 2010,
sec. 4.3). A pure function of arrays returning a scalar, computed in float32
whatever the input dtype.
"""

import jax
import jax.numpy as jnp


def weighted_reconstruction_loss(recon: jax.Array, clean: jax.Array,
                                 corrupted_mask: jax.Array, alpha: float,
                                 beta: float) -> jax.Array:
  """Emphasised squared error of denoising autoencoders (Vincent et al. 2010,
  sec. 4.3): for examples along axis 0 of recon, clean, mask [N, ...],
  ``mean_n [alpha sum_{j: m_nj=1} (r_nj - x_nj)^2 + beta sum_{j: m_nj=0}
  (r_nj - x_nj)^2]``, sums over all non-leading axes, computed in float32."""
  if recon.shape != clean.shape or corrupted_mask.shape != clean.shape:
    raise ValueError(f"weighted_reconstruction_loss needs recon, clean and mask "
                     f"of one shape [N, ...], got {recon.shape}, {clean.shape}, "
                     f"{corrupted_mask.shape}")
  sq = jnp.square(recon.astype(jnp.float32) - clean.astype(jnp.float32))
  m = corrupted_mask.astype(jnp.float32)
  per = alpha * m * sq + beta * (1.0 - m) * sq
  return jnp.mean(jnp.sum(per.reshape(per.shape[0], -1), axis=1))
