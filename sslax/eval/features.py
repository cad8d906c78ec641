"""Frozen features for evaluation: from a trained workdir's encoder, from the
same encoder at its initialisation, raw pixels (images) or MFCC statistics
(speech). Encoders come from the workdir's ``encoder.json`` and checkpoint
alone (``checkpoint.restore_encoder``): no method, optimizer or train state."""

import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import inputs, speech
from sslax.data.sources import labelled_source, require_labels
from sslax.errors import UserError
from sslax.train import checkpoint

FEATURE_KINDS = ("encoder", "random_init", "raw_pixels", "mfcc")


def load_run_encoder(workdir: str, *, random_init: bool = False):
  """The ``Encoder`` of a workdir: its newest checkpoint's, or at
  initialisation (the random-init baseline)."""
  return checkpoint.restore_encoder(workdir, random_init=random_init)


def encode_source(encoder, source, batch_size=1000):
  """Encoder features (eval mode, float32) and labels of a whole source, read
  and encoded a batch at a time."""
  module, prepare = encoder.module, encoder.definition.prepare

  @jax.jit
  def apply(variables, x):
    return module.apply(variables, prepare(x), train=False).astype(jnp.float32)

  feats, labels = [], []
  for start in range(0, len(source), batch_size):
    images, y = source.get(np.arange(start, min(start + batch_size, len(source))))
    pad = batch_size - len(images)
    if pad:  # one compiled shape for every batch
      images = np.concatenate([images, np.repeat(images[-1:], pad, axis=0)])
    feats.append(np.asarray(apply(encoder.variables, jnp.asarray(images)))[:batch_size - pad])
    labels.append(y)
  return np.concatenate(feats), np.concatenate(labels)


def raw_pixels(source, batch_size=1000):
  """Flattened pixels in [0, 1] (only sensible for small images)."""
  feats, labels = [], []
  for start in range(0, len(source), batch_size):
    images, y = source.get(np.arange(start, min(start + batch_size, len(source))))
    feats.append(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    labels.append(y)
  return np.concatenate(feats), np.concatenate(labels)


def features(config, kind, workdir, purpose="labelled evaluation"):
  """``(train_x, train_y, test_x, test_y, num_classes)`` for one feature kind,
  of the splits ``config.data.eval_train_split`` and ``eval_split``; one line
  when either lacks labels (``purpose`` names what needs them)."""
  if kind not in FEATURE_KINDS:
    raise UserError(f"unknown feature kind {kind!r}; use one of {', '.join(FEATURE_KINDS)}")
  audio = inputs.modality(config.data) == "audio"
  if kind == "mfcc" and not audio:
    raise UserError("--features mfcc is for speech runs; use raw_pixels for images")
  if kind == "raw_pixels" and audio:
    raise UserError("--features raw_pixels is for image runs; use mfcc for speech")
  train = labelled_source(config.data, "eval_train_split", purpose)
  test = labelled_source(config.data, "eval_split", purpose)
  bs = config.eval.batch_size
  if kind == "mfcc":
    train_x, train_y = speech.mfcc_features(train.images), train.labels
    test_x, test_y = speech.mfcc_features(test.images), test.labels
  elif kind == "raw_pixels":
    (train_x, train_y), (test_x, test_y) = raw_pixels(train, bs), raw_pixels(test, bs)
  else:
    encoder = load_run_encoder(workdir, random_init=kind == "random_init")
    train_x, train_y = encode_source(encoder, train, bs)
    test_x, test_y = encode_source(encoder, test, bs)
  require_labels(train_y, config.data, "eval_train_split", purpose)
  require_labels(test_y, config.data, "eval_split", purpose)
  return train_x, train_y, test_x, test_y, train.num_classes
