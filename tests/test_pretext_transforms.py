"""Pretext transforms: rotations, relative patches, jigsaw permutations and
tiles, CIE Lab and ab bins, class rebalancing, inpainting masks, denoising
corruptions and the weighted reconstruction loss, on hand-made inputs."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sslax import losses
from sslax.data import color
from sslax.methods import (color_common, context_encoder, denoising_ae, jigsaw,
                           relative_patch, rotation)


def _arange_images(n, h, w, c):
  """Images whose every value is distinct, so a pixel tells where it came from."""
  return jnp.arange(n * h * w * c, dtype=jnp.float32).reshape(n, h, w, c)


# --------------------------------------------------------------------------- #
# Rotation.
# --------------------------------------------------------------------------- #


def test_rotate_all_matches_np_rot90_and_labels():
  images = _arange_images(2, 3, 3, 2)
  rotated, labels = jax.jit(rotation.rotate_all)(images)
  assert rotated.shape == (8, 3, 3, 2)
  rotated, images = np.asarray(rotated), np.asarray(images)
  np.testing.assert_array_equal(np.asarray(labels), [0, 1, 2, 3, 0, 1, 2, 3])
  assert labels.dtype == jnp.int32
  for i in range(2):
    for k in range(4):
      np.testing.assert_array_equal(rotated[4 * i + k], np.rot90(images[i], k))


def test_rotate_all_is_counter_clockwise():
  # [[a, b], [c, d]] turned 90 degrees counter-clockwise is [[b, d], [a, c]].
  image = jnp.array([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
  rotated, _ = rotation.rotate_all(image)
  np.testing.assert_array_equal(np.asarray(rotated[1, :, :, 0]), [[2, 4], [1, 3]])
  np.testing.assert_array_equal(np.asarray(rotated[2, :, :, 0]), [[4, 3], [2, 1]])


def test_rotate_all_rejects_non_square():
  with pytest.raises(ValueError, match="square"):
    rotation.rotate_all(jnp.zeros((1, 4, 5, 3)))


# --------------------------------------------------------------------------- #
# Relative patch location.
# --------------------------------------------------------------------------- #

PATCH, GAP, JITTER = 5, 4, 2
SIDE = 3 * PATCH + 2 * GAP + 2 * JITTER  # the smallest allowed image side
_offsets = jax.jit(relative_patch.relative_patch_offsets, static_argnums=(1, 2, 3, 4, 5, 6))


def _base_corners(h, w, patch, gap):
  side = 3 * patch + 2 * gap
  top, left = (h - side) // 2, (w - side) // 2
  return np.array([(top + r * (patch + gap), left + c * (patch + gap))
                   for r in range(3) for c in range(3)])


def test_relative_patch_grid_without_jitter_is_centred_and_gapped():
  corners, _ = _offsets(jax.random.key(0), 4, 30, 31, PATCH, GAP, 0)
  corners = np.asarray(corners)
  for row in corners:
    np.testing.assert_array_equal(row, _base_corners(30, 31, PATCH, GAP))
  # Horizontal and vertical neighbours are exactly patch + gap apart.
  grid = corners[0].reshape(3, 3, 2)
  assert np.all(np.diff(grid[:, :, 1], axis=1) == PATCH + GAP)
  assert np.all(np.diff(grid[:, :, 0], axis=0) == PATCH + GAP)
  # The grid (3*5 + 2*4 = 23 px) is centred: 3 px above, 4 below, 4 | 4 sideways.
  assert grid[0, 0].tolist() == [3, 4]
  assert 30 - (grid[2, 2, 0] + PATCH) == 4 and 31 - (grid[2, 2, 1] + PATCH) == 4


def test_relative_patch_jitter_within_bounds_and_gap_kept():
  h = w = SIDE
  corners = np.asarray(_offsets(jax.random.key(0), 2000, h, w, PATCH, GAP,
                                JITTER)[0])
  shift = corners - _base_corners(h, w, PATCH, GAP)
  assert shift.min() == -JITTER and shift.max() == JITTER  # all offsets reached
  assert set(np.unique(shift).tolist()) == set(range(-JITTER, JITTER + 1))
  assert corners.min() >= 0 and corners.max() + PATCH <= h
  grid = corners.reshape(-1, 3, 3, 2)
  # Jittered patches never overlap: the gap left is at least gap - 2 jitter.
  assert np.diff(grid[..., 1], axis=2).min() - PATCH >= GAP - 2 * JITTER
  assert np.diff(grid[..., 0], axis=1).min() - PATCH >= GAP - 2 * JITTER
  # Shifts are independent per patch: some rows move differently from others.
  assert np.any(shift[:, 0] != shift[:, 1])


def test_relative_patch_contents_match_returned_corners():
  images = _arange_images(64, 27, 29, 3)
  key = jax.random.key(3)
  f = jax.jit(relative_patch.relative_patch_pairs, static_argnums=(2, 3, 4))
  centre, neighbour, labels = f(key, images, PATCH, GAP, JITTER)
  corners, labels2 = _offsets(key, 64, 27, 29, PATCH, GAP, JITTER)
  assert centre.shape == neighbour.shape == (64, PATCH, PATCH, 3)
  np.testing.assert_array_equal(np.asarray(labels), np.asarray(labels2))
  images, corners, labels = np.asarray(images), np.asarray(corners), np.asarray(labels)
  centre, neighbour = np.asarray(centre), np.asarray(neighbour)
  neighbour_cells = [0, 1, 2, 3, 5, 6, 7, 8]
  for i in range(64):
    r, c = corners[i, 4]
    np.testing.assert_array_equal(centre[i], images[i, r:r + PATCH, c:c + PATCH])
    r, c = corners[i, neighbour_cells[labels[i]]]
    np.testing.assert_array_equal(neighbour[i], images[i, r:r + PATCH, c:c + PATCH])


def test_relative_patch_labels_are_uniform():
  labels = np.concatenate([
      np.asarray(_offsets(jax.random.key(s), 2000, SIDE, SIDE, PATCH, GAP,
                          JITTER)[1]) for s in range(1, 5)])
  counts = np.bincount(labels, minlength=8)
  assert len(counts) == 8
  # 1000 expected per label, binomial sd ~30: 5 sd tolerance.
  assert np.all(np.abs(counts - 1000) < 150), counts


def test_relative_patch_rejects_small_images():
  _offsets(jax.random.key(0), 1, SIDE, SIDE, PATCH, GAP, JITTER)  # just fits
  with pytest.raises(ValueError, match="image side"):
    relative_patch.relative_patch_pairs(jax.random.key(0),
                                 jnp.zeros((1, SIDE - 1, SIDE + 10, 3)), PATCH,
                                 GAP, JITTER)


# --------------------------------------------------------------------------- #
# Jigsaw.
# --------------------------------------------------------------------------- #


def _naive_min_hamming(perms):
  best = len(perms[0])
  for i in range(len(perms)):
    for j in range(i + 1, len(perms)):
      best = min(best, sum(int(a != b) for a, b in zip(perms[i], perms[j])))
  return best


@functools.lru_cache(maxsize=None)
def _perms30():
  return jigsaw.hamming_permutations(30)


def test_hamming_permutations_valid_unique_deterministic():
  perms = _perms30()
  assert perms.shape == (30, 9) and perms.dtype == np.int32
  np.testing.assert_array_equal(np.sort(perms, axis=1), np.tile(np.arange(9), (30, 1)))
  assert len({tuple(p) for p in perms.tolist()}) == 30
  np.testing.assert_array_equal(jigsaw.hamming_permutations(30), perms)
  # Greedy: a shorter run with the same seed is a prefix of a longer one.
  np.testing.assert_array_equal(jigsaw.hamming_permutations(10), perms[:10])
  assert not np.array_equal(jigsaw.hamming_permutations(30, seed=1), perms)


def test_hamming_permutations_min_distance():
  perms = _perms30()
  d = jigsaw.min_hamming_distance(perms)
  assert d == _naive_min_hamming(perms.tolist())
  # Greedy max-min selection over all 9! candidates reaches 7 for P = 30
  # (9 for the first 9, which form a Latin square, 8 for P = 10).
  assert d >= 7
  assert jigsaw.min_hamming_distance(perms[:9]) == 9
  assert jigsaw.min_hamming_distance(perms[:10]) >= 8


def test_hamming_permutations_sampled_candidates_and_errors():
  perms = jigsaw.hamming_permutations(5, num_tiles=4)
  assert perms.shape == (5, 4)
  assert len({tuple(p) for p in perms.tolist()}) == 5
  big = jigsaw.hamming_permutations(4, num_tiles=12, num_candidates=2000)
  np.testing.assert_array_equal(np.sort(big, axis=1), np.tile(np.arange(12), (4, 1)))
  with pytest.raises(ValueError):
    jigsaw.hamming_permutations(7, num_tiles=3)  # only 3! = 6 exist


def test_image_to_tiles_layout_and_round_trip():
  images = _arange_images(2, 10, 11, 3)  # cells of 3 px over the central 9x9
  tiles = np.asarray(jigsaw.image_to_tiles(images))
  assert tiles.shape == (2, 9, 3, 3, 3)
  crop = np.asarray(images)[:, 0:9, 1:10]
  for k in range(9):
    r, c = divmod(k, 3)
    np.testing.assert_array_equal(tiles[:, k],
                                  crop[:, 3 * r:3 * r + 3, 3 * c:3 * c + 3])
  perm = _perms30()[5]
  shuffled = jigsaw.permute_tiles(tiles, perm)
  np.testing.assert_array_equal(np.asarray(shuffled), tiles[:, perm])
  restored = jigsaw.permute_tiles(shuffled, jigsaw.inverse_permutation(perm))
  np.testing.assert_array_equal(np.asarray(jigsaw.tiles_to_image(restored)), crop)
  # One permutation per example.
  perms = _perms30()[[3, 17]]
  shuffled = np.asarray(jigsaw.permute_tiles(tiles, perms))
  np.testing.assert_array_equal(shuffled[0], tiles[0][perms[0]])
  np.testing.assert_array_equal(shuffled[1], tiles[1][perms[1]])
  restored = jigsaw.permute_tiles(shuffled, jigsaw.inverse_permutation(perms))
  np.testing.assert_array_equal(np.asarray(jigsaw.tiles_to_image(restored)), crop)


def test_image_to_tiles_central_crop_of_each_cell():
  images = _arange_images(1, 12, 12, 1)
  tiles = jigsaw.image_to_tiles(images, grid=3, tile=2)  # cells 4, offset 1
  np.testing.assert_array_equal(np.asarray(tiles[0, 5]),
                                np.asarray(images)[0, 5:7, 9:11])
  with pytest.raises(ValueError):
    jigsaw.image_to_tiles(images, grid=3, tile=5)


def test_jigsaw_tiles_crops_inside_cells_and_shuffles():
  n, side, tile = 16, 13, 3  # cells of 4 px over the central 12x12 (offset 0)
  images = _arange_images(n, side, side, 1)
  perms = _perms30()
  f = jax.jit(jigsaw.jigsaw_tiles, static_argnums=(3, 4))
  shuffled, labels = f(jax.random.key(2), images, perms, tile)
  assert shuffled.shape == (n, 9, tile, tile, 1) and labels.shape == (n,)
  labels = np.asarray(labels)
  assert labels.min() >= 0 and labels.max() < 30 and len(set(labels)) > 1
  images, shuffled = np.asarray(images), np.asarray(shuffled)
  offsets = set()
  for i in range(n):
    for pos in range(9):
      source = perms[labels[i]][pos]
      r0, c0 = divmod(source, 3)
      flat = int(shuffled[i, pos, 0, 0, 0]) - i * side * side
      r, c = divmod(flat, side)
      # The tile's top-left pixel lies in its source cell, with room for the tile.
      assert 4 * r0 <= r <= 4 * r0 + 4 - tile and 4 * c0 <= c <= 4 * c0 + 4 - tile
      np.testing.assert_array_equal(shuffled[i, pos], images[i, r:r + tile, c:c + tile])
      offsets.add((r - 4 * r0, c - 4 * c0))
  assert offsets == {(a, b) for a in range(2) for b in range(2)}


# --------------------------------------------------------------------------- #
# CIE Lab.
# --------------------------------------------------------------------------- #


def _naive_lab(rgb):
  """sRGB -> Lab straight from the IEC 61966-2-1 and CIE 1976 formulas."""
  lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
  m = [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
       [0.0193339, 0.1191920, 0.9503041]]
  xyz = [sum(m[i][j] * lin[j] for j in range(3)) for i in range(3)]
  white = [sum(row) for row in m]
  def f(t):
    return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29
  fx, fy, fz = (f(xyz[i] / white[i]) for i in range(3))
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)]


@pytest.mark.parametrize("rgb, lab", [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20)),
    ((0.0, 1.0, 0.0), (87.73, -86.18, 83.18)),
    ((0.0, 0.0, 1.0), (32.30, 79.19, -107.86)),
])
def test_rgb_to_lab_reference_values(rgb, lab):
  out = np.asarray(color.rgb_to_lab(jnp.array(rgb)))
  np.testing.assert_allclose(out, lab, atol=0.01)


def test_rgb_to_lab_matches_naive_formulas_and_round_trips():
  rng = np.random.default_rng(0)
  rgb = rng.uniform(0.0, 1.0, size=(2000, 3)).astype(np.float32)
  rgb[:8] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [0.01, 0.02, 0.03],
             [1, 0, 1], [0, 1, 1], [1, 1, 0], [0.04, 0.5, 0.9]]
  lab = jax.jit(color.rgb_to_lab)(rgb)
  naive = np.array([_naive_lab(c) for c in rgb[:200].astype(np.float64).tolist()])
  np.testing.assert_allclose(np.asarray(lab[:200]), naive, atol=2e-3)
  back = jax.jit(color.lab_to_rgb)(lab)
  np.testing.assert_allclose(np.asarray(back), rgb, atol=1e-4)
  # Image-shaped inputs keep their shape.
  img = jnp.asarray(rgb[:24].reshape(2, 3, 4, 3))
  assert color.rgb_to_lab(img).shape == (2, 3, 4, 3)


def test_lab_gradients_are_finite_at_black_and_white():
  grad = jax.jit(jax.grad(lambda x: jnp.sum(color.rgb_to_lab(x))))
  g = grad(jnp.array([[0.0, 0, 0], [1.0, 1, 1]]))
  assert np.all(np.isfinite(np.asarray(g)))


# --------------------------------------------------------------------------- #
# ab bins and rebalancing.
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=None)
def _centres():
  return color_common.ab_bins(10.0)


def test_ab_bins_in_gamut_count_and_grid():
  centres = _centres()
  # Sampling the sRGB cube (64^3 colours) gives 261 in-gamut bins of side 10;
  # Zhang et al. 2016 report 313 for their (ImageNet-derived) gamut.
  assert centres.shape == (261, 2)
  assert np.all(centres % 10 == 0)
  assert len({tuple(c) for c in centres.tolist()}) == len(centres)
  # The primaries' bins are in gamut; far corners of the plane are not.
  for rgb in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0.5, 0.5, 0.5)]:
    ab = np.asarray(color.rgb_to_lab(jnp.array(rgb, jnp.float32)))[1:]
    assert any(np.all(np.abs(c - ab) <= 5.0) for c in centres), rgb
  assert not any(np.all(c == [100.0, -100.0]) for c in centres)
  assert not any(np.all(c == [-100.0, -100.0]) for c in centres)


def test_ab_to_bin_is_nearest_centre():
  centres = _centres()
  rng = np.random.default_rng(1)
  ab = rng.uniform(-110, 110, size=(500, 2)).astype(np.float32)
  idx = np.asarray(jax.jit(color_common.ab_to_bin)(ab, centres))
  d = ((ab[:, None, :] - centres[None]) ** 2).sum(-1)
  np.testing.assert_allclose(d[np.arange(500), idx], d.min(axis=1), rtol=1e-6)
  # Exact centres map to themselves; shapes follow the input.
  np.testing.assert_array_equal(np.asarray(color_common.ab_to_bin(centres, centres)),
                                np.arange(len(centres)))
  assert color_common.ab_to_bin(ab.reshape(5, 10, 10, 2), centres).shape == (5, 10, 10)


def test_rebalance_weights_expectation_and_order():
  counts = np.array([1000.0, 300.0, 50.0, 5.0, 0.0])
  p = counts / counts.sum()
  w = np.asarray(color_common.rebalance_weights(counts, lam=0.5))
  np.testing.assert_allclose(np.sum(p * w), 1.0, rtol=1e-6)
  assert np.all(np.diff(w) > 0)  # rarer bins weigh more
  expected = 1.0 / (0.5 * p + 0.5 / 5)
  np.testing.assert_allclose(w, expected / np.sum(p * expected), rtol=1e-6)
  # lam = 1: uniform prior, all weights 1.
  np.testing.assert_allclose(np.asarray(color_common.rebalance_weights(counts, lam=1.0)),
                             np.ones(5), rtol=1e-6)


def test_rebalance_weights_with_smoothing():
  centres = _centres()
  rng = np.random.default_rng(2)
  counts = rng.integers(0, 1000, size=len(centres)).astype(np.float32)
  counts[::7] = 0.0
  smoothed = np.asarray(color_common.smooth_distribution(counts / counts.sum(), centres))
  np.testing.assert_allclose(smoothed.sum(), 1.0, rtol=1e-5)
  # Naive smoothing: Gaussian kernel on centre distances, renormalised.
  d = ((centres[:, None] - centres[None]) ** 2).sum(-1)
  naive = np.exp(-d / 50.0) @ (counts / counts.sum())
  np.testing.assert_allclose(smoothed, naive / naive.sum(), rtol=1e-4, atol=1e-8)
  w = np.asarray(color_common.rebalance_weights(counts, 0.5, centres=centres))
  np.testing.assert_allclose(np.sum(smoothed * w), 1.0, rtol=1e-5)
  assert np.all(np.isfinite(w)) and np.all(w > 0)
  order = np.argsort(smoothed)
  assert np.all(np.diff(w[order]) <= 1e-6)


# --------------------------------------------------------------------------- #
# Context-encoder masks.
# --------------------------------------------------------------------------- #


def test_central_block_mask_geometry():
  m = np.asarray(context_encoder.central_block_mask(128, 128))
  assert m.shape == (128, 128, 1) and m.dtype == np.float32
  expected = np.zeros((128, 128, 1), np.float32)
  expected[32:96, 32:96] = 1.0
  np.testing.assert_array_equal(m, expected)
  assert m.sum() == 128 * 128 / 4
  m = np.asarray(context_encoder.central_block_mask(10, 7, 0.5))[..., 0]
  rows, cols = np.nonzero(m)
  assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 6, 1, 4)
  assert m.sum() == 5 * 4


def test_random_block_masks_inside_image():
  f = jax.jit(context_encoder.random_block_masks, static_argnums=(1, 2, 3, 4, 5))
  masks = np.asarray(f(jax.random.key(0), 200, 12, 15, 1, 5))[..., 0]
  assert masks.shape == (200, 12, 15)
  for m in masks:
    rows, cols = np.nonzero(m)
    # A single whole block: never clipped by the border.
    assert m.sum() == 25
    assert rows.max() - rows.min() == 4 and cols.max() - cols.min() == 4
  # Placements reach every border.
  assert masks[:, 0].any() and masks[:, -1].any()
  assert masks[:, :, 0].any() and masks[:, :, -1].any()
  many = np.asarray(f(jax.random.key(1), 50, 12, 15, 3, 4))
  assert set(np.unique(many).tolist()) <= {0.0, 1.0}
  areas = many.sum(axis=(1, 2, 3))
  assert areas.min() >= 16 and areas.max() <= 48 and areas.max() > 16
  with pytest.raises(ValueError):
    context_encoder.random_block_masks(jax.random.key(0), 1, 4, 4, 1, 5)


# --------------------------------------------------------------------------- #
# Denoising corruptions and the weighted loss.
# --------------------------------------------------------------------------- #


def _clean(shape=(200, 500)):
  return jax.random.uniform(jax.random.key(42), shape, minval=0.1, maxval=0.9)


def test_gaussian_noise_statistics_and_mask():
  x = _clean()
  y, m = jax.jit(denoising_ae.gaussian_noise)(jax.random.key(0), x, 0.3)
  noise = np.asarray(y - x)
  assert abs(noise.mean()) < 0.005 and abs(noise.std() - 0.3) < 0.005
  np.testing.assert_array_equal(np.asarray(m), np.ones(x.shape))


def test_masking_noise_rate_and_mask():
  x = _clean()
  y, m = jax.jit(denoising_ae.masking_noise)(jax.random.key(1), x, 0.3)
  y, m, x = np.asarray(y), np.asarray(m), np.asarray(x)
  assert abs(m.mean() - 0.3) < 0.01  # sd of the rate ~0.0015
  np.testing.assert_array_equal(m.astype(bool), y != x)  # no zeros in x
  assert np.all(y[m == 1] == 0.0)
  np.testing.assert_array_equal(y[m == 0], x[m == 0])
  # Per example too (the rate is a per-component probability).
  assert np.all(np.abs(m.mean(axis=1) - 0.3) < 0.12)


def test_salt_and_pepper_rate_values_and_mask():
  x = _clean()
  y, m = jax.jit(denoising_ae.salt_and_pepper)(jax.random.key(2), x, 0.2, -1.0, 2.0)
  y, m, x = np.asarray(y), np.asarray(m), np.asarray(x)
  assert abs(m.mean() - 0.2) < 0.01
  np.testing.assert_array_equal(m.astype(bool), y != x)
  hit = y[m == 1]
  assert set(np.unique(hit).tolist()) == {-1.0, 2.0}
  assert abs((hit == 2.0).mean() - 0.5) < 0.02
  np.testing.assert_array_equal(y[m == 0], x[m == 0])
  y0, _ = denoising_ae.salt_and_pepper(jax.random.key(2), x, 1.0)
  assert set(np.unique(np.asarray(y0)).tolist()) == {0.0, 1.0}


def test_weighted_reconstruction_loss_against_loop():
  rng = np.random.default_rng(3)
  recon = rng.normal(size=(3, 4, 5)).astype(np.float32)
  clean = rng.normal(size=(3, 4, 5)).astype(np.float32)
  mask = (rng.uniform(size=(3, 4, 5)) < 0.4).astype(np.float32)
  alpha, beta = 1.5, 0.25
  total = 0.0
  for n in range(3):
    for i in range(4):
      for j in range(5):
        e = (float(recon[n, i, j]) - float(clean[n, i, j])) ** 2
        total += alpha * e if mask[n, i, j] else beta * e
  naive = total / 3
  got = jax.jit(losses.weighted_reconstruction_loss, static_argnums=(3, 4))(
      recon, clean, mask, alpha, beta)
  np.testing.assert_allclose(float(got), naive, rtol=1e-5)
  # beta = alpha: plain summed squared error per example.
  plain = losses.weighted_reconstruction_loss(recon, clean, mask, 1.0, 1.0)
  np.testing.assert_allclose(float(plain), np.sum((recon - clean) ** 2) / 3, rtol=1e-5)
  with pytest.raises(ValueError):
    losses.weighted_reconstruction_loss(recon, clean, mask[:2], 1.0, 1.0)


def test_corruptions_compose_with_loss_and_vmap():
  x = _clean((8, 6, 6, 1))

  @jax.jit
  def corrupt_and_score(key, x):
    keys = jax.random.split(key, x.shape[0])
    y, m = jax.vmap(lambda k, v: denoising_ae.masking_noise(k, v, 0.5))(keys, x)
    return y, m, losses.weighted_reconstruction_loss(y, x, m, 1.0, 0.0)

  y, m, loss = corrupt_and_score(jax.random.key(5), x)
  assert y.shape == m.shape == x.shape
  expected = np.sum(np.asarray(x) ** 2 * np.asarray(m)) / 8
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  assert math.isfinite(float(loss))
