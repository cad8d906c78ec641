"""Rotation prediction (Gidaris et al. 2018, "Unsupervised representation
learning by predicting image rotations").

Every image of the batch gets a light augmentation (``config.augment``: a
random resized crop and a horizontal flip), then all four of its rotations by
0, 90, 180 and 270 degrees go through the encoder together (batch norm over
the 4N images, as in the paper's training, which feeds all four rotations in
one batch). A classifier head (``config.head``: linear, or an MLP with batch
norm) on the representation predicts the rotation; the loss is the 4-way
cross-entropy. ``LossAux.features`` are the representations of the
un-rotated views, taken from the same forward pass.
"""

from typing import Tuple

import jax
import jax.numpy as jnp

from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (check_batch, check_whole_image_encoder,
                                          classification, classifier_head)
from sslax.models import make_encoder

NUM_ROTATIONS = 4


def rotate_all(images: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """All four rotations of each image for RotNet (Gidaris et al. 2018).

  ``images`` [N, H, W, C] with H == W. Returns rotated [4N, H, W, C] and int32
  labels [4N]: row ``4 i + k`` is image i rotated by ``90 k`` degrees
  counter-clockwise (``np.rot90(image, k)``), with label k.
  """
  check_batch("rotate_all", images)
  if images.shape[1] != images.shape[2]:
    raise ValueError(f"rotate_all needs square images, got H={images.shape[1]}, "
                     f"W={images.shape[2]}; crop or resize them first")
  n = images.shape[0]
  rotated = jnp.stack([jnp.rot90(images, k, axes=(1, 2)) for k in range(4)], axis=1)
  labels = jnp.tile(jnp.arange(4, dtype=jnp.int32), n)
  return rotated.reshape((4 * n,) + images.shape[1:]), labels


# --------------------------------------------------------------------- the method

def check_config(config):
  check_whole_image_encoder(config)
  h, w = config.data.image_size
  if h != w:
    raise UserError(f"rotation prediction needs square images, got config.data."
                    f"image_size {(h, w)}; set it to (side, side)")


def training_input(key, images, config):
  """``(views [N], rotated [4N], labels [4N])``: the normalised, lightly
  augmented views and their rotations; row ``4 i + k`` is view i rotated by
  ``90 k`` degrees counter-clockwise, with label k (``rotate_all``),
  so the rows of one image stay on the device that holds the image."""
  x = common.augmented_view(key, images, config)
  rotated, labels = rotate_all(x)
  return x, rotated, labels


def build(config) -> Method:
  check_config(config)
  encoder = make_encoder(config.model, config.compute_dtype)
  model = common.EncoderWithHead(encoder=encoder,
                                 head=classifier_head(config, NUM_ROTATIONS))

  init = common.stateless_init(model, config)

  def loss_fn(params, model_state, method_state, batch, key):
    _, rotated, labels = training_input(key, batch["image"], config)
    (h, logits), new_model_state = common.apply_train(model, params, model_state,
                                                      rotated)
    loss, metrics = classification(logits, labels)
    features = jax.lax.stop_gradient(h[0::NUM_ROTATIONS])  # the 0-degree rows
    return loss, LossAux(new_model_state, method_state, metrics, features)

  return Method(name="rotation", init=init, loss_fn=loss_fn, encoder=backbone_def(config))
