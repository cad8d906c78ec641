"""Denoising autoencoders and context encoders: the decoder's geometry, the
loss wiring, masking that hides the masked pixels, the discriminator held in
the method state, reconstructions for pictures, and a short run through the
trainer and `sslax viz`."""

import functools
import gzip
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT
from sslax.config_loading import load_config_file
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.methods import build_method, common, context_encoder, denoising_ae
from sslax.models import ConvNet
from sslax.models.decoder import ConvDecoder, start_size, upsample_sizes


def _config(name, **changes):
  c = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  c.progress_bar = False
  for key, value in changes.items():
    group, field = key.split("__")
    c[group][field] = value
  return c


@functools.lru_cache(maxsize=None)
def _images():
  """The first 32 training images and labels."""
  source = get_source(_config("denoising_ae").data, "train")
  examples = source.get(np.arange(32))
  return examples["image"], examples["label"]


def _run(config, images, extra):
  """One compiled pass of a method on ``images``: a dict with the method, its
  initial variables, ``loss``, ``aux`` and ``grads`` of ``loss_fn``, and
  whatever ``extra(method, loss_of, params, model_state)`` adds (computed in
  the same jit: every compile costs seconds on a CPU)."""
  method = build_method(config)
  params, model_state, method_state = jax.jit(method.init)(jax.random.PRNGKey(0), {"image": images})

  def loss_of(p):
    return method.loss_fn(p, model_state, method_state, {"image": images},
                          jax.random.PRNGKey(1))

  @jax.jit
  def run(params):
    (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    # The encoder on the clean central view, train-mode batch norm.
    variables = method.encoder.select(params, model_state)
    clean, clean_state = method.encoder.module().apply(
        variables, common.center_input(images, config), train=True, mutable=["batch_stats"])
    return dict(loss=loss, aux=aux, grads=grads, clean=clean, clean_state=clean_state,
                **extra(method, loss_of, params, model_state))

  return dict(method=method, params=params, model_state=model_state,
              method_state=method_state, **run(params))


def _dae_parts(method, loss_of, params, model_state):
  """The denoising loss rebuilt from its parts: the corrupted view through the
  autoencoder against the clean view, weighted by the corruption mask."""
  del method, loss_of
  config = _config("denoising_ae")
  images = jnp.asarray(_images()[0])
  k_aug, k_noise = jax.random.split(jax.random.PRNGKey(1))
  x = denoising_ae.training_images(k_aug, images, config)
  corrupted, mask = denoising_ae.corrupt(k_noise, x, config)
  model, _ = denoising_ae.autoencoder(config)
  (_, recon), _ = common.apply_train(model, params, model_state,
                                     denoising_ae.normalize(corrupted, config))
  return {"expected_loss": denoising_ae.reconstruction_loss(
      recon, denoising_ae.normalize(x, config), mask, config)}


def _adversarial_grads(method, loss_of, params, model_state):
  """The gradient of the generator's adversarial term alone."""
  del method, model_state
  return {"adversarial_grads": jax.grad(
      lambda p: loss_of(p)[1].metrics["adversarial_loss"])(params)}


@pytest.fixture(scope="module")
def dae_run():
  return _run(_config("denoising_ae"), jnp.asarray(_images()[0]), _dae_parts)


@pytest.fixture(scope="module")
def ce_run():
  return _run(_config("context_encoder"), jnp.asarray(_images()[0]), _adversarial_grads)


# -------------------------------------------------------------- the decoder

def test_decoder_geometry_and_shapes():
  assert upsample_sizes((28, 28), 3) == [(7, 7), (14, 14), (28, 28)]
  assert upsample_sizes((224, 224), 5)[0] == (14, 14)
  assert start_size((32, 32), 3) == (4, 4) and start_size((224, 224), 5) == (7, 7)
  # The Fashion-MNIST ConvNet's flat 2048-d output is its 4x4x128 map.
  assert ConvNet(widths=(32, 64, 128), stem_stride=2).map_shape((28, 28)) == (4, 4, 128)
  net = ConvNet(widths=(4, 8), stem_stride=2, pool="flatten")
  flat = jax.eval_shape(lambda x: net.init_with_output(jax.random.PRNGKey(0), x)[0],
                        jnp.zeros((2, 28, 28, 1)))
  assert flat.shape == (2, int(np.prod(net.map_shape((28, 28)))))
  for z, out, widths in (((2, 4, 4, 8), (28, 28, 1), (8, 4, 4)),
                         ((2, 16), (32, 32, 3), (8, 4, 4)),
                         ((2, 7, 7, 8), (224, 224, 3), (8, 8, 4, 4, 4))):
    dec = ConvDecoder(out_shape=out, widths=widths)
    y = jax.eval_shape(lambda x, d=dec: d.init_with_output(jax.random.PRNGKey(0), x)[0],
                       jnp.zeros(z))
    assert y.shape == (2, *out) and y.dtype == jnp.float32
  # The colour methods' variant: transposed convolutions that double the map,
  # then a 1x1 convolution to per-pixel outputs; other sizes are refused.
  dec = ConvDecoder(out_shape=(16, 16, 5), widths=(8, 4), upsample="transpose",
                    output="pixels")
  y, variables = jax.eval_shape(lambda x: dec.init_with_output(jax.random.PRNGKey(0), x),
                                jnp.zeros((2, 4, 4, 8)))
  assert y.shape == (2, 16, 16, 5)
  assert set(variables["params"]) == {"ConvTranspose_0", "ConvTranspose_1", "BatchNorm_0",
                                      "BatchNorm_1", "Conv_0"}
  with pytest.raises(ValueError, match="doubles"):
    jax.eval_shape(lambda x: dec.init(jax.random.PRNGKey(0), x), jnp.zeros((2, 5, 5, 8)))


# --------------------------------------------------------------- both methods

@pytest.mark.parametrize("run", ["dae_run", "ce_run"])
def test_loss_finite_gradients_reach_encoder_and_decoder(run, request):
  r = request.getfixturevalue(run)
  aux = r["aux"]
  assert np.isfinite(float(r["loss"]))
  assert set(r["grads"]) == {"encoder", "decoder"}
  for name, tree in r["grads"].items():
    assert float(optax.global_norm(tree)) > 0, name
  assert float(aux.metrics["reconstruction_mse"]) > 0
  # Features: the encoder's output on the clean central view, shaped as
  # Method.encoder's (the smoke ConvNet's 7x7x16 map, flattened).
  x = jax.ShapeDtypeStruct((32, 28, 28, 1), jnp.float32)
  variables = r["method"].encoder.select(r["params"], r["model_state"])
  assert aux.features.shape == jax.eval_shape(
      lambda v, x: r["method"].encoder.module().apply(v, x, train=False), variables,
      x).shape
  assert aux.features.shape == (32, 7 * 7 * 16)
  np.testing.assert_allclose(aux.features, r["clean"], rtol=1e-5, atol=1e-5)
  # The encoder's running statistics are those of the clean pass; the
  # decoder's come from the training pass.
  close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)
  jax.tree.map(close, aux.model_state["batch_stats"]["encoder"],
               r["clean_state"]["batch_stats"])
  assert not np.allclose(
      jax.tree.leaves(aux.model_state["batch_stats"]["decoder"])[0],
      jax.tree.leaves(r["model_state"]["batch_stats"]["decoder"])[0])


