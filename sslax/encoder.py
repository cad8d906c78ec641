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

from sslax.data import modality as modalities
from sslax.errors import UserError, read_json
from sslax.models import make_encoder
from sslax.models.channel_split import ChannelSplit
from sslax.models.embedding import TokenEmbedding
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
    # Two backbones on channels [:split] and [split:], features concatenated.
    "channel_split": lambda n: ChannelSplit(first=_backbone(n), second=_backbone(n),
                                            split=int(n["split"])),
    # A table of vocab_size vectors of dim, applied to token ids.
    "embedding": lambda n: TokenEmbedding(vocab_size=int(n["vocab_size"]),
                                          dim=int(n["dim"])),
}

# How examples become the network's input: each modality's kinds
# (``sslax.data.modality``): normalize, lab_l, lab, waveform, token_ids.
PREPROCESSING = modalities.preprocessing_kinds()

# What the network gives: one vector per example, a dense map [h, w, d] per
# example, one vector per position of a sequence [t, d], or one vector per
# entry of a vocabulary (the network applied to ids).
OUTPUT_KINDS = ("vector", "dense", "sequence", "table")

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
  input_key: the name of the examples it takes (``"image"``, ``"audio"``).
  input_dtype: the network input's dtype (float32; int32 for token ids).
  output: one of OUTPUT_KINDS.
  assets: names of the files saved beside its description (a vocabulary).
  """
  network: dict
  selection: Tuple[Tuple[Path, Path], ...]
  preprocess: dict
  input_shape: Tuple[int, ...]
  input_key: str = ""  # "": the modality's (``KEY``)
  input_dtype: str = "float32"
  output: str = "vector"
  assets: Tuple[str, ...] = ()

  def __post_init__(self):
    if self.network.get("kind") not in NETWORKS:
      raise UserError(f"unknown encoder network {self.network.get('kind')!r}; use one "
                      f"of {sorted(NETWORKS)}")
    owner = modalities.owning(self.preprocess.get("kind"))
    if not self.input_key:
      object.__setattr__(self, "input_key", owner.KEY)
    if self.output not in OUTPUT_KINDS:
      raise UserError(f"unknown encoder output {self.output!r}; use one of "
                      f"{', '.join(OUTPUT_KINDS)}")

  @property
  def modality(self) -> str:
    """The modality whose examples it takes (``sslax.data.modality``)."""
    return modalities.owning(self.preprocess["kind"]).NAME

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
    """Raw examples -> the network's input, by the preprocessing's modality:
    uint8 or [0, 1] float images [n, H, W, C] (resized to ``image_size`` if
    they differ), waveforms [n, samples], token ids [n, ...]."""
    kind = self.preprocess["kind"]
    return modalities.owning(kind).PREPROCESSING[kind](examples, self.preprocess)

  def abstract_variables(self):
    """The network's variables as shapes and dtypes, computing nothing."""
    x = jnp.zeros((1, *self.input_shape), self.input_dtype)
    return jax.eval_shape(lambda: self.module().init(jax.random.PRNGKey(0), x,
                                                     train=False))

  def to_json(self) -> dict:
    return {"network": self.network,
            "selection": [[list(s), list(t)] for s, t in self.selection],
            "preprocess": self.preprocess, "input_shape": list(self.input_shape),
            "input_key": self.input_key, "input_dtype": self.input_dtype,
            "output": self.output, "assets": list(self.assets)}

  @classmethod
  def from_json(cls, d: dict) -> "EncoderDef":
    try:
      return cls(network=d["network"],
                 selection=tuple((tuple(s), tuple(t)) for s, t in d["selection"]),
                 preprocess=d["preprocess"],
                 input_shape=tuple(int(n) for n in d["input_shape"]),
                 # Descriptions written before these fields: the modality's key,
                 # float input, a vector per example, no assets.
                 input_key=d.get("input_key", ""),
                 input_dtype=d.get("input_dtype", "float32"),
                 output=d.get("output", "vector"),
                 assets=tuple(d.get("assets", ())))
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
  (``normalize``), as the scaled L channel (``lab_l``) or scaled Lab
  (``lab``)."""
  size = [int(n) for n in config.data.image_size]
  if kind in ("lab_l", "lab"):
    return {"kind": kind, "image_size": size}, (*size, 1 if kind == "lab_l" else 3)
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


def feature_map_def(config, submodule: Path = ("encoder",), *,
                    preprocess: str = "normalize"):
  """The ConvNet backbone's last feature map [h, w, d], before its pooling,
  as a ``dense`` encoder over the same variables as ``backbone_def``: what
  ``sslax eval track`` propagates labels with. None for other backbones and
  for a ConvNet that is already a map."""
  if config.model.encoder != "convnet" or config.model.get("pool") == "map":
    return None
  pooled = backbone_def(config, submodule, preprocess=preprocess)
  network = {**pooled.network, "model": {**pooled.network["model"], "pool": "map"}}
  return dataclasses.replace(pooled, network=network, output="dense")


@dataclasses.dataclass(frozen=True)
class Encoder:
  """An encoder definition with its variables: ``encoder(examples)`` gives
  the representation of raw examples (eval mode): [n, d] for a ``vector``
  encoder. ``assets``: {file name: path} of the files saved beside it."""
  definition: EncoderDef
  variables: Any
  assets: Any = None

  @property
  def module(self) -> nn.Module:
    return self.definition.module()

  def apply(self, x):
    """The network on already prepared input."""
    return self.module.apply(self.variables, x, train=False)

  def __call__(self, examples):
    return self.apply(self.definition.prepare(examples))


def embed_fn(definition: EncoderDef):
  """``embed(variables, examples)``: the network's output (eval mode,
  float32) for raw examples, to jit; what every evaluation and the online
  kNN compute."""
  module = definition.module()

  def embed(variables, examples):
    return module.apply(variables, definition.prepare(examples),
                        train=False).astype(jnp.float32)

  return embed


def feature_dim(definition: EncoderDef, variables=None) -> int:
  """The size of the last axis of the network's output."""
  variables = variables if variables is not None else definition.abstract_variables()
  x = jnp.zeros((1, *definition.input_shape), definition.input_dtype)
  return int(jax.eval_shape(lambda v: definition.module().apply(v, x, train=False),
                            variables).shape[-1])


def write_definition(path, definition: EncoderDef, **extra):
  """Writes ``definition`` (and ``extra`` keys) as JSON to an epath ``path``."""
  path.write_text(json.dumps({**definition.to_json(), **extra}, indent=2))


def read_definition(path) -> Tuple[EncoderDef, dict]:
  """``(definition, the whole JSON)`` of an epath ``path``."""
  info = read_json(path, "rerun the `sslax train` command of its workdir, which "
                         "rewrites it from the config without retraining (or export "
                         "the encoder again)")
  return EncoderDef.from_json(info), info


__all__ = ["Encoder", "EncoderDef", "NETWORKS", "PREPROCESSING", "backbone_def",
           "image_preprocess", "network_of", "feature_dim", "INFO_FILE"]
