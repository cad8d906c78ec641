"""The SGD linear probe (SimCLR's protocol, Chen et al. 2020, appendix B.6)
beside the L-BFGS one: accuracy on easy synthetic features, the choice by
``config.eval.linear_probe``, augmented training features, and the batched
feature extraction's padding. (Their equality across 8 devices and two
processes: tests/multidevice/test_features_sharded.py.)"""

import json
import os

import jax
import numpy as np
import pytest

from conftest import ROOT, fails_cleanly
from sslax.config_loading import load_config_file
from sslax.data.arrays import ArraySource
from sslax.encoder import Encoder, backbone_def
from sslax.errors import UserError
from sslax.eval import evaluate
from sslax.eval import features as features_lib
from sslax.probes import linear, sgd


def _blobs(n, dim, classes, spread, seed):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, dim)) * spread
  y = rng.permutation(np.arange(n) % classes).astype(np.int32)
  return (centers[y] + rng.normal(size=(n, dim))).astype(np.float32), y


def test_sgd_probe_separates_separable_features():
  x, y = _blobs(800, 8, 4, 10.0, 0)
  result = sgd.sgd_linear_probe(x[:600], y[:600], x[600:], y[600:], fraction=1.0,
                                num_classes=4, epochs=5, batch_size=64)
  assert result["top1"] == 1.0 and result["train_top1"] == 1.0
  assert result["probe"] == "sgd" and result["num_labels"] == 600
  assert result["steps"] == 47  # ceil(5 * 600 / 64)
  assert result["learning_rate"] == pytest.approx(0.1 * 64 / 256)
  assert not result["augment"]


def test_sgd_probe_is_close_to_lbfgs_on_an_easy_problem():
  x, y = _blobs(1500, 10, 5, 1.2, 1)  # overlapping classes: neither is perfect
  args = (x[:1000], y[:1000], x[1000:], y[1000:])
  exact = linear.linear_probe(*args, fraction=1.0, num_classes=5)
  fitted = sgd.sgd_linear_probe(*args, fraction=1.0, num_classes=5, epochs=20,
                                batch_size=100, learning_rate=0.5)
  assert 0.5 < exact["top1"] < 0.99
  assert abs(fitted["top1"] - exact["top1"]) < 0.03


def test_sgd_probe_uses_the_subset_and_is_deterministic():
  x, y = _blobs(400, 6, 4, 3.0, 2)
  subset = linear.stratified_subset(y[:300], 0.1, seed=0)
  a, b = (sgd.sgd_linear_probe(x[:300], y[:300], x[300:], y[300:], fraction=0.1,
                               num_classes=4, subset=subset, epochs=3, batch_size=7)
          for _ in range(2))
  assert a == b and a["num_labels"] == len(subset)
  assert a["steps"] == -(-3 * len(subset) // 7)


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"batch_size": 0},
                                 {"learning_rate": -1.0}])
def test_sgd_probe_refuses_nonpositive_settings(bad):
  x, y = _blobs(40, 3, 2, 3.0, 3)
  kwargs = {**dict(epochs=1, batch_size=8, learning_rate=0.1), **bad}
  with pytest.raises(UserError, match="sgd_"):
    sgd.sgd_linear_probe(x, y, x, y, fraction=1.0, num_classes=2, **kwargs)


def test_config_picks_the_probe(smoke_config):
  x, y = _blobs(300, 4, 3, 6.0, 4)
  args = (x[:200], y[:200], x[200:], y[200:])
  assert smoke_config.eval.linear_probe == "lbfgs"
  exact = evaluate.run_linear_probe(smoke_config, *args, fraction=1.0, num_classes=3)
  assert exact["probe"] == "lbfgs" and "validation_top1" in exact
  smoke_config.eval.update(linear_probe="sgd", sgd_epochs=2, sgd_batch_size=50,
                           sgd_learning_rate=0.4, sgd_weight_decay=1e-4)
  fitted = evaluate.run_linear_probe(smoke_config, *args, fraction=1.0, num_classes=3)
  assert fitted["probe"] == "sgd" and fitted["steps"] == 8  # 2 epochs of 4 batches
  assert fitted["learning_rate"] == pytest.approx(0.4 * 50 / 256)
  assert fitted["weight_decay"] == 1e-4 and fitted["top1"] > 0.9


