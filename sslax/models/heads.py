"""Projection heads: none, linear, or an N-layer MLP with batch norm
(SimCLR, Chen et al. 2020; SimCLR v2 uses three layers)."""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


class ProjectionHead(nn.Module):
  """``kind`` is 'none' (identity), 'linear' (one dense layer) or 'mlp'
  (``num_layers`` dense layers with ReLU between them; ``hidden_bn`` puts BN
  before each ReLU, ``output_bn`` a BN without scale on the output as in
  SimCLR v2; BYOL's projector and predictor have no output BN, MoCo v2's head
  no BN at all)."""
  kind: str = "mlp"
  hidden_dim: int = 512
  output_dim: int = 128
  num_layers: int = 2
  hidden_bn: bool = True
  output_bn: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    if self.kind == "none":
      return x
    if self.kind == "linear":
      return nn.Dense(self.output_dim, dtype=self.dtype)(x).astype(jnp.float32)
    if self.kind != "mlp":
      raise ValueError(f"unknown head kind {self.kind!r}; use 'none', 'linear' or 'mlp'")
    for _ in range(self.num_layers - 1):
      x = nn.Dense(self.hidden_dim, use_bias=not self.hidden_bn, dtype=self.dtype)(x)
      if self.hidden_bn:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         dtype=self.dtype)(x)
      x = nn.relu(x)
    x = nn.Dense(self.output_dim, use_bias=not self.output_bn, dtype=self.dtype)(x)
    if self.output_bn:
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       use_scale=False, dtype=self.dtype)(x)
    return x.astype(jnp.float32)