def _check_unit_images(arrays, shape):
  for a in arrays:
    assert a.shape == shape and a.dtype == jnp.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


# ------------------------------------------------------- denoising autoencoder

def test_dae_loss_counts_only_corrupted_components_with_beta_zero():
  config = _config("denoising_ae", denoising_ae__alpha=1.0, denoising_ae__beta=0.0)
  x = jnp.asarray(_images()[0][:4], jnp.float32) / 255.0
  recon = jax.random.normal(jax.random.PRNGKey(1), x.shape)
  loss = functools.partial(denoising_ae.reconstruction_loss, config=config)
  for kind in ("masking", "salt_and_pepper"):
    config.denoising_ae.corruption = kind
    corrupted, mask = denoising_ae.corrupt(jax.random.PRNGKey(0), x, config)
    assert 0.15 < float(mask.mean()) < 0.35                 # rate 0.25
    np.testing.assert_array_equal(corrupted * (1 - mask), x * (1 - mask))
    moved = recon + 5.0 * (1 - mask)                        # change clean components only
    np.testing.assert_allclose(loss(moved, x, mask), loss(recon, x, mask), rtol=1e-6)
    assert not np.isclose(float(loss(recon + 5.0 * mask, x, mask)),
                          float(loss(recon, x, mask)))
  config.denoising_ae.beta = 0.5                            # now clean components count
  assert not np.isclose(float(loss(moved, x, mask)), float(loss(recon, x, mask)))
  config.denoising_ae.corruption = "gaussian"
  _, mask = denoising_ae.corrupt(jax.random.PRNGKey(0), x, config)
  assert float(mask.min()) == 1.0                           # every component corrupted


