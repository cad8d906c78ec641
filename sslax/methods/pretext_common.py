"""Pieces the image pretext tasks share, so that no method module imports
another.

* The classification tasks (rotation, relative patch location, jigsaw,
  exemplar networks): the classifier head and its loss, the patch encoder and
  the siamese late-fusion classifier, light views.
* The reconstruction tasks (denoising autoencoders, context encoders): the
  encoder + decoder pair, the training view, normalisation and back.
* Both: the central-view pass that gives the online probe's features and the
  encoder's batch statistics of whole images.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from sslax.data import augment
from sslax.errors import UserError
from sslax.methods import common
from sslax.models import ConvNet, ProjectionHead, compute_dtype
from sslax.models.decoder import make_autoencoder


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
                        hidden_bn=hc.hidden_bn, output_bn=False,
                        dtype=compute_dtype(config.compute_dtype))


def classification(logits, labels):
  """``(mean cross-entropy, {"pretext_top1": accuracy})``."""
  loss = optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels).mean()
  return loss, {"pretext_top1": jnp.mean(jnp.argmax(logits, -1) == labels)}


def check_batch(name: str, images):
  """Raises ValueError unless ``images`` is a batch [N, H, W, C]."""
  if images.ndim != 4:
    raise ValueError(f"{name} needs images [N, H, W, C], got shape {images.shape}")


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



def patch_encoder(encoder: nn.Module) -> nn.Module:
  """The encoder for patches: a ConvNet with global average pooling (same
  parameters whatever the pooling); ResNets average pool already."""
  return encoder.clone(pool="avg") if isinstance(encoder, ConvNet) else encoder


class SiameseClassifier(nn.Module):
  """Late fusion: each of the K patches [B, K, p, p, C] through the one
  shared-weight encoder, the K features concatenated ([B, K D]), then the
  classifier head."""
  encoder: nn.Module
  head: nn.Module

  def __call__(self, patches, train: bool = True):
    b, k = patches.shape[:2]
    h = self.encoder(patches.reshape((b * k,) + patches.shape[2:]), train=train)
    return self.head(h.reshape(b, k * h.shape[-1]), train=train)


# ------------------------------------------------------- reconstruction tasks

def image_shape(config):
  """(H, W, C) of the training images (C from ``config.data.mean``)."""
  h, w = config.data.image_size
  return (int(h), int(w), len(config.data.mean))


def autoencoder(config):
  """``(Autoencoder, encoder)`` of ``config.model`` and a resize-convolution
  decoder of ``config.<method>.decoder_widths`` (one per upsampling stage) back
  to the image."""
  group = config.method
  widths = tuple(config[group].decoder_widths)
  if not widths or min(int(w) for w in widths) < 1:
    raise UserError(f"config.{group}.decoder_widths must be positive channel counts, "
                    f"one per upsampling stage, got {widths}")
  shape = image_shape(config)
  return make_autoencoder(config.model, widths, shape[:2], shape, config.compute_dtype)


def training_images(key, images, config):
  """The batch's training view in [0, 1]: ``config.augment`` (mild crops and
  flips in the reconstruction methods' configs) at ``config.data.image_size``."""
  return augment.augment_batch(key, images, common.view_params(config, 1),
                               tuple(config.data.image_size))


def normalize(x, config):
  return augment.normalize(x, config.data.mean, config.data.std)


def to_pixels(x, config):
  """Normalised images back to pixel values (not clipped)."""
  return (x * jnp.asarray(config.data.std, jnp.float32)
          + jnp.asarray(config.data.mean, jnp.float32))
