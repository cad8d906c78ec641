"""CPC: the scanned GRU, the patch and waveform encoders' geometry, the loss
against the paper's formula, the method's step, and the speech corpus."""

import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT
from sslax import losses
from sslax.config_loading import load_config_file
from sslax.data import speech
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.methods import build_method, cpc
from sslax.models import PatchConvNet
from sslax.models.audio import WaveformEncoder, num_codes, receptive_field
from sslax.models.gru import ScannedGRU
from sslax.models.patchnet import patch_geometry
from sslax.train.run import global_batch, init_state, setup
from sslax.train.step import compile_step


# ---------------------------------------------------------------- the GRU

def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def gru_by_formula(params, x):
  """Cho et al. 2014 in numpy, one step at a time, reading flax's GRUCell
  parameters (r and z gates, candidate n with r applied to W_hn h + b_hn)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["cell"])
  h = np.zeros((x.shape[0], p["hr"]["kernel"].shape[0]))
  out = []
  for t in range(x.shape[1]):
    xt = np.asarray(x[:, t], np.float64)
    r = _sigmoid(xt @ p["ir"]["kernel"] + p["ir"]["bias"] + h @ p["hr"]["kernel"])
    z = _sigmoid(xt @ p["iz"]["kernel"] + p["iz"]["bias"] + h @ p["hz"]["kernel"])
    n = np.tanh(xt @ p["in"]["kernel"] + p["in"]["bias"]
                + r * (h @ p["hn"]["kernel"] + p["hn"]["bias"]))
    h = (1.0 - z) * n + z * h
    out.append(h)
  return np.stack(out, axis=1)


def test_scanned_gru_equals_python_loop_step_by_step():
  import flax.linen as nn
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 5))
  gru = ScannedGRU(features=6)
  variables = gru.init(jax.random.PRNGKey(1), x)
  scanned = np.asarray(gru.apply(variables, x))
  assert scanned.shape == (3, 7, 6)
  # The same cell applied in a Python loop over time.
  cell = nn.GRUCell(features=6)
  h = jnp.zeros((3, 6))
  for t in range(7):
    h, _ = cell.apply({"params": variables["params"]["cell"]}, h, x[:, t])
    np.testing.assert_allclose(scanned[:, t], np.asarray(h), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(scanned, gru_by_formula(variables["params"], np.asarray(x)),
                             rtol=1e-4, atol=1e-5)
  # Causal: changing the last input changes only the last output.
  y = np.asarray(gru.apply(variables, x.at[:, -1].add(1.0)))
  np.testing.assert_array_equal(y[:, :-1], scanned[:, :-1])
  assert not np.allclose(y[:, -1], scanned[:, -1])


# ------------------------------------------------------------ the encoders

def test_patch_convnet_encodes_each_patch_on_its_own():
  kernels, strides = (2, 3, 2, 1), (2, 1, 2, 1)
  assert patch_geometry(kernels, strides) == (8, 4)
  net = PatchConvNet(widths=(4, 8, 8, 6), kernels=kernels, strides=strides)
  images = jax.random.normal(jax.random.PRNGKey(0), (2, 28, 28, 1))
  variables = net.init(jax.random.PRNGKey(1), images)
  grid = np.asarray(net.apply(variables, images))
  assert grid.shape == (2, 6, 6, 6)
  patches = cpc.patch_grid(images, 8, 4)                       # [2, 6, 6, 8, 8, 1]
  assert patches.shape == (2, 6, 6, 8, 8, 1)
  np.testing.assert_array_equal(np.asarray(patches[1, 2, 3]), np.asarray(images[1, 8:16, 12:20]))
  one_by_one = net.apply(variables, patches.reshape(-1, 8, 8, 1))  # each patch -> 1x1
  np.testing.assert_allclose(grid, np.asarray(one_by_one).reshape(2, 6, 6, 6),
                             rtol=1e-5, atol=1e-5)


def test_waveform_encoder_geometry():
  kernels, strides = (10, 8, 4, 4, 4), (5, 4, 2, 2, 2)
  assert receptive_field(kernels, strides) == 465
  enc = WaveformEncoder(width=8, kernels=kernels, strides=strides)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 3200))
  variables = enc.init(jax.random.PRNGKey(1), x)
  z = enc.apply(variables, x)
  assert z.shape == (2, num_codes(3200, kernels, strides), 8)
  assert z.shape[1] == 3200 // 160 - 2   # one code per 160 samples, minus the edges
  # Code t depends on samples [160 t, 160 t + 465) only.
  z2 = enc.apply(variables, x.at[:, 465:].set(0.0))
  np.testing.assert_array_equal(np.asarray(z2[:, 0]), np.asarray(z[:, 0]))


# ----------------------------------------------------------------- the loss

def naive_cpc_infonce(predictions, codes, offsets):
  """van den Oord et al. 2018, eq. 4, one query at a time: for offset k and
  step t of sequence n, -log exp(f(z_{n,t+k})) / sum_{m,s} exp(f(z_{m,s})) with
  f(z) = z . (W_k c_{n,t}); mean over queries, then over offsets."""
  p = np.asarray(predictions, np.float64)
  z = np.asarray(codes, np.float64)
  n, steps = z.shape[:2]
  per_offset = []
  for i, k in enumerate(offsets):
    terms = []
    for a in range(n):
      for t in range(steps - k):
        scores = np.array([[z[m, s] @ p[a, t, i] for s in range(steps)] for m in range(n)])
        top = scores.max()
        log_denominator = top + np.log(np.exp(scores - top).sum())
        terms.append(log_denominator - scores[a, t + k])
    per_offset.append(np.mean(terms))
  return float(np.mean(per_offset))


def _loss_inputs(n=3, steps=6, dim=4, offsets=(1, 2, 4), seed=0):
  rng = np.random.default_rng(seed)
  codes = rng.normal(size=(n, steps, dim)).astype(np.float32)
  predictions = rng.normal(size=(n, steps, len(offsets), dim)).astype(np.float32)
  # Make the true future more likely than chance so the loss is informative.
  for i, k in enumerate(offsets):
    predictions[:, :steps - k, i] += codes[:, k:]
  return predictions, codes


def test_cpc_infonce_equals_naive_formula_values_and_gradients():
  offsets = (1, 2, 4)
  predictions, codes = _loss_inputs(offsets=offsets)
  value, (gp, gz) = jax.value_and_grad(
      lambda p, z: losses.cpc_infonce(p, z, offsets=offsets), argnums=(0, 1))(
          jnp.asarray(predictions), jnp.asarray(codes))
  np.testing.assert_allclose(float(value), naive_cpc_infonce(predictions, codes, offsets),
                             rtol=1e-5)
  eps = 1e-4
  rng = np.random.default_rng(1)
  for which, grad in ((0, gp), (1, gz)):
    arrays = [predictions.astype(np.float64), codes.astype(np.float64)]
    for _ in range(12):
      idx = tuple(rng.integers(s) for s in arrays[which].shape)
      plus = [a.copy() for a in arrays]
      minus = [a.copy() for a in arrays]
      plus[which][idx] += eps
      minus[which][idx] -= eps
      fd = (naive_cpc_infonce(*plus, offsets) - naive_cpc_infonce(*minus, offsets)) / (2 * eps)
      np.testing.assert_allclose(float(grad[idx]), fd, rtol=2e-3, atol=1e-5)


def test_cpc_infonce_is_log_candidates_for_uninformative_scores():
  # With every score equal, each query is a uniform guess over N * T codes.
  n, steps, dim = 4, 5, 3
  loss = losses.cpc_infonce(jnp.zeros((n, steps, 2, dim)), jnp.ones((n, steps, dim)),
                            offsets=(1, 3))
  np.testing.assert_allclose(float(loss), np.log(n * steps), rtol=1e-6)


def test_cpc_infonce_rejects_bad_offsets():
  p, z = _loss_inputs(steps=4, offsets=(1, 2))
  with pytest.raises(ValueError):
    losses.cpc_infonce(jnp.asarray(p), jnp.asarray(z), offsets=(1, 4))
  with pytest.raises(ValueError):
    losses.cpc_infonce(jnp.asarray(p), jnp.asarray(z), offsets=(1,))


# --------------------------------------------------------------- the method

def _image_smoke():
  return load_config_file(os.path.join(ROOT, "configs", "cpc_image.py:smoke"))


def test_image_cpc_step_compiles_once_and_learns():
  """Six steps of the jitted step on one repeated batch, then one on another:
  one trace, and the loss falls on the repeated batch."""
  config = _image_smoke()
  config.num_steps = 20
  # The configured peak (2e-3) from the first step: no warm-up from 0 and no
  # scaling by batch / 256, which would leave the 32-image batch at 2.5e-4.
  config.optimizer.update(warmup_steps=0, lr_scaling="none")
  run = setup(config)
  state = init_state(run)
  step = compile_step(run, state, wrap=lambda f: chex.assert_max_traces(f, n=1))
  batch = global_batch(run, 0)
  losses_seen, rates = [], []
  for _ in range(6):
    state, metrics = step(state, batch)
    losses_seen.append(float(metrics["loss"]))
    rates.append(float(metrics["lr"]))
  state, metrics = step(state, global_batch(run, 1))  # new data, same trace
  assert all(np.isfinite(losses_seen + [float(metrics["loss"])]))
  assert rates[0] == pytest.approx(2e-3) and min(rates) > 1.5e-3
  # At initialisation the loss is about log(#candidates): 32 images x 36 patches.
  np.testing.assert_allclose(losses_seen[0], np.log(32 * 36), atol=0.2)
  # Measured 7.14 -> 7.00 over the six steps; at learning rate 0 the same six
  # steps (new augmentations each) wander within [7.14, 7.19].
  assert losses_seen[-1] < losses_seen[0] - 0.07, losses_seen
  # The representation is the 6x6 grid pooled to 3x3: 9 x code width.
  definition = run.method.encoder
  feats = definition.module().apply(definition.select(state.params, state.model_state),
                                    jnp.zeros((2, 28, 28, 1)), train=False)
  assert feats.shape == (2, 9 * config.model.widths[-1])


def test_cpc_gradients_reach_encoder_context_and_predictors():
  config = _image_smoke()
  method = build_method(config)
  images = jnp.asarray(get_source(config.data, "train").get(np.arange(8))["image"])
  params, model_state, method_state = method.init(jax.random.PRNGKey(0), {"image": images})
  grads = jax.jit(jax.grad(lambda p: method.loss_fn(
      p, model_state, method_state, {"image": images}, jax.random.PRNGKey(1))[0]))(params)
  assert set(grads) == {"encoder", "autoregressor", "predictors"}
  for name, tree in grads.items():
    assert float(optax.global_norm(tree)) > 0, name


def test_cpc_config_errors():
  config = _image_smoke()
  config.cpc.offsets = (2, 6)        # 6 rows: offset 6 has no target
  with pytest.raises(UserError, match="offsets"):
    build_method(config)
  config = _image_smoke()
  config.cpc.pool_grid = 4           # does not divide 6
  with pytest.raises(UserError, match="pool_grid"):
    build_method(config)
  config = load_config_file(os.path.join(ROOT, "configs", "cpc_speech.py:smoke"))
  config.data.crop_length = 400      # receptive field is 465 samples
  with pytest.raises(UserError, match="receptive field"):
    build_method(config)


# ------------------------------------------------------------ speech corpus

# (tiny_corpus: tests/conftest.py)

def test_speech_corpus_split_and_shapes(tiny_corpus):
  import json
  train, test = speech.load_split(tiny_corpus, "train"), speech.load_split(tiny_corpus, "test")
  assert train.arrays["audio"].shape == (24, 16000) and train.arrays["audio"].dtype == np.int16
  assert test.arrays["audio"].shape == (8, 16000)
  assert np.bincount(train.labels).tolist() == [6] * 4
  assert train.num_classes == 4
  with open(os.path.join(tiny_corpus, "meta.json")) as f:
    meta = json.load(f)
  # No sentence is spoken in both splits.
  assert not set(meta["sentences"]["train"]) & set(meta["sentences"]["test"])
  # Real speech: clips are not silent and speakers differ in pitch.
  assert float(np.std(train.arrays["audio"])) > 300
  # Built again with the same settings: found, not rebuilt.
  messages = []
  speech.make_corpus(tiny_corpus, num_speakers=4, train_per_speaker=6, test_per_speaker=2,
                     clip_seconds=1.0, log=messages.append)
  assert messages == [f"speech corpus already in {tiny_corpus}"]


def test_mfcc_of_a_tone_peaks_in_its_mel_band():
  t = np.arange(16000) / 16000.0
  tone = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)[None]
  bank = speech.mel_filterbank(40, 512, 16000)
  freqs = np.linspace(0, 8000, 257)
  assert np.argmax(bank[np.argmin(np.abs(freqs - 1000.0))]) == np.argmax(
      (np.abs(np.fft.rfft(tone[0, :512] * np.hamming(512))) ** 2) @ bank)
  c = speech.mfcc(tone)
  assert c.shape == (1, (16000 - 400) // 160 + 1, 20)
  # The inverse DCT of the full cepstrum gives back the log mel energies.
  from scipy import fft
  full = fft.dct(np.log(
      (np.abs(np.fft.rfft(np.lib.stride_tricks.sliding_window_view(tone[0], 400)[::160]
                          * np.hamming(400), n=512)) ** 2) @ bank + 1e-10),
                 type=2, norm="ortho", axis=-1)
  np.testing.assert_allclose(c[0], full[:, :20], rtol=1e-4, atol=1e-3)
  assert speech.mfcc_features(np.stack([tone[0], tone[0]])).shape == (2, 40)


def _sslax(*args, env=None, cwd=None):
  return subprocess.run([sys.executable, "-m", "sslax", *args], capture_output=True,
                        text=True, env=env, cwd=cwd, timeout=600)


def test_speech_cpc_end_to_end(tiny_corpus, tmp_path):
  """Train the smoke config on the tiny corpus, then the speaker probe from
  CPC, MFCC and random-init features, export and load the encoder."""
  import json
  import sslax
  work = str(tmp_path / "run")
  proc = _sslax("train", "--config", os.path.join(ROOT, "configs", "cpc_speech.py:smoke"),
                "--workdir", work, f"--config.data.data_dir={tiny_corpus}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(os.path.join(work, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert records[-1]["step"] == 6 and "online_probe_top1" in records[-1]
  linear = {}
  for features in ("encoder", "mfcc", "random_init"):
    proc = _sslax("eval", "linear", "--json", "--workdir", work, "--features", features)
    assert proc.returncode == 0, proc.stderr[-3000:]
    linear[features] = json.loads(proc.stdout)
  # Pitch tells the 4 speakers apart: MFCC statistics classify the 8 test
  # clips far above chance (0.25; measured 1.0).
  assert linear["mfcc"]["top1"] >= 0.75
  proc = _sslax("eval", "linear", "--workdir", work, "--features", "raw_pixels")
  assert proc.returncode == 2 and "use mfcc" in proc.stderr
  proc = _sslax("eval", "finetune", "--workdir", work)
  assert proc.returncode == 2 and "sslax eval linear" in proc.stderr
  proc = _sslax("export", "--workdir", work, "--out", str(tmp_path / "enc"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  module, variables, info = sslax.load_encoder(str(tmp_path / "enc"))
  clips = speech.load_split(tiny_corpus, "test").arrays["audio"][:3]
  feats = module.apply(variables, sslax.preprocess(clips, info), train=False)
  # The training window; the encoder takes clips of any length (here 16000).
  assert info["input_shape"] == [2560] and feats.shape == (3, info["feature_dim"])
  # Six CPC steps leave the encoder and its initialisation near chance on 8
  # test clips (measured 0.375 and 0.625): their probes are scored again here,
  # on every clip encoded by the exported encoder and by the initial one.
  from sslax.eval.features import load_run_encoder  # pylint: disable=g-import-not-at-top
  from sslax.probes.linear import linear_probe  # pylint: disable=g-import-not-at-top
  initial = load_run_encoder(work, random_init=True)
  encoders = {
      "encoder": lambda x: module.apply(variables, sslax.preprocess(x, info), train=False),
      "random_init": lambda x: initial.module.apply(
          initial.variables, initial.definition.prepare(jnp.asarray(x)), train=False)}
  train, test = speech.load_split(tiny_corpus, "train"), speech.load_split(tiny_corpus, "test")
  keys = ("top1", "train_top1", "weight_decay", "validation_top1")
  for features, encode in encoders.items():
    again = linear_probe(np.asarray(encode(train.arrays["audio"])), train.labels,
                         np.asarray(encode(test.arrays["audio"])), test.labels, fraction=1.0,
                         num_classes=4)
    assert {k: again[k] for k in keys} == {k: linear[features][k] for k in keys}, features


def test_speech_bad_input_exits_2(tiny_corpus, tmp_path):
  empty = tmp_path / "words.txt"
  empty.write_text("  \n")
  proc = _sslax("data", "make-speech", "--out", str(tmp_path / "c1"), "--words", str(empty))
  assert proc.returncode == 2 and "word list is empty" in proc.stderr
  assert "Traceback" not in proc.stderr
  env = dict(os.environ, PATH=os.path.dirname(sys.executable))   # no espeak-ng here
  proc = _sslax("data", "make-speech", "--out", str(tmp_path / "c2"), env=env)
  assert proc.returncode == 2 and "apt-get install espeak-ng" in proc.stderr
  proc = _sslax("train", "--config", os.path.join(ROOT, "configs", "cpc_speech.py:smoke"),
                "--workdir", str(tmp_path / "w"), "--config.data.crop_length=300",
                f"--config.data.data_dir={tiny_corpus}")
  assert proc.returncode == 2 and "receptive field" in proc.stderr
  proc = _sslax("train", "--config", os.path.join(ROOT, "configs", "cpc_speech.py:smoke"),
                "--workdir", str(tmp_path / "w2"),
                f"--config.data.data_dir={tmp_path / 'nowhere'}")
  assert proc.returncode == 2 and "sslax data make-speech" in proc.stderr
