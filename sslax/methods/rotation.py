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

import jax

from sslax.data import augment, pretext
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (check_whole_image_encoder, classification,
                                          classifier_head)
from sslax.models import make_encoder

NUM_ROTATIONS = 4


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
  ``90 k`` degrees counter-clockwise, with label k (``pretext.rotate_all``),
  so the rows of one image stay on the device that holds the image."""
  x = augment.augment_batch(key, images, common.view_params(config, 1),
                            tuple(config.data.image_size))
  x = augment.normalize(x, config.data.mean, config.data.std)
  rotated, labels = pretext.rotate_all(x)
  return x, rotated, labels


def build(config) -> Method:
  check_config(config)
  encoder = make_encoder(config.model, config.compute_dtype)
  model = common.EncoderWithHead(encoder=encoder,
                                 head=classifier_head(config, NUM_ROTATIONS))

  init = common.stateless_init(model, config)

  def loss_fn(params, model_state, method_state, batch, key, mesh):
    del mesh  # every reduction is a mean over the global batch
    _, rotated, labels = training_input(key, batch["image"], config)
    (h, logits), new_model_state = common.apply_train(model, params, model_state,
                                                      rotated)
    loss, metrics = classification(logits, labels)
    features = jax.lax.stop_gradient(h[0::NUM_ROTATIONS])  # the 0-degree rows
    return loss, LossAux(new_model_state, method_state, metrics, features)

  return Method(name="rotation", init=init, loss_fn=loss_fn, encoder=encoder,
                encoder_variables=common.submodule_variables)
