"""Evaluation batches over a data mesh of every device of every process.

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
