"""Colourisation (Zhang, Isola & Efros 2016, "Colorful Image Colorization").

The encoder sees only the lightness L of CIE Lab (``L / 50 - 1``, in [-1, 1])
and a decoder predicts the colour ab of every pixel, at the decoder's output
resolution (the input's, divided by ``2 ** (number of encoder stride-2 stages
- number of decoder stages)``; targets are ab averaged over each output
pixel's block):

* ``loss = 'classification'`` (the paper's): a distribution over the
  quantised in-gamut ab bins (grid 10: ``pretext.ab_bins``), multinomial
  cross-entropy against the nearest bin (or, with ``soft_encoding``, a
  Gaussian over its 5 nearest bins, sigma 5), each pixel weighted by the class
  rebalancing weight of its bin (lambda 0.5, eq. 4) computed once, on the
  host, from the ab bin histogram of a fixed sample of the training images;
* ``loss = 'l2'``: the paper's regression baseline, ab / 110 per pixel.

The encoder is the library's ConvNet with ``pool = 'flatten'``; its flattened
map is reshaped back to [h, w, C] for the decoder (stride-2 transposed
convolutions). ``Method.encoder`` is that ConvNet on the 1-channel L input
(``Method.encoder_input``), so it applies unchanged to grayscale images.
Training views are random resized crops and flips of the RGB image (colour
augmentation would change the targets); the online probe sees the encoder's
features of that view. The colours shown by ``sslax viz`` are the annealed
mean of the predicted distribution (T = 0.38).
"""

import functools
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import augment, pretext
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import compute_dtype, make_encoder

LOSSES = ("classification", "l2")
AB_SCALE = 110.0  # |a|, |b| < 110 for every sRGB colour


# ------------------------------------------------------------ Lab inputs

def lab(images):
  """CIE Lab [..., 3] of float images [..., C] in [0, 1]; a 1-channel image is
  gray (R = G = B), so its a and b are about 0."""
  images = jnp.asarray(images, jnp.float32)
  if images.shape[-1] == 1:
    images = jnp.broadcast_to(images, images.shape[:-1] + (3,))
  return pretext.rgb_to_lab(images)


def scale_l(lightness):
  return lightness / 50.0 - 1.0


def l_input(images):
  """The encoder's input: ``L / 50 - 1`` [..., 1] of float images in [0, 1]
  (RGB or gray)."""
  return scale_l(lab(images)[..., :1])


def lab_input(images):
  """Scaled Lab [..., 3]: ``(L / 50 - 1, a / 110, b / 110)``."""
  x = lab(images)
  return jnp.concatenate([scale_l(x[..., :1]), x[..., 1:] / AB_SCALE], axis=-1)


def check_rgb(images):
  if images.shape[-1] != 3:
    raise UserError(f"colourisation needs RGB images, got {images.shape[-1]} "
                    "channel(s); train on wallpaper_photos, cifar10 or imagenet2012 "
                    "and evaluate on grayscale with sslax.eval.transfer")
  return images


def colour_view(key, images, aug, out_hw):
  """One augmented view of a uint8 RGB batch, float in [0, 1]."""
  return augment.augment_batch(key, check_rgb(images), aug, out_hw)


# --------------------------------------------------------- the networks

