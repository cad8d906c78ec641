"""Pure loss functions of arrays: no config, no globals.

Every function takes embeddings as arrays and returns a scalar loss. Functions
with an ``axis_name`` argument are meant to be called inside ``jax.shard_map``
on each device's rows of the global batch; they then use the global batch
exactly as the single-device call would.
"""

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
