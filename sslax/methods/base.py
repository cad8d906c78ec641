"""What a method gives the trainer.

A method module has ``build(config) -> Method``. The trainer only calls the
functions below, so adding a method means one file in ``sslax/methods/`` and
one config, plus its name in ``sslax.methods.METHODS``.
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax

from sslax.data import augment, inputs


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
  encoder_input(images) -> what ``encoder`` sees of float images [n, H, W, C]
      in [0, 1] (a view already cut); None: the usual per-channel
      normalisation with config.data.mean and std. Colourisation's encoder
      sees only the L channel of Lab.
  """
  name: str
  init: Callable[..., Any]
  loss_fn: Callable[..., Any]
  encoder: nn.Module
  encoder_variables: Callable[[Any, Any], Any]
  after_update: Callable[..., Any] = _no_update
  encoder_input: Optional[Callable[[jax.Array], jax.Array]] = None


def eval_input(method: Method, images, data_config):
  """What ``method.encoder`` sees at evaluation: ``inputs.eval_input`` (the
  central view, normalised), or the central view through the method's
  ``encoder_input``."""
  if method.encoder_input is None:
    return inputs.eval_input(images, data_config)
  return method.encoder_input(augment.center_view(images, data_config.image_size))
