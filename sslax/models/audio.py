"""A strided 1-D convolutional encoder of raw waveforms: CPC's g_enc for speech
(van den Oord et al. 2018, section 3.1: strides 5, 4, 2, 2, 2, filter sizes
10, 8, 4, 4, 4, one code per 160 samples, 10 ms at 16 kHz)."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
  """Samples of input that one output code sees."""
  field, jump = 1, 1
  for kernel, stride in zip(kernels, strides):
    field += (kernel - 1) * jump
    jump *= stride
  return field


def num_codes(length: int, kernels: Sequence[int], strides: Sequence[int]) -> int:
  """Codes the encoder makes from ``length`` samples ('VALID' convolutions)."""
  for kernel, stride in zip(kernels, strides):
    length = (length - kernel) // stride + 1
  return length


class WaveformEncoder(nn.Module):
  """``[batch, samples] -> [batch, codes, width]``: (conv, ReLU) per layer, as
  in the paper; ``layer_norm`` adds layer norm over channels before each ReLU
  (with it, CPC's scores start large and training fell to the chance-level
  loss on our speech corpus within a few steps, so it is off by default)."""
  width: int = 512
  kernels: Sequence[int] = (10, 8, 4, 4, 4)
  strides: Sequence[int] = (5, 4, 2, 2, 2)
  layer_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    del train  # no batch statistics
    x = x.astype(self.dtype)[..., None]
    for kernel, stride in zip(self.kernels, self.strides):
      x = nn.Conv(self.width, (kernel,), (stride,), padding="VALID", dtype=self.dtype)(x)
      if self.layer_norm:
        x = nn.LayerNorm(dtype=self.dtype)(x)
      x = nn.relu(x)
    return x.astype(jnp.float32)
