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
import jax.numpy as jnp
import optax

from sslax.data import augment, pretext
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import ProjectionHead, compute_dtype, make_encoder

NUM_ROTATIONS = 4


# ------------------- shared with relative_patch, jigsaw and exemplar

def classifier_head(config, num_classes: int) -> ProjectionHead:
  """``config.head`` (kind linear or mlp, hidden_dim, num_layers, hidden_bn)
  ending in ``num_classes`` logits, without output batch norm."""
  hc = config.head
  if hc.kind not in ("linear", "mlp"):
    raise UserError(f"config.head.kind must be linear or mlp for {config.method}, "
                    f"got {hc.kind!r}")
  if hc.kind == "mlp" and int(hc.num_layers) < 2:
    raise UserError(f"config.head.num_layers must be >= 2 for an mlp head, got "
                    f"{hc.num_layers}; use kind linear for one layer")
  return ProjectionHead(kind=hc.kind, hidden_dim=int(hc.hidden_dim),
                        output_dim=num_classes, num_layers=int(hc.num_layers),
                        hidden_bn=hc.get("hidden_bn", True), output_bn=False,
                        dtype=compute_dtype(config.compute_dtype))


def classification(logits, labels):
  """``(mean cross-entropy, {"pretext_top1": accuracy})``."""
  loss = optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels).mean()
  return loss, {"pretext_top1": jnp.mean(jnp.argmax(logits, -1) == labels)}


def check_whole_image_encoder(config):
  if config.model.encoder == "patch_convnet":
    raise UserError(f"{config.method} needs a whole-image encoder; set "
                    "config.model.encoder to convnet or a resnet")


def center_pass(encoder, params, model_state, images, config):
  """``(features, encoder state)`` of the batch's central views: train-mode
  batch norm over the batch, behind a stop-gradient (no backward pass).

  For methods whose training inputs are not whole images (patches, tiles,
  seed images): the features are what the online probe is fitted on, and the
  encoder's running statistics come from this pass (``with_encoder_state``),
  so the encoder at evaluation (whole central views, running statistics) is
  normalised by statistics of whole images, not of patches."""
  variables = jax.lax.stop_gradient(
      common.submodule_variables(params, model_state, "encoder"))
  return encoder.apply(variables, common.center_input(images, config), train=True,
                       mutable=[c for c in variables if c != "params"])


def with_encoder_state(model_state, encoder_state):
  """``model_state`` with the encoder's collections replaced by ``encoder_state``."""
  return {c: {**tree, **({"encoder": encoder_state[c]} if c in encoder_state else {})}
          for c, tree in model_state.items()}


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

  def init(key, images):
    params, model_state = common.init_variables(model, key,
                                                common.center_input(images, config))
    return params, model_state, {}

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
