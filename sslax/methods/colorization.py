"""Colourisation (Zhang, Isola & Efros 2016, "Colorful Image Colorization").

The encoder sees only the lightness L of CIE Lab (``L / 50 - 1``, in [-1, 1])
and a decoder predicts the colour ab of every pixel, at the decoder's output
resolution (the input's, divided by ``2 ** (number of encoder stride-2 stages
- number of decoder stages)``; targets are ab averaged over each output
pixel's block):

* ``loss = 'classification'`` (the paper's): a distribution over the
  quantised in-gamut ab bins (grid 10: ``color_common.ab_bins``), multinomial
  cross-entropy against the nearest bin (or, with ``soft_encoding``, a
  Gaussian over its 5 nearest bins, sigma 5), each pixel weighted by the class
  rebalancing weight of its bin (lambda 0.5, eq. 4) computed once, before
  step 0, from the ab bin histogram of a fixed sample of the training images,
  and kept in the train state (``Method.constants``);
* ``loss = 'l2'``: the paper's regression baseline, ab / 110 per pixel.

The encoder is the library's ConvNet with ``pool = 'flatten'``; its flattened
map is reshaped back to [h, w, C] for the decoder (stride-2 transposed
convolutions). ``Method.encoder`` is that ConvNet on the 1-channel L input
(preprocessing ``lab_l``), so it applies unchanged to grayscale images.
Training views are random resized crops and flips of the RGB image (colour
augmentation would change the targets); the online probe sees the encoder's
features of that view. The colours shown by ``sslax viz`` are the annealed
mean of the predicted distribution (T = 0.38).
"""

import jax
import jax.numpy as jnp

from sslax.data import augment
from sslax.data.color import AB_SCALE, l_input, lab, scale_l, to_rgb
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.color_common import (Rebalancing, ab_centres, annealed_mean,
                                        block_mean, check_rebalancing, check_rgb,
                                        colour_pictures,
                                        colour_classification_loss, colour_view,
                                        pixel_predictor, rebalancing_constants)

LOSSES = ("classification", "l2")


# -------------------------------------------------------------------- the loss

def l2_loss(prediction, ab):
  """The regression baseline (Zhang et al. 2016, eq. 1), on ab / 110:
  ``mean_pixels 1/2 ||prediction - ab / 110||^2``."""
  return 0.5 * jnp.mean(jnp.sum(jnp.square(prediction - ab / AB_SCALE), axis=-1))


# ------------------------------------------------------------ the method

def _network(config):
  """(net, encoder, out_hw, centres) of a config, without reading data."""
  cc = config.colorization
  if cc.loss not in LOSSES:
    raise UserError(f"unknown config.colorization.loss {cc.loss!r}; use one of "
                    f"{', '.join(LOSSES)}")
  centres = ab_centres(cc.grid_size)
  num_outputs = len(centres) if cc.loss == "classification" else 2
  net, encoder, out_hw = pixel_predictor(config, num_outputs)
  return net, encoder, out_hw, centres


def build(config) -> Method:
  cc = config.colorization
  net, encoder, out_hw, centres = _network(config)
  classification = cc.loss == "classification"
  check_rebalancing(config, "colorization")
  rebalance = classification and bool(cc.rebalance)
  soft = int(cc.soft_neighbours) if cc.soft_encoding else 0
  if cc.soft_encoding and not 0 < soft <= len(centres):
    raise UserError(f"config.colorization.soft_neighbours must be in [1, {len(centres)}]")
  aug = common.view_params(config, 1)
  out_image = tuple(config.data.image_size)

  def init(key, examples, weights=None):
    images = examples["image"]
    x = l_input(augment.center_view(check_rgb(images), out_image))
    params, model_state = common.init_variables(net, key, x)
    return params, model_state, Rebalancing(weights=weights)

  def loss_fn(params, model_state, method_state, batch, key):
    x = lab(colour_view(key, batch["image"], aug, out_image))
    (h, out), new_state = common.apply_train(net, params, model_state,
                                             scale_l(x[..., :1]))
    ab = block_mean(x[..., 1:], out_hw)
    if classification:
      loss, nearest = colour_classification_loss(out, ab, centres, method_state.weights,
                                                 soft, float(cc.soft_sigma))
      metrics = {"pixel_top1": jnp.mean(jnp.argmax(out, -1) == nearest)}
    else:
      loss, metrics = l2_loss(out, ab), {}
    return loss, LossAux(new_state, method_state, metrics, h)

  return Method(name="colorization", init=init, loss_fn=loss_fn,
                encoder=backbone_def(config, preprocess="lab_l"),
                constants=(rebalancing_constants(config, "colorization", out_hw)
                           if rebalance else None),
                pictures=colour_pictures(colorize, config, "L input, prediction, truth"))


def predicted_ab(out, centres, temperature, classification=True):
  """ab [..., 2] from the decoder's outputs."""
  if classification:
    return annealed_mean(out, centres, temperature)
  return out * AB_SCALE


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
