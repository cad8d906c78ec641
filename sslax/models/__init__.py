"""Linen encoders and heads, built from a config by explicit name tables."""

import jax.numpy as jnp
import ml_collections

from sslax.errors import UserError
from sslax.models.convnet import ConvNet
from sslax.models.heads import ProjectionHead
from sslax.models.audio import WaveformEncoder
from sslax.models.patchnet import PatchConvNet
from sslax.models.resnet import ResNet, resnet18, resnet34, resnet50

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _convnet(config, dtype):
  if "stem_stride" not in config:  # no default here: sslax.config_base sets it
    raise UserError("config.model.stem_stride is missing; set the stride of the "
                    "ConvNet's first stage (sslax.config_base uses 2)")
  return ConvNet(widths=tuple(config.widths),
                 stem_stride=int(config.stem_stride),
                 pool=config.pool, dtype=dtype)


def _patch_convnet(config, dtype):
  widths, kernels, strides = (tuple(config[k]) for k in ("widths", "kernels", "strides"))
  if not len(widths) == len(kernels) == len(strides):
    raise UserError("config.model.widths, kernels and strides need one entry per "
                    f"layer; got {len(widths)}, {len(kernels)} and {len(strides)}")
  return PatchConvNet(widths=widths, kernels=kernels, strides=strides, dtype=dtype)


def _waveform(config, dtype):
  del dtype  # the waveform encoder computes in float32
  return WaveformEncoder(width=int(config.width), kernels=tuple(config.kernels),
                         strides=tuple(config.strides),
                         layer_norm=bool(config.layer_norm))


def _resnet(factory):
  def build(config, dtype):
    return factory(stem=config.stem, width=config.width, dtype=dtype)
  return build


ENCODERS = {
    "convnet": _convnet,
    "patch_convnet": _patch_convnet,
    "waveform": _waveform,
    "resnet18": _resnet(resnet18),
    "resnet34": _resnet(resnet34),
    "resnet50": _resnet(resnet50),
}


def compute_dtype(name: str):
  if name not in DTYPES:
    raise UserError(f"unknown compute dtype {name!r}; use one of {sorted(DTYPES)}")
  return DTYPES[name]


def make_encoder(model_config: ml_collections.ConfigDict, dtype_name: str = "float32"):
  """The encoder named by ``model_config.encoder`` (see ``ENCODERS``)."""
  name = model_config.encoder
  if name not in ENCODERS:
    raise UserError(f"unknown encoder {name!r}; set config.model.encoder to one "
                    f"of {sorted(ENCODERS)}")
  choices = {"stem": ("imagenet", "cifar"), "pool": ("avg", "flatten", "map")}
  for key, valid in choices.items():
    if key in model_config and model_config[key] not in valid:
      raise UserError(f"unknown config.model.{key} {model_config[key]!r}; use one "
                      f"of {', '.join(valid)}")
  return ENCODERS[name](model_config, compute_dtype(dtype_name))


__all__ = ["ConvNet", "PatchConvNet", "ProjectionHead", "ResNet", "resnet18", "resnet34",
           "resnet50", "ENCODERS", "make_encoder", "compute_dtype"]
