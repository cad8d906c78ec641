"""Export -> load_encoder gives the training-time encoder bit for bit, and the
loaded encoder trains inside a user's Linen classifier and as an NNX model."""

import os

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import sslax
from conftest import ROOT
from sslax import cli
from sslax.config_loading import apply_overrides
from sslax.data.sources import fashion_mnist
from sslax.errors import UserError
from sslax.export import export_encoder, preprocess, to_nnx
from sslax.models import make_encoder
from sslax.train.loop import train_and_evaluate

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("run"))
  config = apply_overrides(load_config_file(SMOKE), ["progress_bar=False"])
  state = train_and_evaluate(config, workdir)
  out = str(tmp_path_factory.mktemp("export") / "encoder")
  export_encoder(workdir, out)
  # The training-time encoder, read straight out of the final train state.
  train_vars = {"params": state.params["encoder"],
                "batch_stats": state.model_state["batch_stats"]["encoder"]}
  return workdir, out, config, jax.device_get(train_vars)


def _images(n=64):
  return fashion_mnist("test").images[:n]


def test_loaded_encoder_features_equal_training_time_features(exported):
  _, out, config, train_vars = exported
  module, variables, info = sslax.load_encoder(out)
  assert info["input_shape"] == [28, 28, 1] and info["feature_dim"] == 16
  assert info["step"] == config.num_steps
  encoder = make_encoder(config.model, config.compute_dtype)
  chex.assert_trees_all_equal(jax.device_get(variables), train_vars)
  x = preprocess(_images(), info)
  apply = jax.jit(lambda m_vars, x: module.apply(m_vars, x, train=False))
  got = np.asarray(apply(variables, x))
  want = np.asarray(jax.jit(lambda v, x: encoder.apply(v, x, train=False))(train_vars, x))
  np.testing.assert_array_equal(got, want)
  # preprocess matches the evaluation pipeline's normalisation.
  np.testing.assert_allclose(
      np.asarray(x), (_images().astype(np.float32) / 255 - 0.2860) / 0.3530, rtol=1e-5, atol=1e-6)


class Classifier(nn.Module):
  """A user's Linen classifier with the exported encoder as a submodule."""
  encoder: nn.Module
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool):
    return nn.Dense(self.num_classes)(self.encoder(x, train=train))


