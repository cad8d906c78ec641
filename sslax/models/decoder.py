"""The convolutional decoder of the pixel-predicting pretext tasks, and the
encoder + decoder pair that carries it.

One ``ConvDecoder`` serves all of them, configured by two choices:

* ``upsample='resize'``: resize-convolution (a bilinear resize, then a 3x3
  convolution; Odena et al. 2016, which avoids the checkerboard of strided
  transposed convolutions) through sizes that halve back from the output size:
  4x4 -> 7x7 -> 14x14 -> 28x28 for Fashion-MNIST, 4 -> 8 -> 16 -> 32 for
  CIFAR-10, 7 -> 14 -> ... -> 224 for ImageNet. Denoising autoencoders
  (Vincent et al. 2010) and context encoders (Pathak et al. 2016).
* ``upsample='transpose'``: stride-2 4x4 transposed convolutions, each of which
  doubles the map (colourisation, Zhang et al. 2016; split-brain autoencoders).

and ``output='image'`` (a 3x3 convolution to the picture's channels) or
``output='pixels'`` (a 1x1 convolution: independent per-pixel predictions,
such as the logits of colour bins).

The geometry of the ConvNet's map that the decoder starts from is the
ConvNet's own (``ConvNet.map_shape``).
"""

import math
from typing import Any, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from sslax.models import compute_dtype, make_encoder
from sslax.models.convnet import ConvNet

UPSAMPLING = ("resize", "transpose")
OUTPUTS = ("image", "pixels")


def upsample_sizes(out_hw: Sequence[int], stages: int):
  """The (h, w) after each of ``stages`` upsampling stages ending at
  ``out_hw``: ``ceil(out / 2^k)`` for k = stages - 1 .. 0."""
  return [tuple(math.ceil(s / 2 ** k) for s in out_hw) for k in range(stages - 1, -1, -1)]


def start_size(out_hw: Sequence[int], stages: int):
  """The map a vector input is projected to: ``ceil(out / 2^stages)``."""
  return tuple(math.ceil(s / 2 ** stages) for s in out_hw)


def encoder_map_shape(encoder: nn.Module,
                      image_hw: Sequence[int]) -> Optional[Tuple[int, int, int]]:
  """(h, w, c) of the map whose flattening is ``encoder``'s output on images
  of ``image_hw`` (a ConvNet with ``pool='flatten'``); None for any other
  encoder, whose output is a vector."""
  if isinstance(encoder, ConvNet) and encoder.pool == "flatten":
    return encoder.map_shape(image_hw)
  return None


class ConvDecoder(nn.Module):
  """Features -> per-pixel outputs [B, H, W, C] (float32, no output nonlinearity).

  Input: a feature map [B, h, w, c] or a vector [B, d]; a vector is first
  projected by a dense layer to a ``start_size`` map of ``widths[0]`` channels.
  Then, for each width, one upsampling stage (``upsample``, see the module
  notes) to the next of ``upsample_sizes``, batch norm and ReLU; last, the
  ``output`` convolution to ``out_shape[-1]`` channels.

  Layer names are those of the two decoders this one merged (``to_image`` for
  the image output; automatic for the rest), so that the methods' parameter
  trees and initial values are unchanged.
  """
  out_shape: Tuple[int, int, int]  # (H, W, C)
  widths: Sequence[int] = (64, 32, 16)
  upsample: str = "resize"  # or "transpose"
  output: str = "image"     # or "pixels"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, train: bool = True):
    if self.upsample not in UPSAMPLING or self.output not in OUTPUTS:
      raise ValueError(f"ConvDecoder needs upsample in {UPSAMPLING} and output in "
                       f"{OUTPUTS}, got {self.upsample!r} and {self.output!r}")
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
      if self.upsample == "resize":
        z = jax.image.resize(z, (z.shape[0], th, tw, z.shape[-1]), "bilinear")
        z = nn.Conv(width, (3, 3), padding=1, use_bias=False, dtype=self.dtype)(z)
      else:
        size = (2 * z.shape[1], 2 * z.shape[2])
        if size != (th, tw):
          raise ValueError(f"ConvDecoder: a transposed convolution doubles "
                           f"{z.shape[1]}x{z.shape[2]} to {size[0]}x{size[1]}, not "
                           f"{th}x{tw}; give an input of {h}x{w} / "
                           f"2^{len(self.widths)}")
        z = nn.ConvTranspose(width, (4, 4), (2, 2), padding="SAME", use_bias=False,
                             dtype=self.dtype)(z)
      z = nn.relu(norm()(z))
    if self.output == "image":
      out = nn.Conv(c, (3, 3), padding=1, dtype=self.dtype, name="to_image")(z)
    else:
      out = nn.Conv(c, (1, 1), dtype=self.dtype)(z)
    return out.astype(jnp.float32)


class Autoencoder(nn.Module):
  """Returns ``(representation, decoded)``: the encoder's output, and the
  decoder's output from it. With ``map_shape`` (h, w, c) the encoder's flat
  output is read as that feature map (a ConvNet with ``pool='flatten'``,
  ``encoder_map_shape``); without, the decoder starts from the vector. The
  encoder is the submodule ``encoder``, so ``common.submodule_variables`` finds
  its variables."""
  encoder: nn.Module
  decoder: nn.Module
  map_shape: Optional[Tuple[int, int, int]] = None

  def __call__(self, x, train: bool = True):
    h = self.encoder(x, train=train)
    z = h if self.map_shape is None else h.reshape(h.shape[0], *self.map_shape)
    return h, self.decoder(z, train=train)


def make_autoencoder(model_config, widths: Sequence[int], image_hw: Sequence[int],
                     out_shape: Tuple[int, int, int], dtype_name: str = "float32",
                     upsample: str = "resize", output: str = "image"):
  """``(Autoencoder, encoder)`` for images of ``image_hw``: the encoder of
  ``config.model`` (exactly what ``make_encoder`` builds, so the
  representation is the standard one) and a ``ConvDecoder`` of ``widths``
  (one per upsampling stage) to ``out_shape`` (H, W, C). A ConvNet with
  ``pool='flatten'`` hands the decoder its last feature map; any other
  encoder its vector."""
  encoder = make_encoder(model_config, dtype_name)
  decoder = ConvDecoder(out_shape=tuple(int(s) for s in out_shape),
                        widths=tuple(int(w) for w in widths), upsample=upsample,
                        output=output, dtype=compute_dtype(dtype_name))
  return (Autoencoder(encoder=encoder, decoder=decoder,
                      map_shape=encoder_map_shape(encoder, image_hw)), encoder)
