"""Evaluation batches over a data mesh of every device of every process, and
a whole source's encoder features computed so (``encode_source``).

Evaluation (feature extraction, the SGD linear probe) runs each global batch
split over the 1-D ``data`` mesh of ``sslax.sharding``, with whatever it
applies (encoder variables, a classifier) replicated. Every process computes
the same global batch indices; it reads and feeds only the rows its own
devices hold (``sslax.data.pipeline.local_rows`` and ``to_global``). A batch
that the device count does not divide is padded (rows of weight 0, or repeats
that are dropped afterwards).
"""

import jax
import numpy as np

from sslax.data import pipeline
from sslax.data.source import LABEL
from sslax.encoder import embed_fn
from sslax.sharding import data_sharding, make_mesh, replicated


def eval_mesh() -> jax.sharding.Mesh:
  """The data mesh over every device of every process."""
  return make_mesh(jax.device_count())


def padded_size(batch_size: int, mesh) -> int:
  """``batch_size`` rounded up to a multiple of the mesh's devices."""
  n = mesh.size
  return max(n, -(-int(batch_size) // n) * n)


def replicate(tree, mesh):
  """``tree`` (arrays of equal values on every process) replicated over
  ``mesh``; arrays already placed so are kept as they are."""
  target = replicated(mesh)

  def place(x):
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(target, x.ndim):
      return x
    if not mesh.is_multi_process:
      return jax.device_put(x, target)
    host = np.asarray(x)  # (this process's copy of a local array)
    return jax.make_array_from_callback(host.shape, target, lambda index: host[index])

  return jax.tree.map(place, tree)


class Feeder:
  """Global batches of ``size`` rows (a multiple of the mesh's devices),
  sharded over the mesh, from this process's rows of them."""

  def __init__(self, mesh, size: int):
    self.sharding = data_sharding(mesh)
    self.size = int(size)
    self.rows = pipeline.local_rows(self.sharding, self.size)

  def local(self, global_rows: np.ndarray) -> np.ndarray:
    """This process's part of a global batch given on the host."""
    return global_rows[self.rows]

  def __call__(self, local_arrays):
    """Global arrays from this process's rows (a pytree of host arrays)."""
    return pipeline.to_global(self.sharding, local_arrays)


def gather(x) -> np.ndarray:
  """A global array as host numpy, whole, on every process."""
  if x.is_fully_addressable:
    return np.asarray(x)
  if x.is_fully_replicated:
    return np.asarray(x.addressable_data(0))
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def encode_source(encoder, source, batch_size=1000, mesh=None):
  """Encoder features (eval mode, float32) and labels (None when the source
  has none) of a whole source, read and encoded a batch at a time, each batch
  split over ``mesh`` (default: every device of every process) with the
  encoder's variables replicated.

  Each process reads only its devices' rows of a batch; the features come back
  whole, as host numpy, on every process (the probes take host arrays and
  stream their own batches from them). The batch is ``batch_size`` rounded up
  to a multiple of the device count; the last batch is padded with repeats of
  the last example, dropped from the result."""
  mesh = mesh or eval_mesh()
  feeder = Feeder(mesh, padded_size(batch_size, mesh))
  apply = jax.jit(embed_fn(encoder.definition), out_shardings=feeder.sharding)
  variables = replicate(encoder.variables, mesh)
  n, size = len(source), feeder.size
  key = encoder.definition.input_key
  has_labels = LABEL in source.element_spec
  feats, labels = [], []
  for start in range(0, n, size):
    # One compiled shape for every batch: the tail repeats the last example.
    idx = np.minimum(np.arange(start, start + size), n - 1)
    examples = source.get(feeder.local(idx))
    x = feeder(np.asarray(examples[key]))
    keep = min(size, n - start)
    feats.append(gather(apply(variables, x))[:keep])
    if has_labels:
      labels.append(gather(feeder(np.asarray(examples[LABEL], np.int32)))[:keep])
  return np.concatenate(feats), (np.concatenate(labels) if has_labels else None)