def test_linen_classifier_on_the_loaded_encoder_trains(exported):
  _, out, _, _ = exported
  module, enc_vars, info = sslax.load_encoder(out)
  model = Classifier(encoder=module)
  x = preprocess(_images(32), info)
  y = jnp.asarray(fashion_mnist("test").labels[:32])
  variables = model.init(jax.random.key(0), x, train=False)
  params = {**variables["params"], "encoder": enc_vars["params"]}
  batch_stats = {"encoder": enc_vars["batch_stats"]}
  # The submodule computes exactly the exported features.
  feats = model.apply({"params": params, "batch_stats": batch_stats}, x, train=False,
                      method=lambda m, x, train: m.encoder(x, train=train))
  np.testing.assert_array_equal(np.asarray(feats),
                                np.asarray(module.apply(enc_vars, x, train=False)))
  tx = optax.sgd(0.1)
  opt_state = tx.init(params)

  def loss_fn(p):
    logits, new_state = model.apply({"params": p, "batch_stats": batch_stats}, x,
                                    train=True, mutable=["batch_stats"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_state

  (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  new_loss, _ = loss_fn(new_params)
  assert np.isfinite(float(loss)) and float(new_loss) < float(loss)
  assert float(jnp.abs(grads["encoder"]["Conv_0"]["kernel"]).sum()) > 0


def test_nnx_model_from_the_loaded_encoder_trains(exported):
  _, out, _, _ = exported
  module, enc_vars, info = sslax.load_encoder(out)
  x = preprocess(_images(32), info)
  y = jnp.asarray(fashion_mnist("test").labels[:32])
  encoder = to_nnx(module, enc_vars, x)
  np.testing.assert_array_equal(np.asarray(encoder(x, train=False)),
                                np.asarray(module.apply(enc_vars, x, train=False)))

  class NNXClassifier(nnx.Module):
    def __init__(self, encoder, rngs):
      self.encoder = encoder
      self.head = nnx.Linear(info["feature_dim"], 10, rngs=rngs)

    def __call__(self, x):
      return self.head(self.encoder(x, train=False))

  model = NNXClassifier(encoder, nnx.Rngs(1))
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)

  def loss_fn(m):
    return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

  before = float(loss_fn(model))
  grads = nnx.grad(loss_fn)(model)
  optimizer.update(model, grads)
  assert float(loss_fn(model)) < before


def test_export_mistakes(exported, tmp_path, capsys):
  workdir, out, _, _ = exported
  with pytest.raises(SystemExit) as e:
    cli.main(["export", "--workdir", workdir, "--out", out])  # exists already
  assert e.value.code == 2 and "already exists" in capsys.readouterr().err
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(SystemExit) as e:
    cli.main(["export", "--workdir", str(empty), "--out", str(tmp_path / "o")])
  assert e.value.code == 2 and "train" in capsys.readouterr().err
  _, _, info = sslax.load_encoder(out)
  with pytest.raises(UserError, match="do not match"):
    preprocess(np.zeros((2, 32, 32, 3), np.uint8), info)
  with pytest.raises(UserError, match="not an exported encoder"):
    sslax.load_encoder(str(empty))


def test_exports_of_the_previous_format_still_load(exported, tmp_path):
  """An export written before encoder.json described the network (keys
  model, normalization, encoder_module) loads to the same features; one of a
  patch or waveform encoder asks to export again, in one line."""
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  _, out, config, _ = exported
  module, variables, info = sslax.load_encoder(out)
  want = np.asarray(module.apply(variables, preprocess(_images(), info), train=False))
  old = tmp_path / "old"
  shutil.copytree(out, old)
  legacy = {"model": config.model.to_dict(), "compute_dtype": "float32",
            "modality": "image", "input_shape": [28, 28, 1],
            "normalization": {"mean": [0.2860], "std": [0.3530],
                              "scale": "uint8 / 255, then (x - mean) / std"},
            "feature_dim": 16, "encoder_module": "method", "method": "simclr",
            "dataset": "fashion_mnist", "step": config.num_steps}
  (old / "encoder.json").write_text(json.dumps(legacy))
  module, variables, info = sslax.load_encoder(str(old))
  got = np.asarray(module.apply(variables, preprocess(_images(), info), train=False))
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  legacy["model"] = {"encoder": "patch_convnet"}
  (old / "encoder.json").write_text(json.dumps(legacy))
  with pytest.raises(UserError, match="export it again"):
    sslax.load_encoder(str(old))


# The keys of encoder.json before encoders described their input name, dtype,
# output kind and assets, and before a run held several.
PREVIOUS_ENCODER_KEYS = ("network", "selection", "preprocess", "input_shape",
                         "feature_dim", "method", "dataset")


def test_workdirs_of_the_previous_format_still_evaluate_export_and_resume(
    exported, tmp_path, capsys):
  """A workdir as the previous version wrote it (encoder.json alone, without
  the new fields; metrics with images_per_second; a config without evals)
  evaluates, exports, loads and resumes training."""
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  workdir, out, config, _ = exported
  old = tmp_path / "old"
  shutil.copytree(workdir, old)
  shutil.rmtree(old / "encoders")
  info = json.loads((old / "encoder.json").read_text())
  (old / "encoder.json").write_text(json.dumps({k: info[k] for k in PREVIOUS_ENCODER_KEYS}))
  saved = json.loads((old / "config.json").read_text())
  del saved["evals"]
  (old / "config.json").write_text(json.dumps(saved))
  rows = [json.loads(l) for l in (old / "metrics.jsonl").read_text().splitlines()]
  (old / "metrics.jsonl").write_text("".join(json.dumps(
      {("images_per_second" if k == "examples_per_second" else k): v for k, v in r.items()})
      + "\n" for r in rows))
  for argv in (["eval", "knn"], ["eval", "linear", "--label-fraction", "0.1"]):
    cli.run([*argv, "--workdir", str(old)])
  assert json.loads((old / "eval" / "knn.json").read_text())["top1_k20"] > 0.3
  assert json.loads((old / "eval" / "linear_0.1.json").read_text())["top1"] > 0.3
  cli.run(["export", "--workdir", str(old), "--out", str(tmp_path / "old_export")])
  capsys.readouterr()
  module, variables, info = sslax.load_encoder(str(tmp_path / "old_export"))
  want_module, want_vars, want_info = sslax.load_encoder(out)
  np.testing.assert_array_equal(
      np.asarray(module.apply(variables, preprocess(_images(), info), train=False)),
      np.asarray(want_module.apply(want_vars, preprocess(_images(), want_info), train=False)))
  assert info["output"] == "vector" and info["input_key"] == "image"
  # Resumed from its older checkpoint (the newest moved away), to the end.
  from sslax.train import checkpoint  # pylint: disable=g-import-not-at-top
  steps = checkpoint.saved_steps(str(old))
  assert len(steps) >= 2, steps
  shutil.rmtree(old / "checkpoints" / str(max(steps)))
  state = train_and_evaluate(config, str(old))
  assert int(state.step) == config.num_steps


# ------------------------------------------------------------------ sslax.embed

def test_embed_gives_the_evaluation_features_from_a_workdir_or_an_export(exported, tmp_path,
                                                                         capsys):
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from sslax.data.images import resize_and_center_crop  # pylint: disable=g-import-not-at-top
  from sslax.data.source import SubsetSource  # pylint: disable=g-import-not-at-top
  from sslax.probes.sharded import encode_source  # pylint: disable=g-import-not-at-top
  from sslax.train import artifact  # pylint: disable=g-import-not-at-top
  from conftest import fails_cleanly  # pylint: disable=g-import-not-at-top
  workdir, out, _, _ = exported
  images = _images(40)
  # What `sslax eval` computes for these test images (its encode_source of the
  # workdir's encoder over the split).
  want, labels = encode_source(artifact.restore_encoder(workdir),
                               SubsetSource(fashion_mnist("test"), np.arange(40)), 16)
  assert labels.shape == (40,)
  for path in (workdir, out):
    np.testing.assert_array_equal(sslax.embed(path, images, batch_size=16), want)
  np.testing.assert_array_equal(sslax.embed(out, images / 255.0, batch_size=16), want)
  # Images of another size go through the image folder's resize and crop:
  # 56x70 PNGs in a folder, their array, and the file list all agree.
  big = np.stack([np.asarray(Image.fromarray(x[..., 0]).resize((70, 56), Image.BICUBIC))
                  for x in images[:6]])[..., None]
  folder = tmp_path / "mine"
  folder.mkdir()
  for i, x in enumerate(big):
    Image.fromarray(x[..., 0]).save(folder / f"{i:02d}.png")
  files = sorted(str(p) for p in folder.iterdir())
  from_array = sslax.embed(out, big)
  np.testing.assert_array_equal(sslax.embed(out, files), from_array)
  np.testing.assert_array_equal(sslax.embed(out, str(folder)), from_array)
  cropped = np.stack([resize_and_center_crop(x, (28, 28)) for x in big])
  np.testing.assert_array_equal(sslax.embed(out, cropped), from_array)
  # The command: features and the file of each row.
  capsys.readouterr()
  cli.main(["embed", "--from", out, "--images", str(folder), "--out",
            str(tmp_path / "f.npy")])
  assert "wrote 6 x 16 features" in capsys.readouterr().out
  np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), from_array)
  assert (tmp_path / "f.txt").read_text().splitlines() == files
  # Mistakes: one line each.
  fails_cleanly(capsys, ["embed", "--from", out, "--images", str(folder), "--out",
                         str(tmp_path / "f.npy")], "already exists")
  np.save(tmp_path / "rgb.npy", np.repeat(images[:4], 3, axis=-1))
  fails_cleanly(capsys, ["embed", "--from", out, "--images", str(tmp_path / "rgb.npy"),
                         "--out", str(tmp_path / "g.npy")], "3 channels but the encoder takes 1")
  dense = tmp_path / "dense"
  shutil.copytree(out, dense)
  info = json.loads((dense / "encoder.json").read_text())
  (dense / "encoder.json").write_text(json.dumps({**info, "output": "dense"}))
  fails_cleanly(capsys, ["embed", "--from", str(dense), "--images", str(folder), "--out",
                         str(tmp_path / "h.npy")], "gives a dense; embed with a vector")
