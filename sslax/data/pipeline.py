"""The host input pipeline, on Grain: which examples make up global batch
``step``, which rows of it this process reads, where the reading (decode,
resize) runs, and how the rows become one global array.

The order of examples is a pure function of (seed, step): epoch e is the
permutation ``default_rng([seed, e]).permutation(n)``, and batch s holds
positions ``s*B ... (s+1)*B - 1`` of the concatenated epochs. A run resumed at
step s therefore sees exactly the batches an uninterrupted run would; no
iterator state needs saving (the step in the TrainState is the data position).

Grain runs it: a ``grain.MapDataset`` over step numbers, mapped by
``HostBatch`` (step -> this process's rows of global batch ``step``, read with
``source.get``), turned into an iterator that prefetches in a background
thread (``workers=0``) or in ``workers`` processes (``mp_prefetch``: worker
i computes steps i, i+W, ... and Grain interleaves them back in step order,
batches crossing in shared memory). Whatever the worker count, the batch of a
step is the same, so ``config.data.workers`` may change when a run resumes.
Workers receive the source pickled (a source that cannot be is one line);
they die with the trainer and a dead one ends the run with one line
(``sslax.data.workers``).
Augmentation is not done here: it runs on device, in the jitted step.
"""

import functools
import os
import time

import grain
import jax
import numpy as np

from sslax.data import workers as workers_lib
from sslax.data.source import INDEX, check_examples
from sslax.errors import UserError

# Steps of a run without a known end (the dataset of step numbers needs a length).
_NO_END = 2 ** 62


@functools.lru_cache(maxsize=4)
def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def global_batch_indices(seed: int, step: int, global_batch: int,
                         num_examples: int) -> np.ndarray:
  """Dataset indices of global batch ``step`` (length ``global_batch``)."""
  positions = step * global_batch + np.arange(global_batch)
  epochs, offsets = np.divmod(positions, num_examples)
  out = np.empty(global_batch, dtype=np.int64)
  for epoch in np.unique(epochs):
    sel = epochs == epoch
    out[sel] = epoch_permutation(seed, int(epoch), num_examples)[offsets[sel]]
  return out


def local_rows(sharding, global_batch: int) -> slice:
  """The rows of the global batch held by this process's devices, as the
  sharding places them (a contiguous block for a 1-D data mesh)."""
  spans = sorted({(s[0].start or 0, global_batch if s[0].stop is None else s[0].stop)
                  for s in sharding.addressable_devices_indices_map((global_batch,)).values()})
  for (_, stop), (start, _) in zip(spans, spans[1:]):
    if stop != start:
      raise ValueError(f"this process's rows {spans} are not contiguous; build the "
                       "mesh with jax.make_mesh so each process owns one block")
  return slice(spans[0][0], spans[-1][1])


def to_global(sharding, local_arrays):
  """Builds global arrays (leading axis sharded) from this process's rows."""
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), local_arrays)


def resolve_workers(workers) -> int:
  """``config.data.workers`` as a process count: ``n >= 0`` is itself (0: read
  in this process, on a background thread); ``-1`` is one worker per CPU core
  this process may use, less one for the trainer, at most 16."""
  try:
    workers = int(workers)
  except (TypeError, ValueError):
    raise UserError(f"config.data.workers must be an integer (0: no worker "
                    f"processes, -1: one per CPU core), got {workers!r}") from None
  if workers < -1:
    raise UserError(f"config.data.workers must be >= 0 (or -1: one per CPU core), "
                    f"got {workers}")
  if workers == -1:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    workers = min(16, max(1, cores - 1))
  return workers


