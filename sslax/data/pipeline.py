"""Deterministic host pipeline: which examples make up global batch ``step``,
which rows of it this process reads, and how they become one global array.

The order of examples is a pure function of (seed, step): epoch e is the
permutation ``default_rng([seed, e]).permutation(n)``, and batch s holds
positions ``s*B ... (s+1)*B - 1`` of the concatenated epochs. A run resumed at
step s therefore sees exactly the batches an uninterrupted run would.
"""

import functools
import queue
import threading

import jax
import numpy as np


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


class BatchIterator:
  """Yields ``(step, {'image', 'label'})`` global batches from ``start_step``.

  Host reads run one batch ahead on a background thread.
  """

  def __init__(self, source, *, seed, global_batch, sharding, start_step=0,
               prefetch=2):
    self.source = source
    self.seed = seed
    self.global_batch = global_batch
    self.sharding = sharding
    self.rows = local_rows(sharding, global_batch)
    self._step = start_step
    self._queue = queue.Queue(maxsize=prefetch)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._produce, daemon=True)
    self._thread.start()

  def host_batch(self, step):
    indices = global_batch_indices(self.seed, step, self.global_batch,
                                   len(self.source))[self.rows]
    images, labels = self.source.get(indices)
    return {"image": images, "label": labels}

  def _produce(self):
    step = self._step
    while not self._stop.is_set():
      try:
        item = (step, self.host_batch(step))
      except Exception as e:  # surfaced to the consumer
        item = (step, e)
      while not self._stop.is_set():
        try:
          self._queue.put(item, timeout=0.1)
          break
        except queue.Full:
          continue
      step += 1

  def __iter__(self):
    return self

  def __next__(self):
    step, batch = self._queue.get()
    if isinstance(batch, Exception):
      raise batch
    return step, to_global(self.sharding, batch)

  def close(self):
    self._stop.set()
