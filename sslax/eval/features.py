"""Frozen features for evaluation: from a trained workdir's encoder, from a
randomly initialised encoder of the same config, raw pixels (images) or MFCC
statistics (speech)."""

import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import inputs
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.methods import build_method
from sslax.methods.base import eval_input
from sslax.train import checkpoint
from sslax.train.loop import abstract_state, init_state
from sslax.train.mesh import make_mesh
from sslax.train.optim import make_optimizer

FEATURE_KINDS = ("encoder", "random_init", "raw_pixels", "mfcc")


def encoder_and_variables(config, workdir=None, *, random_init=False):
  """The method's encoder and its variables: from the latest checkpoint in
  ``workdir``, or at initialisation (seed ``config.seed``)."""
  method, state = method_and_state(config, workdir, random_init=random_init)
  return method.encoder, method.encoder_variables(state.params, state.model_state)


def method_and_state(config, workdir=None, *, random_init=False):
  """The method and its TrainState: from the latest checkpoint in
  ``workdir``, or at initialisation (seed ``config.seed``)."""
  method = build_method(config)
  source = get_source(config.data, "train")
  tx, _ = make_optimizer(config.optimizer, config.global_batch_size, config.num_steps)
  mesh = make_mesh(jax.device_count())
  if random_init:
    return method, init_state(method, tx, config, source, mesh)
  step = checkpoint.latest_step(workdir)
  if step is None:
    raise UserError(f"{workdir} holds no checkpoint; train first with "
                    f"`sslax train --config ... --workdir {workdir}`")
  with checkpoint.manager(workdir, read_only=True) as mngr:
    state = checkpoint.restore(mngr, step,
                               abstract_state(method, tx, config, source, mesh))
  return method, state


def encode_source(encoder, variables, source, prepare, batch_size=1000):
  """Encoder features (eval mode) and labels of a whole source, read and
  encoded a batch at a time; ``prepare`` maps a uint8 batch to the encoder's
  input (``eval_input_fn``)."""
  @jax.jit
  def apply(x):
    return encoder.apply(variables, prepare(x), train=False)

  feats, labels = [], []
  for start in range(0, len(source), batch_size):
    images, y = source.get(np.arange(start, min(start + batch_size, len(source))))
    pad = batch_size - len(images)
    if pad:  # one compiled shape for every batch
      images = np.concatenate([images, np.repeat(images[-1:], pad, axis=0)])
    feats.append(np.asarray(apply(jnp.asarray(images)))[:batch_size - pad])
    labels.append(y)
  return np.concatenate(feats), np.concatenate(labels)


def eval_input_fn(config, method=None):
  """The evaluation input of ``method`` (default: the central view,
  normalised), as a function of a uint8 batch."""
  if method is None:
    return lambda x: inputs.eval_input(x, config.data)
  return lambda x: eval_input(method, x, config.data)


def raw_pixels(source, batch_size=1000):
  """Flattened pixels in [0, 1] (only sensible for small images)."""
  feats, labels = [], []
  for start in range(0, len(source), batch_size):
    images, y = source.get(np.arange(start, min(start + batch_size, len(source))))
    feats.append(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    labels.append(y)
  return np.concatenate(feats), np.concatenate(labels)


def features(config, kind, workdir=None):
  """``(train_x, train_y, test_x, test_y, num_classes)`` for one feature kind."""
  if kind not in FEATURE_KINDS:
    raise UserError(f"unknown feature kind {kind!r}; use one of {', '.join(FEATURE_KINDS)}")
  audio = inputs.modality(config.data) == "audio"
  if kind == "mfcc" and not audio:
    raise UserError("--features mfcc is for speech runs; use raw_pixels for images")
  if kind == "raw_pixels" and audio:
    raise UserError("--features raw_pixels is for image runs; use mfcc for speech")
  train, test = get_source(config.data, "train"), get_source(config.data, "test")
  bs = config.eval.batch_size
  if kind == "mfcc":
    from sslax.data import speech  # pylint: disable=g-import-not-at-top
    train_x, train_y = speech.mfcc_features(train.images), train.labels
    test_x, test_y = speech.mfcc_features(test.images), test.labels
  elif kind == "raw_pixels":
    (train_x, train_y), (test_x, test_y) = raw_pixels(train, bs), raw_pixels(test, bs)
  else:
    method, state = method_and_state(config, workdir, random_init=kind == "random_init")
    encoder = method.encoder
    variables = method.encoder_variables(state.params, state.model_state)
    prepare = eval_input_fn(config, method)
    train_x, train_y = encode_source(encoder, variables, train, prepare, bs)
    test_x, test_y = encode_source(encoder, variables, test, prepare, bs)
  return train_x, train_y, test_x, test_y, train.num_classes
