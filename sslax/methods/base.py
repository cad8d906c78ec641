"""What a method gives the trainer.

A method module has ``build(config) -> Method``. The trainer only calls the
functions below, so adding a method means one file in ``sslax/methods/`` and
one config, plus its name in ``sslax.methods.METHODS``.
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax


def _no_update(method_state, params, step):
  del params, step
  return method_state


class LossAux(NamedTuple):
  """What ``loss_fn`` returns beside the loss.

  ``features`` are the encoder's representations of one view of the batch,
  one row per example in batch order; the trainer fits the online linear probe
  on them (behind a stop-gradient).
  """
  model_state: Any
  method_state: Any
  metrics: dict
  features: jax.Array


@dataclasses.dataclass(frozen=True)
class Method:
  """The functions a method supplies; all pure.

  init(key, images) -> (params, model_state, method_state)
  loss_fn(params, model_state, method_state, batch, key, mesh)
      -> (loss, LossAux)
  after_update(method_state, new_params, step) -> method_state
      (EMA targets and the like, after the optimizer step)
  encoder: the Linen module whose output is the representation
  encoder_variables(params, model_state) -> the encoder's variables
  """
  name: str
  init: Callable[..., Any]
  loss_fn: Callable[..., Any]
  encoder: nn.Module
  encoder_variables: Callable[[Any, Any], Any]
  after_update: Callable[..., Any] = _no_update
