"""The encoder: what training hands to everything after it.

An ``EncoderDef`` says, in JSON, which network computes the representation
(a backbone from ``config.model``, or a read-out of its codes), where that
network's variables sit inside a run's parameters and model state, and how
raw examples become its input (per-channel normalisation, the L channel of CIE
Lab, a standardised waveform). Every method supplies one; the trainer writes it
into the workdir as ``encoder.json``, so evaluation, export, pictures and a
user's own model rebuild the encoder from that file and the checkpoint's
variables alone: never the method, its optimizer or its training data.
``Encoder`` is a definition with its variables.
"""

import dataclasses
import json
from typing import Any, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from sslax.data import augment, color, inputs
from sslax.errors import UserError
from sslax.models import make_encoder
from sslax.models.readout import MeanContext, PooledCodeGrid

INFO_FILE = "encoder.json"


def _backbone(network):
  return make_encoder(ml_collections.ConfigDict(network["model"]),
                      network["compute_dtype"])


NETWORKS = {
    # The backbone of config.model as it is.
    "backbone": _backbone,
    # A backbone emitting a code grid, average-pooled to pool_grid x pool_grid.
    "pooled_code_grid": lambda n: PooledCodeGrid(encoder=_backbone(n),
                                                 pool_grid=int(n["pool_grid"])),
    # A backbone emitting a code sequence, then a GRU; the mean context.
    "mean_context": lambda n: MeanContext(encoder=_backbone(n),
                                          context_dim=int(n["context_dim"])),
}

# How examples (uint8 or float in [0, 1]) become the network's input.
PREPROCESSING = ("normalize", "lab_l", "waveform")

# A path into a pytree of nested dicts: its keys from the root.
Path = Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class EncoderDef:
  """A representation network, its variables' place in a run, its input.

  network: {"kind": one of NETWORKS, "model": config.model as a dict,
      "compute_dtype": ..., and the kind's own keys}
  selection: pairs (path in the run's params, path in the network's
      variables); every collection (params, batch_stats) is read at the same
      paths. ``((("encoder",), ()),)``: the run's submodule ``encoder`` is the
      whole network.
  preprocess: {"kind": one of PREPROCESSING, "image_size": [H, W],
      "mean": [...], "std": [...]} (mean and std for ``normalize`` only).
  input_shape: one example as the network sees it ([H, W, C] or [samples]).
  """
  network: dict
  selection: Tuple[Tuple[Path, Path], ...]
  preprocess: dict
  input_shape: Tuple[int, ...]

  def __post_init__(self):
    if self.network.get("kind") not in NETWORKS:
      raise UserError(f"unknown encoder network {self.network.get('kind')!r}; use one "
                      f"of {sorted(NETWORKS)}")
    if self.preprocess.get("kind") not in PREPROCESSING:
      raise UserError(f"unknown encoder preprocessing {self.preprocess.get('kind')!r}; "
                      f"use one of {', '.join(PREPROCESSING)}")

  @property
  def modality(self) -> str:
    return "audio" if self.preprocess["kind"] == "waveform" else "image"

  def module(self) -> nn.Module:
    return NETWORKS[self.network["kind"]](self.network)

  def select(self, params, model_state) -> dict:
    """The network's variables out of a run's ``params`` and ``model_state``
    (``{"batch_stats": ...}``), every collection."""
    trees = {"params": params, **model_state}
    out = {}
    for collection, tree in trees.items():
      for source, target in self.selection:
        node = _get(tree, source)
        if node is None:
          continue
        if not target:
          out[collection] = node
        else:
          _set(out.setdefault(collection, {}), target, node)
    return out

  def place(self, variables) -> Tuple[dict, dict]:
    """The inverse of ``select``: ``(params, model_state)`` trees holding only
    the network's variables, at their paths in a run."""
    params, model_state = {}, {}
    for collection, tree in variables.items():
      dest = params if collection == "params" else model_state.setdefault(collection, {})
      for source, target in self.selection:
        node = _get(tree, target) if target else tree
        if node is not None:
          _set(dest, source, node)
    return params, model_state

  def prepare(self, examples):
    """Raw examples -> the network's input: uint8 or [0, 1] float images
    [n, H, W, C] (resized to ``image_size`` if they differ), or waveforms
    [n, samples]."""
    kind = self.preprocess["kind"]
    if kind == "waveform":
      return inputs.standardize_audio(jnp.asarray(examples))
    images = augment.center_view(jnp.asarray(examples), tuple(self.preprocess["image_size"]))
    if kind == "lab_l":
      return color.l_input(images)
    return augment.normalize(images, self.preprocess["mean"], self.preprocess["std"])

  def abstract_variables(self):
    """The network's variables as shapes and dtypes, computing nothing."""
    x = jnp.zeros((1, *self.input_shape), jnp.float32)
    return jax.eval_shape(lambda: self.module().init(jax.random.PRNGKey(0), x,
                                                     train=False))

  def to_json(self) -> dict:
    return {"network": self.network,
            "selection": [[list(s), list(t)] for s, t in self.selection],
            "preprocess": self.preprocess, "input_shape": list(self.input_shape)}

  @classmethod
  def from_json(cls, d: dict) -> "EncoderDef":
    try:
      return cls(network=d["network"],
                 selection=tuple((tuple(s), tuple(t)) for s, t in d["selection"]),
                 preprocess=d["preprocess"],
                 input_shape=tuple(int(n) for n in d["input_shape"]))
    except (KeyError, TypeError, ValueError) as e:
      raise UserError(f"not an encoder description ({e!r}); was it written by an "
                      "older sslax? Retrain, or export with this version") from None


