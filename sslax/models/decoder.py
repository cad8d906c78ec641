"""A convolutional decoder from an encoder's features back to an image, and the
encoder + decoder pair of the reconstruction pretext tasks (denoising
autoencoders, Vincent et al. 2010; context encoders, Pathak et al. 2016).

The decoder upsamples by resize-convolution (resize, then a 3x3 convolution;
Odena et al. 2016, which avoids the checkerboard of strided transposed
convolutions) through sizes that halve back from the output size: 4x4 ->
7x7 -> 14x14 -> 28x28 for Fashion-MNIST, 4 -> 8 -> 16 -> 32 for CIFAR-10,
7 -> 14 -> ... -> 224 for ImageNet.
"""

import math
from typing import Any, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from sslax.errors import UserError
from sslax.models import compute_dtype, make_encoder


def upsample_sizes(out_hw: Sequence[int], stages: int):
  """The (h, w) after each of ``stages`` upsampling stages ending at
  ``out_hw``: ``ceil(out / 2^k)`` for k = stages - 1 .. 0."""
  return [tuple(math.ceil(s / 2 ** k) for s in out_hw) for k in range(stages - 1, -1, -1)]


def start_size(out_hw: Sequence[int], stages: int):
  """The map a vector input is projected to: ``ceil(out / 2^stages)``."""
  return tuple(math.ceil(s / 2 ** stages) for s in out_hw)


def convnet_map_shape(widths: Sequence[int], stem_stride: int, image_hw: Sequence[int]):
  """(h, w, c) of ``sslax.models.ConvNet``'s last feature map (3x3 convolutions
  with padding 1: a stride-2 stage maps s to ceil(s / 2))."""
  hw = [math.ceil(s / stem_stride) for s in image_hw]
  for _ in widths[1:]:
    hw = [math.ceil(s / 2) for s in hw]
  return (hw[0], hw[1], int(widths[-1]))


class ConvDecoder(nn.Module):
  """Features -> image [B, H, W, C] (float32, no output nonlinearity).

  Input: a feature map [B, h, w, c] or a vector [B, d]; a vector is first
  projected by a dense layer to a ``start_size`` map of ``widths[0]`` channels.
  Then, for each width, resize (bilinear) to the next of ``upsample_sizes``,
  3x3 convolution, batch norm, ReLU; a final 3x3 convolution gives the
  ``out_shape[-1]`` channels."""
  out_shape: Tuple[int, int, int]  # (H, W, C)
  widths: Sequence[int] = (64, 32, 16)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, train: bool = True):
    h, w, c = self.out_shape
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                dtype=self.dtype)
    z = z.astype(self.dtype)
    if z.ndim == 2:
      sh, sw = start_size((h, w), len(self.widths))
      z = nn.Dense(sh * sw * self.widths[0], use_bias=False, dtype=self.dtype,
                   name="project")(z)
      z = nn.relu(norm()(z.reshape(z.shape[0], sh, sw, self.widths[0])))
    elif z.ndim != 4:
      raise ValueError(f"ConvDecoder needs features [B, d] or [B, h, w, c], got "
                       f"shape {z.shape}")
    for width, (th, tw) in zip(self.widths, upsample_sizes((h, w), len(self.widths))):
      z = jax.image.resize(z, (z.shape[0], th, tw, z.shape[-1]), "bilinear")
      z = nn.Conv(width, (3, 3), padding=1, use_bias=False, dtype=self.dtype)(z)
      z = nn.relu(norm()(z))
    return nn.Conv(c, (3, 3), padding=1, dtype=self.dtype,
                   name="to_image")(z).astype(jnp.float32)


class Autoencoder(nn.Module):
  """Returns ``(representation, reconstruction)``: the encoder's output, and
  the decoder's image from it. With ``map_shape`` (h, w, c) the encoder's flat
  output is read as that feature map (a ConvNet with ``pool='flatten'``);
  without, the decoder starts from the vector. The encoder is the submodule
  ``encoder``, so ``common.submodule_variables`` finds its variables."""
  encoder: nn.Module
  decoder: nn.Module
  map_shape: Optional[Tuple[int, int, int]] = None

  def __call__(self, x, train: bool = True):
    h = self.encoder(x, train=train)
    z = h if self.map_shape is None else h.reshape(h.shape[0], *self.map_shape)
    return h, self.decoder(z, train=train)


def make_autoencoder(model_config, decoder_config, image_shape, dtype_name="float32"):
  """``(Autoencoder, encoder)`` for images of ``image_shape`` (H, W, C): the
  encoder of ``config.model`` (exactly what ``make_encoder`` builds, so the
  representation is the standard one) and a ``ConvDecoder`` of
  ``config.decoder.widths``. A ConvNet with ``pool='flatten'`` hands the
  decoder its last feature map; any other encoder its vector."""
  encoder = make_encoder(model_config, dtype_name)
  widths = tuple(int(w) for w in decoder_config.widths)
  if not widths or min(widths) < 1:
    raise UserError(f"config.decoder.widths must be positive channel counts, one per "
                    f"upsampling stage, got {tuple(decoder_config.widths)}")
  map_shape = None
  if model_config.encoder == "convnet" and model_config.get("pool", "avg") == "flatten":
    map_shape = convnet_map_shape(tuple(model_config.get("widths", (32, 64, 128))),
                                  int(model_config.get("stem_stride", 1)), image_shape[:2])
  decoder = ConvDecoder(out_shape=tuple(int(s) for s in image_shape), widths=widths,
                        dtype=compute_dtype(dtype_name))
  return Autoencoder(encoder=encoder, decoder=decoder, map_shape=map_shape), encoder