def test_dae_method_loss_is_the_weighted_loss_of_its_corruption(dae_run):
  np.testing.assert_allclose(float(dae_run["loss"]), float(dae_run["expected_loss"]),
                             rtol=1e-5)


def test_dae_reconstruct_gives_images_in_unit_range(dae_run):
  images = _images()[0]
  corrupted, recon = denoising_ae.reconstruct(
      _config("denoising_ae"), dae_run["params"], dae_run["model_state"], images,
      jax.random.PRNGKey(3))
  _check_unit_images((corrupted, recon), images.shape)
  assert not np.allclose(corrupted, images / 255.0)


# ------------------------------------------------------------ context encoder

def test_random_block_masks_hide_the_masked_pixels():
  config = _config("context_encoder")
  assert config.context_encoder.mask == "random_blocks"

  @jax.jit
  def inputs(images, other):
    mask = context_encoder.masks(jax.random.PRNGKey(2), 8, config)
    return mask, [context_encoder.masked_input(denoising_ae.normalize(x, config), mask)
                  for x in (images, other, jnp.where(mask > 0, other, images))]

  images = jnp.asarray(_images()[0][:8], jnp.float32) / 255.0
  mask, (a, b, c) = inputs(images, 1.0 - images)
  assert mask.shape == (8, 28, 28, 1) and 0 < float(mask.mean()) <= 0.25  # 4 x 7x7
  np.testing.assert_array_equal(a * mask, 0.0)              # the dataset mean
  np.testing.assert_array_equal(a, c)                       # differs only inside
  assert not np.array_equal(a, b)


def test_context_reconstruct_ignores_masked_pixels(ce_run):
  """Images differing only inside the central block: the same encoder input
  and the same inpainting (one batch: rows i and 32 + i)."""
  config = _config("context_encoder", context_encoder__mask="central")
  images = _images()[0]
  mask = np.asarray(context_encoder.masks(None, 1, config))[0] > 0
  other = np.where(mask, np.uint8(255) - images, images)
  assert not np.array_equal(other, images)
  masked, inpainted = context_encoder.reconstruct(
      config, ce_run["params"], ce_run["model_state"], np.concatenate([images, other]),
      jax.random.PRNGKey(0))
  _check_unit_images((masked, inpainted), (64, 28, 28, 1))
  for a in (masked, inpainted):
    # (equal to float32 rounding: XLA:CPU's threaded kernels may round a
    # row differently by its place in the batch, 3e-8 seen; a masked pixel
    # that reached the encoder would move the inpainting by far more)
    np.testing.assert_allclose(a[:32], a[32:], rtol=0, atol=1e-6)
  mean = config.data.mean[0]
  np.testing.assert_allclose(np.asarray(masked)[:, mask], mean, atol=1e-6)
  np.testing.assert_allclose(np.asarray(inpainted)[:32, ~mask],
                             (images / 255.0)[:, ~mask], atol=1e-6)


def test_adversarial_term_trains_generator_and_discriminator(ce_run):
  aux = ce_run["aux"]
  assert _config("context_encoder").context_encoder.adversarial_weight > 0
  method = ce_run["method"]
  assert set(aux.method_state._fields) == {"params", "opt_state"}
  assert {"reconstruction_loss", "adversarial_loss"} <= set(aux.metrics)
  # The loss leaves the discriminator as it was; its own Adam step is the
  # method's side update, on the real and composited images of the step.
  before = jax.tree.leaves(ce_run["method_state"].params)
  chex.assert_trees_all_equal(aux.method_state, ce_run["method_state"])
  real, fake = aux.outputs
  assert real.shape == fake.shape == (32, 28, 28, 1)
  new_d, d_metrics = method.side_update(aux.method_state, aux.outputs)
  assert {"discriminator_loss", "discriminator_accuracy"} == set(d_metrics)
  after = jax.tree.leaves(new_d.params)
  assert all(not np.allclose(a, b) for a, b in zip(before, after))
  # The generator's adversarial term has a gradient in the encoder and decoder.
  for name in ("encoder", "decoder"):
    assert float(optax.global_norm(ce_run["adversarial_grads"][name])) > 0, name


