"""`sslax eval objects` (sslax/eval/objects.py): mask pooling against a hand
computation, objects taken from the right frames and left out when too
small, a probe that separates classes the features encode, one-line errors
for clips without object classes, and the command on a tiny corpus."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from sslax.data import video_corpus
from sslax.errors import UserError
from sslax.eval import objects


def test_pooling_weights_each_cell_by_its_covered_share():
  features = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
  mask = np.zeros((4, 4), bool)
  mask[0:2, 0:2] = True   # all of cell (0, 0)
  mask[0, 2] = True       # a quarter of cell (0, 1)
  expected = (1.0 * features[0, 0] + 0.25 * features[0, 1]) / 1.25
  np.testing.assert_allclose(objects.pooled(features, mask), expected, rtol=1e-6)


def _clips(labels, frames=3, size=8):
  """Clips whose object k fills row block k of every frame, except that
  object 2 shrinks to 2 pixels in the middle frame."""
  n = len(labels)
  masks = np.zeros((n, frames, size, size), np.uint8)
  masks[:, :, 0:4, :] = 1
  masks[:, :, 4:8, :] = 2
  masks[:, 1, 4:8, :] = 0
  masks[:, 1, 4, 0:2] = 2
  return masks


class _ClipSource:
  """An in-memory clip source with garment classes."""

  def __init__(self, masks, labels):
    self.masks, self.garment_labels = masks, np.asarray(labels, np.int32)
    t, h, w = masks.shape[1:]
    self.element_spec = {"clip": ((t, h, w, 3), "uint8"), "masks": ((t, h, w), "uint8")}

  def __len__(self):
    return len(self.masks)

  def get(self, indices):
    indices = np.asarray(indices)
    # the clip's pixels carry the index, for the stand-in features below
    clip = np.broadcast_to(indices[:, None, None, None, None],
                           (len(indices), *self.element_spec["clip"][0])).astype(np.uint8)
    return {"clip": clip, "masks": self.masks[indices]}


def test_objects_come_from_evenly_spaced_frames_and_small_ones_are_left_out():
  labels = [[3, 7], [1, 2]]
  masks = _clips(labels)
  source = _ClipSource(masks, labels)
  seen = []

  def features_fn(clip):
    seen.append(int(clip[0, 0, 0, 0]))
    # channel 0: 1 on object 1's cell rows, 2 on object 2's; channel 1: the frame
    f = np.zeros((len(clip), 4, 4, 2), np.float32)
    f[:, 0:2, :, 0], f[:, 2:4, :, 0] = 1, 2
    f[..., 1] = np.arange(len(clip))[:, None, None]
    return f

  x, y = objects.object_examples(source, features_fn, frames=3, min_pixels=3)
  assert seen == [0, 1]
  # frames 0, 1, 2 of each clip; object 2 of frame 1 covers 2 pixels: left out
  assert y.tolist() == [3, 7, 3, 3, 7, 1, 2, 1, 1, 2]
  np.testing.assert_allclose(x[:5], [[1, 0], [2, 0], [1, 1], [1, 2], [2, 2]])
  x, y = objects.object_examples(source, features_fn, frames=2, min_pixels=3)
  assert y.tolist() == [3, 7, 3, 7, 1, 2, 1, 2]  # frames 0 and 2


def test_a_probe_on_features_that_encode_the_class_is_exact():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, (40, 2))
  masks = _clips(labels)
  train, test = _ClipSource(masks[:30], labels[:30]), _ClipSource(masks[30:], labels[30:])

  def features_fn(source):
    def fn(clip):
      i = int(clip[0, 0, 0, 0])
      f = rng.normal(0, 0.1, (len(clip), 4, 4, 4)).astype(np.float32)
      f[:, 0:2, :, source.garment_labels[i, 0]] += 1
      f[:, 2:4, :, source.garment_labels[i, 1]] += 1
      return f
    return fn

  train_x, train_y = objects.object_examples(train, features_fn(train), frames=2)
  test_x, test_y = objects.object_examples(test, features_fn(test), frames=2)
  from sslax.probes.linear import linear_probe
  result = linear_probe(train_x, train_y, test_x, test_y, fraction=1.0, num_classes=4)
  assert result["top1"] == 1.0
  # and the features of one class do not separate from shuffled labels
  shuffled = rng.permutation(train_y)
  result = linear_probe(train_x, shuffled, test_x, test_y, fraction=1.0, num_classes=4)
  assert result["top1"] < 0.7


def test_clips_without_object_classes_are_one_line():
  masks = _clips([[0, 1]])
  source = _ClipSource(masks, [[0, 1]])
  del source.garment_labels
  with pytest.raises(UserError, match="needs clips whose objects have classes"):
    objects.object_examples(source, lambda clip: np.zeros((3, 4, 4, 2)), frames=1)


@pytest.mark.slow
def test_the_command_on_a_tiny_corpus(tmp_path):
  """`sslax eval objects --features lab_pixels` on a workdir of a video
  run's config: its eval file, with the counts of objects."""
  corpus = tmp_path / "video"
  video_corpus.make_corpus(str(corpus), clips=(6, 3), frames=4, size=64,
                           log=lambda line: None)
  workdir = tmp_path / "run"
  proc = subprocess.run(
      [sys.executable, "-m", "sslax", "train", "--config",
       os.path.join(ROOT, "configs", "video_colorization.py:smoke"), "--workdir", str(workdir),
       f"--config.data.data_dir={corpus}", "--config.num_steps=1",
       "--config.progress_bar=False", "--config.checkpoint_every=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for features in ("lab_pixels", "encoder"):
    proc = subprocess.run(
        [sys.executable, "-m", "sslax", "eval", "objects", "--workdir", str(workdir),
         "--features", features, "--frames", "2", "--min-pixels", "4",
         f"--config.evals.objects.data.data_dir={corpus}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = "objects" if features == "encoder" else f"objects_{features}"
    with open(workdir / "eval" / f"{name}.json") as f:
      result = json.load(f)
    assert 0 <= result["top1"] <= 1
    assert 0 < result["train_objects"] <= 6 * 3 * 2 and 0 < result["test_objects"] <= 3 * 3 * 2
