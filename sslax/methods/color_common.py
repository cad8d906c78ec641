"""Pieces colourisation (Zhang, Isola & Efros 2016) and split-brain
autoencoders (Zhang, Isola & Efros 2017) share, so that neither method module
imports the other: the quantised ab plane (in-gamut bins, nearest bin, class
rebalancing from the bin histogram of training images), the per-pixel
classification loss over the bins and its annealed-mean decoding, the RGB
training view, the encoder + decoder that predicts per-pixel outputs, and the
targets at the decoder's resolution.

The ab bin centres are host-side constants built once with numpy; every other
function is pure.
"""

import functools
from typing import Any, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import augment
from sslax.data.color import lab, rgb_to_lab
from sslax.errors import UserError
from sslax.models import make_encoder
from sslax.models.decoder import make_autoencoder

# ------------------------------------------------------- the quantised ab plane


def ab_bins(grid_size: float = 10.0, samples_per_axis: int = 64) -> np.ndarray:
  """In-gamut bin centres of the quantised ab plane (Zhang et al. 2016, 313 bins
  for grid size 10), float32 [Q, 2] sorted by (a, b).

  Bins are squares of side ``grid_size`` centred on multiples of ``grid_size``;
  a bin is in gamut when some colour of a ``samples_per_axis^3`` grid over the
  sRGB cube (any lightness) falls into it. Computed on the host with numpy.
  """
  axis = np.linspace(0.0, 1.0, samples_per_axis)
  rgb = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
  ab = rgb_to_lab(rgb, np)[:, 1:]
  cells = np.unique(np.round(ab / grid_size).astype(np.int64), axis=0)
  return (cells * grid_size).astype(np.float32)


@functools.lru_cache(maxsize=4)
def ab_centres(grid_size: float) -> np.ndarray:
  """``ab_bins(grid_size)``, computed once per process (read-only)."""
  centres = ab_bins(float(grid_size))
  centres.flags.writeable = False
  return centres


def sq_distances(ab, centres):
  """Squared ab distances [..., Q] to the bin centres [Q, 2]."""
  centres = jnp.asarray(centres, jnp.float32)
  return (jnp.square(ab[..., 0, None] - centres[:, 0])
          + jnp.square(ab[..., 1, None] - centres[:, 1]))


def ab_to_bin(ab: jax.Array, centres) -> jax.Array:
  """Index of the nearest bin centre (Euclidean in ab) for ab [..., 2] -> int32
  [...]; ``centres`` [Q, 2] as from ``ab_bins`` (Zhang et al. 2016)."""
  d = sq_distances(jnp.asarray(ab, jnp.float32), centres)  # [..., Q]
  return jnp.argmin(d, axis=-1).astype(jnp.int32)


def smooth_distribution(probs, centres, sigma: float = 5.0) -> jax.Array:
  """Gaussian smoothing of a distribution over bins [Q] in the ab plane, as in
  Zhang et al. 2016 (sigma = 5): ``p~_q ∝ sum_r exp(-|c_q - c_r|^2 / 2 sigma^2)
  p_r``, renormalised to sum 1 over the bins (the kernel is cut at the gamut)."""
  probs = jnp.asarray(probs, jnp.float32)
  centres = jnp.asarray(centres, jnp.float32)
  d = jnp.sum(jnp.square(centres[:, None, :] - centres[None, :, :]), axis=-1)
  kernel = jnp.exp(-d / (2.0 * sigma ** 2))
  smoothed = jnp.sum(kernel * probs[None, :], axis=1)
  return smoothed / jnp.sum(smoothed)


def rebalance_weights(bin_counts, lam: float = 0.5, centres=None,
                      sigma: float = 5.0) -> jax.Array:
  """Class-rebalancing weights of Zhang et al. 2016 (eq. 4) from bin counts [Q]:
  ``w ∝ ((1 - lam) p~ + lam / Q)^-1`` scaled so that ``sum_q p~_q w_q = 1``.

  ``p~`` is the empirical distribution, smoothed by ``smooth_distribution`` when
  ``centres`` [Q, 2] is given (the paper's setting, sigma = 5) and used as is
  otherwise. ``lam`` in (0, 1] keeps weights of empty bins finite.
  """
  counts = jnp.asarray(bin_counts, jnp.float32)
  probs = counts / jnp.sum(counts)
  if centres is not None and sigma > 0:
    probs = smooth_distribution(probs, centres, sigma)
  q = counts.shape[0]
  w = 1.0 / ((1.0 - lam) * probs + lam / q)
  return w / jnp.sum(probs * w)


# ------------------------------------------------------------ views and targets

def check_rgb(images):
  if images.shape[-1] != 3:
    raise UserError(f"colourisation needs RGB images, got {images.shape[-1]} "
                    "channel(s); train on wallpaper_photos, cifar10 or imagenet2012 "
                    "and evaluate on grayscale with sslax.eval.transfer")
  return images


def colour_view(key, images, aug, out_hw):
  """One augmented view of a uint8 RGB batch, float in [0, 1]."""
  return augment.augment_batch(key, check_rgb(images), aug, out_hw)


def block_mean(x, out_hw):
  """[B, H, W, C] averaged over blocks to [B, h, w, C]."""
  b, hh, ww, c = x.shape
  fh, fw = hh // out_hw[0], ww // out_hw[1]
  return x.reshape(b, out_hw[0], fh, out_hw[1], fw, c).mean(axis=(2, 4))


# ------------------------------------------------------------ the network

