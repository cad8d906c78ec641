"""Relative patch location (Doersch et al. 2015, "Unsupervised visual
representation learning by context prediction").

A 3x3 grid of ``patch``-sized cells ``gap`` pixels apart is centred in each
(lightly augmented, normalised) image, every patch jittered by up to
``jitter`` pixels (``relative_patch_pairs``); the task is to tell
which of the 8 neighbours of the centre patch a second patch is. Both patches
go through one shared-weight encoder, their features are concatenated and a
classifier head (``config.head``) gives 8 logits; the loss is the 8-way
cross-entropy. ``relative_patch.color_drop`` replaces two of the three colour
channels of each patch by faint noise (the paper's guard against chromatic
aberration), for colour datasets.

The encoder on patches: a ConvNet has no parameter that depends on its
pooling, so training applies it to patches with global average pooling and
``Method.encoder`` is the same network with ``config.model.pool`` (the
flattened map on Fashion-MNIST) on whole images, with the same variables.
Batch norm: the patch pass trains with the patches' batch statistics; a
stop-gradient pass on the batch's central views gives ``LossAux.features`` and
the encoder's running statistics (``pretext_common.center_pass``), so the encoder is
evaluated on whole images with statistics of whole images.
"""

from typing import Tuple

import jax
import jax.numpy as jnp

from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (SiameseClassifier, center_pass, check_batch,
                                          check_whole_image_encoder, classification,
                                          classifier_head, patch_encoder,
                                          with_encoder_state)
from sslax.models import make_encoder

NUM_NEIGHBOURS = 8


# ------------------------------------------------------------------ the patches