def _absl_flags_parsed():
  """Grain 0.2.18 reads an absl flag (``--grain_enable_multiprocess_worker_profiling``)
  when it starts worker processes with JAX loaded, and absl refuses to answer
  before flags are parsed (google/grain#1355, fixed after 0.2.18). sslax
  defines no absl flags: every one keeps its default."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


class _Discard:
  """A file that forgets what is written to it."""

  def write(self, data):
    return len(memoryview(data))


def _check_picklable(source, workers):
  """Worker processes receive the source pickled: a source that cannot be is
  one line (the pickle streams into nothing, so no copy is made)."""
  import cloudpickle  # pylint: disable=g-import-not-at-top
  try:
    cloudpickle.dump(source, _Discard())
  except Exception as e:  # pylint: disable=broad-except
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"config.data.workers={workers} sends the data source to worker "
                    f"processes, but {type(source).__name__} cannot be pickled "
                    f"({first}); set --config.data.workers=0") from None


class HostBatch(grain.transforms.Map):
  """step -> ``(step, examples)``: this process's rows of global batch
  ``step``, read from ``source`` (``{name: array}``, checked against its
  ``element_spec``) with ``"index"`` added. The only host work of the
  pipeline; it runs in the worker processes, which receive it (and the
  source) pickled."""

  def __init__(self, source, *, seed, global_batch, rows):
    self.source, self.seed, self.global_batch, self.rows = source, seed, global_batch, rows

  def indices(self, step):
    return global_batch_indices(self.seed, step, self.global_batch,
                                len(self.source))[self.rows]

  def map(self, element):
    step = int(element)
    return step, read_examples(self.source, self.indices(step))


def read_examples(source, indices) -> dict:
  """``source.get(indices)`` checked against its element spec, with each
  example's dataset index as ``"index"`` (int32): the batch a method sees."""
  indices = np.asarray(indices, np.int64)
  examples = check_examples(source, source.get(indices), len(indices))
  examples[INDEX] = indices.astype(np.int32)
  return examples


def _plain(x):
  """A batch read by a worker arrives in shared memory that Grain unlinks when
  the array is collected; JAX may keep a zero-copy view of host memory, so the
  batch is copied into ordinary memory first."""
  return x if type(x) is np.ndarray else np.array(x)  # pylint: disable=unidiomatic-typecheck


class BatchIterator:
  """Yields ``(step, examples)`` global batches from ``start_step``
  (to ``stop_step``, if given).

  ``workers`` processes read the batches (0: a background thread of this
  process), each up to ``prefetch`` batches ahead. ``close()`` stops and joins
  them. ``wait_seconds`` counts the time spent in ``next``.
  """

  def __init__(self, source, *, seed, global_batch, sharding, start_step=0,
               stop_step=None, workers=0, prefetch=2):
    self.source = source
    self.seed = seed
    self.global_batch = global_batch
    self.sharding = sharding
    self.rows = local_rows(sharding, global_batch)
    self.workers = resolve_workers(workers)
    self.transform = HostBatch(source, seed=seed, global_batch=global_batch,
                               rows=self.rows)
    self._next_step = start_step
    self._stop = _NO_END if stop_step is None else max(int(stop_step), start_step)
    # The steps never run out for Grain (its worker processes, exhausted,
    # leave shared memory behind): the iterator stops itself at stop_step.
    dataset = grain.MapDataset.range(start_step, _NO_END).map(self.transform)
    # In-process: one thread reads ahead. With workers, each worker reads its
    # steps in its main loop, ``prefetch`` batches ahead.
    dataset = dataset.to_iter_dataset(grain.ReadOptions(
        num_threads=0 if self.workers else 1, prefetch_buffer_size=prefetch))
    if self.workers:
      _check_picklable(source, self.workers)
      _absl_flags_parsed()
      workers_lib.quiet_resource_tracker()
      dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=self.workers, per_worker_buffer_size=prefetch),
          worker_init_fn=workers_lib.watch_parent)
    self._iterator = iter(dataset)
    # Seconds the consumer has spent in ``next``: waiting for a batch, and
    # placing it on the devices (the trainer's ``data_wait``).
    self.wait_seconds = 0.0

  def __iter__(self):
    return self

  def __next__(self):
    start = time.perf_counter()
    try:
      if self._iterator is None or self._next_step >= self._stop:
        raise StopIteration
      try:
        step, batch = next(self._iterator)
      except RuntimeError as e:
        code = workers_lib.died(e)
        if code is None:
          raise
        raise workers_lib.InputWorkerDied(
            f"an input worker process {workers_lib.describe_exit(code)} while reading "
            f"batch {self._next_step}") from None
      self._next_step = step + 1
      return step, to_global(self.sharding, jax.tree.map(_plain, batch))
    finally:
      self.wait_seconds += time.perf_counter() - start

  def close(self):
    """Stops the reading; worker processes are joined (killed if they hang)."""
    if self._iterator is not None:
      self._iterator.close()
      # Dropped now, while Grain's modules are alive: collected at interpreter
      # exit, its iterators' finalizers would fail noisily.
      self._iterator = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
