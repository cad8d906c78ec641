"""Colourisation and split-brain autoencoders: the photo corpus (on a tiny
fake set of wallpaper files), the L input and its transfer to grayscale, the
rebalanced classification loss against its formula, gradients, config errors,
and a short run through the trainer, the transfer probe and the picture."""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from conftest import ROOT
from sslax.config_loading import load_config_file
from sslax.data import augment, color, photos
from sslax.data.sources import get_source
from sslax.encoder import EncoderDef
from sslax.errors import UserError
from sslax.methods import build_method, color_common, colorization as col, split_brain
from sslax.models import make_encoder

# Allow-listed names (found) and two illustrations (ignored).
FAKE_PHOTOS = ("Path/contents/images/", "Kite/contents/images/", "mate/nature/Aqua.jpg",
               "mate/nature/Garden.jpg", "mate/nature/Storm.jpg")
FAKE_ILLUSTRATIONS = ("Altai/contents/images/96x64.jpg", "mate/abstract/Silk.jpg")


def write_fake_photos(root, names, seed=0):
  """Smooth random colour fields, 96x64 JPEGs (a smaller 48x32 beside each
  Plasma one, which must not be chosen)."""
  rng = np.random.default_rng(seed)
  for name in names:
    files = ([name + "48x32.jpg", name + "96x64.jpg"] if name.endswith("/") else [name])
    for f in files:
      w, h = (48, 32) if f.endswith("48x32.jpg") else (96, 64)
      field = rng.uniform(0, 255, (4, 6, 3)).astype(np.uint8)
      image = Image.fromarray(field).resize((w, h), Image.BICUBIC)
      path = os.path.join(root, f)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      image.save(path, quality=95)


@pytest.fixture(scope="module")
def photo_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("wallpapers"))
  write_fake_photos(root, FAKE_PHOTOS + FAKE_ILLUSTRATIONS)
  return root


@pytest.fixture(scope="module")
def corpus(photo_root, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("photos") / "corpus")
  photos.make_corpus(out, size=32, crops_per_image=40, search_dirs=[photo_root],
                     log=lambda *_: None)
  return out


def _config(name, corpus_dir, **updates):
  c = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  c.data.data_dir = corpus_dir
  c.progress_bar = False
  for group, values in updates.items():
    c[group].update(values)
  return c


# ------------------------------------------------------------ the corpus

def test_find_photos_keeps_allow_listed_files_only(photo_root):
  found = photos.find_photos([photo_root])
  assert [n for n, _ in found] == ["Kite", "Path", "mate/nature/Aqua.jpg",
                                   "mate/nature/Garden.jpg", "mate/nature/Storm.jpg"]
  assert found[1][1].endswith("Path/contents/images/96x64.jpg")  # the largest size
  assert all(n in photos.PHOTOS or n + "/contents/images/" in photos.PHOTOS
             for n, _ in found)


def test_corpus_splits_by_photo_and_is_deterministic(corpus, photo_root, tmp_path):
  train, test = photos.load_split(corpus, "train"), photos.load_split(corpus, "test")
  assert train.images.shape == (4 * 40, 32, 32, 3) and train.images.dtype == np.uint8
  assert test.images.shape == (1 * 40, 32, 32, 3)
  assert train.num_classes == test.num_classes == 5
  # No photo contributes to both splits; every photo is used.
  assert not set(train.labels) & set(test.labels)
  assert set(train.labels) | set(test.labels) == set(range(5))
  with open(os.path.join(corpus, "meta.json")) as f:
    meta = json.load(f)
  assert not set(meta["train_photos"]) & set(meta["test_photos"])
  # Same seed, same crops; another seed, other crops.
  again, other = str(tmp_path / "again"), str(tmp_path / "other")
  photos.make_corpus(again, size=32, crops_per_image=40, search_dirs=[photo_root],
                     log=lambda *_: None)
  np.testing.assert_array_equal(photos.load_split(again, "train").images, train.images)
  photos.make_corpus(other, size=32, crops_per_image=40, seed=1, search_dirs=[photo_root],
                     log=lambda *_: None)
  assert not np.array_equal(photos.load_split(other, "train").images[:40],
                            photos.load_split(again, "train").images[:40])
  # Built again: found, not rebuilt; other settings: refused.
  messages = []
  photos.make_corpus(corpus, size=32, crops_per_image=40, search_dirs=[photo_root],
                     log=messages.append)
  assert messages == [f"photo corpus already in {corpus}"]
  with pytest.raises(UserError, match="other settings"):
    photos.make_corpus(corpus, size=16, crops_per_image=40, search_dirs=[photo_root])


