"""The pictures' parts that a test can read: colours that never repeat, the
title every figure carries, the curves' labels."""

import ml_collections
import numpy as np

from sslax.eval import viz


def test_class_colours_never_repeat():
  for n in (1, 10, 11, 20, 21, 60):
    colours = viz.class_colours(n)
    assert len(colours) == n and len(set(colours)) == n, n


def test_every_figure_names_run_method_dataset_and_step(tmp_path, monkeypatch):
  monkeypatch.setattr(viz.checkpoint, "latest_step", lambda workdir: 120)
  config = ml_collections.ConfigDict(dict(method="simclr", data=dict(
      name="image_folder", data_dir="/data/pets")))
  assert viz.figure_title(str(tmp_path / "runs" / "pets"), config) == (
      "pets · simclr · image_folder /data/pets · step 120")
  config.data.given_source = "ArraySource of 32 examples"
  assert "· ArraySource of 32 examples ·" in viz.figure_title(str(tmp_path / "r"), config)


def test_curves_tell_training_batches_from_the_test_subset():
  labels = [label for _, keys in viz.CURVES for _, label in keys]
  assert "online probe, training batches" in labels
  assert "online probe, test subset" in labels and "kNN (k=20), test subset" in labels
  metrics = {key for _, keys in viz.CURVES for key, _ in keys}
  assert {"probe_train_top1", "online_probe_top1", "online_knn_top1_k20"} <= metrics


def test_retrieval_tiles_carry_class_names(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (12, 8, 8, 1), dtype=np.uint8)
  labels = np.arange(12) % 3
  feats = rng.normal(size=(12, 4))
  path = viz.retrieval_png(images[:2], labels[:2], feats[:2], images, labels, feats,
                           str(tmp_path / "r.png"), k=3, class_names=("cat", "dog", "eel"),
                           title="t")
  assert (tmp_path / "r.png").stat().st_size > 1000 and path.endswith("r.png")
