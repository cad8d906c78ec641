"""Jigsaw puzzles (Noroozi & Favaro 2016, "Unsupervised learning of visual
representations by solving jigsaw puzzles").

Each (lightly augmented, normalised) image is cut into a 3x3 grid of cells;
each tile is a ``tile x tile`` crop at a random place inside its cell (the
gap between tiles), and the nine tiles are shuffled by one of P permutations
(``pretext.jigsaw_tiles``). Every tile goes through one shared-weight encoder,
the nine features are concatenated in the shuffled order and a classifier head
(``config.head``) predicts which of the P permutations was used: P-way
cross-entropy. ``jigsaw.normalize_tiles`` normalises the mean and standard
deviation of each tile on its own, the paper's guard against low-level
statistics shortcuts.

The permutation set: P permutations chosen for large Hamming distance by
``pretext.hamming_permutations(P, 9, permutation_seed)``, a pure function of
the config (``jigsaw.num_permutations``, ``jigsaw.permutation_seed``). It is
also saved with the run: ``method_state["permutations"]`` (int32 [P, 9]) is
in every checkpoint, and the loss reads the set from there, so a resumed run
uses the set it was trained with.

Encoder and batch norm as in ``relative_patch``: the ConvNet with average
pooling on tiles, ``config.model.pool`` on whole images for evaluation, and
the encoder's running statistics from a stop-gradient pass on whole images.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import pretext
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (SiameseClassifier, center_pass,
                                          check_whole_image_encoder, classification,
                                          classifier_head, light_views, patch_encoder,
                                          with_encoder_state)
from sslax.models import make_encoder

GRID = 3
NUM_TILES = GRID * GRID


@functools.lru_cache(maxsize=4)
def permutation_set(num_permutations: int, seed: int) -> np.ndarray:
  """The run's permutations, int32 [P, 9] (read-only; cached: P = 1000 takes
  seconds)."""
  perms = pretext.hamming_permutations(num_permutations, NUM_TILES, seed)
  perms.flags.writeable = False
  return perms


def check_config(config):
  check_whole_image_encoder(config)
  jc = config.jigsaw
  p = int(jc.num_permutations)
  if not 2 <= p <= math.factorial(NUM_TILES):
    raise UserError(f"config.jigsaw.num_permutations must be in [2, "
                    f"{math.factorial(NUM_TILES)}], got {p}")
  cell = min(config.data.image_size) // GRID
  if not 1 <= int(jc.tile) <= cell:
    raise UserError(f"config.jigsaw.tile must be in [1, {cell}] ({GRID}x{GRID} cells "
                    f"of {cell} pixels in {tuple(config.data.image_size)} images), "
                    f"got {jc.tile}")


def normalize_each_tile(tiles, eps: float = 1e-3):
  """Zero mean and unit standard deviation over each tile [..., t, t, C]."""
  mean = jnp.mean(tiles, axis=(-3, -2, -1), keepdims=True)
  var = jnp.var(tiles, axis=(-3, -2, -1), keepdims=True)
  return (tiles - mean) * jax.lax.rsqrt(var + eps)


def puzzles(key, x, permutations, config):
  """``(tiles [N, 9, t, t, C], labels [N])`` of normalised images ``x``:
  position i holds tile ``permutations[label][i]`` (row-major cells)."""
  tiles, labels = pretext.jigsaw_tiles(key, x, permutations, int(config.jigsaw.tile),
                                       GRID)
  if config.jigsaw.get("normalize_tiles", False):
    tiles = normalize_each_tile(tiles)
  return tiles, labels


def training_input(key, images, permutations, config):
  """``puzzles`` of the batch after the light augmentation."""
  k_aug, k_puzzle = jax.random.split(key)
  return puzzles(k_puzzle, light_views(k_aug, images, config), permutations, config)


def build(config) -> Method:
  check_config(config)
  jc = config.jigsaw
  permutations = permutation_set(int(jc.num_permutations), int(jc.permutation_seed))
  encoder = make_encoder(config.model, config.compute_dtype)
  model = SiameseClassifier(encoder=patch_encoder(encoder),
                            head=classifier_head(config, len(permutations)))

  def init(key, images):
    perms = jnp.asarray(permutations, jnp.int32)
    tiles, _ = puzzles(key, common.center_input(images, config), perms, config)
    params, model_state = common.init_variables(model, key, tiles)
    return params, model_state, {"permutations": perms}

  def loss_fn(params, model_state, method_state, batch, key, mesh):
    del mesh  # every reduction is a mean over the global batch
    tiles, labels = training_input(key, batch["image"], method_state["permutations"],
                                   config)
    logits, new_model_state = common.apply_train(model, params, model_state, tiles)
    loss, metrics = classification(logits, labels)
    features, encoder_state = center_pass(encoder, params, model_state,
                                          batch["image"], config)
    return loss, LossAux(with_encoder_state(new_model_state, encoder_state),
                         method_state, metrics, features)

  return Method(name="jigsaw", init=init, loss_fn=loss_fn, encoder=encoder,
                encoder_variables=common.submodule_variables)
