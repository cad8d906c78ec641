"""Evaluation of runs whose encoder sees only the L channel of CIE Lab
(colourisation, Zhang et al. 2016; split-brain autoencoders, Zhang et al.
2017):

* ``transfer_linear``: the linear probe (``sslax.eval.linear``) of the run's
  frozen encoder on grayscale Fashion-MNIST (transfer from colour photos);
  a gray pixel g becomes the L channel of sRGB (g, g, g) / 255, scaled as in
  training (``Method.encoder_input``), at the native 28x28 (the ConvNet is
  convolutional, and its flattened 4x4x128 map is the same size at 28x28 and
  32x32);
* ``colorization_examples``: test images, their L channel and the trained
  model's colours, for ``sslax viz``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import augment
from sslax.data.sources import fashion_mnist
from sslax.errors import UserError
from sslax.eval.evaluate import fraction_name, write_eval
from sslax.eval.features import encode_source, encoder_and_variables, method_and_state
from sslax.eval.linear import check_fraction, linear_probe, stratified_subset
from sslax.methods import build_method
from sslax.train import checkpoint

KINDS = ("encoder", "random_init")


def grayscale_input(method, images):
  """What ``method.encoder`` sees of uint8 grayscale images [n, H, W, 1]
  (native size): the method's ``encoder_input`` of the images in [0, 1]."""
  return method.encoder_input(augment.center_view(jnp.asarray(images)))


def l_channel_method(config, workdir):
  method = build_method(config)
  if method.encoder_input is None:
    raise UserError(f"{workdir} is a {config.method} run; transfer to grayscale "
                    "Fashion-MNIST is for runs whose encoder sees the L channel "
                    "(colorization, split_brain); use `sslax eval linear`")
  return method


def transfer_linear(workdir: str, fraction: float = 1.0, seed: int = 0,
                    kind: str = "encoder", data_dir=None):
  """Linear probe of the run's L-channel encoder (``kind='encoder'``) or of a
  randomly initialised one (``'random_init'``, the baseline) on grayscale
  Fashion-MNIST, trained on the stratified ``fraction`` of its 60000 labels
  drawn with ``seed`` (the subset ``sslax eval linear`` uses on Fashion-MNIST
  runs). Writes and returns
  ``WORKDIR/eval/transfer_fashion_mnist_linear_<fraction>.json``
  (``..._linear_random_init_<fraction>.json``)."""
  fraction = check_fraction(fraction)
  if kind not in KINDS:
    raise UserError(f"unknown transfer features {kind!r}; use one of {', '.join(KINDS)}")
  config = checkpoint.load_config(workdir)
  method = l_channel_method(config, workdir)
  encoder, variables = encoder_and_variables(config, workdir,
                                             random_init=kind == "random_init")
  train, test = fashion_mnist("train", data_dir), fashion_mnist("test", data_dir)
  bs = int(config.eval.batch_size)
  prepare = functools.partial(grayscale_input, method)
  train_x, train_y = encode_source(encoder, variables, train, prepare, bs)
  test_x, test_y = encode_source(encoder, variables, test, prepare, bs)
  subset = stratified_subset(train_y, fraction, seed)
  result = linear_probe(train_x, train_y, test_x, test_y, fraction=fraction, seed=seed,
                        num_classes=train.num_classes, subset=subset)
  result.update(dataset="fashion_mnist", features=kind, method=config.method,
                feature_dim=int(train_x.shape[1]),
                input=f"L channel of the gray image, {train.image_shape[0]}x"
                      f"{train.image_shape[1]}")
  prefix = "transfer_fashion_mnist_linear" + ("" if kind == "encoder" else f"_{kind}")
  write_eval(workdir, f"{prefix}_{fraction_name(fraction)}", result)
  return result


def colorization_examples(config, workdir, source, num=8, seed=0):
  """``(gray, predicted, true)`` sRGB float arrays [num, H, W, 3] of ``num``
  seed-chosen examples of ``source``: the L input, the true L with the
  predicted ab (annealed mean), and the image."""
  from sslax.methods import METHODS  # pylint: disable=g-import-not-at-top
  _, state = method_and_state(config, workdir)
  idx = np.sort(np.random.default_rng(seed).choice(len(source), min(num, len(source)),
                                                   replace=False))
  images, _ = source.get(idx)
  params, model_state = jax.device_get((state.params, state.model_state))
  out = METHODS[config.method].colorize(config, params, model_state, images)
  return tuple(np.asarray(a) for a in out)
