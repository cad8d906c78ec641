"""Frozen features for evaluation: from a trained workdir's encoder, from the
same encoder at its initialisation, or a modality's raw baseline (raw pixels
for images, MFCC statistics for speech: ``sslax.data.modality``). Encoders
come from the workdir's encoder description and checkpoint alone
(``artifact.restore_encoder``): no method, optimizer or train state."""

import jax.numpy as jnp
import numpy as np

from sslax.data import augment, modality, pipeline
from sslax.data.source import LABEL
from sslax.data.sources import labelled_source, require_labels
from sslax.encoder import embed_fn
from sslax.errors import UserError
from sslax.probes import sgd, sharded
from sslax.probes.sharded import encode_source
from sslax.sharding import replicated
from sslax.train import artifact

ENCODER_KINDS = ("encoder", "random_init")
FEATURE_KINDS = ENCODER_KINDS + tuple(
    k for m in modality.MODALITIES.values() for k in m.RAW_FEATURES)


def load_run_encoder(workdir: str, *, random_init: bool = False, sharding=None):
  """The ``Encoder`` of a workdir: its newest checkpoint's, or at
  initialisation (the random-init baseline); its variables on ``sharding``
  (default: replicated over this process's devices)."""
  return artifact.restore_encoder(workdir, random_init=random_init, sharding=sharding)


def encoder_apply(encoder):
  """``apply(variables, examples)``: the features (eval mode, float32) of raw
  examples, to jit."""
  return embed_fn(encoder.definition)


def raw_features(source, key, features_of, batch_size=1000):
  """A raw baseline's features (``features_of`` applied to the examples'
  ``key``) and the labels of a whole source, a batch at a time."""
  feats, labels = [], []
  for start in range(0, len(source), batch_size):
    examples = source.get(np.arange(start, min(start + batch_size, len(source))))
    feats.append(np.asarray(features_of(examples[key]), np.float32))
    labels.append(np.asarray(examples[LABEL], np.int32))
  return np.concatenate(feats), np.concatenate(labels)


def features(config, kind, workdir, purpose="labelled evaluation"):
  """``(train_x, train_y, test_x, test_y, num_classes)`` for one feature kind,
  of the splits ``config.data.eval_train_split`` and ``eval_split``; one line
  when either lacks labels (``purpose`` names what needs them)."""
  if kind not in FEATURE_KINDS:
    raise UserError(f"unknown feature kind {kind!r}; use one of {', '.join(FEATURE_KINDS)}")
  data = modality.of_config(config.data)
  if kind not in ENCODER_KINDS and kind not in data.RAW_FEATURES:
    own = ", ".join(data.RAW_FEATURES)
    raise UserError(f"--features {kind} is not a baseline of {data.NAME} runs; use "
                    f"{own + ' (theirs), ' if own else ''}encoder or random_init")
  train = labelled_source(config.data, "eval_train_split", purpose)
  test = labelled_source(config.data, "eval_split", purpose)
  bs = config.eval.batch_size
  if kind not in ENCODER_KINDS:
    features_of = data.RAW_FEATURES[kind]
    train_x, train_y = raw_features(train, data.KEY, features_of, bs)
    test_x, test_y = raw_features(test, data.KEY, features_of, bs)
  else:
    mesh = sharded.eval_mesh()
    encoder = load_run_encoder(workdir, random_init=kind == "random_init",
                               sharding=replicated(mesh))
    train_x, train_y = encode_source(encoder, train, bs, mesh)
    test_x, test_y = encode_source(encoder, test, bs, mesh)
  require_labels(train_y, config.data, "eval_train_split", purpose)
  require_labels(test_y, config.data, "eval_split", purpose)
  return train_x, train_y, test_x, test_y, train.num_classes


def augmented_features(encoder, crop_scale=(0.08, 1.0)):
  """``features(variables, images, key)``: the encoder's features (eval mode,
  float32) of random resized crops (area fraction in ``crop_scale``) and
  horizontal flips of raw images, the augmentation SimCLR trains its linear
  classifier with (Chen et al. 2020, appendix B.6); to jit."""
  definition, module = encoder.definition, encoder.module
  if definition.modality != "image":
    raise UserError("config.eval.linear_augment crops and flips images; set "
                    f"--config.eval.linear_augment=False for {definition.modality} runs")
  size = tuple(int(n) for n in definition.preprocess["image_size"])
  params = augment.AugmentParams(crop_scale=tuple(crop_scale), flip_prob=0.5,
                                 jitter_prob=0.0, grayscale_prob=0.0)

  def features(variables, images, key):
    views = augment.augment_batch(key, images, params, size)
    return module.apply(variables, definition.prepare(views), train=False).astype(jnp.float32)

  return features


def augmented_inputs(config, kind, workdir, mesh=None, purpose="the linear probe"):
  """What the SGD probe needs to recompute the training features of
  ``config.data.eval_train_split`` from augmented images at every step
  (``config.eval.linear_augment``): a ``sslax.probes.sgd.Recompute``."""
  if kind not in ("encoder", "random_init"):
    raise UserError(f"config.eval.linear_augment recomputes encoder features; the "
                    f"{kind} features have none: set --config.eval.linear_augment=False")
  mesh = mesh or sharded.eval_mesh()
  train = labelled_source(config.data, "eval_train_split", purpose)
  encoder = load_run_encoder(workdir, random_init=kind == "random_init",
                             sharding=replicated(mesh))
  return sgd.Recompute(
      read=lambda indices: np.asarray(train.get(indices)[encoder.definition.input_key]),
      features=augmented_features(encoder, config.eval.get("linear_crop_scale",
                                                           (0.08, 1.0))),
      variables=encoder.variables,
      threads=max(1, pipeline.resolve_workers(config.data.get("workers", 0))))
