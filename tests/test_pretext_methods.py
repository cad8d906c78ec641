"""The image pretext tasks as methods: rotation, relative patch location,
jigsaw and exemplar networks. Their inputs and labels, the loss at
initialisation, gradients, features for the probe, the jigsaw permutation set
and the exemplar memory bank, config errors, and one run through the trainer."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT
from sslax.config_loading import load_config_file
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.methods import build_method, common, exemplar, jigsaw, relative_patch, rotation
from sslax.train import checkpoint

N = 8  # images per test batch


def _config(name, **exemplar_overrides):
  c = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  c.progress_bar = False
  if exemplar_overrides:
    c.exemplar.update(exemplar_overrides)
  return c


def _init(method, c, images):
  """``method.init`` as the trainer calls it: with the method's constants
  (computed from the training source) when it has some."""
  if method.constants is None:
    return method.init(jax.random.PRNGKey(0), {"image": images[:2]})
  constants = method.constants(get_source(c.data, "train"))
  return method.init(jax.random.PRNGKey(0), {"image": images[:2]}, constants)


@pytest.fixture(scope="module")
def images():
  c = _config("rotation")
  return jnp.asarray(get_source(c.data, "train").get(np.arange(N))["image"])


# ---------------------------------------------------------------- the inputs

def test_rotation_input_holds_each_view_in_its_four_rotations(images):
  c = _config("rotation")
  views, rotated, labels = rotation.training_input(jax.random.PRNGKey(0), images, c)
  assert views.shape == (N, 28, 28, 1) and rotated.shape == (4 * N, 28, 28, 1)
  np.testing.assert_array_equal(np.asarray(labels), np.tile(np.arange(4), N))
  views, rotated = np.asarray(views), np.asarray(rotated)
  for i in range(N):
    for k in range(4):
      np.testing.assert_array_equal(rotated[4 * i + k], np.rot90(views[i], k))
  # Normalised views: background pixels (0) map to -mean / std.
  np.testing.assert_allclose(views.min(), -0.2860 / 0.3530, rtol=1e-4)


def test_relative_patch_pairs_are_centre_and_labelled_neighbour(images):
  c = _config("relative_patch")
  rc = c.relative_patch
  assert (rc.patch, rc.gap, rc.jitter) == (7, 2, 1)
  x = common.center_input(jnp.concatenate([images] * 8), c)  # 64: every label shows up
  pairs, labels = relative_patch.pairs_of(jax.random.PRNGKey(3), x, c)
  assert pairs.shape == (64, 2, 7, 7, 1) and labels.dtype == jnp.int32
  labels = np.asarray(labels)
  assert labels.min() >= 0 and labels.max() <= 7 and len(set(labels.tolist())) == 8
  # The centre patch and the labelled neighbour of the pretext transform.
  k_pair, _ = jax.random.split(jax.random.PRNGKey(3))
  centre, neighbour, want = relative_patch.relative_patch_pairs(k_pair, x, 7, 2, 1)
  np.testing.assert_array_equal(labels, np.asarray(want))
  np.testing.assert_array_equal(np.asarray(pairs[:, 0]), np.asarray(centre))
  np.testing.assert_array_equal(np.asarray(pairs[:, 1]), np.asarray(neighbour))


def test_colour_dropping_keeps_one_channel_per_patch():
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 2, 5, 5, 3)) + 3.0
  out = np.asarray(relative_patch.drop_colours(jax.random.PRNGKey(1), x))
  kept = np.abs(out - np.asarray(x)).max(axis=(2, 3)) == 0  # [6, 2, 3]
  np.testing.assert_array_equal(kept.sum(-1), np.ones((6, 2)))
  assert np.abs(out[~np.broadcast_to(kept[:, :, None, None, :], out.shape)]).max() < 0.1


def test_jigsaw_state_holds_the_config_permutations_and_labels_index_them(images):
  c = _config("jigsaw")
  c.jigsaw.update(num_permutations=12, permutation_seed=3)
  method = build_method(c)
  params, model_state, state = method.init(jax.random.PRNGKey(0), {"image": images[:2]})
  perms = np.asarray(state.permutations)
  np.testing.assert_array_equal(perms, jigsaw.hamming_permutations(12, 9, seed=3))
  # The loss reads the set from the state (the checkpointed one on a resume).
  def loss(s):
    return float(method.loss_fn(params, model_state, s, {"image": images},
                                jax.random.PRNGKey(1))[0])
  assert loss(state) != loss(jigsaw.PermutationSet(jnp.roll(state.permutations, 1, 0)))
  x = common.center_input(images, c)
  # Whole cells as tiles: undoing each example's labelled permutation gives
  # back the image's cells in row-major order.
  c.jigsaw.tile = 9
  tiles, labels = jigsaw.puzzles(jax.random.PRNGKey(1), x, state.permutations, c)
  assert tiles.shape == (N, 9, 9, 9, 1) and 0 <= int(labels.min()) <= int(labels.max()) < 12
  restored = jigsaw.permute_tiles(tiles, jigsaw.inverse_permutation(perms[labels]))
  np.testing.assert_array_equal(np.asarray(restored),
                                np.asarray(jigsaw.image_to_tiles(x, 3)))
  # Tiles of 7 inside cells of 9: each restored tile is a crop of its own cell.
  c.jigsaw.tile = 7
  tiles, labels = jigsaw.puzzles(jax.random.PRNGKey(2), x, state.permutations, c)
  restored = np.asarray(jigsaw.permute_tiles(tiles, jigsaw.inverse_permutation(
      perms[labels])))
  cells = np.asarray(jigsaw.image_to_tiles(x, 3))
  for n in range(N):
    for k in range(9):
      assert any(np.array_equal(restored[n, k], cells[n, k, i:i + 7, j:j + 7])
                 for i in range(3) for j in range(3)), (n, k)


def test_normalize_each_tile():
  t = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 5, 5, 3)) * 4.0 + 2.0
  out = np.asarray(jigsaw.normalize_each_tile(t))
  np.testing.assert_allclose(out.mean(axis=(2, 3, 4)), 0.0, atol=1e-5)
  np.testing.assert_allclose(out.std(axis=(2, 3, 4)), 1.0, atol=1e-3)
  assert np.all(np.asarray(jigsaw.normalize_each_tile(jnp.ones((1, 9, 5, 5, 1)))) == 0)


# --------------------------------------------------------------- the methods

CASES = {  # name -> (config, exemplar overrides, number of classes)
    "rotation": ("rotation", {}, 4),
    "relative_patch": ("relative_patch", {}, 8),
    "jigsaw": ("jigsaw", {}, 10),
    "exemplar": ("exemplar", {}, 64),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_at_init_gradients_and_features(case, images, monkeypatch):
  name, overrides, classes = CASES[case]
  c = _config(name, **overrides)
  method = build_method(c)
  assert method.name == name
  params, model_state, state = _init(method, c, images)
  # The logits and labels the method's loss is computed from, as they pass.
  module = {"rotation": rotation, "relative_patch": relative_patch, "jigsaw": jigsaw,
            "exemplar": exemplar}[name]
  seen = []

  def classification(logits, labels):
    jax.debug.callback(lambda *a: seen.append([np.asarray(x) for x in a]), logits, labels)
    return real_classification(logits, labels)

  real_classification = module.classification
  monkeypatch.setattr(module, "classification", classification)

  state = jax.tree.map(jnp.asarray, state)  # (arrays, as the trainer's state holds them)

  @jax.jit
  def run(params):
    return jax.value_and_grad(lambda p: method.loss_fn(
        p, model_state, state, {"image": images}, jax.random.PRNGKey(1)),
                              has_aux=True)(params)

  (loss, aux), grads = run(params)
  assert np.isfinite(float(loss))
  # At initialisation, about a uniform guess over the classes.
  assert abs(float(loss) - math.log(classes)) < 0.6, (float(loss), math.log(classes))
  # Loss and top-1 against numpy's cross-entropy and accuracy of those logits.
  assert len(seen) == 1
  logits, labels = seen[0]
  assert labels.shape == logits.shape[:1] and logits.shape[1] == classes
  log_softmax = logits - logits.max(1, keepdims=True)
  log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
  np.testing.assert_allclose(float(loss), -np.mean(log_softmax[np.arange(len(labels)), labels]),
                             rtol=1e-5)
  np.testing.assert_allclose(float(aux.metrics["pretext_top1"]),
                             np.mean(np.argmax(logits, 1) == labels), rtol=1e-6)
  # (At initialisation that is 0 for some cases: the same logits against
  # labels that make every other prediction right score one half.)
  half = np.where(np.arange(len(labels)) % 2, np.argmax(logits, 1),
                  (np.argmax(logits, 1) + 1) % classes)
  _, metrics = real_classification(jnp.asarray(logits), jnp.asarray(half))
  assert float(metrics["pretext_top1"]) == len(labels) // 2 / len(labels)
  assert set(grads) == {"encoder", "head"}
  for part in ("encoder", "head"):
    assert float(optax.global_norm(grads[part])) > 0, part
  # The probe's features have the evaluation encoder's width on central views.
  variables = method.encoder.select(params, model_state)
  x = common.center_input(images, c)
  want = jax.eval_shape(lambda v: method.encoder.module().apply(v, x, train=False),
                        variables)
  assert aux.features.shape == want.shape == (N, 7 * 7 * 16)  # smoke: 7x7x16 flattened
  # The encoder's batch statistics moved; the state keeps its structure.
  assert jax.tree.structure(aux.model_state) == jax.tree.structure(model_state)
  assert jax.tree.structure(aux.method_state) == jax.tree.structure(state)
  before = model_state["batch_stats"]["encoder"]
  after = aux.model_state["batch_stats"]["encoder"]
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(before),
                                                   jax.tree.leaves(after)))


def test_exemplar_seeds_are_the_configured_training_images(images):
  c = _config("exemplar")
  method = build_method(c)
  _, _, state = _init(method, c, images)
  source = get_source(c.data, "train")
  idx = exemplar.seed_indices(len(source), 64, c.seed)
  np.testing.assert_array_equal(np.asarray(state.seed_indices), idx)
  np.testing.assert_array_equal(np.asarray(state.seeds), source.get(idx)["image"])
  assert len(set(idx.tolist())) == 64
  assert not np.array_equal(exemplar.seed_indices(len(source), 64, c.seed + 1), idx)


def test_exemplar_memory_bank_update_is_the_momentum_formula(images):
  c = _config("exemplar", variant="memory_bank", bank_momentum=0.3)
  method = build_method(c)
  params, model_state, state = _init(method, c, images)
  bank = np.asarray(state.bank)
  np.testing.assert_allclose(np.linalg.norm(bank, axis=1), 1.0, rtol=1e-5)
  key = jax.random.PRNGKey(5)
  loss, aux = method.loss_fn(params, model_state, state, {"image": images}, key)
  # Cosine scores / T against random bank entries: about log N, plus spread.
  assert np.isfinite(float(loss)) and abs(float(loss) - math.log(64)) < 2.0
  # The step's seeds and their embeddings, recomputed from the method's pieces.
  indices, x = exemplar.sample_seeds(key, state.seeds, N, c)
  model, _ = exemplar.make_model(c)
  (_, out), _ = common.apply_train(model, params, model_state, x)
  v = np.asarray(out) / np.linalg.norm(np.asarray(out), axis=1, keepdims=True)
  indices = np.asarray(indices)
  assert len(set(indices.tolist())) == N
  rows = 0.3 * bank[indices] + 0.7 * v
  want = bank.copy()
  want[indices] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
  np.testing.assert_allclose(np.asarray(aux.method_state.bank), want, rtol=1e-5,
                             atol=1e-6)
  # The seeds themselves are not changed by a step.
  np.testing.assert_array_equal(np.asarray(aux.method_state.seeds),
                                np.asarray(state.seeds))


def test_update_bank_formula():
  rng = np.random.default_rng(0)
  bank = rng.normal(size=(10, 4)).astype(np.float32)
  v = rng.normal(size=(3, 4)).astype(np.float32)
  idx = np.array([7, 0, 4])
  out = np.asarray(exemplar.update_bank(jnp.asarray(bank), jnp.asarray(idx),
                                        jnp.asarray(v), 0.5))
  for j, i in enumerate(idx):
    row = 0.5 * bank[i] + 0.5 * v[j]
    np.testing.assert_allclose(out[i], row / np.linalg.norm(row), rtol=1e-5)
  rest = [i for i in range(10) if i not in idx]
  np.testing.assert_array_equal(out[rest], bank[rest])


@pytest.mark.parametrize("name,key,value,match", [
    ("rotation", "data.image_size", (28, 32), "square"),
    ("rotation", "head.kind", "none", "head.kind"),
    ("rotation", "model.encoder", "patch_convnet", "whole-image encoder"),
    ("relative_patch", "relative_patch.patch", 8, "exceeds the image side"),
    ("relative_patch", "relative_patch.gap", -1, "gap >= 0"),
    ("jigsaw", "jigsaw.num_permutations", 1, "num_permutations"),
    ("jigsaw", "jigsaw.tile", 10, "jigsaw.tile"),
    ("exemplar", "exemplar.variant", "nce", "exemplar.variant"),
    ("exemplar", "exemplar.num_seeds", 16, "global_batch_size"),
    ("exemplar", "exemplar.temperature", 0.0, "temperature"),
])
def test_config_errors_name_the_fix(name, key, value, match):
  c = _config(name)
  if key == "exemplar.temperature":
    c.exemplar.variant = "memory_bank"
  group, field = key.split(".")
  c[group][field] = value
  with pytest.raises(UserError, match=match):
    build_method(c)


def test_exemplar_more_seeds_than_examples_is_a_user_error(images):
  c = _config("exemplar")
  c.exemplar.num_seeds = 10 ** 6
  method = build_method(c)
  with pytest.raises(UserError, match="num_seeds"):
    _init(method, c, images)


@pytest.mark.parametrize("variant", ["fashion_mnist", "cifar10", "imagenet", "smoke"])
def test_every_variant_builds(variant):
  for name in ("rotation", "relative_patch", "jigsaw", "exemplar"):
    c = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:{variant}"))
    assert c.method == name
    if name == "jigsaw" and variant == "imagenet":
      continue  # 1000 permutations take seconds to choose; checked in config terms
    build_method(c)
  with pytest.raises(UserError, match="no variant"):
    load_config_file(os.path.join(ROOT, "configs", "jigsaw.py:mnist"))


# ------------------------------------------------------------- the trainer

def test_jigsaw_trains_in_the_trainer_and_saves_its_permutations(tmp_path):
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  c = _config("jigsaw")
  c.update(num_steps=2, log_every=1, checkpoint_every=2, online_eval_every=0)
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(c, workdir)
  assert int(state.step) == 2
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records] == [1, 2]
  # (pretext_top1 is checked against its logits in test_loss_at_init_gradients_and_features.)
  assert all(np.isfinite(r["loss"]) and "pretext_top1" in r for r in records)
  assert all("probe_loss" in r for r in records)  # the probe fits the features
  with checkpoint.manager(workdir, read_only=True) as mngr:
    saved = mngr.restore(2)
  np.testing.assert_array_equal(np.asarray(saved["method_state"]["permutations"]),
                                jigsaw.hamming_permutations(10, 9, seed=0))
