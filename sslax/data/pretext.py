"""Device-side transforms for image pretext tasks.

Rotation prediction (Gidaris et al. 2018), relative patch location (Doersch et
al. 2015), jigsaw puzzles (Noroozi & Favaro 2016), colourisation in CIE Lab with
quantised ab targets and class rebalancing (Zhang et al. 2016), inpainting masks
for context encoders (Pathak et al. 2016) and the corruptions and weighted loss
of denoising autoencoders (Vincent et al. 2010).

Every function is pure: randomness comes from an explicit ``jax.random`` key,
shapes and sizes are Python ints (static under ``jax.jit``), and images are
float arrays with a trailing channel axis, ``[N, H, W, C]`` unless a function
says otherwise. The exemplar-network views (Dosovitskiy et al. 2014) are the
augmentations of ``sslax.data.augment``. The permutation set of the jigsaw task
and the ab bin centres are host-side constants built once with numpy.
"""

import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np


def _check_batch(name: str, images):
  if images.ndim != 4:
    raise ValueError(f"{name} needs images [N, H, W, C], got shape {images.shape}")


# --------------------------------------------------------------------------- #
# Rotation prediction.
# --------------------------------------------------------------------------- #


def rotate_all(images: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """All four rotations of each image for RotNet (Gidaris et al. 2018).

  ``images`` [N, H, W, C] with H == W. Returns rotated [4N, H, W, C] and int32
  labels [4N]: row ``4 i + k`` is image i rotated by ``90 k`` degrees
  counter-clockwise (``np.rot90(image, k)``), with label k.
  """
  _check_batch("rotate_all", images)
  if images.shape[1] != images.shape[2]:
    raise ValueError(f"rotate_all needs square images, got H={images.shape[1]}, "
                     f"W={images.shape[2]}; crop or resize them first")
  n = images.shape[0]
  rotated = jnp.stack([jnp.rot90(images, k, axes=(1, 2)) for k in range(4)], axis=1)
  labels = jnp.tile(jnp.arange(4, dtype=jnp.int32), n)
  return rotated.reshape((4 * n,) + images.shape[1:]), labels


# --------------------------------------------------------------------------- #
# Relative patch location.
# --------------------------------------------------------------------------- #


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
  _check_batch("relative_patch_pairs", images)
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


# --------------------------------------------------------------------------- #
# Jigsaw puzzles.
# --------------------------------------------------------------------------- #


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
  _check_batch("jigsaw_tiles", images)
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


# --------------------------------------------------------------------------- #
# Colourisation: CIE Lab and the quantised ab plane.
# --------------------------------------------------------------------------- #

# Linear sRGB -> XYZ (IEC 61966-2-1, D65); the white point is its row sums, so
# sRGB white maps to a = b = 0 exactly up to rounding.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = _RGB_TO_XYZ.sum(axis=1)
_DELTA = 6.0 / 29.0


def _apply_matrix(m: np.ndarray, v, xp):
  """v [..., 3] -> v @ m.T as elementwise products (float32-exact on any backend)."""
  m = xp.asarray(m, dtype=v.dtype)
  return xp.sum(v[..., None, :] * m, axis=-1)


def _rgb_to_lab(rgb, xp):
  lin = xp.where(rgb > 0.04045,
                 ((xp.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4,
                 rgb / 12.92)
  t = _apply_matrix(_RGB_TO_XYZ, lin, xp) / xp.asarray(_WHITE_D65, dtype=rgb.dtype)
  f = xp.where(t > _DELTA ** 3, xp.cbrt(xp.maximum(t, _DELTA ** 3)),
               t / (3 * _DELTA ** 2) + 4.0 / 29.0)
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return xp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def rgb_to_lab(rgb: jax.Array) -> jax.Array:
  """sRGB [..., 3] in [0, 1] -> CIE L*a*b* [..., 3] (D65 white; L in [0, 100]),
  the colour space of Zhang et al. 2016; standard sRGB gamma and CIE formulas."""
  rgb = jnp.asarray(rgb)
  if not jnp.issubdtype(rgb.dtype, jnp.floating):
    rgb = rgb.astype(jnp.float32)
  return _rgb_to_lab(rgb, jnp)


def lab_to_rgb(lab: jax.Array) -> jax.Array:
  """CIE L*a*b* [..., 3] (D65) -> sRGB [..., 3], the inverse of ``rgb_to_lab``.
  Not clipped: out-of-gamut Lab values give sRGB values outside [0, 1]."""
  lab = jnp.asarray(lab)
  if not jnp.issubdtype(lab.dtype, jnp.floating):
    lab = lab.astype(jnp.float32)
  fy = (lab[..., 0] + 16.0) / 116.0
  f = jnp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
  t = jnp.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0))
  lin = _apply_matrix(_XYZ_TO_RGB, t * jnp.asarray(_WHITE_D65, lab.dtype), jnp)
  return jnp.where(lin > 0.0031308,
                   1.055 * jnp.maximum(lin, 0.0031308) ** (1 / 2.4) - 0.055,
                   12.92 * lin)


def ab_bins(grid_size: float = 10.0, samples_per_axis: int = 64) -> np.ndarray:
  """In-gamut bin centres of the quantised ab plane (Zhang et al. 2016, 313 bins
  for grid size 10), float32 [Q, 2] sorted by (a, b).

  Bins are squares of side ``grid_size`` centred on multiples of ``grid_size``;
  a bin is in gamut when some colour of a ``samples_per_axis^3`` grid over the
  sRGB cube (any lightness) falls into it. Computed on the host with numpy.
  """
  axis = np.linspace(0.0, 1.0, samples_per_axis)
  rgb = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
  ab = _rgb_to_lab(rgb, np)[:, 1:]
  cells = np.unique(np.round(ab / grid_size).astype(np.int64), axis=0)
  return (cells * grid_size).astype(np.float32)


def ab_to_bin(ab: jax.Array, centres) -> jax.Array:
  """Index of the nearest bin centre (Euclidean in ab) for ab [..., 2] -> int32
  [...]; ``centres`` [Q, 2] as from ``ab_bins`` (Zhang et al. 2016)."""
  centres = jnp.asarray(centres, jnp.float32)
  ab = jnp.asarray(ab, jnp.float32)
  d = (jnp.square(ab[..., 0, None] - centres[:, 0])
       + jnp.square(ab[..., 1, None] - centres[:, 1]))  # [..., Q]
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


# --------------------------------------------------------------------------- #
# Context encoder masks.
# --------------------------------------------------------------------------- #


def central_block_mask(h: int, w: int, side_fraction: float = 0.5) -> jax.Array:
  """Central-region mask of context encoders (Pathak et al. 2016): float32
  [h, w, 1], 1 on the centred block of ``round(side_fraction * side)`` pixels a
  side (0.5: a quarter of the area, 64x64 of 128x128), 0 elsewhere."""
  bh, bw = int(round(side_fraction * h)), int(round(side_fraction * w))
  if not (0 <= bh <= h and 0 <= bw <= w):
    raise ValueError(f"central_block_mask needs side_fraction in [0, 1], got "
                     f"{side_fraction}")
  top, left = (h - bh) // 2, (w - bw) // 2
  rows = (jnp.arange(h) >= top) & (jnp.arange(h) < top + bh)
  cols = (jnp.arange(w) >= left) & (jnp.arange(w) < left + bw)
  return (rows[:, None] & cols[None, :]).astype(jnp.float32)[..., None]


def random_block_masks(key: jax.Array, n: int, h: int, w: int, num_blocks: int,
                       block_size: int) -> jax.Array:
  """Random-block masks of context encoders (Pathak et al. 2016): float32
  [n, h, w, 1], the union of ``num_blocks`` squares of side ``block_size``,
  each placed uniformly at random wholly inside the image; 1 = to inpaint."""
  if not 1 <= block_size <= min(h, w):
    raise ValueError(f"random_block_masks: block_size {block_size} must be in "
                     f"[1, {min(h, w)}] for {h}x{w} images")
  k_top, k_left = jax.random.split(key)
  top = jax.random.randint(k_top, (n, num_blocks, 1), 0, h - block_size + 1)
  left = jax.random.randint(k_left, (n, num_blocks, 1), 0, w - block_size + 1)
  rows = (jnp.arange(h) >= top) & (jnp.arange(h) < top + block_size)
  cols = (jnp.arange(w) >= left) & (jnp.arange(w) < left + block_size)
  blocks = rows[..., :, None] & cols[..., None, :]  # [n, num_blocks, h, w]
  return jnp.any(blocks, axis=1).astype(jnp.float32)[..., None]


# --------------------------------------------------------------------------- #
# Denoising autoencoder corruptions (Vincent et al. 2010, sec. 4.2).
# --------------------------------------------------------------------------- #


def gaussian_noise(key: jax.Array, x: jax.Array,
                   sigma: float) -> Tuple[jax.Array, jax.Array]:
  """Additive isotropic Gaussian noise N(0, sigma^2) (Vincent et al. 2010).
  Returns (corrupted, mask); the mask is all ones: every component is corrupted."""
  noise = sigma * jax.random.normal(key, x.shape, x.dtype)
  return x + noise, jnp.ones(x.shape, jnp.float32)


def masking_noise(key: jax.Array, x: jax.Array,
                  rate: float) -> Tuple[jax.Array, jax.Array]:
  """Masking noise (Vincent et al. 2010): each component independently set to 0
  with probability ``rate``. Returns (corrupted, float32 {0,1} mask of the
  components chosen, including those that were already 0)."""
  mask = jax.random.bernoulli(key, rate, x.shape)
  return jnp.where(mask, jnp.zeros_like(x), x), mask.astype(jnp.float32)


def salt_and_pepper(key: jax.Array, x: jax.Array, rate: float, low: float = 0.0,
                    high: float = 1.0) -> Tuple[jax.Array, jax.Array]:
  """Salt-and-pepper noise (Vincent et al. 2010): each component independently
  chosen with probability ``rate`` and set to ``low`` or ``high`` with equal
  chance. Returns (corrupted, float32 {0,1} mask of the chosen components)."""
  k_mask, k_salt = jax.random.split(key)
  mask = jax.random.bernoulli(k_mask, rate, x.shape)
  salt = jax.random.bernoulli(k_salt, 0.5, x.shape)
  value = jnp.where(salt, jnp.asarray(high, x.dtype), jnp.asarray(low, x.dtype))
  return jnp.where(mask, value, x), mask.astype(jnp.float32)


def weighted_reconstruction_loss(recon: jax.Array, clean: jax.Array,
                                 corrupted_mask: jax.Array, alpha: float,
                                 beta: float) -> jax.Array:
  """Emphasised squared error of denoising autoencoders (Vincent et al. 2010,
  sec. 4.3): for examples along axis 0 of recon, clean, mask [N, ...],
  ``mean_n [alpha sum_{j: m_nj=1} (r_nj - x_nj)^2 + beta sum_{j: m_nj=0}
  (r_nj - x_nj)^2]``, sums over all non-leading axes, computed in float32."""
  if recon.shape != clean.shape or corrupted_mask.shape != clean.shape:
    raise ValueError(f"weighted_reconstruction_loss needs recon, clean and mask "
                     f"of one shape [N, ...], got {recon.shape}, {clean.shape}, "
                     f"{corrupted_mask.shape}")
  sq = jnp.square(recon.astype(jnp.float32) - clean.astype(jnp.float32))
  m = corrupted_mask.astype(jnp.float32)
  per = alpha * m * sq + beta * (1.0 - m) * sq
  return jnp.mean(jnp.sum(per.reshape(per.shape[0], -1), axis=1))