def _get(tree, path: Path):
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return None
    tree = tree[key]
  return tree


def _set(tree: dict, path: Path, value):
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def image_preprocess(config, *, kind: str = "normalize") -> Tuple[dict, Tuple[int, ...]]:
  """``(preprocess, input_shape)`` of a run's image encoder: the central view
  at ``config.data.image_size``, normalised with the data's mean and std
  (``normalize``) or as the scaled L channel (``lab_l``)."""
  size = [int(n) for n in config.data.image_size]
  if kind == "lab_l":
    return {"kind": "lab_l", "image_size": size}, (*size, 1)
  return ({"kind": "normalize", "image_size": size, "mean": list(config.data.mean),
           "std": list(config.data.std)}, (*size, len(config.data.mean)))


def network_of(config, kind: str = "backbone", **extra) -> dict:
  """The ``network`` entry for ``config.model`` (``extra``: the kind's keys)."""
  return {"kind": kind, "model": config.model.to_dict(),
          "compute_dtype": config.compute_dtype, **extra}


def backbone_def(config, submodule: Path = ("encoder",), *,
                 preprocess: str = "normalize") -> EncoderDef:
  """The usual encoder: the backbone of ``config.model``, held in the run as
  ``submodule``, seeing images preprocessed by ``preprocess``."""
  pre, shape = image_preprocess(config, kind=preprocess)
  return EncoderDef(network=network_of(config), selection=((tuple(submodule), ()),),
                    preprocess=pre, input_shape=shape)


@dataclasses.dataclass(frozen=True)
class Encoder:
  """An encoder definition with its variables: ``encoder(examples)`` gives
  the representation [n, d] of raw examples (eval mode)."""
  definition: EncoderDef
  variables: Any

  @property
  def module(self) -> nn.Module:
    return self.definition.module()

  def apply(self, x):
    """The network on already prepared input."""
    return self.module.apply(self.variables, x, train=False)

  def __call__(self, examples):
    return self.apply(self.definition.prepare(examples))


def feature_dim(definition: EncoderDef, variables=None) -> int:
  variables = variables if variables is not None else definition.abstract_variables()
  x = jnp.zeros((1, *definition.input_shape), jnp.float32)
  return int(jax.eval_shape(lambda v: definition.module().apply(v, x, train=False),
                            variables).shape[-1])


def write_definition(path, definition: EncoderDef, **extra):
  """Writes ``definition`` (and ``extra`` keys) as JSON to an epath ``path``."""
  path.write_text(json.dumps({**definition.to_json(), **extra}, indent=2))


def read_definition(path) -> Tuple[EncoderDef, dict]:
  """``(definition, the whole JSON)`` of an epath ``path``."""
  try:
    info = json.loads(path.read_text())
  except json.JSONDecodeError:
    raise UserError(f"{path} is not valid JSON; restore it or retrain") from None
  return EncoderDef.from_json(info), info


__all__ = ["Encoder", "EncoderDef", "NETWORKS", "PREPROCESSING", "backbone_def",
           "image_preprocess", "network_of", "feature_dim", "INFO_FILE"]
