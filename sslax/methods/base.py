"""What a method gives the trainer.

A method module has ``build(config) -> Method``. The trainer only calls the
functions below, so adding a method means one file in ``sslax/methods/`` and
one config, plus its name in ``sslax.methods.METHODS``.
"""

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple

import jax

from sslax.encoder import EncoderDef


def _no_update(method_state, params, step):
  del params, step
  return method_state


class LossAux(NamedTuple):
  """What ``loss_fn`` returns beside the loss.

  ``features`` (optional) are the encoder's vector representations of one
  view of the batch, one row per example in batch order; when the batch is
  labelled the trainer fits the online linear probe on them (behind a
  stop-gradient). A method without vector features leaves them None.
  ``outputs`` go to ``Method.side_update`` (behind a stop-gradient).
  """
  model_state: Any
  method_state: Any
  metrics: dict
  features: Optional[jax.Array] = None
  outputs: Any = None  # what ``side_update`` needs of the step (e.g. images)


@dataclasses.dataclass(frozen=True)
class Method:
  """The functions a method supplies; all pure.

  init(key, examples) -> (params, model_state, method_state)
      ``examples``: a few training examples, ``{name: array}`` as the source
      gives them (``sslax.data.source``). A method with ``constants`` has
      ``init(key, examples, constants)`` and keeps them in ``method_state``.
  loss_fn(params, model_state, method_state, batch, key) -> (loss, LossAux)
      Runs under the run's mesh; a loss over the whole global batch goes
      through ``sslax.sharding.over_global_batch``.
  after_update(method_state, new_params, step) -> method_state
      (EMA targets and the like, after the optimizer step)
  encoder: the primary representation and its input
      (``sslax.encoder.EncoderDef``), named ``encoder_name``; evaluation,
      export and pictures rebuild it from JSON alone.
  other_encoders: {name: EncoderDef}, optional: further representations a
      run hands over (a second tower, the context vectors of word2vec).
  assets(source) -> {encoder name: {file name: text}}, optional: files
      written beside an encoder's description at step 0 (a vocabulary).
  constants(source) -> a pytree of arrays, optional: computed once from the
      training data (``source``) before step 0 and handed to ``init``, so it
      lives in the train state and is checkpointed, never recomputed later
      (colour rebalancing weights, exemplar seed images).
  side_update(method_state, outputs) -> (method_state, metrics), optional:
      a second optimizer's step that the trainer runs after the loss, on
      ``LossAux.outputs`` (a discriminator's Adam step, its state in
      ``method_state``); no gradient reaches the method's parameters.
  reads: the example names ``loss_fn`` reads, optional (default: the
      encoder's ``input_key``): a video method reads ``"clip"`` while its
      encoder takes single frames (``"image"``).
  pictures(params, model_state, inputs, key) -> {name: (rows, title)},
      optional: rows ``(label, float images [n, H, W, C] in [0, 1])`` that
      ``sslax viz`` draws for test ``inputs``, the examples' array the method
      reads (``reads``, default the encoder's ``input_key``; a dict of them
      where it reads several): uint8 images [n, H, W, C] or clips [n, T, H,
      W, C]; e.g. reconstructions or colourisations.
  """
  name: str
  init: Callable[..., Any]
  loss_fn: Callable[..., Any]
  encoder: EncoderDef
  after_update: Callable[..., Any] = _no_update
  encoder_name: str = "encoder"
  other_encoders: Mapping[str, EncoderDef] = dataclasses.field(default_factory=dict)
  assets: Optional[Callable[[Any], dict]] = None
  constants: Optional[Callable[[Any], Any]] = None
  reads: Optional[Tuple[str, ...]] = None
  side_update: Optional[Callable[..., Any]] = None
  pictures: Optional[Callable[..., dict]] = None

  @property
  def encoders(self) -> Mapping[str, EncoderDef]:
    """Every encoder of the run by name, the primary first."""
    return {self.encoder_name: self.encoder, **self.other_encoders}