class Decoder(nn.Module):
  """Per stage: a stride-2 4x4 transposed convolution, batch norm and ReLU
  (each doubles the resolution); then a 1x1 convolution to ``num_outputs``
  values per pixel."""
  widths: Sequence[int]
  num_outputs: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    for width in self.widths:
      x = nn.ConvTranspose(width, (4, 4), (2, 2), padding="SAME", use_bias=False,
                           dtype=self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
      x = nn.relu(x)
    return nn.Conv(self.num_outputs, (1, 1), dtype=self.dtype)(x).astype(jnp.float32)


class PixelPredictor(nn.Module):
  """Returns (representation, per-pixel outputs): the encoder's flattened map,
  and the decoder applied to it reshaped to [B, grid_h, grid_w, C]."""
  encoder: nn.Module
  decoder: nn.Module
  grid: Tuple[int, int]

  def __call__(self, x, train: bool = True):
    h = self.encoder(x, train=train)
    return h, self.decoder(h.reshape(h.shape[0], *self.grid, -1), train=train)


def encoder_grid(config) -> Tuple[int, int]:
  """Height and width of the ConvNet's last map on ``config.data.image_size``
  (3x3 convolutions, padding 1: stride s maps n to ceil(n / s))."""
  mc = config.model
  if mc.encoder != "convnet" or mc.get("pool", "avg") != "flatten":
    raise UserError(f"{config.method} decodes the encoder's spatial map: set "
                    "config.model.encoder = 'convnet' and config.model.pool = 'flatten'")
  strides = [int(mc.get("stem_stride", 1))] + [2] * (len(mc.widths) - 1)
  size = [int(s) for s in config.data.image_size]
  for s in strides:
    size = [-(-n // s) for n in size]
  return tuple(size)


def output_size(config, grid, decoder_widths) -> Tuple[int, int]:
  """The decoder's output resolution; it must tile the input in whole blocks."""
  out = tuple(g * 2 ** len(decoder_widths) for g in grid)
  hw = tuple(int(s) for s in config.data.image_size)
  if any(o > n or n % o for o, n in zip(out, hw)):
    raise UserError(f"the decoder's {out[0]}x{out[1]} output does not tile "
                    f"{hw[0]}x{hw[1]} images; change config.{config.method}."
                    "decoder_widths (one entry per 2x upsampling)")
  return out


@functools.lru_cache(maxsize=4)
def ab_centres(grid_size: float) -> np.ndarray:
  """``pretext.ab_bins(grid_size)``, computed once per process."""
  centres = pretext.ab_bins(float(grid_size))
  centres.flags.writeable = False
  return centres


def block_mean(x, out_hw):
  """[B, H, W, C] averaged over blocks to [B, h, w, C]."""
  b, hh, ww, c = x.shape
  fh, fw = hh // out_hw[0], ww // out_hw[1]
  return x.reshape(b, out_hw[0], fh, out_hw[1], fw, c).mean(axis=(2, 4))


# ------------------------------------------------------------- the loss

def sq_distances(ab, centres):
  """Squared ab distances [..., Q] to the bin centres [Q, 2]."""
  centres = jnp.asarray(centres, jnp.float32)
  return (jnp.square(ab[..., 0, None] - centres[:, 0])
          + jnp.square(ab[..., 1, None] - centres[:, 1]))


def colour_classification_loss(logits, ab, centres, weights=None, soft_neighbours=0,
                               soft_sigma=5.0):
  """Zhang et al. 2016, eq. 2: ``-mean_pixels v(Z) sum_q Z_q log p_q``.

  ``logits`` [..., Q] over the bins ``centres`` [Q, 2]; ``ab`` [..., 2] the
  true colours. Z is the nearest bin (one-hot) or, with ``soft_neighbours`` k
  > 0, weights ``exp(-d^2 / 2 sigma^2)`` over the k nearest bins, normalised;
  ``v(Z)`` is ``weights[nearest bin]`` (1 without weights). Returns (loss,
  nearest bin [...]).
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  d = sq_distances(ab, centres)
  nearest = jnp.argmin(d, axis=-1).astype(jnp.int32)
  if soft_neighbours:
    neg_d, idx = jax.lax.top_k(-d, soft_neighbours)
    z = jax.nn.softmax(neg_d / (2.0 * soft_sigma ** 2), axis=-1)
    ce = -jnp.sum(z * jnp.take_along_axis(logp, idx, axis=-1), axis=-1)
  else:
    ce = -jnp.take_along_axis(logp, nearest[..., None], axis=-1)[..., 0]
  if weights is not None:
    ce = jnp.asarray(weights, jnp.float32)[nearest] * ce
  return jnp.mean(ce), nearest


def l2_loss(prediction, ab):
  """The regression baseline (Zhang et al. 2016, eq. 1), on ab / 110:
  ``mean_pixels 1/2 ||prediction - ab / 110||^2``."""
  return 0.5 * jnp.mean(jnp.sum(jnp.square(prediction - ab / AB_SCALE), axis=-1))


def annealed_mean(logits, centres, temperature=0.38):
  """ab [..., 2] decoded as the annealed mean (Zhang et al. 2016, eq. 5):
  the mean of ``softmax(logits / T)`` over the bin centres."""
  p = jax.nn.softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  return p @ jnp.asarray(centres, jnp.float32)


# -------------------------------------------------- rebalancing weights

_COUNTS = {}  # (data config, out_hw, grid, num_images) -> counts, per process


def _count_bins(data_config, out_hw, grid_size, num_images, chunk=256):
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  source = get_source(data_config, "train")
  if source.image_shape[-1] != 3:
    raise UserError(f"colourisation needs RGB images; {data_config.name} has "
                    f"{source.image_shape[-1]} channel(s)")
  centres = ab_centres(grid_size)
  image_size = tuple(int(s) for s in data_config.image_size)
  n = min(int(num_images), len(source))
  idx = np.sort(np.random.default_rng(0).choice(len(source), n, replace=False))

  @jax.jit
  def count(images, valid):
    ab = block_mean(lab(augment.center_view(images, image_size))[..., 1:], out_hw)
    bins = pretext.ab_to_bin(ab, centres)
    weight = jnp.broadcast_to(valid[:, None, None], bins.shape).astype(jnp.float32)
    return jnp.bincount(bins.reshape(-1), weight.reshape(-1), length=len(centres))

  counts = np.zeros(len(centres), np.int64)
  for start in range(0, n, chunk):
    images, _ = source.get(idx[start:start + chunk])
    valid = np.arange(chunk) < len(images)
    if len(images) < chunk:  # one compiled shape
      images = np.concatenate([images, np.repeat(images[:1], chunk - len(images), 0)])
    counts += np.rint(np.asarray(count(jnp.asarray(images), jnp.asarray(valid)))).astype(np.int64)
  return counts


def empirical_bin_counts(config, out_hw, grid_size, num_images) -> np.ndarray:
  """ab bin counts [Q] over a fixed sample (seed 0) of ``num_images`` training
  images (central view, ab averaged to the decoder's resolution); computed
  once per process and data set."""
  key = (repr(sorted(config.data.to_dict().items())), tuple(out_hw), float(grid_size),
         int(num_images))
  if key not in _COUNTS:
    _COUNTS[key] = _count_bins(config.data, tuple(out_hw), float(grid_size), num_images)
  return _COUNTS[key]


def rebalancing(config, group, out_hw):
  """Class rebalancing weights [Q] from ``config.<group>`` (rebalance_lambda,
  rebalance_sigma, rebalance_images), or None when ``rebalance`` is off."""
  g = config[group]
  if not g.rebalance:
    return None
  lam = float(g.rebalance_lambda)
  if not 0.0 < lam <= 1.0:
    raise UserError(f"config.{group}.rebalance_lambda must be in (0, 1], got {lam}")
  counts = empirical_bin_counts(config, out_hw, g.grid_size, g.rebalance_images)
  return np.asarray(pretext.rebalance_weights(
      counts, lam, ab_centres(g.grid_size), g.get("rebalance_sigma", 5.0)))


# ------------------------------------------------------------ the method

def _network(config):
  """(net, encoder, out_hw, centres) of a config, without reading data."""
  cc = config.colorization
  if cc.loss not in LOSSES:
    raise UserError(f"unknown config.colorization.loss {cc.loss!r}; use one of "
                    f"{', '.join(LOSSES)}")
  grid = encoder_grid(config)
  widths = tuple(int(w) for w in cc.decoder_widths)
  out_hw = output_size(config, grid, widths)
  centres = ab_centres(cc.grid_size)
  encoder = make_encoder(config.model, config.compute_dtype)
  num_outputs = len(centres) if cc.loss == "classification" else 2
  decoder = Decoder(widths=widths, num_outputs=num_outputs,
                    dtype=compute_dtype(config.compute_dtype))
  return PixelPredictor(encoder=encoder, decoder=decoder, grid=grid), encoder, out_hw, centres


def build(config) -> Method:
  cc = config.colorization
  net, encoder, out_hw, centres = _network(config)
  classification = cc.loss == "classification"
  weights = rebalancing(config, "colorization", out_hw) if classification else None
  soft = int(cc.soft_neighbours) if cc.soft_encoding else 0
  if cc.soft_encoding and not 0 < soft <= len(centres):
    raise UserError(f"config.colorization.soft_neighbours must be in [1, {len(centres)}]")
  aug = common.view_params(config, 1)
  out_image = tuple(config.data.image_size)

  def init(key, images):
    x = l_input(augment.center_view(check_rgb(images), out_image))
    params, model_state = common.init_variables(net, key, x)
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key, mesh):
    del mesh
    x = lab(colour_view(key, batch["image"], aug, out_image))
    (h, out), new_state = common.apply_train(net, params, model_state,
                                             scale_l(x[..., :1]))
    ab = block_mean(x[..., 1:], out_hw)
    if classification:
      loss, nearest = colour_classification_loss(out, ab, centres, weights, soft,
                                                 float(cc.soft_sigma))
      metrics = {"pixel_top1": jnp.mean(jnp.argmax(out, -1) == nearest)}
    else:
      loss, metrics = l2_loss(out, ab), {}
    return loss, LossAux(new_state, method_state, metrics, h)

  return Method(name="colorization", init=init, loss_fn=loss_fn, encoder=encoder,
                encoder_variables=common.submodule_variables, encoder_input=l_input)


def predicted_ab(out, centres, temperature, classification=True):
  """ab [..., 2] from the decoder's outputs."""
  if classification:
    return annealed_mean(out, centres, temperature)
  return out * AB_SCALE


def to_rgb(lightness, ab):
  """sRGB in [0, 1] of L [n, H, W, 1] and ab [n, h, w, 2] (upsampled bilinearly)."""
  n, hh, ww, _ = lightness.shape
  ab = jax.image.resize(ab, (n, hh, ww, 2), "bilinear")
  return jnp.clip(pretext.lab_to_rgb(jnp.concatenate([lightness, ab], -1)), 0.0, 1.0)


def colorize(config, params, model_state, images):
  """``(gray, predicted, true)`` sRGB [n, H, W, 3] in [0, 1] of uint8 images:
  the L channel alone, the true L with the predicted ab, and the image."""
  net, _, _, centres = _network(config)
  cc = config.colorization

  @jax.jit
  def run(variables, images):
    rgb = augment.center_view(images, tuple(config.data.image_size))
    x = lab(rgb)
    _, out = net.apply(variables, scale_l(x[..., :1]), train=False)
    ab = predicted_ab(out, centres, float(cc.temperature), cc.loss == "classification")
    gray = to_rgb(x[..., :1], jnp.zeros(ab.shape, jnp.float32))
    return gray, to_rgb(x[..., :1], ab), rgb

  return run({"params": params, **model_state}, jnp.asarray(images))