def test_no_discriminator_without_adversarial_weight():
  config = _config("context_encoder", context_encoder__adversarial_weight=0.0)
  method = build_method(config)
  images = jax.ShapeDtypeStruct((4, 28, 28, 1), jnp.uint8)
  _, _, method_state = jax.eval_shape(method.init, jax.random.PRNGKey(0), {"image": images})
  assert method_state == {} and method.side_update is None


# --------------------------------------------------------------- config errors

@pytest.mark.parametrize("name,changes,match", [
    ("denoising_ae", dict(denoising_ae__corruption="blur"), "denoising_ae.corruption"),
    ("denoising_ae", dict(denoising_ae__rate=1.5), "denoising_ae.rate"),
    ("denoising_ae", dict(denoising_ae__corruption="gaussian", denoising_ae__sigma=0.0),
     "denoising_ae.sigma"),
    ("denoising_ae", dict(denoising_ae__alpha=-1.0), "alpha"),
    ("denoising_ae", dict(denoising_ae__decoder_widths=()), "denoising_ae.decoder_widths"),
    ("context_encoder", dict(context_encoder__mask="ring"), "context_encoder.mask"),
    ("context_encoder", dict(context_encoder__mask="central",
                             context_encoder__side_fraction=1.0),
     "side_fraction"),
    ("context_encoder", dict(context_encoder__block_size=40), "block_size"),
    ("context_encoder", dict(context_encoder__num_blocks=0), "num_blocks"),
    ("context_encoder", dict(context_encoder__adversarial_weight=1.0), "adversarial_weight"),
])
def test_bad_config_values_raise_user_error(name, changes, match):
  with pytest.raises(UserError, match=match):
    build_method(_config(name, **changes))


# ----------------------------------------------------------------- end to end

def _write_idx(path, array):
  header = bytes([0, 0, 8, array.ndim]) + b"".join(
      int(s).to_bytes(4, "big") for s in array.shape)
  with gzip.open(path + ".gz", "wb") as f:
    f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


@pytest.fixture
def tiny_fashion_mnist(tmp_path):
  """256 training and 128 test images of Fashion-MNIST, in its IDX files."""
  out = tmp_path / "fmnist"
  out.mkdir()
  for split, n, (image_file, label_file) in (("train", 256, ("train-images-idx3-ubyte",
                                                             "train-labels-idx1-ubyte")),
                                             ("test", 128, ("t10k-images-idx3-ubyte",
                                                            "t10k-labels-idx1-ubyte"))):
    _examples = get_source(_config("denoising_ae").data, split).get(np.arange(n))
    images, labels = _examples["image"], _examples["label"]
    _write_idx(str(out / image_file), images[..., 0])
    _write_idx(str(out / label_file), labels)
  return str(out)


@pytest.mark.slow
def test_train_then_viz_writes_reconstruction_png(tiny_fashion_mnist, tmp_path,
                                                monkeypatch):
  """Two jitted steps of the trainer: the discriminator in the method state
  moves with its own optimizer; then `visualize` draws the reconstructions."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from sslax.eval import viz  # pylint: disable=g-import-not-at-top
  from sslax.train import checkpoint  # pylint: disable=g-import-not-at-top
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  config = _config("context_encoder")
  config.data.data_dir = tiny_fashion_mnist
  config.update(num_steps=2, checkpoint_every=1, keep_checkpoints=2, online_eval_every=0)
  config.eval.batch_size = 128
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(config, workdir)
  assert int(state.step) == 2
  d = state.method_state
  assert int(jax.tree.leaves(d.opt_state)[0]) == 2      # two Adam steps
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert all("discriminator_loss" in r for r in records)
  with checkpoint.manager(workdir, read_only=True) as mngr:
    first = mngr.restore(1)["method_state"]["params"]
  assert all(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(first),
                                                   jax.tree.leaves(d.params)))
  # t-SNE is slow and drawn by every method; it is not what is tested here.
  monkeypatch.setattr(viz, "tsne_png", lambda *args, **kwargs: args[3])
  paths = viz.visualize(workdir)
  assert os.path.basename(paths[-1]) == "reconstruction.png"
  with Image.open(paths[-1]) as image:
    assert image.format == "PNG" and image.size[0] > 200