def test_missing_photos_and_corpus_errors(tmp_path):
  with pytest.raises(UserError, match="apt-get install plasma-workspace-wallpapers "
                     "mate-backgrounds"):
    photos.make_corpus(str(tmp_path / "c"), search_dirs=[str(tmp_path)])
  data = _config("colorization", str(tmp_path / "nowhere")).data
  with pytest.raises(UserError, match="sslax data make-photos"):
    get_source(data, "train")


# ----------------------------------------------------------- the L input

def test_l_input_of_gray_images_is_the_transfer_mapping(corpus):
  from sslax.encoder import Encoder
  from sslax.eval.transfer import at_native_size
  config = _config("colorization", corpus, colorization=dict(rebalance=False))
  definition = build_method(config).encoder
  assert definition.preprocess["kind"] == "lab_l" and definition.input_shape == (32, 32, 1)
  gray = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
  expected = color.rgb_to_lab(np.repeat(gray, 3, -1) / 255.0)
  np.testing.assert_allclose(np.abs(expected[..., 1:]), 0.0, atol=1e-3)  # gray: a = b = 0
  x = np.asarray(at_native_size(Encoder(definition, None), (16, 16)).definition.prepare(gray))
  assert x.shape == (1, 16, 16, 1)
  np.testing.assert_allclose(x[..., 0], expected[..., 0] / 50.0 - 1.0, atol=1e-5)
  assert -1.0 - 1e-6 <= x.min() and x.max() <= 1.0 + 1e-5
  # The same image as RGB through the encoder's own preprocessing at 16x16.
  rgb = jnp.asarray(np.repeat(gray, 3, -1))
  config.data.image_size = (16, 16)
  np.testing.assert_allclose(np.asarray(build_method(config).encoder.prepare(rgb)), x,
                             atol=1e-6)


def test_encoder_features_have_one_size_at_28_and_32():
  config = load_config_file(os.path.join(ROOT, "configs", "colorization.py"))
  encoder = make_encoder(config.model)
  variables = jax.eval_shape(lambda: encoder.init(jax.random.PRNGKey(0),
                                                  jnp.zeros((1, 32, 32, 1)), train=False))
  for side in (28, 32):
    f = jax.eval_shape(lambda v, x: encoder.apply(v, x, train=False), variables,
                       jnp.zeros((2, side, side, 1)))
    assert f.shape == (2, 4 * 4 * 128)
  assert color_common.encoder_grid(config) == (4, 4)


# ------------------------------------------------------------- the loss

def naive_loss(logits, ab, centres, weights, k=0, sigma=5.0):
  """Zhang et al. 2016, eq. 2 and the soft encoding, one pixel at a time."""
  logits, ab = np.asarray(logits, np.float64), np.asarray(ab, np.float64)
  centres = np.asarray(centres, np.float64)
  total, pixels = 0.0, logits.reshape(-1, logits.shape[-1]).shape[0]
  for z, y in zip(logits.reshape(-1, logits.shape[-1]), ab.reshape(-1, 2)):
    logp = z - z.max() - np.log(np.sum(np.exp(z - z.max())))
    d = np.sum((centres - y) ** 2, axis=1)
    q = int(np.argmin(d))
    if k:
      near = np.argsort(d, kind="stable")[:k]
      g = np.exp(-d[near] / (2 * sigma ** 2))
      ce = -np.sum(g / g.sum() * logp[near])
    else:
      ce = -logp[q]
    total += (1.0 if weights is None else weights[q]) * ce
  return total / pixels


@pytest.mark.parametrize("soft", [0, 5])
def test_classification_loss_equals_the_formula(soft):
  centres = color_common.ab_bins(10.0)
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 3, 3, len(centres))).astype(np.float32)
  ab = rng.uniform(-60, 60, size=(2, 3, 3, 2)).astype(np.float32)
  weights = rng.uniform(0.5, 2.0, len(centres)).astype(np.float32)
  for w in (None, weights):
    loss, nearest = color_common.colour_classification_loss(logits, ab, centres, w, soft)
    np.testing.assert_allclose(float(loss), naive_loss(logits, ab, centres, w, soft),
                               rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(nearest),
                                np.asarray(color_common.ab_to_bin(ab, centres)))


def test_annealed_mean():
  centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]], np.float32)
  logits = np.log(np.array([[0.5, 0.3, 0.2]], np.float32))
  np.testing.assert_allclose(color_common.annealed_mean(logits, centres, 1.0), [[3.0, 4.0]],
                             rtol=1e-5)
  np.testing.assert_allclose(color_common.annealed_mean(logits, centres, 0.01), [[0.0, 0.0]],
                             atol=1e-3)


