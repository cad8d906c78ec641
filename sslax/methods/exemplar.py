"""Exemplar networks (Dosovitskiy et al. 2014, "Discriminative unsupervised
feature learning with convolutional neural networks"), and their
non-parametric, memory-bank form (Wu et al. 2018, "Unsupervised feature
learning via non-parametric instance discrimination").

N seed images are surrogate classes: every step draws a batch of distinct
seeds (from the step's key), transforms each heavily (``config.augment``: the
SimCLR crops, flips and colour jitter) and trains the network to tell which
seed a transformed image came from. ``exemplar.variant``:

* ``parametric`` (Dosovitskiy et al.): a classifier head (``config.head``,
  linear by default) with N outputs on the representation; N-way softmax
  cross-entropy.
* ``memory_bank`` (Wu et al.): the head embeds to ``embedding_dim``,
  L2-normalised (v); ``method_state.bank`` [N, d] holds one normalised
  embedding per seed and the loss is the softmax over the similarities to all
  N entries, ``-log exp(v . m_i / T) / sum_j exp(v . m_j / T)`` for seed i
  (their eq. 2, exact, not the NCE approximation). After the loss, the drawn
  seeds' entries become ``normalize(momentum m_i + (1 - momentum) v)``
  (``update_bank``). The bank starts as random unit vectors.

The seed set: ``exemplar.num_seeds`` training examples chosen by
``seed_indices(len(train), N, config.seed)``, a pure function of the config.
Their pixels are the method's constants (``Method.constants``): read once from
the training source before step 0 and kept in ``method_state.seeds`` (uint8
[N, H, W, C], with their dataset indices in ``method_state.seed_indices``), so
the seeds are saved with every checkpoint and the train step reads them from
the state. The cost is N*H*W*C bytes on every device and in each checkpoint
(4000 Fashion-MNIST seeds: 3 MB); the trainer's batch carries no example
indices, so instance discrimination over a whole large dataset is out of
reach of this design.

The trainer's batch is not trained on: a stop-gradient pass on its central
views gives ``LossAux.features`` and the encoder's running statistics
(``pretext_common.center_pass``), so the encoder is evaluated with statistics of
untransformed images.
"""

from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from sslax import losses
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (center_pass, check_whole_image_encoder,
                                    classification, classifier_head, with_encoder_state)
from sslax.models import make_encoder
from sslax.sharding import DATA_AXIS, data_axis_size

VARIANTS = ("parametric", "memory_bank")


class ExemplarState(NamedTuple):
  """The seed images, their dataset indices and (memory_bank) the bank."""
  seeds: jax.Array          # uint8 [N, H, W, C]
  seed_indices: jax.Array   # int [N]
  bank: Any                 # [N, d] normalised embeddings, or None (parametric)


def seed_indices(num_examples: int, num_seeds: int, seed: int) -> np.ndarray:
  """The seed images' dataset indices: ``num_seeds`` distinct indices, sorted,
  chosen by ``seed`` (int32 [N])."""
  rng = np.random.default_rng([seed, 2014])
  return np.sort(rng.choice(num_examples, num_seeds, replace=False)).astype(np.int32)


def update_bank(bank, indices, embeddings, momentum: float):
  """Rows ``indices`` (distinct) of ``bank`` [N, d] become
  ``normalize(momentum bank[i] + (1 - momentum) v)`` (Wu et al. 2018)."""
  rows = momentum * bank[indices] + (1.0 - momentum) * embeddings.astype(bank.dtype)
  return bank.at[indices].set(losses.l2_normalize(rows))


def check_config(config):
  check_whole_image_encoder(config)
  ec = config.exemplar
  if ec.variant not in VARIANTS:
    raise UserError(f"unknown config.exemplar.variant {ec.variant!r}; use one of "
                    f"{', '.join(VARIANTS)}")
  if int(ec.num_seeds) < int(config.global_batch_size):
    raise UserError(f"config.exemplar.num_seeds ({ec.num_seeds}) must be at least "
                    f"config.global_batch_size ({config.global_batch_size}): each "
                    "step draws a batch of distinct seeds")
  if ec.variant == "memory_bank":
    if not float(ec.temperature) > 0:
      raise UserError(f"config.exemplar.temperature must be positive, got "
                      f"{ec.temperature}")
    if not 0.0 <= float(ec.bank_momentum) < 1.0:
      raise UserError(f"config.exemplar.bank_momentum must be in [0, 1), got "
                      f"{ec.bank_momentum}")
    if int(ec.embedding_dim) < 1:
      raise UserError(f"config.exemplar.embedding_dim must be positive, got "
                      f"{ec.embedding_dim}")


def sample_seeds(key, seeds, n: int, config):
  """``(indices [n], views [n, H, W, C])``: n distinct seeds drawn by ``key``,
  each transformed by ``config.augment`` and normalised; under a mesh the views
  are split over its data axis like a batch."""
  k_idx, k_aug = jax.random.split(key)
  indices = jax.random.choice(k_idx, seeds.shape[0], (n,), replace=False)
  images = seeds[indices]
  if data_axis_size() > 1:
    images = jax.lax.with_sharding_constraint(images, P(DATA_AXIS))
  return indices, common.augmented_view(k_aug, images, config)


def make_model(config):
  """``(model, encoder)``: the encoder with the classifier head (parametric:
  N logits; memory_bank: the ``embedding_dim`` embedding, not normalised)."""
  ec = config.exemplar
  encoder = make_encoder(config.model, config.compute_dtype)
  out = int(ec.num_seeds) if ec.variant == "parametric" else int(ec.embedding_dim)
  head = classifier_head(config, out)
  return common.EncoderWithHead(encoder=encoder, head=head), encoder


def build(config) -> Method:
  check_config(config)
  ec = config.exemplar
  num_seeds = int(ec.num_seeds)
  model, encoder = make_model(config)

  def constants(source):
    if num_seeds > len(source):
      raise UserError(f"config.exemplar.num_seeds ({num_seeds}) exceeds the "
                      f"{len(source)} training examples")
    idx = seed_indices(len(source), num_seeds, int(config.seed))
    return {"seeds": np.asarray(source.get(idx)["image"], np.uint8), "seed_indices": idx}

  def init(key, examples, seeds):
    images = examples["image"]
    k_model, k_bank = jax.random.split(key)
    params, model_state = common.init_variables(
        model, k_model, common.center_input(images, config))
    bank = None
    if ec.variant == "memory_bank":
      bank = losses.l2_normalize(
          jax.random.normal(k_bank, (num_seeds, int(ec.embedding_dim))))
    return params, model_state, ExemplarState(
        seeds=seeds["seeds"], seed_indices=seeds["seed_indices"], bank=bank)

  def loss_fn(params, model_state, method_state, batch, key):
    indices, x = sample_seeds(key, method_state.seeds, batch["image"].shape[0],
                              config)
    (_, out), new_model_state = common.apply_train(model, params, model_state, x)
    new_method_state = method_state
    if ec.variant == "parametric":
      logits = out
    else:
      v = losses.l2_normalize(out)
      bank = method_state.bank
      logits = v @ bank.T / float(ec.temperature)
      new_method_state = method_state._replace(bank=update_bank(
          bank, indices, jax.lax.stop_gradient(v), float(ec.bank_momentum)))
    loss, metrics = classification(logits, indices)
    features, encoder_state = center_pass(encoder, params, model_state,
                                          batch["image"], config)
    return loss, LossAux(with_encoder_state(new_model_state, encoder_state),
                         new_method_state, metrics, features)

  return Method(name="exemplar", init=init, loss_fn=loss_fn, encoder=backbone_def(config),
                constants=constants)
