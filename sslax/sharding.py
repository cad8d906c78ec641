"""The device mesh of a data-parallel run, its shardings, and the one way a
loss reaches across the global batch.

The train step runs under the run's mesh (``jax.set_mesh``), so methods and
losses never receive a mesh: a loss that needs the whole global batch (NT-Xent
negatives, Barlow Twins' and VICReg's batch statistics, CPC's candidates) is
written for one device's rows with an ``axis_name`` and wrapped in
``over_global_batch``, which runs it in ``jax.shard_map`` over the ambient
mesh's ``data`` axis (or directly when there is one device or no mesh).
"""

import functools
from typing import Callable, Optional

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax.errors import UserError

DATA_AXIS = "data"


def initialize_distributed(coordinator: Optional[str] = None,
                           num_processes: Optional[int] = None,
                           process_id: Optional[int] = None,
                           cpu_collectives: str = "gloo"):
  """Starts multi-process JAX. On TPU pods all arguments may be None (they are
  detected); on CPU hosts name the coordinator ``host:port`` and each process's
  id, and collectives run over gloo."""
  if coordinator:  # (asking for the backend here would initialise it too early)
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  jax.distributed.initialize(coordinator_address=coordinator,
                             num_processes=num_processes, process_id=process_id)


def make_mesh(global_batch_size: int) -> jax.sharding.Mesh:
  """A 1-D ``data`` mesh over every device of every process."""
  n = jax.device_count()
  if global_batch_size % n:
    raise UserError(f"global batch {global_batch_size} is not divisible by the "
                    f"{n} devices; set --config.global_batch_size to a multiple of {n}")
  return jax.make_mesh((n,), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh):
  """Leading (batch) axis split over the data axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh):
  return NamedSharding(mesh, P())


def data_axis_size() -> int:
  """The number of devices the ambient mesh splits the batch over (1 without
  a mesh)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or DATA_AXIS not in mesh.axis_names:
    return 1
  return mesh.shape[DATA_AXIS]


def over_global_batch(loss: Callable[..., jax.Array], *arrays: jax.Array) -> jax.Array:
  """``loss(*arrays, axis_name=...)`` of the global batch, a scalar.

  Under a mesh with several devices on its ``data`` axis, ``loss`` runs in
  ``jax.shard_map`` on each device's rows of every array (split on their
  leading axis) with ``axis_name=DATA_AXIS``, and must return the same scalar
  on every device (the global-batch loss, through collectives over that axis).
  Otherwise it runs once on the whole arrays without ``axis_name``.
  """
  if data_axis_size() == 1:
    return loss(*arrays)
  return jax.shard_map(functools.partial(loss, axis_name=DATA_AXIS),
                       in_specs=tuple(P(DATA_AXIS) for _ in arrays),
                       out_specs=P())(*arrays)
