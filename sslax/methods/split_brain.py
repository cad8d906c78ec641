"""Split-brain autoencoders (Zhang, Isola & Efros 2017): cross-channel
prediction in CIE Lab with two disjoint sub-networks.

* L -> ab: a ConvNet on the lightness ``L / 50 - 1`` and a decoder predicting
  each pixel's colour as a distribution over the quantised in-gamut ab bins
  (grid 10), as in colourisation (``sslax.methods.color_common``); class
  rebalancing is off unless ``config.split_brain.rebalance`` is set;
* ab -> L: a second ConvNet on ``(a, b) / 110`` and a decoder predicting
  each pixel's lightness as a distribution over ``l_bins`` (50) equal bins of
  [0, 100].

The loss is the sum of the two cross-entropies.

The run hands over two encoders. The primary, ``encoder``, is the L -> ab
ConvNet alone, on the L input (preprocessing ``lab_l``): only that half can
see a grayscale image, so it is what the trainer's online probe and kNN,
``sslax eval linear/knn`` and the transfer to grayscale Fashion-MNIST
(``sslax.eval.transfer``) evaluate. ``full`` is the paper's representation,
both halves' features concatenated, ``[F_L(L), F_ab(ab)]``, on scaled Lab
(preprocessing ``lab``; network ``channel_split``) for colour data:
``sslax export --encoder full``, ``restore_encoder(workdir, name="full")``.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from sslax.data import augment, color
from sslax.encoder import EncoderDef, backbone_def, image_preprocess, network_of
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.color_common import (Rebalancing, ab_centres, annealed_mean,
                                        block_mean, check_rebalancing, check_rgb,
                                        colour_pictures,
                                        colour_classification_loss, colour_view,
                                        pixel_predictor, rebalancing_constants)


class SplitBrainNet(nn.Module):
  """Returns ((L features, ab features), ab logits, L logits) of scaled Lab."""
  l_net: nn.Module   # color_common.pixel_predictor: L -> ab bins
  ab_net: nn.Module  # color_common.pixel_predictor: ab -> L bins

  def __call__(self, x, train: bool = True):
    h_l, ab_logits = self.l_net(x[..., :1], train=train)
    h_ab, l_logits = self.ab_net(x[..., 1:], train=train)
    return (h_l, h_ab), ab_logits, l_logits


def l_bin(lightness, num_bins: int):
  """Index of L [...] in ``num_bins`` equal bins of [0, 100]."""
  return jnp.clip(jnp.floor(lightness * (num_bins / 100.0)), 0, num_bins - 1).astype(jnp.int32)


def _network(config):
  """(net, L encoder, ab encoder, out_hw, ab centres), without reading data."""
  sc = config.split_brain
  if int(sc.l_bins) < 2:
    raise UserError(f"config.split_brain.l_bins must be at least 2, got {sc.l_bins}")
  centres = ab_centres(sc.grid_size)
  l_net, l_encoder, out_hw = pixel_predictor(config, len(centres))
  ab_net, ab_encoder, _ = pixel_predictor(config, int(sc.l_bins))
  net = SplitBrainNet(l_net=l_net, ab_net=ab_net)
  return net, l_encoder, ab_encoder, out_hw, centres


def full_encoder(config) -> EncoderDef:
  """The concatenated representation ``[F_L(L), F_ab(ab)]`` of scaled Lab
  (``2 x`` the primary encoder's features): the two halves' encoders, read
  from the run's ``l_net.encoder`` and ``ab_net.encoder``."""
  preprocess, shape = image_preprocess(config, kind="lab")
  return EncoderDef(network=network_of(config, "channel_split", split=1),
                    selection=((("l_net", "encoder"), ("first",)),
                               (("ab_net", "encoder"), ("second",))),
                    preprocess=preprocess, input_shape=shape)


def build(config) -> Method:
  sc = config.split_brain
  net, l_encoder, _, out_hw, centres = _network(config)
  check_rebalancing(config, "split_brain")
  num_l = int(sc.l_bins)
  aug = common.view_params(config, 1)
  out_image = tuple(config.data.image_size)

  def init(key, examples, weights=None):
    images = examples["image"]
    x = color.lab_input(augment.center_view(check_rgb(images), out_image))
    params, model_state = common.init_variables(net, key, x)
    return params, model_state, Rebalancing(weights=weights)

  def loss_fn(params, model_state, method_state, batch, key):
    lab = color.lab(colour_view(key, batch["image"], aug, out_image))
    x = jnp.concatenate([color.scale_l(lab[..., :1]), lab[..., 1:] / color.AB_SCALE], -1)
    ((h_l, _), ab_logits, l_logits), new_state = common.apply_train(
        net, params, model_state, x)
    target = block_mean(lab, out_hw)
    loss_ab, _ = colour_classification_loss(ab_logits, target[..., 1:], centres,
                                            method_state.weights)
    loss_l = jnp.mean(-jnp.take_along_axis(
        jax.nn.log_softmax(l_logits, axis=-1),
        l_bin(target[..., 0], num_l)[..., None], axis=-1))
    metrics = {"loss_l_to_ab": loss_ab, "loss_ab_to_l": loss_l}
    return loss_ab + loss_l, LossAux(new_state, method_state, metrics, h_l)

  # The L -> ab half's encoder: the only half that sees a grayscale image.
  return Method(name="split_brain", init=init, loss_fn=loss_fn,
                encoder=backbone_def(config, ("l_net", "encoder"), preprocess="lab_l"),
                other_encoders={"full": full_encoder(config)},
                constants=rebalancing_constants(config, "split_brain", out_hw),
                pictures=colour_pictures(colorize, config,
                                         "L input, prediction (L -> ab half), truth"))


def colorize(config, params, model_state, images):
  """``(gray, predicted, true)`` sRGB [n, H, W, 3] in [0, 1] from the L -> ab
  half (annealed mean, ``config.split_brain.temperature``)."""
  net, _, _, _, centres = _network(config)

  @jax.jit
  def run(variables, images):
    rgb = augment.center_view(images, tuple(config.data.image_size))
    _, ab_logits, _ = net.apply(variables, color.lab_input(rgb), train=False)
    lightness = color.lab(rgb)[..., :1]
    ab = annealed_mean(ab_logits, centres, float(config.split_brain.temperature))
    gray = color.to_rgb(lightness, jnp.zeros(ab.shape, jnp.float32))
    return gray, color.to_rgb(lightness, ab), rgb

  return run({"params": params, **model_state}, jnp.asarray(images))
