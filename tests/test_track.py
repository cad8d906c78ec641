"""The tracking evaluation (sslax/eval/track.py) on hand-made clips with
known answers: propagation of a static clip and of a translated square
under a perfect attention, J and F against hand counts, PCK thresholds;
and the video corpus: deterministic, its masks and keypoints matching its
pixels."""

import numpy as np
import pytest

from sslax.data import video_corpus
from sslax.eval import track

H = W = 32
STRIDE = 4
CELLS = H // STRIDE


def _position_features(shift=(0, 0), d=64, seed=0):
  """[h, w, d]: a random code per cell of the scene, seen moved by ``shift``
  cells (the scene content at cell p is that of cell p - shift)."""
  codes = np.random.default_rng(seed).normal(size=(CELLS + 8, CELLS + 8, d))
  ys, xs = np.mgrid[0:CELLS, 0:CELLS]
  return codes[ys - shift[0] + 4, xs - shift[1] + 4]


def _moving_square_features(top_cell, left_cell, side_cells=2, d=16, seed=0):
  """[h, w, d]: one code for the whole background, and a code of its own for
  each cell of a square whose top-left cell is (top_cell, left_cell)."""
  rng = np.random.default_rng(seed)
  background = rng.normal(size=d)
  codes = rng.normal(size=(side_cells, side_cells, d))
  f = np.tile(background, (CELLS, CELLS, 1))
  f[top_cell:top_cell + side_cells, left_cell:left_cell + side_cells] = codes
  return f


def _square(top, left, side=8):
  m = np.zeros((H, W), np.uint8)
  m[top:top + side, left:left + side] = 1
  return m


def test_a_static_clip_propagates_its_mask_exactly():
  masks = np.stack([_square(8, 12)] * 6)
  features = np.stack([_position_features()] * 6)
  first = track.downsample(track.one_hot_masks(masks[0], 1), (CELLS, CELLS))
  labels = track.propagate(features, first, topk=1)
  for t in range(6):
    np.testing.assert_allclose(labels[t], first, atol=1e-6)
  # decoded at full resolution, every frame is the first's labels decoded
  keypoints = np.tile(np.array([[[15.5, 11.5]]], np.float32), (6, 1, 1))
  pred, pred_kp = track.track_clip(features, masks, keypoints, np.ones((6, 1), bool),
                                   num_objects=1, per_object=1, topk=1)
  decoded = np.argmax(track.upsample(first, (H, W)), -1)
  for t in range(1, 6):
    np.testing.assert_array_equal(pred[t], decoded)
  np.testing.assert_allclose(pred_kp, keypoints, atol=0.6)


def test_a_translated_square_is_followed_under_a_perfect_attention():
  # one cell (4 pixels) right and down per frame; the features move with it
  masks = np.stack([_square(4 + 4 * t, 4 + 4 * t) for t in range(4)])
  features = np.stack([_moving_square_features(1 + t, 1 + t) for t in range(4)])
  first = track.downsample(track.one_hot_masks(masks[0], 1), (CELLS, CELLS))
  labels = track.propagate(features, first, topk=1, radius=3)
  for t in range(4):
    truth = track.downsample(track.one_hot_masks(masks[t], 1), (CELLS, CELLS))
    np.testing.assert_allclose(labels[t], truth, atol=1e-6)
  pred, _ = track.track_clip(features, masks, np.zeros((4, 0, 2), np.float32),
                             np.zeros((4, 0), bool), num_objects=1, per_object=1,
                             topk=1, radius=3)
  decoded = [np.argmax(track.upsample(track.downsample(track.one_hot_masks(m, 1),
                                                       (CELLS, CELLS)), (H, W)), -1)
             for m in masks]
  for t in range(1, 4):
    np.testing.assert_array_equal(pred[t], decoded[t])
  copied, _ = track.copy_first_frame(None, masks, np.zeros((4, 0, 2)))
  assert track.region_similarity(copied[3] == 1, masks[3] == 1) == 0.0
  followed = np.stack([masks[0]] + decoded[1:]).astype(np.uint8)
  scores = track.score_clip(pred, followed, np.zeros((4, 0, 2)), np.zeros((4, 0, 2)),
                            np.zeros((4, 0), bool), 1, 1)
  assert scores["J"] == [1.0] and scores["F"] == [1.0]


