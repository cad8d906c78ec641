"""One way to compare whole training states: every leaf of a ``TrainState``
(step, params, model_state, opt_state, method_state, probe, rng) or of a
checkpoint read back as a tree, named by its path.

Used by every resume, interrupt, fault, multi-process and sharded-step test,
so that none of them can leave a part of the state out.
"""

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

# The fields of a TrainState; a state or a checkpoint missing one is an error.
PARTS = ("step", "params", "model_state", "opt_state", "method_state", "probe", "rng")


def _name(key) -> str:
  for attr in ("name", "key", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def _host(leaf):
  if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
    leaf = jax.random.key_data(leaf)
  return np.asarray(jax.device_get(leaf))


class Leaves(dict):
  """A state flattened by ``leaves``: host copies, safe to keep across a step
  that donates the state's buffers."""


def leaves(state) -> Leaves:
  """``{"params.encoder.Conv_0.kernel": array, ...}`` of a TrainState or of a
  checkpoint's tree (``read_checkpoint``), every part of ``PARTS`` included;
  a ``Leaves`` is returned as it is."""
  if isinstance(state, Leaves):
    return state
  tree = state if isinstance(state, dict) else {p: getattr(state, p) for p in PARTS}
  missing = [p for p in PARTS if p not in tree]
  assert not missing, f"the state has no {missing}"
  flat = jax.tree_util.tree_flatten_with_path({p: tree[p] for p in PARTS})[0]
  return Leaves({".".join(_name(k) for k in path): _host(leaf) for path, leaf in flat})


def read_checkpoint(workdir, step) -> dict:
  """A workdir's checkpoint ``step`` as a tree of host arrays, read onto this
  process's first device with the checkpoint's own metadata (no config,
  method, devices or processes of the writer needed)."""
  item = epath.Path(workdir) / "checkpoints" / str(step) / "default"
  handler = ocp.PyTreeCheckpointHandler()
  try:
    tree = handler.metadata(item).tree
  finally:
    handler.close()
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        tree)
  with ocp.StandardCheckpointer() as ckptr:
    return jax.device_get(ckptr.restore(item, target))


def tolerance(leaf, float_tolerance):
  """(rtol, atol) for a leaf: exact for integers, booleans and keys (step,
  queue pointers, counts, PRNG keys); ``float_tolerance`` for floats (0, 0
  when it is None: bitwise), its atol in units of the leaf's largest
  magnitude when that is above 1: sums in another order round relative to
  the size of their terms, so an entry near 0 of a leaf of order 20 (Adam's
  first moments) is off by 20x what it would be in a leaf of order 1."""
  if not np.issubdtype(leaf.dtype, np.floating) or float_tolerance is None:
    return 0.0, 0.0
  rtol, atol = float_tolerance
  scale = float(np.max(np.abs(leaf))) if leaf.size else 0.0
  return rtol, atol * max(1.0, scale if np.isfinite(scale) else 1.0)


def assert_states_equal(got, want, *, float_tolerance=None, skip=(), context=""):
  """Every leaf of ``got`` equals ``want``'s: the same paths, shapes and
  dtypes, and values bitwise (``float_tolerance=None``) or within
  ``(rtol, atol)`` for float leaves. ``skip``: path prefixes compared
  elsewhere (the caller says why). Fails naming every leaf that differs, with
  its largest difference."""
  a, b = leaves(got), leaves(want)
  assert sorted(a) == sorted(b), (
      f"{context} paths differ: only in got {sorted(set(a) - set(b))[:5]}, "
      f"only in want {sorted(set(b) - set(a))[:5]}")
  bad = []
  for path in sorted(a):
    if any(path == s or path.startswith(s + ".") for s in skip):
      continue
    x, y = a[path], b[path]
    if x.shape != y.shape or x.dtype != y.dtype:
      bad.append(f"{path}: {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
      continue
    rtol, atol = tolerance(y, float_tolerance)
    if rtol == atol == 0:
      same = np.array_equal(x, y, equal_nan=True)
    else:
      same = np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
    if not same:
      diff = (np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))
              if x.size else 0.0)
      bad.append(f"{path}: max |difference| {diff:.3g}")
  assert not bad, f"{context} {len(bad)} leaves differ: " + "; ".join(bad[:8])
  return len(a)


def moved(before, after, part) -> dict:
  """``{path: max |after - before|}`` of the float leaves under ``part``
  (e.g. "params", "method_state.target")."""
  a, b = leaves(before), leaves(after)
  return {path: float(np.max(np.abs(b[path].astype(np.float64) - a[path].astype(np.float64))))
          for path in a if (path == part or path.startswith(part + "."))
          and np.issubdtype(a[path].dtype, np.floating) and a[path].size}


def assert_moved(before, after, part, *, every=True):
  """The leaves under ``part`` changed from ``before`` to ``after``: every
  float leaf (``every``) or at least one; so an equality of the two runs that
  follow cannot be the equality of two untouched states."""
  changes = moved(before, after, part)
  assert changes, f"no float leaf under {part}"
  still = sorted(p for p, d in changes.items() if d == 0.0)
  if every:
    assert not still, f"{len(still)} of {len(changes)} leaves of {part} did not move: {still[:6]}"
  else:
    assert len(still) < len(changes), f"no leaf of {part} moved"
  return changes