def _init_and_grads(method, images, config):
  """As the trainer does it: constants (rebalancing weights) from the
  training source, then init, then one loss and gradient."""
  if method.constants is None:
    params, state, mstate = jax.jit(method.init)(jax.random.PRNGKey(0), {"image": images[:2]})
  else:
    constants = method.constants(get_source(config.data, "train"))
    params, state, mstate = jax.jit(method.init)(jax.random.PRNGKey(0), {"image": images[:2]},
                                                 constants)
  (loss, aux), grads = jax.jit(jax.value_and_grad(
      lambda p: method.loss_fn(p, state, mstate, {"image": images}, jax.random.PRNGKey(1)), has_aux=True))(params)
  return params, state, float(loss), aux, grads


def test_rebalanced_loss_at_init_and_gradients(corpus):
  config = _config("colorization", corpus, colorization=dict(rebalance_images=10 ** 6))
  out_hw = color_common.output_size(config, color_common.encoder_grid(config),
                                    config.colorization.decoder_widths)
  centres = color_common.ab_bins(10.0)
  # The weights come from the histogram of every training crop's ab,
  # block-averaged to the decoder's resolution.
  images = photos.load_split(corpus, "train").images
  ab = color_common.block_mean(color.lab(augment.center_view(jnp.asarray(images)))[..., 1:],
                               out_hw)
  expected = np.bincount(np.asarray(color_common.ab_to_bin(ab, centres)).reshape(-1),
                         minlength=len(centres))
  source = get_source(config.data, "train")
  np.testing.assert_array_equal(
      color_common.empirical_bin_counts(source, config.data.image_size, out_hw, 10.0,
                                        10 ** 6), expected)
  weights = color_common.rebalancing_weights(config, "colorization", out_hw, source)
  np.testing.assert_allclose(weights, color_common.rebalance_weights(expected, 0.5, centres),
                             rtol=1e-6)
  # The method's loss is eq. 2 with these weights (identity views: whole
  # image, no flip, so the targets can be recomputed here).
  config.augment.update(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_prob=0.0)
  method = build_method(config)
  images = jnp.asarray(images[:16])
  params, state, loss, aux, grads = _init_and_grads(method, images, config)
  # The weights are the method's constants, kept in its state.
  np.testing.assert_allclose(np.asarray(aux.method_state.weights), weights, rtol=1e-6)
  net = col._network(config)[0]  # pylint: disable=protected-access

  @jax.jit
  def losses_by_hand(params, images):
    x = color.lab(augment.center_view(images))
    (_, logits), _ = net.apply({"params": params, **state}, color.scale_l(x[..., :1]),
                               train=True, mutable=["batch_stats"])
    target = color_common.block_mean(x[..., 1:], out_hw)
    return (color_common.colour_classification_loss(logits, target, centres, weights)[0],
            color_common.colour_classification_loss(logits, target, centres)[0])

  by_hand, unweighted = (float(v) for v in losses_by_hand(params, images))
  np.testing.assert_allclose(loss, by_hand, rtol=1e-4)
  assert abs(by_hand - unweighted) > 1e-3
  assert abs(unweighted - np.log(len(centres))) < 0.5   # about log Q at init
  assert set(grads) == {"encoder", "decoder"}
  for name, tree in grads.items():
    assert float(optax.global_norm(tree)) > 0, name
  # Features: the encoder's, on what its preprocessing gives (L only).
  x = method.encoder.prepare(images[:2])
  feats = jax.eval_shape(lambda v: method.encoder.module().apply(v, x, train=False),
                         method.encoder.select(params, state))
  assert aux.features.shape == (16, feats.shape[-1]) and x.shape[-1] == 1
  # The L2 baseline: 2 outputs per pixel, a scalar loss (shapes only).
  method = build_method(_config("colorization", corpus, colorization=dict(loss="l2")))
  params, state, mstate = jax.eval_shape(method.init, jax.random.PRNGKey(0), {"image": images[:2]})
  assert params["decoder"]["Conv_0"]["kernel"].shape[-1] == 2
  loss, _ = jax.eval_shape(lambda *a: method.loss_fn(*a), params, state, mstate,
                           {"image": images}, jax.random.PRNGKey(1))
  assert loss.shape == ()
  ab = np.full((1, 2, 2, 2), 55.0, np.float32)
  np.testing.assert_allclose(float(col.l2_loss(np.zeros_like(ab), ab)), 0.5 * 2 * 0.5 ** 2)


# ------------------------------------------------------------ the methods

