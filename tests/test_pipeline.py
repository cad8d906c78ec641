"""Data order is a pure function of (seed, step); processes split rows."""

import numpy as np

from sslax.data import pipeline
from sslax.data.sources import ArraySource, fashion_mnist


def test_batches_are_deterministic_and_cover_each_epoch_once():
  n, b = 50, 8
  steps = [pipeline.global_batch_indices(3, s, b, n) for s in range(25)]
  again = [pipeline.global_batch_indices(3, s, b, n) for s in range(25)]
  np.testing.assert_array_equal(np.concatenate(steps), np.concatenate(again))
  flat = np.concatenate(steps)  # 200 positions = 4 epochs exactly
  for epoch in range(4):
    assert sorted(flat[epoch * n:(epoch + 1) * n]) == list(range(n))
  other = np.concatenate([pipeline.global_batch_indices(4, s, b, n) for s in range(25)])
  assert not np.array_equal(flat, other)


def test_resuming_at_a_step_sees_the_same_batches():
  n, b = 37, 6
  uninterrupted = [pipeline.global_batch_indices(0, s, b, n) for s in range(20)]
  resumed = [pipeline.global_batch_indices(0, s, b, n) for s in range(11, 20)]
  for got, want in zip(resumed, uninterrupted[11:]):
    np.testing.assert_array_equal(got, want)


def test_one_process_reads_every_row():
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.sharding import data_sharding, make_mesh  # pylint: disable=g-import-not-at-top
  assert pipeline.local_rows(data_sharding(make_mesh(jax.device_count() * 4)),
                             jax.device_count() * 4) == slice(0, jax.device_count() * 4)


def test_array_source_get():
  images = np.arange(5 * 2 * 2 * 1, dtype=np.uint8).reshape(5, 2, 2, 1)
  src = ArraySource(images=images, labels=np.arange(5, dtype=np.int32), num_classes=5)
  x, y = src.get([4, 0])
  np.testing.assert_array_equal(y, [4, 0])
  np.testing.assert_array_equal(x[0], images[4])
  assert src.image_shape == (2, 2, 1) and len(src) == 5


def test_fashion_mnist_from_debian_idx_files():
  train, test = fashion_mnist("train"), fashion_mnist("test")
  assert len(train) == 60000 and len(test) == 10000
  assert train.image_shape == (28, 28, 1) and train.images.dtype == np.uint8
  assert sorted(np.unique(test.labels)) == list(range(10))
  assert np.bincount(train.labels).tolist() == [6000] * 10


def test_resize_and_center_crop_for_mixed_size_datasets():
  from sslax.data.sources import resize_and_center_crop  # pylint: disable=g-import-not-at-top
  wide = np.zeros((40, 80, 3), np.uint8)
  wide[:, 38:42] = 255  # a vertical bar in the middle stays in the middle
  out = resize_and_center_crop(wide, 20)
  assert out.shape == (20, 20, 3) and out.dtype == np.uint8
  assert out[:, 9:11].mean() > 200 and out[:, :5].max() == 0
  assert resize_and_center_crop(np.zeros((30, 10, 1), np.uint8), 16).shape == (16, 16, 1)
