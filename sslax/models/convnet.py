"""A small VGG-style ConvNet for 28x28 and 32x32 inputs."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class ConvNet(nn.Module):
  """Stages of (3x3 conv, BN, ReLU) x 2, the first of each stage after the
  first with stride 2, then global average pooling: [batch, widths[-1]]."""
  widths: Sequence[int] = (32, 64, 128)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    for i, width in enumerate(self.widths):
      for j in range(2):
        strides = 2 if i > 0 and j == 0 else 1
        x = nn.Conv(width, (3, 3), (strides, strides), padding=1,
                    use_bias=False, dtype=self.dtype)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         dtype=self.dtype)(x)
        x = nn.relu(x)
    return jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
