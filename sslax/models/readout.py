"""Representations read out of an encoder that emits a grid or a sequence of
codes: the code grid average-pooled (image CPC, Henaff et al. 2020) and the
mean context of a GRU over the code sequence (speech CPC, van den Oord et al.
2018). Submodule names match the training networks that own these parts, so
their variables are the training variables' subtrees."""

import flax.linen as nn
import jax.numpy as jnp

from sslax.models.gru import ScannedGRU


def pool_codes(z, grid: int):
  """[B, R, C, D] average pooled to [B, grid, grid, D], flattened."""
  b, r, c, d = z.shape
  z = z.reshape(b, grid, r // grid, grid, c // grid, d).mean(axis=(2, 4))
  return z.reshape(b, -1)


class PooledCodeGrid(nn.Module):
  """``encoder`` (images -> [B, R, C, D] codes), pooled to ``pool_grid`` x
  ``pool_grid`` and flattened."""
  encoder: nn.Module
  pool_grid: int = 1

  def __call__(self, x, train: bool = False):
    return pool_codes(self.encoder(x, train=train), self.pool_grid)


class MeanContext(nn.Module):
  """``encoder`` (waveforms -> [B, T, D] codes), then a scanned GRU named
  ``autoregressor``; the context averaged over time."""
  encoder: nn.Module
  context_dim: int

  @nn.compact
  def __call__(self, x, train: bool = False):
    codes = self.encoder(x, train=train)
    return jnp.mean(ScannedGRU(self.context_dim, name="autoregressor")(codes), axis=1)
