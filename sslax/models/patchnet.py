"""A convolutional net that encodes every patch of an overlapping grid at once.

With no padding, an output cell of a stack of convolutions sees exactly its
receptive field; stacking layers whose receptive field is ``patch`` pixels and
whose total stride is ``stride`` therefore encodes each ``patch x patch``
window (every ``stride`` pixels) independently of the rest of the image, while
overlapping windows share their computation. Normalisation is layer norm over
channels at each position, which keeps the cells independent too. Used by
image CPC (van den Oord et al. 2018; Henaff et al. 2020).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from sslax.models.audio import receptive_field


def patch_geometry(kernels: Sequence[int], strides: Sequence[int]):
  """``(patch, stride)``: the window each output cell encodes and the step
  between neighbouring windows."""
  jump = 1
  for s in strides:
    jump *= s
  return receptive_field(kernels, strides), jump


class PatchConvNet(nn.Module):
  """``[B, H, W, C] -> [B, rows, cols, widths[-1]]``: (conv, layer norm, ReLU)
  per layer, 'VALID' padding; cell (i, j) encodes the patch at
  ``(i * stride, j * stride)`` (see ``patch_geometry``)."""
  widths: Sequence[int] = (32, 64, 128, 128)
  kernels: Sequence[int] = (2, 3, 2, 1)
  strides: Sequence[int] = (2, 1, 2, 1)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    del train  # no batch statistics
    x = x.astype(self.dtype)
    for width, kernel, stride in zip(self.widths, self.kernels, self.strides):
      x = nn.Conv(width, (kernel, kernel), (stride, stride), padding="VALID",
                  dtype=self.dtype)(x)
      x = nn.relu(nn.LayerNorm(dtype=self.dtype)(x))
    return x.astype(jnp.float32)
