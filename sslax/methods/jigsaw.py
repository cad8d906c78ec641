"""Jigsaw puzzles (Noroozi & Favaro 2016, "Unsupervised learning of visual
representations by solving jigsaw puzzles").

Each (lightly augmented, normalised) image is cut into a 3x3 grid of cells;
each tile is a ``tile x tile`` crop at a random place inside its cell (the
gap between tiles), and the nine tiles are shuffled by one of P permutations
(``jigsaw_tiles``). Every tile goes through one shared-weight encoder,
the nine features are concatenated in the shuffled order and a classifier head
(``config.head``) predicts which of the P permutations was used: P-way
cross-entropy. ``jigsaw.normalize_tiles`` normalises the mean and standard
deviation of each tile on its own, the paper's guard against low-level
statistics shortcuts.

The permutation set: P permutations chosen for large Hamming distance by
``hamming_permutations(P, 9, permutation_seed)``, a pure function of
the config (``jigsaw.num_permutations``, ``jigsaw.permutation_seed``). It is
also saved with the run: ``method_state.permutations`` (int32 [P, 9]) is
in every checkpoint, and the loss reads the set from there, so a resumed run
uses the set it was trained with.

Encoder and batch norm as in ``relative_patch``: the ConvNet with average
pooling on tiles, ``config.model.pool`` on whole images for evaluation, and
the encoder's running statistics from a stop-gradient pass on whole images.
"""

import functools
import math
from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (SiameseClassifier, center_pass, check_batch,
                                          check_whole_image_encoder, classification,
                                          classifier_head, patch_encoder,
                                          with_encoder_state)
from sslax.models import make_encoder

GRID = 3
NUM_TILES = GRID * GRID


# ---------------------------------------------------- permutations and tiles

def _all_permutations(k: int) -> np.ndarray:
  """All k! permutations of range(k), int8 [k!, k], built by insertion."""
  perms = np.zeros((1, 0), np.int8)
  for m in range(k):
    rows = perms.shape[0]
    out = np.empty((rows * (m + 1), m + 1), np.int8)
    for pos in range(m + 1):
      block = out[pos * rows:(pos + 1) * rows]
      block[:, :pos] = perms[:, :pos]
      block[:, pos] = m
      block[:, pos + 1:] = perms[:, pos:]
    perms = out
  return perms


def hamming_permutations(num_permutations: int, num_tiles: int = 9,
                         seed: int = 0,
                         num_candidates: int = 400_000) -> np.ndarray:
  """Jigsaw permutation set (Noroozi & Favaro 2016, sec. 3.2), chosen greedily
  for maximal *minimum* Hamming distance (the paper's Algorithm 1 maximises the
  average); deterministic for a given seed.

  Candidates are all ``num_tiles!`` permutations when that is at most
  ``num_candidates`` (all 362880 for 9 tiles), else ``num_candidates`` seeded
  random permutations. The first pick is a seeded random candidate; each next
  pick is the candidate whose minimum Hamming distance to the picked set is
  largest, ties broken by a seeded random order of the candidates. Returns
  int32 [num_permutations, num_tiles]. For 9 tiles and seed 0 the minimum
  distance is 9 up to P = 9, 8 at P = 10, 7 at P = 30 and 6 at P = 100.
  """
  if num_tiles < 2 or num_permutations < 1:
    raise ValueError(f"hamming_permutations needs num_tiles >= 2 and "
                     f"num_permutations >= 1, got {num_tiles}, {num_permutations}")
  rng = np.random.default_rng(seed)
  if math.factorial(num_tiles) <= num_candidates:
    candidates = _all_permutations(num_tiles)
    candidates = candidates[rng.permutation(candidates.shape[0])]
  else:
    dtype = np.int8 if num_tiles <= 127 else np.int32
    candidates = np.argsort(rng.random((num_candidates, num_tiles)), axis=1)
    candidates = np.unique(candidates.astype(dtype), axis=0)
    candidates = candidates[rng.permutation(candidates.shape[0])]
  if num_permutations > candidates.shape[0]:
    raise ValueError(f"hamming_permutations: asked for {num_permutations} "
                     f"permutations of {num_tiles} tiles, but only "
                     f"{candidates.shape[0]} candidates exist")
  picked = [int(rng.integers(candidates.shape[0]))]
  min_dist = np.full(candidates.shape[0], num_tiles + 1, np.int32)
  for _ in range(num_permutations - 1):
    dist = np.count_nonzero(candidates != candidates[picked[-1]], axis=1)
    np.minimum(min_dist, dist, out=min_dist)
    picked.append(int(np.argmax(min_dist)))
  return candidates[picked].astype(np.int32)


