"""Data order is a pure function of (seed, step); processes split rows."""

import numpy as np
import pytest

from sslax.data import pipeline
from sslax.data.sources import ArraySource, fashion_mnist
from sslax.errors import UserError


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
  _examples = src.get([4, 0])
  x, y = _examples["image"], _examples["label"]
  np.testing.assert_array_equal(y, [4, 0])
  np.testing.assert_array_equal(x[0], images[4])
  assert src.element_spec["image"][0] == (2, 2, 1) and len(src) == 5


def test_fashion_mnist_from_debian_idx_files():
  train, test = fashion_mnist("train"), fashion_mnist("test")
  assert len(train) == 60000 and len(test) == 10000
  assert train.element_spec["image"][0] == (28, 28, 1) and train.images.dtype == np.uint8
  assert sorted(np.unique(test.labels)) == list(range(10))
  assert np.bincount(train.labels).tolist() == [6000] * 10


def test_resize_and_center_crop_for_mixed_size_datasets():
  from sslax.data.images import resize_and_center_crop  # pylint: disable=g-import-not-at-top
  wide = np.zeros((40, 80, 3), np.uint8)
  wide[:, 38:42] = 255  # a vertical bar in the middle stays in the middle
  out = resize_and_center_crop(wide, 20)
  assert out.shape == (20, 20, 3) and out.dtype == np.uint8
  assert out[:, 9:11].mean() > 200 and out[:, :5].max() == 0
  assert resize_and_center_crop(np.zeros((30, 10, 1), np.uint8), 16).shape == (16, 16, 1)


# The Grain iterator: a batch is the same function of (seed, step) whether it
# is read in this process or by worker processes.

def _numbered_source(n=37):
  """Image i is filled with the value i (and labelled i), so a batch shows
  which examples it holds."""
  images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                           (n, 3, 2, 1)).copy()
  return ArraySource(images=images, labels=np.arange(n, dtype=np.int32), num_classes=n)


def _sharding(global_batch):
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.sharding import data_sharding, make_mesh  # pylint: disable=g-import-not-at-top
  del jax
  return data_sharding(make_mesh(global_batch))


def _read(source, *, start, stop, workers, seed=5, global_batch=6):
  """``[(step, image values, labels)]`` of the iterator's batches."""
  out = []
  with pipeline.BatchIterator(source, seed=seed, global_batch=global_batch,
                              sharding=_sharding(global_batch), start_step=start,
                              stop_step=stop, workers=workers) as batches:
    for step, batch in batches:
      images, labels = np.asarray(batch["image"]), np.asarray(batch["label"])
      assert images.dtype == np.uint8 and images.shape == (global_batch, 3, 2, 1)
      assert labels.dtype == np.int32
      out.append((step, images[:, 0, 0, 0].astype(np.int64), labels.astype(np.int64)))
  return out


@pytest.mark.parametrize("workers", [0, 2])
def test_grain_batches_are_the_predicted_examples_in_order(workers):
  source = _numbered_source()
  got = _read(source, start=0, stop=15, workers=workers)  # 90 positions: 3 epochs
  assert [step for step, _, _ in got] == list(range(15))
  for step, images, labels in got:
    want = pipeline.global_batch_indices(5, step, 6, len(source))
    np.testing.assert_array_equal(images, want)
    np.testing.assert_array_equal(labels, want)


@pytest.mark.parametrize("workers", [0, 2])
def test_grain_iterator_resumed_at_a_step_equals_an_uninterrupted_one(workers):
  source = _numbered_source()
  uninterrupted = _read(source, start=0, stop=14, workers=0)
  resumed = _read(source, start=9, stop=14, workers=workers)
  assert [s for s, _, _ in resumed] == list(range(9, 14))
  for (_, got_x, got_y), (_, want_x, want_y) in zip(resumed, uninterrupted[9:]):
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_y, want_y)


def _worker_processes():
  """This process's children, less multiprocessing's resource tracker (one
  per interpreter, it exits with it)."""
  import psutil  # pylint: disable=g-import-not-at-top
  out = []
  for child in psutil.Process().children(recursive=True):
    try:
      if "resource_tracker" not in " ".join(child.cmdline()):
        out.append(child)
    except psutil.NoSuchProcess:
      pass
  return out


def test_close_leaves_no_worker_processes():
  before = {p.pid for p in _worker_processes()}
  batches = pipeline.BatchIterator(_numbered_source(), seed=0, global_batch=6,
                                   sharding=_sharding(6), workers=2)
  step, _ = next(batches)
  assert step == 0
  started = {p.pid for p in _worker_processes()} - before
  assert len(started) >= 2  # the two workers are running
  batches.close()
  assert not {p.pid for p in _worker_processes()} & started
  with pytest.raises(StopIteration):
    next(batches)
  assert batches.wait_seconds > 0


class _FailingSource:
  """Example 3 cannot be read (as a corrupt image file would be)."""
  element_spec = {"image": ((3, 2, 1), "uint8"), "label": ((), "int32")}
  num_classes = 5

  def __len__(self):
    return 5

  def get(self, indices):
    if 3 in list(indices):
      raise UserError("cannot read example 3: corrupt")
    return {"image": np.zeros((len(indices), 3, 2, 1), np.uint8),
            "label": np.zeros(len(indices), np.int32)}


