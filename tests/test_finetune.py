"""Fine-tuning with a fraction of the labels, and the saved labelled subsets."""

import json
import os

import chex
import numpy as np
import pytest

from sslax.data.sources import ArraySource
from sslax.errors import UserError
from sslax.eval import evaluate
from sslax.eval.finetune import finetune, num_steps
from sslax.probes.linear import stratified_subset
from sslax.models import make_encoder
from sslax.train import artifact


def _toy(n, seed):
  """Noisy 28x28 images whose class is which half is bright: top (0) or
  bottom (1). Flips and large crops keep the label, and a linear function
  of the pixels separates the classes."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, n).astype(np.int32)
  images = rng.integers(0, 60, (n, 28, 28, 1))
  images[labels == 0, :14] += 150
  images[labels == 1, 14:] += 150
  return ArraySource(images=images.astype(np.uint8), labels=labels, num_classes=2)


def test_finetune_separates_a_separable_toy_problem(smoke_config, tmp_path):
  train, test = _toy(2000, 0), _toy(500, 1)
  config = smoke_config
  config.data.update(mean=(0.3,), std=(0.35,))
  config.finetune.update(batch_size=32, epochs=1, min_steps=40, learning_rate=0.1)
  encoder = make_encoder(config.model, config.compute_dtype)
  import jax  # pylint: disable=g-import-not-at-top
  variables = encoder.init(jax.random.PRNGKey(0), np.zeros((2, 28, 28, 1), np.float32))
  indices = stratified_subset(train.labels, 0.05, seed=0)  # 100 labelled images
  assert len(indices) == 100
  steps = num_steps(len(indices), config.finetune)
  assert steps == 40
  result, final = finetune(variables, train, test, indices, config,
                           steps=steps, seed=0, workdir=str(tmp_path / "ft"))
  assert result["top1"] == 1.0 and result["train_top1"] == 1.0
  # The encoder itself was trained, not only the head.
  moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                       variables["params"], final.params["encoder"])
  assert max(jax.tree.leaves(moved)) > 0
  # It started from the given variables: the run's encoder at initialisation.
  start = artifact.restore_encoder(str(tmp_path / "ft"), random_init=True)
  chex.assert_trees_all_equal(jax.device_get(start.variables["params"]),
                              jax.device_get(variables["params"]))


def test_num_steps_is_epochs_over_the_subset():
  import ml_collections  # pylint: disable=g-import-not-at-top
  ft = ml_collections.ConfigDict(dict(batch_size=256, epochs=30, min_steps=200))
  assert num_steps(600, ft) == 200          # 71 steps from epochs, raised to min
  assert num_steps(6000, ft) == 704         # ceil(30 * 6000 / 256)


def test_labelled_subset_is_saved_and_reused(tmp_path):
  labels = np.repeat(np.arange(10), 100).astype(np.int32)
  first = evaluate.labelled_subset(str(tmp_path), labels, 0.1, seed=3)
  path = tmp_path / "eval" / "labels_0.1_seed3.json"
  saved = json.loads(path.read_text())
  assert saved["indices"] == first.tolist() and saved["num_examples"] == 1000
  np.testing.assert_array_equal(np.bincount(labels[first]), np.full(10, 10))
  # Read back, not redrawn: edit the file and the edit is what comes back.
  saved["indices"] = first[::-1].tolist()
  path.write_text(json.dumps(saved))
  again = evaluate.labelled_subset(str(tmp_path), labels, 0.1, seed=3)
  np.testing.assert_array_equal(again, first[::-1])
  with pytest.raises(UserError, match="different training set"):
    evaluate.labelled_subset(str(tmp_path), labels[:500], 0.1, seed=3)
  assert os.path.exists(path)
