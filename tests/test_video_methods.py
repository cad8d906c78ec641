"""Video colourisation (sslax/methods/video_colorization.py): the attention
loss against a naive loop over target and reference positions (values and
gradients), the k-means colour centres, and the Lab round trip its colours
go through."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sslax.data.color import lab_to_rgb, rgb_to_lab
from sslax.methods import video_colorization as vc


def _naive_loss(target_f, ref_f, ref_colour, target_colour, k, temperature):
  """-mean_i log sum_j softmax_j(f_i . f_j / T) [c_j == c_i], one position at a time."""
  total, count = 0.0, 0
  for b in range(target_f.shape[0]):
    for i in range(target_f.shape[1]):
      logits = jnp.stack([jnp.dot(target_f[b, i], ref_f[b, j]) / temperature
                          for j in range(ref_f.shape[1])])
      weights = jnp.exp(logits - jnp.max(logits))
      weights = weights / jnp.sum(weights)
      p = sum(weights[j] for j in range(ref_f.shape[1]) if ref_colour[b, j] == target_colour[b, i])
      total = total - jnp.log(jnp.maximum(p, 1e-8))
      count += 1
  return total / count


def test_attention_colour_loss_equals_the_naive_loop_values_and_gradients():
  rng = np.random.default_rng(0)
  b, n, m, d, k = 2, 5, 7, 4, 3
  tf = jnp.asarray(rng.normal(size=(b, n, d)), jnp.float32)
  rf = jnp.asarray(rng.normal(size=(b, m, d)), jnp.float32)
  rc = rng.integers(0, k, (b, m))
  tc = rng.integers(0, k, (b, n))
  loss = lambda t, r: vc.attention_colour_loss(t, r, jnp.asarray(rc), jnp.asarray(tc), k,
                                               0.5)[0]
  naive = lambda t, r: _naive_loss(t, r, rc, tc, k, 0.5)
  np.testing.assert_allclose(float(loss(tf, rf)), float(naive(tf, rf)), rtol=1e-5)
  g = jax.grad(loss, argnums=(0, 1))(tf, rf)
  g_naive = jax.grad(naive, argnums=(0, 1))(tf, rf)
  for a, e in zip(g, g_naive):
    np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-4, atol=1e-6)
  # a target whose colour no reference has: the loss is capped, not infinite
  assert np.isfinite(float(vc.attention_colour_loss(tf, rf, jnp.zeros((b, m), int),
                                                    jnp.ones((b, n), int), k, 0.5)[0]))


def test_kmeans_finds_separated_colour_clusters():
  rng = np.random.default_rng(1)
  truth = np.array([[-40.0, 20.0], [0.0, 0.0], [30.0, -50.0], [60.0, 60.0]])
  points = np.concatenate([c + rng.normal(0, 2, (500, 2)) for c in truth])
  centres = vc.kmeans(points, 4, seed=0)
  order = np.lexsort((truth[:, 1], truth[:, 0]))
  np.testing.assert_allclose(centres, truth[order], atol=0.5)
  assert np.array_equal(np.asarray(vc.nearest_centre(jnp.asarray(truth[order]),
                                                     jnp.asarray(centres))), np.arange(4))
  with pytest.raises(Exception, match="fewer distinct colours than"):
    vc.kmeans(np.zeros((10, 2)), 4, seed=0)


def test_lab_round_trip():
  rgb = np.random.default_rng(2).uniform(0, 1, (64, 3)).astype(np.float32)
  back = np.asarray(lab_to_rgb(rgb_to_lab(jnp.asarray(rgb))))
  np.testing.assert_allclose(back, rgb, atol=2e-4)


# ------------------------------------------- Shuffle and Learn, arrow of time

def test_shuffle_and_learn_tuples_follow_the_paper():
  """Five distinct ordered frames inside one window; positives (b, c, d),
  negatives (b, a, d) or (b, e, d); the tuple from the highest-motion draw."""
  from sslax.methods import shuffle_and_learn as sl
  idx = np.asarray(sl.five_frames(jax.random.PRNGKey(0), 16, 8, 500))
  assert np.all(np.diff(idx, axis=1) > 0) and idx.min() >= 0 and idx.max() <= 15
  assert np.all(idx[:, -1] - idx[:, 0] <= 7)  # one window of 8 frames
  # a window as long as the clip: a..e are frames 0..4
  clips = np.zeros((200, 5, 2, 2, 1), np.uint8)
  picked, labels = map(np.asarray, sl.triplets(jax.random.PRNGKey(1), jnp.asarray(clips), 5, 1))
  assert 0.4 < labels.mean() < 0.6
  assert np.all(picked[labels == 1] == [1, 2, 3])
  negatives = picked[labels == 0]
  assert np.all(negatives[:, [0, 2]] == [1, 3]) and set(negatives[:, 1]) == {0, 4}
  # frames 0..4 mid-gray, 5..9 uniform noise (consecutive noise frames differ
  # by 85 on average, gray and noise by 64): the window 5..9 moves most, and
  # with 64 draws per clip it is drawn and kept: b, d = 6, 8
  noise = np.random.default_rng(0).integers(0, 256, (50, 5, 32, 32, 1))
  clips = np.concatenate([np.full((50, 5, 32, 32, 1), 128), noise], axis=1).astype(np.uint8)
  picked, _ = map(np.asarray, sl.triplets(jax.random.PRNGKey(2), jnp.asarray(clips), 5, 64))
  assert np.all(picked[:, [0, 2]] == [6, 8])
  # the naive motion: mean absolute change of consecutive picked frames
  one = np.asarray([[0, 2, 6, 7, 9]])
  expect = np.mean(np.abs(np.diff(clips[:1, one[0]].astype(float), axis=1)))
  np.testing.assert_allclose(float(sl.motion(jnp.asarray(clips[:1]), jnp.asarray(one))[0]),
                             expect, rtol=1e-6)


def test_arrow_of_time_reverses_exactly_the_backward_clips():
  from sslax.methods import arrow_of_time as at
  index, labels = at.directed_frames(jax.random.PRNGKey(0), 16, 4, 2, 300)
  index, labels = np.asarray(index), np.asarray(labels)
  steps = np.diff(index, axis=1)
  assert np.all(steps[labels == 1] == 2) and np.all(steps[labels == 0] == -2)
  assert index.min() >= 0 and index.max() <= 15 and 0.4 < labels.mean() < 0.6
  assert at.span(4, 2) == 7


@pytest.mark.parametrize("name,settings,match", [
    ("shuffle_and_learn", {"window": 9}, "shuffle_and_learn.window=8 or less"),
    ("arrow_of_time", {"frames": 5, "stride": 2}, r"\(frames - 1\) \* stride \+ 1 <= 8"),
])
def test_clips_shorter_than_the_method_needs_are_one_line(name, settings, match):
  from sslax.config_loading import load_config_file
  from sslax.errors import UserError
  from sslax.methods import build_method
  config = load_config_file(f"configs/{name}.py:smoke")
  config[name].update(settings)
  method = build_method(config)
  clips = np.zeros((2, 8, 16, 16, 3), np.uint8)
  with pytest.raises(UserError, match=match):
    method.init(jax.random.PRNGKey(0), {"clip": clips})
  with pytest.raises(UserError, match="trains on clips"):
    method.init(jax.random.PRNGKey(0), {"image": clips[:, 0]})


def test_eval_pretext_measures_the_trained_checkpoint_on_held_out_clips(tmp_path):
  """``sslax eval pretext`` on a smoke arrow-of-time run: its figures are the
  loss_fn of the checkpoint's own parameters (not the initial ones) on the
  test clips, batch by batch with the documented keys."""
  from sslax.data import video_corpus
  from sslax.data.pipeline import read_examples
  from sslax.eval import pretext
  from sslax.config_loading import load_config_file
  from sslax.train import loop, run as run_lib
  data = str(tmp_path / "video")
  video_corpus.make_corpus(data, clips=(16, 16), frames=8, size=32, log=lambda line: None)
  config = load_config_file("configs/arrow_of_time.py:smoke")
  config.data.update(data_dir=data, image_size=(32, 32))
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(config, workdir)
  result = pretext.evaluate_workdir(workdir, batches=1, seed=3)
  assert result["examples"] == 8 and result["split"] == "test" and result["step"] == 8
  run = run_lib.setup(config)
  _, (params, model_state, method_state) = pretext.restore_parts(workdir, run)
  init = run_lib.init_state(run)
  test = video_corpus.load_split(data, "test")
  batch = read_examples(test, np.arange(8))
  key = jax.random.fold_in(jax.random.PRNGKey(3), 0)
  with jax.set_mesh(run.mesh):
    trained = run.method.loss_fn(params, model_state, method_state, batch, key)
    initial = run.method.loss_fn(init.params, init.model_state, init.method_state, batch, key)
  np.testing.assert_allclose(result["loss"], float(trained[0]), rtol=1e-5)
  np.testing.assert_allclose(result["pretext_top1"], float(trained[1].metrics["pretext_top1"]))
  assert abs(float(initial[0]) - float(trained[0])) > 1e-4


def test_video_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
  """More reference frames than a clip holds, a missing corpus, and clips
  whose masks do not match their frames: one line each, naming the fix."""
  from conftest import fails_cleanly  # pylint: disable=g-import-not-at-top
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  from sslax.data.source import ArraySource  # pylint: disable=g-import-not-at-top
  from sslax.errors import UserError  # pylint: disable=g-import-not-at-top
  from sslax.eval import track  # pylint: disable=g-import-not-at-top
  from sslax.methods import build_method  # pylint: disable=g-import-not-at-top
  config = load_config_file("configs/video_colorization.py:smoke")
  config.video_colorization.references = 4
  clips = ArraySource(arrays={"clip": np.zeros((2, 4, 16, 16, 3), np.uint8)})
  with pytest.raises(UserError, match="needs 4 reference frames and a target; set "
                     r"--config.video_colorization.references=3 or less"):
    build_method(config).constants(clips)
  missing = str(tmp_path / "nowhere")
  fails_cleanly(capsys, ["train", "--config", "configs/arrow_of_time.py:smoke", "--workdir",
                         str(tmp_path / "run"), f"--config.data.data_dir={missing}"],
                f"no video corpus in {missing}; build it with")
  assert not (tmp_path / "run").exists()
  n, t = 3, 4
  wrong = ArraySource(arrays={"clip": np.zeros((n, t, 32, 32, 3), np.uint8),
                              "masks": np.ones((n, t, 16, 16), np.uint8),
                              "keypoints": np.zeros((n, t, 5, 2), np.float32),
                              "visible": np.ones((n, t, 5), bool)})
  from sslax.data import sources  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sources.SOURCES, "video_corpus", lambda c, split: wrong)
  with pytest.raises(UserError, match=r"masks \(4, 16, 16\), keypoints \(4, 5, 2\) do not "
                     r"match the clips \(4, 32, 32, 3\)"):
    track.clip_source(config)
