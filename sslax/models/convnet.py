"""A small VGG-style ConvNet for 28x28 and 32x32 inputs."""

import dataclasses
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp


class ConvNet(nn.Module):
  """Stages of (3x3 conv, BN, ReLU) x 2, then global average pooling
  ([batch, widths[-1]]) or, with ``pool='flatten'``, the flattened last map
  (``map_shape``), or with ``pool='map'`` that map itself ([batch, h, w, c]:
  a dense encoder). The first convolution of every stage after the first has
  stride 2; that of the first stage has stride ``stem_stride``, which has no
  default here: configs set it (``config.model.stem_stride``, 2 in
  ``sslax.config_base``)."""
  widths: Sequence[int] = (32, 64, 128)
  stem_stride: int = dataclasses.field(kw_only=True)
  pool: str = "avg"  # "avg": global average pool; "flatten" / "map": keep the spatial map
  dtype: Any = jnp.float32

  def stage_strides(self) -> Tuple[int, ...]:
    """The stride of each stage's first convolution."""
    return (int(self.stem_stride),) + (2,) * (len(self.widths) - 1)

  def map_shape(self, image_hw: Sequence[int]) -> Tuple[int, int, int]:
    """(h, w, c) of the last feature map on images of ``image_hw`` (what
    ``pool='flatten'`` flattens): 3x3 convolutions with padding 1, so a stage
    of stride s maps a side n to ceil(n / s)."""
    hw = [int(n) for n in image_hw]
    for s in self.stage_strides():
      hw = [-(-n // s) for n in hw]
    return (hw[0], hw[1], int(self.widths[-1]))

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    for width, stride in zip(self.widths, self.stage_strides()):
      for j in range(2):
        strides = stride if j == 0 else 1
        x = nn.Conv(width, (3, 3), (strides, strides), padding=1,
                    use_bias=False, dtype=self.dtype)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         dtype=self.dtype)(x)
        x = nn.relu(x)
    if self.pool == "flatten":
      return x.reshape(x.shape[0], -1).astype(jnp.float32)
    if self.pool == "map":
      return x.astype(jnp.float32)
    if self.pool != "avg":
      raise ValueError(f"unknown ConvNet pool {self.pool!r}; use 'avg', 'flatten' or 'map'")
    return jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