def min_hamming_distance(permutations) -> int:
  """Smallest Hamming distance between two distinct rows of [P, K] (K if P < 2)."""
  p = np.asarray(permutations)
  if p.shape[0] < 2:
    return p.shape[1]
  dist = np.count_nonzero(p[:, None, :] != p[None, :, :], axis=-1)
  return int(dist[~np.eye(p.shape[0], dtype=bool)].min())


def image_to_tiles(images: jax.Array, grid: int = 3,
                   tile: Optional[int] = None) -> jax.Array:
  """Cuts images [..., H, W, C] into grid x grid tiles [..., grid^2, t, t, C]
  for jigsaw puzzles (Noroozi & Favaro 2016), tiles in row-major order.

  Cells have side ``cell = min(H, W) // grid`` and cover the central
  ``grid * cell`` square; a tile is the whole cell (``tile=None``) or its
  central ``tile x tile`` crop.
  """
  h, w, c = images.shape[-3:]
  cell = min(h, w) // grid
  tile = cell if tile is None else tile
  if cell < 1 or not 1 <= tile <= cell:
    raise ValueError(f"image_to_tiles: a {h}x{w} image gives {grid}x{grid} cells "
                     f"of side {cell}, which cannot hold tiles of side {tile}")
  top, left = (h - grid * cell) // 2, (w - grid * cell) // 2
  lead = images.shape[:-3]
  x = images[..., top:top + grid * cell, left:left + grid * cell, :]
  x = x.reshape(lead + (grid, cell, grid, cell, c))
  x = jnp.moveaxis(x, -4, -3)  # [..., grid, grid, cell, cell, c]
  x = x.reshape(lead + (grid * grid, cell, cell, c))
  off = (cell - tile) // 2
  return x[..., off:off + tile, off:off + tile, :]


def tiles_to_image(tiles: jax.Array) -> jax.Array:
  """Inverse of ``image_to_tiles`` on its crop: [..., g^2, t, t, C] -> [..., g t,
  g t, C], tiles placed in row-major order."""
  k, t, t2, c = tiles.shape[-4:]
  grid = math.isqrt(k)
  if grid * grid != k or t != t2:
    raise ValueError(f"tiles_to_image needs [..., g*g, t, t, C], got {tiles.shape}")
  lead = tiles.shape[:-4]
  x = tiles.reshape(lead + (grid, grid, t, t, c))
  x = jnp.moveaxis(x, -3, -4)  # [..., grid, t, grid, t, c]
  return x.reshape(lead + (grid * t, grid * t, c))


def permute_tiles(tiles: jax.Array, perm) -> jax.Array:
  """Shuffles tiles [..., K, t, t, C]: output position i holds tile ``perm[i]``.

  ``perm`` is one permutation [K] or one per example [N, K] (tiles [N, K, ...]).
  ``permute_tiles(permute_tiles(x, p), inverse_permutation(p))`` is ``x``.
  """
  perm = jnp.asarray(perm)
  if perm.ndim == 1:
    return jnp.take(tiles, perm, axis=-4)
  index = perm.reshape(perm.shape + (1,) * 3)
  return jnp.take_along_axis(tiles, index, axis=-4)


def inverse_permutation(perm) -> jax.Array:
  """The inverse of permutation(s) [..., K] (argsort along the last axis)."""
  return jnp.argsort(jnp.asarray(perm), axis=-1)


