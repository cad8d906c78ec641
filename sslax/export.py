"""Exported encoders for downstream use.

``sslax export --workdir DIR --out PATH`` writes the encoder of a run's newest
checkpoint as an Orbax checkpoint (``PATH/variables``: parameters and batch
statistics) plus ``PATH/encoder.json`` naming the architecture, the input shape
and the normalisation. ``load_encoder(PATH)`` gives back a Linen module and its
variables, placed on the devices of the process that loads them.
"""

import json
import os

from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax.data import inputs
from sslax.data.sources import get_source
from sslax.errors import UserError
from sslax.models import make_encoder

INFO_FILE = "encoder.json"
VARIABLES_DIR = "variables"
LAB_L = "cie_lab_l"


def export_encoder(workdir: str, out: str):
  """Writes the encoder of ``workdir``'s newest checkpoint to ``out``; returns
  the info dict. Refuses to overwrite an existing ``out``."""
  from sslax.eval.features import method_and_state  # pylint: disable=g-import-not-at-top
  from sslax.train import checkpoint  # pylint: disable=g-import-not-at-top
  out_path = checkpoint.workdir_path(out)
  if out_path.exists():
    raise UserError(f"{out} already exists; choose a new --out path")
  config = checkpoint.load_config(workdir)
  step = checkpoint.latest_step(workdir)
  method, state = method_and_state(config, workdir)
  encoder = method.encoder
  variables = method.encoder_variables(state.params, state.model_state)
  audio = inputs.modality(config.data) == "audio"
  # Colourisation and split-brain encoders: a plain make_encoder network on L.
  l_channel = method.encoder_input is not None
  if audio:
    input_shape = list(get_source(config.data, "train").image_shape)
    normalization = {"scale": "samples standardised per clip (zero mean, unit variance)"}
  elif l_channel:
    input_shape = [*config.data.image_size, 1]
    normalization = {"color_space": LAB_L,
                     "scale": "uint8 / 255 (RGB, or gray read as R = G = B), then the "
                              "L of CIE Lab (sRGB, D65) as L / 50 - 1"}
  else:
    input_shape = [*config.data.image_size, len(config.data.mean)]
    normalization = {"mean": list(config.data.mean), "std": list(config.data.std),
                     "scale": "uint8 / 255, then (x - mean) / std"}
  features = jax.eval_shape(
      lambda v: encoder.apply(v, jnp.zeros((1, *input_shape)), train=False), variables)
  info = {
      "model": config.model.to_dict(),
      "compute_dtype": config.compute_dtype,
      "modality": "audio" if audio else "image",
      "input_shape": [int(d) for d in input_shape],
      "normalization": normalization,
      "feature_dim": int(features.shape[-1]),
      # "model": make_encoder(info["model"]); "method": the method's encoder.
      "encoder_module": "model" if l_channel else "method",
      "method": config.method,
      "dataset": config.data.name,
      "step": int(step),
      "config": json.loads(config.to_json()),
  }
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(out_path / VARIABLES_DIR, jax.device_get(variables))
  if jax.process_index() == 0:
    (out_path / INFO_FILE).write_text(json.dumps(info, indent=2))
  return info


def load_encoder(path: str, sharding=None):
  """``(module, variables, info)`` of an exported encoder.

  ``module.apply(variables, images, train=False)`` gives features of
  normalised images of shape ``[n, *info['input_shape']]`` (see ``preprocess``).
  Variables are restored onto ``sharding`` (default: replicated over this
  process's devices), whatever device count the export was saved from.
  """
  path = epath.Path(path if "://" in str(path) else os.path.abspath(path))
  if not (path / INFO_FILE).exists():
    raise UserError(f"{path} is not an exported encoder (no {INFO_FILE}); make one "
                    "with `sslax export --workdir DIR --out PATH`")
  info = json.loads((path / INFO_FILE).read_text())
  if info.get("encoder_module", "method") == "method" and "config" in info:
    # The method's encoder module, whatever the method.
    from sslax.methods import build_method  # pylint: disable=g-import-not-at-top
    module = build_method(ml_collections.ConfigDict(info["config"])).encoder
  else:
    module = make_encoder(ml_collections.ConfigDict(info["model"]), info["compute_dtype"])
  abstract = jax.eval_shape(
      lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, *info["input_shape"])),
                          train=False))
  if sharding is None:
    mesh = jax.make_mesh((len(jax.local_devices()),), ("replica",),
                         axis_types=(jax.sharding.AxisType.Auto,),
                         devices=jax.local_devices())
    sharding = NamedSharding(mesh, P())
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
  with ocp.StandardCheckpointer() as ckptr:
    variables = ckptr.restore(path / VARIABLES_DIR, target)
  return module, variables, info


def preprocess(images, info):
  """uint8 (or [0, 1] float) images [n, H, W, C] -> the encoder's normalised
  input (waveforms [n, samples] for a speech encoder; the scaled L channel of
  RGB or gray images for an L-channel encoder); a shape other than the
  exported one is a UserError."""
  images = np.asarray(images) if not isinstance(images, jax.Array) else images
  if info.get("normalization", {}).get("color_space") == LAB_L:
    return _l_channel(images, info)
  if tuple(images.shape[1:]) != tuple(info["input_shape"]):
    raise UserError(f"inputs of shape {tuple(images.shape[1:])} do not match the "
                    f"exported encoder's input {tuple(info['input_shape'])}; resize "
                    "them first")
  if info.get("modality") == "audio":
    return inputs.standardize_audio(jnp.asarray(images))
  x = jnp.asarray(images, jnp.float32)
  if images.dtype == np.uint8:
    x = x / 255.0
  mean = jnp.asarray(info["normalization"]["mean"], jnp.float32)
  std = jnp.asarray(info["normalization"]["std"], jnp.float32)
  return (x - mean) / std


def _l_channel(images, info):
  """RGB or gray images [n, H, W, 3 or 1] -> the scaled L channel [n, H, W, 1]."""
  from sslax.methods.colorization import l_input  # pylint: disable=g-import-not-at-top
  height, width, _ = info["input_shape"]
  if tuple(images.shape[1:3]) != (height, width) or images.shape[-1] not in (1, 3):
    raise UserError(f"inputs of shape {tuple(images.shape[1:])} do not match the "
                    f"exported encoder's input ({height}, {width}, 3) RGB or "
                    f"({height}, {width}, 1) gray; resize them first")
  x = jnp.asarray(images, jnp.float32)
  return l_input(x / 255.0 if images.dtype == np.uint8 else x)


def to_nnx(module, variables, sample_input):
  """The encoder as an NNX module (through flax's Linen-to-NNX bridge) holding
  the exported variables; call it as ``model(x, train=False)``."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  model = nnx.bridge.ToNNX(module, rngs=nnx.Rngs(0))
  nnx.bridge.lazy_init(model, sample_input, train=False)
  state = nnx.state(model)
  for collection, tree in variables.items():
    for path, value in jax.tree_util.tree_flatten_with_path(tree)[0]:
      node = state
      for key in path:
        node = node[key.key]
      node.value = value
  nnx.update(model, state)
  return model
