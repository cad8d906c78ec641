"""Evaluation of runs whose encoder sees only the L channel of CIE Lab
(colourisation, Zhang et al. 2016; split-brain autoencoders, Zhang et al.
2017):

* ``transfer_linear``: the linear probe (``sslax.probes.linear``) of the run's
  frozen encoder on other labelled images: ``config.evals.transfer.data``
  (name, data_dir, train_split, test_split; default: grayscale
  Fashion-MNIST, transfer from colour photos);
  a gray pixel g becomes the L channel of sRGB (g, g, g) / 255, scaled as in
  training (the run's ``encoder.json``), at the native 28x28 (the ConvNet is
  convolutional, and its flattened 4x4x128 map is the same size at 28x28 and
  32x32). The run's pictures of colours come from ``sslax viz``.
"""

import dataclasses

import ml_collections

from sslax.data.source import labelled
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.eval.evaluate import fraction_name, write_eval
from sslax.eval.features import encode_source, load_run_encoder
from sslax.probes.linear import check_fraction, linear_probe, stratified_subset
from sslax.train import checkpoint, run_config

KINDS = ("encoder", "random_init")


def at_native_size(encoder, image_hw):
  """The run's L-channel encoder taking images of ``image_hw`` as they are
  (the ConvNet is convolutional); a refusal for any other encoder."""
  definition = encoder.definition
  if definition.preprocess["kind"] != "lab_l":
    raise UserError("transfer is for runs whose encoder sees the L channel (encoder "
                    "preprocessing lab_l), which takes gray and colour images alike; "
                    "use `sslax eval linear`")
  size = [int(n) for n in image_hw]
  return dataclasses.replace(encoder, definition=dataclasses.replace(
      definition, preprocess={**definition.preprocess, "image_size": size},
      input_shape=(*size, 1)))


DEFAULT_DATA = dict(name="fashion_mnist", data_dir="", train_split="train",
                    test_split="test", image_size=(28, 28), load_size=0, channels=0)


def target_data(config, data_dir=None):
  """The transfer target: ``config.evals.transfer.data`` over the defaults
  (configs saved without it transfer to Fashion-MNIST); ``data_dir``
  replaces its directory."""
  given = config.get("evals", {}).get("transfer", {}).get("data", {})
  given = given.to_dict() if hasattr(given, "to_dict") else dict(given)
  data = ml_collections.ConfigDict({**DEFAULT_DATA, **given})
  if data_dir:
    data.data_dir = data_dir
  return data


def transfer_linear(workdir: str, fraction: float = 1.0, seed: int = 0,
                    kind: str = "encoder", data_dir=None, overrides=()):
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
  config = run_config.load_config(workdir, overrides, reads_data=False)
  target = target_data(config, data_dir)
  train = get_source(target, target.train_split)
  test = get_source(target, target.test_split)
  for split, source in ((target.train_split, train), (target.test_split, test)):
    if "image" not in source.element_spec or not labelled(source):
      raise UserError(f"transfer needs labelled images but split {split!r} of "
                      f"{target.name} (config.evals.transfer.data) has "
                      f"{', '.join(sorted(source.element_spec))}; set "
                      "--config.evals.transfer.data.name (and data_dir) to labelled images")
  encoder = at_native_size(load_run_encoder(workdir, random_init=kind == "random_init"),
                           train.element_spec["image"][0][:2])
  bs = int(config.eval.batch_size)
  train_x, train_y = encode_source(encoder, train, bs)
  test_x, test_y = encode_source(encoder, test, bs)
  subset = stratified_subset(train_y, fraction, seed)
  result = linear_probe(train_x, train_y, test_x, test_y, fraction=fraction, seed=seed,
                        num_classes=train.num_classes, subset=subset)
  result.update(dataset=target.name, features=kind, method=config.method,
                step=checkpoint.latest_step(workdir), feature_dim=int(train_x.shape[1]),
                input="L channel of the gray image, {}x{}".format(
                    *train.element_spec["image"][0][:2]))
  prefix = f"transfer_{target.name}_linear" + ("" if kind == "encoder" else f"_{kind}")
  write_eval(workdir, f"{prefix}_{fraction_name(fraction)}", result)
  return result