def relative_patch_offsets(key: jax.Array, n: int, h: int, w: int, patch: int,
                           gap: int, jitter: int) -> Tuple[jax.Array, jax.Array]:
  """Patch corners and labels of relative patch location (Doersch et al. 2015).

  A 3x3 grid of ``patch``-sized cells ``gap`` pixels apart is centred in the
  image (origin ``((h - S) // 2, (w - S) // 2)``, ``S = 3 patch + 2 gap``); each
  of the 9 patches moves by an independent integer offset uniform in
  ``[-jitter, jitter]`` on each axis. Returns int32 top-left corners (row, col)
  [n, 9, 2], cells in row-major order (cell 4 is the centre), and int32 labels
  [n] uniform in 0..7: the neighbour's rank among the 8 non-centre cells in
  row-major order (cell = label + (label >= 4)). ``relative_patch_pairs`` with
  the same key uses exactly these corners and labels.
  """
  side = 3 * patch + 2 * gap
  if side + 2 * jitter > min(h, w):
    raise ValueError(f"relative patch location needs 3*patch + 2*gap + 2*jitter = "
                     f"{side + 2 * jitter} <= the image side, got {h}x{w}; use "
                     f"smaller patch, gap or jitter")
  k_jitter, k_label = jax.random.split(key)
  step = patch + gap
  cell = jnp.arange(3, dtype=jnp.int32) * step
  base = jnp.stack(jnp.meshgrid(cell, cell, indexing="ij"), axis=-1).reshape(9, 2)
  base = base + jnp.array([(h - side) // 2, (w - side) // 2], jnp.int32)
  shift = jax.random.randint(k_jitter, (n, 9, 2), -jitter, jitter + 1, jnp.int32)
  labels = jax.random.randint(k_label, (n,), 0, 8, jnp.int32)
  return base[None] + shift, labels


def relative_patch_pairs(key: jax.Array, images: jax.Array, patch: int, gap: int,
                         jitter: int) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """(centre patches, neighbour patches, labels) for relative patch location
  (Doersch et al. 2015); patches [N, patch, patch, C], labels [N] in 0..7 as
  laid out by ``relative_patch_offsets`` (called with the same key)."""
  check_batch("relative_patch_pairs", images)
  n, h, w, c = images.shape
  corners, labels = relative_patch_offsets(key, n, h, w, patch, gap, jitter)
  neighbour = labels + (labels >= 4).astype(jnp.int32)
  centre_corner = corners[:, 4]
  neighbour_corner = jnp.take_along_axis(corners, neighbour[:, None, None],
                                         axis=1)[:, 0]

  def crop(image, corner):
    return jax.lax.dynamic_slice(image, (corner[0], corner[1], 0), (patch, patch, c))

  crop_all = jax.vmap(crop)
  return crop_all(images, centre_corner), crop_all(images, neighbour_corner), labels


# --------------------------------------------------------------------- the method

def check_config(config):
  check_whole_image_encoder(config)
  rc = config.relative_patch
  patch, gap, jitter = int(rc.patch), int(rc.gap), int(rc.jitter)
  if patch < 1 or gap < 0 or jitter < 0:
    raise UserError(f"config.relative_patch needs patch >= 1, gap >= 0 and "
                    f"jitter >= 0, got patch={patch}, gap={gap}, jitter={jitter}")
  side = min(config.data.image_size)
  if 3 * patch + 2 * gap + 2 * jitter > side:
    raise UserError(f"config.relative_patch: 3*patch + 2*gap + 2*jitter = "
                    f"{3 * patch + 2 * gap + 2 * jitter} exceeds the image side "
                    f"{side}; use a smaller patch, gap or jitter")


def drop_colours(key, patches, noise_std: float = 0.01):
  """Keeps one random channel of each patch [..., p, p, C] and replaces the
  others by Gaussian noise of ``noise_std`` (1/100 of a normalised channel's
  standard deviation, as in the paper)."""
  k_keep, k_noise = jax.random.split(key)
  channels = patches.shape[-1]
  keep = jax.random.randint(k_keep, patches.shape[:-3], 0, channels)
  mask = jax.nn.one_hot(keep, channels, dtype=patches.dtype)[..., None, None, :]
  noise = noise_std * jax.random.normal(k_noise, patches.shape, patches.dtype)
  return mask * patches + (1.0 - mask) * noise


def pairs_of(key, x, config):
  """``(pairs [N, 2, p, p, C], labels [N])`` of normalised images ``x``: for
  each image its centre patch (``pairs[:, 0]``) and one neighbour
  (``pairs[:, 1]``), the label in 0..7 the neighbour's rank among the 8
  non-centre cells in row-major order."""
  rc = config.relative_patch
  k_pair, k_drop = jax.random.split(key)
  centre, neighbour, labels = relative_patch_pairs(
      k_pair, x, int(rc.patch), int(rc.gap), int(rc.jitter))
  pairs = jnp.stack([centre, neighbour], axis=1)
  if rc.color_drop and pairs.shape[-1] > 1:
    pairs = drop_colours(k_drop, pairs)
  return pairs, labels


def patch_pairs(key, images, config):
  """``pairs_of`` the batch after the light augmentation."""
  k_aug, k_pairs = jax.random.split(key)
  return pairs_of(k_pairs, common.augmented_view(k_aug, images, config), config)


def build(config) -> Method:
  check_config(config)
  encoder = make_encoder(config.model, config.compute_dtype)
  model = SiameseClassifier(encoder=patch_encoder(encoder),
                            head=classifier_head(config, NUM_NEIGHBOURS))

  def init(key, examples):
    images = examples["image"]
    pairs, _ = pairs_of(key, common.center_input(images, config), config)
    params, model_state = common.init_variables(model, key, pairs)
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key):
    pairs, labels = patch_pairs(key, batch["image"], config)
    logits, new_model_state = common.apply_train(model, params, model_state, pairs)
    loss, metrics = classification(logits, labels)
    features, encoder_state = center_pass(encoder, params, model_state,
                                          batch["image"], config)
    return loss, LossAux(with_encoder_state(new_model_state, encoder_state),
                         method_state, metrics, features)

  return Method(name="relative_patch", init=init, loss_fn=loss_fn, encoder=backbone_def(config))
