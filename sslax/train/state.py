"""The one pytree a run needs to continue."""

from typing import Any

import flax.struct
import jax


class TrainState(flax.struct.PyTreeNode):
  """Everything that is saved and restored.

  ``model_state`` holds Linen mutable collections (batch statistics);
  ``method_state`` holds what a method adds (EMA target trees, queues), an
  empty dict for methods that add nothing. ``probe`` is the online linear
  probe (``params`` and ``opt_state``), trained on stop-gradient features
  beside the method. ``rng`` is the run's base key; the
  key of step s is ``fold_in(rng, s)``, so the data position and the
  randomness of a resumed run both follow from ``step``.
  """
  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  method_state: Any
  probe: Any
  rng: jax.Array