def test_split_brain_halves_and_concatenated_representation(corpus):
  images = jnp.asarray(photos.load_split(corpus, "train").images[:16])
  config = _config("split_brain", corpus)
  method = build_method(config)
  params, state, loss, aux, grads = _init_and_grads(method, images, config)
  q = len(color_common.ab_bins(10.0))
  assert abs(loss - np.log(q) - np.log(50)) < 1.0
  assert set(aux.metrics) == {"loss_l_to_ab", "loss_ab_to_l"}
  for half in ("l_net", "ab_net"):
    for part in ("encoder", "decoder"):
      assert float(optax.global_norm(grads[half][part])) > 0, (half, part)
  full = method.encoders["full"]
  assert full.output == "vector" and full.input_shape == (32, 32, 3)

  @jax.jit
  def features(params, state, images):
    l_feats = method.encoder.module().apply(method.encoder.select(params, state),
                                            method.encoder.prepare(images), train=False)
    both = full.module().apply(full.select(params, state), full.prepare(images),
                               train=False)
    return l_feats, both

  l_feats, both = features(params, state, images[:4])
  assert both.shape == (4, 2 * l_feats.shape[-1])
  np.testing.assert_allclose(np.asarray(both[:, :l_feats.shape[-1]]), np.asarray(l_feats),
                             rtol=1e-5, atol=1e-5)
  # The second half is the ab encoder on (a, b) / 110 alone.
  ab = method.encoder.module().apply(
      {"params": params["ab_net"]["encoder"],
       **{c: t["ab_net"]["encoder"] for c, t in state.items()}},
      color.lab_input(images[:4] / 255.0)[..., 1:], train=False)
  np.testing.assert_allclose(np.asarray(both[:, l_feats.shape[-1]:]), np.asarray(ab),
                             rtol=1e-5, atol=1e-5)
  # Its description alone rebuilds it: variables placed back where select found them.
  rebuilt = EncoderDef.from_json(json.loads(json.dumps(full.to_json())))
  placed = rebuilt.place(full.select(params, state))
  np.testing.assert_allclose(
      np.asarray(rebuilt.module().apply(rebuilt.select(*placed), rebuilt.prepare(images[:4]),
                                        train=False)), np.asarray(both), rtol=1e-5,
      atol=1e-5)
  assert aux.features.shape == (16, l_feats.shape[-1])
  gray, predicted, true = split_brain.colorize(config, params, state, images[:4])
  assert gray.shape == predicted.shape == true.shape == (4, 32, 32, 3)