def test_unknown_probe_is_one_line(smoke_config):
  smoke_config.eval.linear_probe = "adam"
  with pytest.raises(UserError) as info:
    evaluate.run_linear_probe(smoke_config, np.zeros((4, 2), np.float32),
                              np.zeros(4, np.int32), np.zeros((4, 2), np.float32),
                              np.zeros(4, np.int32), fraction=1.0, num_classes=2)
  message = str(info.value)
  assert "\n" not in message and "'adam'" in message
  assert "config.eval.linear_probe" in message and "lbfgs, sgd" in message


def test_unknown_probe_fails_before_any_feature(tmp_path, smoke_config, capsys):
  # A workdir with only its config: the probe is refused before the encoder
  # (there is none) or the data is read.
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text(smoke_config.to_json())
  fails_cleanly(capsys, ["eval", "linear", "--workdir", str(workdir),
                         "--config.eval.linear_probe=newton"],
                "unknown linear probe 'newton' (config.eval.linear_probe)")


def test_configs_saved_before_the_sgd_probe_use_lbfgs(smoke_config):
  old = json.loads(smoke_config.to_json())
  for key in ("linear_probe", "sgd_epochs", "sgd_batch_size", "sgd_learning_rate",
              "sgd_momentum", "sgd_weight_decay", "linear_augment", "linear_crop_scale"):
    del old["eval"][key]
  import ml_collections  # pylint: disable=g-import-not-at-top
  assert evaluate.probe_name(ml_collections.ConfigDict(old)) == "lbfgs"


def test_imagenet_variant_uses_sgd_and_the_small_ones_lbfgs():
  imagenet = load_config_file(os.path.join(ROOT, "configs", "simclr.py:imagenet"))
  assert imagenet.eval.linear_probe == "sgd" and imagenet.eval.linear_augment
  assert imagenet.eval.sgd_epochs == 90 and imagenet.eval.sgd_batch_size == 4096
  for variant in ("fashion_mnist", "cifar10", "stl10"):
    config = load_config_file(os.path.join(ROOT, "configs", f"simclr.py:{variant}"))
    assert config.eval.linear_probe == "lbfgs" and not config.eval.linear_augment


@pytest.fixture(scope="module")
def tiny():
  """An encoder at initialisation (the smoke ConvNet) and 45 random images."""
  config = load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke"))
  definition = backbone_def(config)
  x = np.zeros((1, *definition.input_shape), np.float32)
  encoder = Encoder(definition, definition.module().init(jax.random.PRNGKey(0), x,
                                                         train=False))
  images = np.random.default_rng(0).integers(0, 256, size=(45, 28, 28, 1), dtype=np.uint8)
  return encoder, ArraySource(images, (np.arange(45) % 3).astype(np.int32), num_classes=3)


def test_extraction_pads_and_drops_the_last_batch(tiny):
  encoder, source = tiny
  want = np.asarray(jax.jit(features_lib.encoder_apply(encoder))(encoder.variables,
                                                                source.images))
  feats, labels = features_lib.encode_source(encoder, source, batch_size=16)
  assert feats.shape == want.shape
  np.testing.assert_allclose(feats, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(labels, source.labels)


def test_augmented_training_features(tiny):
  encoder, source = tiny
  feats, labels = features_lib.encode_source(encoder, source)
  recompute = sgd.Recompute(read=lambda rows: source.get(rows)["image"],
                            features=features_lib.augmented_features(encoder, (0.5, 1.0)),
                            variables=encoder.variables, threads=2)
  args = (feats, labels, feats, labels)
  kwargs = dict(fraction=1.0, num_classes=3, epochs=2, batch_size=10)
  plain = sgd.sgd_linear_probe(*args, **kwargs)
  augmented = sgd.sgd_linear_probe(*args, **kwargs, recompute=recompute)
  assert augmented["augment"] and augmented["steps"] == plain["steps"] == 9
  assert np.isfinite(augmented["final_loss"])
  assert augmented["final_loss"] != plain["final_loss"]  # other features
  # The views are a function of the key.
  views = jax.jit(features_lib.augmented_features(encoder))
  a, b, c = (np.asarray(views(encoder.variables, source.images[:8], jax.random.PRNGKey(k)))
             for k in (0, 0, 1))
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).max() > 1e-4


def test_linear_augment_needs_encoder_features(smoke_config):
  smoke_config.eval.update(linear_probe="sgd", linear_augment=True)
  with pytest.raises(UserError, match="linear_augment=False"):
    features_lib.augmented_inputs(smoke_config, "raw_pixels", "/nonexistent")
