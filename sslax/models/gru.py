"""A GRU (Cho et al. 2014) scanned over time with ``flax.linen.scan``: CPC's
autoregressive context network g_ar (van den Oord et al. 2018)."""

import flax.linen as nn
import jax.numpy as jnp


class ScannedGRU(nn.Module):
  """``[batch, time, in] -> [batch, time, features]``: the hidden state after
  each step, starting from zeros. One ``nn.GRUCell`` whose parameters are
  shared over time (broadcast through the scan)."""
  features: int

  @nn.compact
  def __call__(self, x):
    scan = nn.scan(nn.GRUCell, variable_broadcast="params",
                   split_rngs={"params": False}, in_axes=1, out_axes=1)
    cell = scan(features=self.features, name="cell")
    carry = jnp.zeros((x.shape[0], self.features), jnp.float32)
    _, outputs = cell(carry, x.astype(jnp.float32))
    return outputs