def test_config_errors(corpus, tmp_path):
  bad = [("colorization", dict(colorization=dict(loss="mse")), "loss"),
         ("colorization", dict(model=dict(pool="avg")), "pool"),
         ("colorization", dict(colorization=dict(decoder_widths=(8, 8, 8))), "decoder_widths"),
         ("colorization", dict(colorization=dict(rebalance_lambda=0.0)), "rebalance_lambda"),
         ("colorization", dict(colorization=dict(soft_encoding=True, soft_neighbours=0)),
          "soft_neighbours"),
         ("split_brain", dict(split_brain=dict(l_bins=1)), "l_bins")]
  for name, updates, match in bad:
    with pytest.raises(UserError, match=match):
      build_method(_config(name, corpus, **updates))
  with pytest.raises(UserError, match="no variant"):
    load_config_file(os.path.join(ROOT, "configs", "colorization.py:mnist"))
  proc = subprocess.run(
      [sys.executable, "-m", "sslax", "train", "--config",
       os.path.join(ROOT, "configs", "split_brain.py:smoke"), "--workdir", str(tmp_path / "w"),
       f"--config.data.data_dir={tmp_path / 'nowhere'}"],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2 and "sslax data make-photos" in proc.stderr, proc.stderr[-2000:]


# ------------------------------------------- trainer, transfer, picture

def _write_idx(path, array):
  header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
  with open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def test_train_transfer_and_picture(corpus, tmp_path, capsys):
  from sslax.eval.transfer import transfer_linear
  from sslax.eval.viz import image_rows_png
  from sslax.models import make_encoder
  from sslax.train.loop import train_and_evaluate
  config = _config("colorization", corpus)
  config.update(num_steps=2, checkpoint_every=2, online_eval_every=2, log_every=1)
  config.eval.update(online_train_examples=64, online_test_examples=32, batch_size=32)
  workdir = str(tmp_path / "run")
  # Stopped after step 1 and resumed: the rebalancing weights (the method's
  # constants) come back from the checkpoint.
  first = train_and_evaluate(config, workdir, stop_at=1)
  state = train_and_evaluate(config, workdir)
  assert int(state.step) == 2
  np.testing.assert_array_equal(np.asarray(state.method_state.weights),
                                np.asarray(first.method_state.weights))
  # A tiny grayscale "Fashion-MNIST": 10 classes, 28x28, each class a white
  # 8x5 block at a place of its own (a 2 x 5 grid) over dark noise.
  fm = tmp_path / "fm"
  fm.mkdir()
  rng = np.random.default_rng(0)
  for prefix, n in (("train", 100), ("t10k", 50)):
    labels = np.arange(n) % 10
    images = rng.integers(0, 128, (n, 28, 28))
    for i, c in enumerate(labels):
      row, col = 14 * (c // 5) + 3, 5 * (c % 5) + 1
      images[i, row:row + 8, col:col + 5] = 255
    _write_idx(str(fm / f"{prefix}-images-idx3-ubyte"), images)
    _write_idx(str(fm / f"{prefix}-labels-idx1-ubyte"), labels)
  result = transfer_linear(workdir, 1.0, data_dir=str(fm))
  # 50 test images, chance 0.1; measured 1.0 (zero features: 0.1; training
  # labels shuffled: 0.06).
  assert result["top1"] >= 0.6 and result["dataset"] == "fashion_mnist"
  assert result["feature_dim"] == 7 * 7 * 16   # smoke ConvNet on 28x28
  assert os.path.exists(os.path.join(workdir, "eval", "transfer_fashion_mnist_linear_1.0.json"))
  # The photo labels are not classes shared by train and test: no probe, no kNN.
  from sslax.eval.evaluate import evaluate_finetune, evaluate_knn, evaluate_linear
  for evaluate in (evaluate_linear, evaluate_knn, functools.partial(evaluate_finetune,
                                                                    fraction=1.0)):
    with pytest.raises(UserError, match="sslax eval transfer"):
      evaluate(workdir)
  assert sorted(os.listdir(os.path.join(workdir, "eval"))) == [
      "transfer_fashion_mnist_linear_1.0.json"]
  test_images = get_source(config.data, "test").get(np.arange(8))["image"]
  # Exported, the L encoder loads without the method (so without the photo
  # corpus) and gives the training-time features of RGB and of gray images.
  from sslax.export import export_encoder, load_encoder, preprocess
  export_encoder(workdir, str(tmp_path / "enc"))
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr("sslax.methods.build_method", lambda *_: pytest.fail("built the method"))
    module, variables, info = load_encoder(str(tmp_path / "enc"))
  assert info["input_shape"] == [32, 32, 1] and info["preprocess"]["kind"] == "lab_l"
  assert info["network"]["kind"] == "backbone"
  # The training-time encoder, read straight out of the final train state.
  train_variables = {"params": state.params["encoder"],
                     "batch_stats": state.model_state["batch_stats"]["encoder"]}
  want = make_encoder(config.model).apply(
      train_variables, color.l_input(augment.center_view(jnp.asarray(test_images))),
      train=False)
  got = module.apply(variables, preprocess(test_images, info), train=False)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
  gray = test_images[..., :1]
  np.testing.assert_allclose(np.asarray(preprocess(gray, info)),
                             np.asarray(preprocess(np.repeat(gray, 3, axis=-1), info)),
                             atol=1e-5)
  with pytest.raises(UserError, match="resize them first"):
    preprocess(test_images[:, :28, :28], info)
  # The method's picture for `sslax viz`: L input, prediction, truth.
  drawn = build_method(config).pictures(state.params, state.model_state, test_images,
                                        jax.random.PRNGKey(0))
  rows, title = drawn["colorization"]
  assert [name for name, _ in rows] == ["L input", "predicted", "truth"]
  gray, predicted, true = (np.asarray(a) for _, a in rows)
  assert gray.shape == predicted.shape == true.shape == (8, 32, 32, 3)
  assert 0.0 <= predicted.min() and predicted.max() <= 1.0
  np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=2e-3)   # gray is gray
  np.testing.assert_allclose(true, np.asarray(test_images) / 255.0, atol=1e-6)
  path = image_rows_png(rows, str(tmp_path / "c.png"), title)
  assert os.path.getsize(path) > 1000
  # `sslax viz` of the run: the photo labels do not carry across splits, so no
  # map and no retrieval (a note says why); the curves and the colourisations.
  from sslax.eval import viz  # pylint: disable=g-import-not-at-top
  capsys.readouterr()
  paths = viz.visualize(workdir)
  assert [os.path.basename(p) for p in paths] == ["curves.png", "colorization.png"]
  assert "no map or retrieval pictures" in capsys.readouterr().err
