"""ResNet-18/34/50 (He et al. 2016) with an ImageNet or a CIFAR stem."""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


def _conv_and_norm(dtype, train):
  """Bias-free convolution and batch norm (momentum 0.9) as ResNet uses them."""
  conv = functools.partial(nn.Conv, use_bias=False, dtype=dtype)
  norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                           momentum=0.9, epsilon=1e-5, dtype=dtype)
  return conv, norm


class BasicBlock(nn.Module):
  """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""
  filters: int
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv, norm = _conv_and_norm(self.dtype, train)
    residual = x
    y = conv(self.filters, (3, 3), (self.strides, self.strides), padding=1)(x)
    y = nn.relu(norm()(y))
    y = conv(self.filters, (3, 3), padding=1)(y)
    y = norm(scale_init=nn.initializers.zeros)(y)
    if residual.shape != y.shape:
      residual = conv(self.filters, (1, 1), (self.strides, self.strides))(x)
      residual = norm()(residual)
    return nn.relu(y + residual)


class BottleneckBlock(nn.Module):
  """1x1, 3x3, 1x1 convolutions with a residual connection (ResNet-50)."""
  filters: int
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv, norm = _conv_and_norm(self.dtype, train)
    residual = x
    y = nn.relu(norm()(conv(self.filters, (1, 1))(x)))
    y = conv(self.filters, (3, 3), (self.strides, self.strides), padding=1)(y)
    y = nn.relu(norm()(y))
    y = conv(self.filters * 4, (1, 1))(y)
    y = norm(scale_init=nn.initializers.zeros)(y)
    if residual.shape != y.shape:
      residual = conv(self.filters * 4, (1, 1), (self.strides, self.strides))(x)
      residual = norm()(residual)
    return nn.relu(y + residual)


class ResNet(nn.Module):
  """ResNet trunk ending in global average pooling; returns [batch, features].

  ``stem="imagenet"`` is the 7x7/2 convolution plus 3x3/2 max pool;
  ``stem="cifar"`` is a single 3x3/1 convolution without pooling, as SimCLR
  uses for 32x32 inputs.
  """
  stage_sizes: Sequence[int]
  block: Any
  stem: str = "imagenet"
  width: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    _, norm = _conv_and_norm(self.dtype, train)
    if self.stem == "imagenet":
      x = nn.Conv(self.width, (7, 7), (2, 2), padding=3, use_bias=False,
                  dtype=self.dtype)(x)
      x = nn.relu(norm()(x))
      x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
    elif self.stem == "cifar":
      x = nn.Conv(self.width, (3, 3), padding=1, use_bias=False,
                  dtype=self.dtype)(x)
      x = nn.relu(norm()(x))
    else:
      raise ValueError(f"unknown ResNet stem {self.stem!r}; use 'imagenet' or 'cifar'")
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = self.block(self.width * 2**i, strides, dtype=self.dtype)(x, train)
    return jnp.mean(x, axis=(1, 2)).astype(jnp.float32)


def resnet18(**kwargs):
  return ResNet(stage_sizes=(2, 2, 2, 2), block=BasicBlock, **kwargs)


def resnet34(**kwargs):
  return ResNet(stage_sizes=(3, 4, 6, 3), block=BasicBlock, **kwargs)


def resnet50(**kwargs):
  return ResNet(stage_sizes=(3, 4, 6, 3), block=BottleneckBlock, **kwargs)