@pytest.mark.parametrize("workers", [0, 2])
def test_a_source_error_reaches_the_trainer_as_is(workers):
  with pipeline.BatchIterator(_FailingSource(), seed=0, global_batch=5,
                              sharding=_sharding(5), workers=workers) as batches:
    with pytest.raises(UserError, match="cannot read example 3"):
      next(batches)


def test_worker_count_from_config():
  assert pipeline.resolve_workers(0) == 0 and pipeline.resolve_workers("2") == 2
  assert 1 <= pipeline.resolve_workers(-1) <= 16
  for bad in (-2, "many", None):
    with pytest.raises(UserError, match="config.data.workers"):
      pipeline.resolve_workers(bad)


@pytest.mark.slow
def test_training_with_worker_processes_and_resuming_equals_in_process(tmp_path,
                                                                       smoke_config):
  """The trainer's batches do not depend on data.workers, which may change
  when a run resumes; every logged row has data_wait."""
  import chex  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  from sslax.train.metrics import read_metrics  # pylint: disable=g-import-not-at-top
  c = smoke_config
  c.update(num_steps=4, checkpoint_every=2, log_every=1, online_eval_every=0,
           progress_bar=False)
  in_process = train_and_evaluate(c, str(tmp_path / "in_process"))
  train_and_evaluate(c, str(tmp_path / "workers"), stop_at=2)
  c.data.workers = 2
  resumed = train_and_evaluate(c, str(tmp_path / "workers"))
  chex.assert_trees_all_equal(jax.device_get(resumed.params),
                              jax.device_get(in_process.params))
  rows = {d: read_metrics(str(tmp_path / d)) for d in ("in_process", "workers")}
  assert [r["loss"] for r in rows["workers"]] == [r["loss"] for r in rows["in_process"]]
  for r in rows["in_process"] + rows["workers"]:
    assert 0.0 <= r["data_wait"] <= 1.0


class _LockedSource:
  """A source holding a lock: it cannot be pickled."""

  def __init__(self):
    import threading  # pylint: disable=g-import-not-at-top
    self.inner, self.lock = _numbered_source(), threading.Lock()
    self.element_spec, self.num_classes = self.inner.element_spec, self.inner.num_classes

  def __len__(self):
    return len(self.inner)

  def get(self, indices):
    return self.inner.get(indices)


def test_a_source_that_cannot_be_pickled_is_one_line_with_workers():
  with pytest.raises(UserError, match="cannot be pickled.*workers=0"):
    pipeline.BatchIterator(_LockedSource(), seed=0, global_batch=6, sharding=_sharding(6),
                           workers=2)
  # Read in this process, nothing is pickled.
  with pipeline.BatchIterator(_LockedSource(), seed=0, global_batch=6,
                              sharding=_sharding(6), stop_step=1) as batches:
    assert [s for s, _ in batches] == [0]


class _MisdescribedSource:
  """Says it gives images and labels, gives images of another shape and no
  labels."""
  element_spec = {"image": ((3, 2, 1), "uint8"), "label": ((), "int32")}
  num_classes = 5

  def __len__(self):
    return 5

  def get(self, indices):
    return {"image": np.zeros((len(indices), 2, 2, 1), np.uint8)}


def test_a_source_whose_examples_disagree_with_its_element_spec_is_one_line():
  with pipeline.BatchIterator(_MisdescribedSource(), seed=0, global_batch=5,
                              sharding=_sharding(5)) as batches:
    with pytest.raises(UserError) as e:
      next(batches)
  message = str(e.value)
  assert "\n" not in message
  assert "_MisdescribedSource.get returned image uint8 [2, 2, 1]" in message
  assert "element_spec says image uint8 [3, 2, 1], label int32 []" in message


def test_the_pipeline_adds_each_example_index():
  source = ArraySource(images=np.arange(7 * 4, dtype=np.uint8).reshape(7, 2, 2, 1),
                       labels=np.arange(7), num_classes=7)
  with pipeline.BatchIterator(source, seed=3, global_batch=7, sharding=_sharding(7)) as b:
    _, batch = next(b)
  index = np.asarray(batch["index"])
  assert sorted(index.tolist()) == list(range(7)) and batch["index"].dtype == np.int32
  np.testing.assert_array_equal(np.asarray(batch["label"]), index)
  np.testing.assert_array_equal(np.asarray(batch["image"]), source.images[index])


def test_synthetic_images_are_a_function_of_the_index():
  import ml_collections  # pylint: disable=g-import-not-at-top
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(dict(name="synthetic", image_size=(12, 10),
                                          load_size=0, mean=(0.5, 0.5, 0.5)))
  source = get_source(config, "train")
  assert source.element_spec == {"image": ((12, 10, 3), "uint8"), "label": ((), "int32")}
  both = source.get(np.array([7, 3]))
  one = source.get(np.array([3]))
  np.testing.assert_array_equal(both["image"][1], one["image"][0])
  assert both["image"].dtype == np.uint8 and both["image"].std() > 50  # uniform noise
  assert not np.array_equal(both["image"][0], both["image"][1])
  assert not np.array_equal(get_source(config, "test").get(np.array([3]))["image"],
                            one["image"])