def encoder_grid(config) -> Tuple[int, int]:
  """Height and width of the ConvNet's last map on ``config.data.image_size``
  (``ConvNet.map_shape``)."""
  mc = config.model
  if mc.encoder != "convnet" or mc.get("pool", "avg") != "flatten":
    raise UserError(f"{config.method} decodes the encoder's spatial map: set "
                    "config.model.encoder = 'convnet' and config.model.pool = 'flatten'")
  return make_encoder(mc).map_shape(config.data.image_size)[:2]


def output_size(config, grid, decoder_widths) -> Tuple[int, int]:
  """The decoder's output resolution; it must tile the input in whole blocks."""
  out = tuple(g * 2 ** len(decoder_widths) for g in grid)
  hw = tuple(int(s) for s in config.data.image_size)
  if any(o > n or n % o for o, n in zip(out, hw)):
    raise UserError(f"the decoder's {out[0]}x{out[1]} output does not tile "
                    f"{hw[0]}x{hw[1]} images; change config.{config.method}."
                    "decoder_widths (one entry per 2x upsampling)")
  return out


def pixel_predictor(config, num_outputs: int):
  """``(net, encoder, out_hw)``: ``net(x)`` returns the representation (the
  ConvNet's flattened map) and ``num_outputs`` values per pixel at ``out_hw``,
  decoded from that map by stride-2 transposed convolutions of
  ``config.<method>.decoder_widths`` (one per 2x upsampling) and a 1x1
  convolution."""
  grid = encoder_grid(config)
  widths = tuple(int(w) for w in config[config.method].decoder_widths)
  out_hw = output_size(config, grid, widths)
  net, encoder = make_autoencoder(config.model, widths, config.data.image_size,
                                  (*out_hw, num_outputs), config.compute_dtype,
                                  upsample="transpose", output="pixels")
  return net, encoder, out_hw


# -------------------------------------------------------------------- the loss

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


def annealed_mean(logits, centres, temperature=0.38):
  """ab [..., 2] decoded as the annealed mean (Zhang et al. 2016, eq. 5):
  the mean of ``softmax(logits / T)`` over the bin centres."""
  p = jax.nn.softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  return p @ jnp.asarray(centres, jnp.float32)


# ------------------------------------------------------- rebalancing weights

def empirical_bin_counts(source, image_size, out_hw, grid_size, num_images,
                         chunk=256) -> np.ndarray:
  """ab bin counts [Q] over a fixed sample (seed 0) of ``num_images`` images of
  ``source`` (central view at ``image_size``, ab averaged to ``out_hw``)."""
  channels = source.element_spec["image"][0][-1]
  if channels != 3:
    raise UserError(f"colourisation needs RGB images; the training data has "
                    f"{channels} channel(s)")
  centres = ab_centres(grid_size)
  image_size = tuple(int(s) for s in image_size)
  n = min(int(num_images), len(source))
  idx = np.sort(np.random.default_rng(0).choice(len(source), n, replace=False))

  @jax.jit
  def count(images, valid):
    ab = block_mean(lab(augment.center_view(images, image_size))[..., 1:], out_hw)
    bins = ab_to_bin(ab, centres)
    weight = jnp.broadcast_to(valid[:, None, None], bins.shape).astype(jnp.float32)
    return jnp.bincount(bins.reshape(-1), weight.reshape(-1), length=len(centres))

  counts = np.zeros(len(centres), np.int64)
  for start in range(0, n, chunk):
    images = source.get(idx[start:start + chunk])["image"]
    valid = np.arange(chunk) < len(images)
    if len(images) < chunk:  # one compiled shape
      images = np.concatenate([images, np.repeat(images[:1], chunk - len(images), 0)])
    counts += np.rint(np.asarray(count(jnp.asarray(images), jnp.asarray(valid)))).astype(np.int64)
  return counts


def check_rebalancing(config, group):
  """A one-line error for a bad ``config.<group>.rebalance_lambda``."""
  g = config[group]
  if g.rebalance and not 0.0 < float(g.rebalance_lambda) <= 1.0:
    raise UserError(f"config.{group}.rebalance_lambda must be in (0, 1], got "
                    f"{g.rebalance_lambda}")


def rebalancing_weights(config, group, out_hw, source) -> np.ndarray:
  """Class rebalancing weights [Q] from ``config.<group>`` (rebalance_lambda,
  rebalance_sigma, rebalance_images) and the ab histogram of ``source``: a
  method constant, computed once before step 0 and kept in the train state."""
  g = config[group]
  counts = empirical_bin_counts(source, config.data.image_size, out_hw, g.grid_size,
                                g.rebalance_images)
  return np.asarray(rebalance_weights(counts, float(g.rebalance_lambda),
                                      ab_centres(g.grid_size), float(g.rebalance_sigma)),
                    np.float32)


class Rebalancing(NamedTuple):
  """A colour method's state: the class rebalancing weights [Q] (None when
  ``rebalance`` is off)."""
  weights: Any


def rebalancing_constants(config, group, out_hw):
  """``Method.constants`` of a colour method: the rebalancing weights, or None
  when ``config.<group>.rebalance`` is off."""
  if not config[group].rebalance:
    return None
  return lambda source: rebalancing_weights(config, group, out_hw, source)


def colour_pictures(colorize, config, title):
  """``Method.pictures`` of a colour method: ``colorize(config, params,
  model_state, images) -> (gray, predicted, true)`` drawn as three rows."""
  def pictures(params, model_state, images, key):
    del key
    gray, predicted, true = colorize(config, params, model_state, images)
    return {"colorization": ((("L input", gray), ("predicted", predicted),
                              ("truth", true)), title)}
  return pictures
