"""Frozen features for evaluation: from a trained workdir's encoder, from a
randomly initialised encoder of the same config, or raw pixels."""

import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import augment
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.methods import build_method
from sslax.train import checkpoint
from sslax.train.loop import init_state
from sslax.train.mesh import make_mesh
from sslax.train.optim import make_optimizer

FEATURE_KINDS = ("encoder", "random_init", "raw_pixels")


def encoder_and_variables(config, workdir=None, *, random_init=False):
  """The method's encoder and its variables: from the latest checkpoint in
  ``workdir``, or at initialisation (seed ``config.seed``)."""
  method = build_method(config)
  source = get_source(config.data, "train")
  tx, _ = make_optimizer(config.optimizer, config.global_batch_size, config.num_steps)
  mesh = make_mesh(jax.device_count())
  state = init_state(method, tx, config, source, mesh)
  if not random_init:
    step = checkpoint.latest_step(workdir)
    if step is None:
      raise UserError(f"{workdir} holds no checkpoint; train first with "
                      f"`sslax train --config ... --workdir {workdir}`")
    with checkpoint.manager(workdir, read_only=True) as mngr:
      state = checkpoint.restore(mngr, step, state)
  return method.encoder, method.encoder_variables(state.params, state.model_state)


def encode_images(encoder, variables, images, config, batch_size=1000):
  """Encoder features (eval mode) of uint8 images, in batches."""
  @jax.jit
  def apply(x):
    x = augment.normalize(augment.center_view(x, config.data.image_size),
                          config.data.mean, config.data.std)
    return encoder.apply(variables, x, train=False)

  out = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    pad = batch_size - len(chunk)
    if pad:  # one compiled shape for every batch
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
    out.append(np.asarray(apply(jnp.asarray(chunk)))[:batch_size - pad])
  return np.concatenate(out)


def split_arrays(config, split):
  source = get_source(config.data, split)
  return source.get(np.arange(len(source)))


def features(config, kind, workdir=None):
  """``(train_x, train_y, test_x, test_y, num_classes)`` for one feature kind."""
  if kind not in FEATURE_KINDS:
    raise UserError(f"unknown feature kind {kind!r}; use one of {', '.join(FEATURE_KINDS)}")
  train_images, train_y = split_arrays(config, "train")
  test_images, test_y = split_arrays(config, "test")
  num_classes = get_source(config.data, "train").num_classes
  if kind == "raw_pixels":
    flat = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0
    return flat(train_images), train_y, flat(test_images), test_y, num_classes
  encoder, variables = encoder_and_variables(config, workdir,
                                             random_init=kind == "random_init")
  bs = config.eval.batch_size
  return (encode_images(encoder, variables, train_images, config, bs), train_y,
          encode_images(encoder, variables, test_images, config, bs), test_y,
          num_classes)
