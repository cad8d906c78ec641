"""The device mesh and the shardings of a data-parallel run."""

from typing import Optional

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
