"""A small VGG-style ConvNet for 28x28 and 32x32 inputs."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class ConvNet(nn.Module):
  """Stages of (3x3 conv, BN, ReLU) x 2, then global average pooling
  ([batch, widths[-1]]) or, with ``pool='flatten'``, the flattened last map. The first convolution of every stage after the first
  has stride 2; that of the first stage has stride ``stem_stride``."""
  widths: Sequence[int] = (32, 64, 128)
  stem_stride: int = 1
  pool: str = "avg"  # "avg": global average pool; "flatten": keep the spatial map
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    for i, width in enumerate(self.widths):
      for j in range(2):
        strides = (2 if i > 0 else self.stem_stride) if j == 0 else 1
        x = nn.Conv(width, (3, 3), (strides, strides), padding=1,
                    use_bias=False, dtype=self.dtype)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         dtype=self.dtype)(x)
        x = nn.relu(x)
    if self.pool == "flatten":
      return x.reshape(x.shape[0], -1).astype(jnp.float32)
    if self.pool != "avg":
      raise ValueError(f"unknown ConvNet pool {self.pool!r}; use 'avg' or 'flatten'")
    return jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