def jigsaw_tiles(key: jax.Array, images: jax.Array, permutations, tile: int,
                 grid: int = 3) -> Tuple[jax.Array, jax.Array]:
  """Jigsaw puzzle inputs (Noroozi & Favaro 2016): each tile a ``tile x tile``
  crop at a random place inside its cell (the gap between tiles), shuffled by a
  permutation drawn uniformly from ``permutations`` [P, grid^2].

  ``images`` [N, H, W, C]. Returns shuffled tiles [N, grid^2, tile, tile, C]
  (position i holds tile ``permutations[label][i]``) and int32 labels [N].
  """
  check_batch("jigsaw_tiles", images)
  permutations = jnp.asarray(permutations, jnp.int32)
  if permutations.ndim != 2 or permutations.shape[1] != grid * grid:
    raise ValueError(f"jigsaw_tiles needs permutations [P, {grid * grid}], got "
                     f"{permutations.shape}")
  cells = image_to_tiles(images, grid)  # [N, K, cell, cell, C]
  n, k, cell, _, c = cells.shape
  if tile > cell:
    raise ValueError(f"jigsaw_tiles: tiles of side {tile} do not fit in cells of "
                     f"side {cell}")
  k_off, k_perm = jax.random.split(key)
  offsets = jax.random.randint(k_off, (n, k, 2), 0, cell - tile + 1, jnp.int32)

  def crop(x, off):
    return jax.lax.dynamic_slice(x, (off[0], off[1], 0), (tile, tile, c))

  tiles = jax.vmap(jax.vmap(crop))(cells, offsets)
  labels = jax.random.randint(k_perm, (n,), 0, permutations.shape[0], jnp.int32)
  return permute_tiles(tiles, permutations[labels]), labels


# --------------------------------------------------------------------- the method


@functools.lru_cache(maxsize=4)
def permutation_set(num_permutations: int, seed: int) -> np.ndarray:
  """The run's permutations, int32 [P, 9] (read-only; cached: P = 1000 takes
  seconds)."""
  perms = hamming_permutations(num_permutations, NUM_TILES, seed)
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
  tiles, labels = jigsaw_tiles(key, x, permutations, int(config.jigsaw.tile), GRID)
  if config.jigsaw.normalize_tiles:
    tiles = normalize_each_tile(tiles)
  return tiles, labels


def training_input(key, images, permutations, config):
  """``puzzles`` of the batch after the light augmentation."""
  k_aug, k_puzzle = jax.random.split(key)
  return puzzles(k_puzzle, common.augmented_view(k_aug, images, config), permutations, config)


class PermutationSet(NamedTuple):
  """The method state: the permutation set, int32 [P, 9]."""
  permutations: jax.Array


def build(config) -> Method:
  check_config(config)
  jc = config.jigsaw
  permutations = permutation_set(int(jc.num_permutations), int(jc.permutation_seed))
  encoder = make_encoder(config.model, config.compute_dtype)
  model = SiameseClassifier(encoder=patch_encoder(encoder),
                            head=classifier_head(config, len(permutations)))

  def init(key, examples):
    images = examples["image"]
    perms = jnp.asarray(permutations, jnp.int32)
    tiles, _ = puzzles(key, common.center_input(images, config), perms, config)
    params, model_state = common.init_variables(model, key, tiles)
    return params, model_state, PermutationSet(permutations=perms)

  def loss_fn(params, model_state, method_state, batch, key):
    tiles, labels = training_input(key, batch["image"], method_state.permutations,
                                   config)
    logits, new_model_state = common.apply_train(model, params, model_state, tiles)
    loss, metrics = classification(logits, labels)
    features, encoder_state = center_pass(encoder, params, model_state,
                                          batch["image"], config)
    return loss, LossAux(with_encoder_state(new_model_state, encoder_state),
                         method_state, metrics, features)

  return Method(name="jigsaw", init=init, loss_fn=loss_fn, encoder=backbone_def(config))