def test_region_similarity_and_boundary_f_by_hand():
  a = np.zeros((10, 10), bool)
  a[2:6, 2:6] = True  # 16 pixels
  b = np.zeros((10, 10), bool)
  b[2:6, 4:8] = True  # overlaps a in 8
  assert track.region_similarity(a, b) == pytest.approx(8 / 24)
  assert track.region_similarity(a, np.zeros_like(a)) == 0.0
  assert track.region_similarity(np.zeros_like(a), np.zeros_like(a)) == 1.0
  # Tolerance: ceil(0.008 * hypot(10, 10)) = 1 pixel. The boundaries of a and
  # of a shifted by one pixel all match within one pixel: F = 1.
  shifted = np.roll(a, 1, axis=1)
  assert track.boundary_f(a, shifted) == 1.0
  # Shifted by two: a's boundary (12 pixels) matches b's where a column is
  # within one pixel. By hand: a's boundary pixels at columns 2..5 rows 2..5
  # ring; b = a moved 2 right. Precision = recall by symmetry.
  far = np.roll(a, 2, axis=1)
  pb = track._boundary(a)
  dil = np.zeros_like(a)
  for y, x in zip(*np.nonzero(track._boundary(far))):
    dil[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] |= True
  disc_ok = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)  # radius-1 disc
  near = np.zeros_like(a)
  for y, x in zip(*np.nonzero(track._boundary(far))):
    for dy in (-1, 0, 1):
      for dx in (-1, 0, 1):
        if disc_ok[dy + 1, dx + 1] and 0 <= y + dy < 10 and 0 <= x + dx < 10:
          near[y + dy, x + dx] = True
  precision = (pb & near).sum() / pb.sum()
  assert track.boundary_f(a, far) == pytest.approx(precision)  # P = R: F = P
  assert 0 < precision < 1
  assert track.boundary_f(a, np.zeros_like(a)) == 0.0
  assert track.boundary_f(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_davis_boundary_by_hand():
  a = np.zeros((5, 5), bool)
  a[1:3, 1:3] = True
  # a pixel is on it when its right, lower or lower-right neighbour differs
  expected = np.array([[1, 1, 1, 0, 0],
                       [1, 0, 1, 0, 0],
                       [1, 1, 1, 0, 0],
                       [0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0]], bool)
  np.testing.assert_array_equal(track.davis_boundary(a), expected)
  # the image's edge draws nothing under DAVIS's rule, everything under sslax's
  right = np.zeros((5, 5), bool)
  right[:, 3:] = True
  np.testing.assert_array_equal(np.nonzero(track.davis_boundary(right).any(0))[0], [2])
  np.testing.assert_array_equal(track._boundary(right), right)  # two columns wide: all edge
  assert not track.davis_boundary(np.ones((5, 5), bool)).any()
  assert track._boundary(np.ones((5, 5), bool)).sum() == 16
  # the same tolerance and F-measure as sslax's F: a mask moved one pixel matches
  wide = np.zeros((10, 10), bool)
  wide[2:6, 2:6] = True
  assert track.boundary_f(wide, np.roll(wide, 1, axis=1), boundary=track.davis_boundary) == 1.0


def test_davis_scores_leave_the_last_frame_out():
  masks = np.stack([_square(8, 12)] * 4)
  pred = masks.copy()
  pred[3] = 0  # lost in the last frame only
  scores = track.score_clip(pred, masks, np.zeros((4, 0, 2)), np.zeros((4, 0, 2)),
                            np.zeros((4, 0), bool), 1, 1)
  assert scores["J"] == [pytest.approx(2 / 3)] and scores["F"] == [pytest.approx(2 / 3)]
  assert scores["davis2017"] == {"J": [1.0], "F": [1.0]}
  pred[1] = 0  # and in frame 1: half of DAVIS's frames 1..2
  summary = track.summarise([track.score_clip(pred, masks, np.zeros((4, 0, 2)),
                                              np.zeros((4, 0, 2)), np.zeros((4, 0), bool),
                                              1, 1)])
  assert summary["J"] == pytest.approx(100 / 3) and summary["davis2017"]["J"] == 50.0
  assert summary["davis2017"]["J&F"] == 50.0 and summary["objects"] == 1


def test_pck_thresholds():
  true = np.array([[10.0, 10.0], [10.0, 10.0], [10.0, 10.0]])
  pred = np.array([[11.0, 10.0], [13.0, 10.0], [30.0, 10.0]])  # errors 1, 3, 20
  size = np.array([20.0, 20.0, 20.0])  # 0.1 x 20 = 2 pixels, 0.2 x 20 = 4
  visible = np.array([True, True, True])
  assert track.pck(pred, true, visible, size, 0.1) == (1, 3)
  assert track.pck(pred, true, visible, size, 0.2) == (2, 3)
  assert track.pck(pred, true, np.array([True, False, False]), size, 0.1) == (1, 1)
  kp = np.array([[5, 5], [5, 0], [5, 9], [0, 5], [12, 5]], np.float32)  # x 0..12, y 0..9
  np.testing.assert_array_equal(track.object_box_sizes(kp, 5), [13.0] * 5)


# --- the video corpus ---------------------------------------------------------


def test_rendered_masks_and_keypoints_match_the_pixels():
  rng = np.random.default_rng(0)
  background = np.full((6, 64, 64, 3), 77, np.uint8)
  garments = np.zeros((3, 28, 28), np.uint8)
  garments[:, 4:24, 6:22] = 200  # solid blocks: every support pixel is tinted
  clip = video_corpus.render_clip(background, garments, rng)
  masks, pixels = clip["masks"], clip["clip"]
  assert masks.shape == (6, 64, 64) and set(np.unique(masks)) <= {0, 1, 2, 3}
  np.testing.assert_array_equal(pixels[masks == 0], 77)  # background untouched
  # the non-fading objects cover their pixels with their own colour
  for k in (1, 2):
    covered = pixels[masks == k].astype(int)
    assert len(covered) and np.all(np.abs(covered - 77).max(axis=-1) > 0)
  # a visible keypoint lies on its own object
  kp, vis = clip["keypoints"], clip["visible"]
  owner = np.repeat([1, 2, 3], video_corpus.KEYPOINTS_PER_OBJECT)
  for t in range(6):
    for i in np.nonzero(vis[t])[0]:
      x, y = np.round(kp[t, i]).astype(int)
      assert masks[t, y, x] == owner[i]
  assert vis.any()


def test_the_corpus_is_deterministic_and_its_splits_disjoint(tmp_path):
  metas = [video_corpus.make_corpus(str(tmp_path / name), clips=(3, 2), frames=4, size=32,
                                    log=lambda line: None) for name in ("a", "b")]
  assert metas[0]["train_photos"] == metas[1]["train_photos"]
  assert not set(metas[0]["train_photos"]) & set(metas[0]["test_photos"])
  for split in ("train", "test"):
    a, b = (np.load(tmp_path / name / f"{split}.npz") for name in ("a", "b"))
    for key in a.files:
      np.testing.assert_array_equal(a[key], b[key])
  source = video_corpus.load_split(str(tmp_path / "a"), "train")
  assert source.element_spec == {"clip": ((4, 32, 32, 3), "uint8"),
                                 "masks": ((4, 32, 32), "uint8"),
                                 "keypoints": ((4, 15, 2), "float32"),
                                 "visible": ((4, 15), "bool")}
  assert source.garment_labels.shape == (3, 3)
