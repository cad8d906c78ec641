"""Exported encoders for downstream use.

``sslax export --workdir DIR --out PATH`` writes the encoder of a run's newest
checkpoint as an Orbax checkpoint (``PATH/variables``: parameters and batch
statistics) plus ``PATH/encoder.json``: the encoder's description
(``sslax.encoder.EncoderDef``: network, input preprocessing, input shape) and
where it came from. ``load_encoder(PATH)`` gives back a Linen module and its
variables, placed on the devices of the process that loads them.
"""


import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from sslax import encoder as encoder_lib
from sslax.data import modality as modalities
from sslax.errors import UserError, read_json
from sslax.train import artifact, checkpoint, run_config

INFO_FILE = encoder_lib.INFO_FILE
VARIABLES_DIR = "variables"
ENCODERS_DIR = "encoders"


def export_encoder(workdir: str, out: str, overrides=(), encoder=None):
  """Writes the encoders of ``workdir``'s newest checkpoint to ``out``: the
  primary at ``out`` itself, every other one at ``out/encoders/<name>``
  (each: ``encoder.json``, ``variables/`` and its assets); with ``encoder``
  (a name), that one alone at ``out``. Returns the info dict of the one at
  ``out``. Refuses to overwrite an existing ``out``."""
  out_path = checkpoint.workdir_path(out)
  if out_path.exists():
    raise UserError(f"{out} already exists; choose a new --out path")
  config = run_config.load_config(workdir, overrides, reads_data=False)
  step = checkpoint.latest_step(workdir)
  names = artifact.encoder_names(workdir)
  if not names:
    artifact.read_encoder_definition(workdir)  # none there: one line
  if encoder is not None:
    artifact.read_encoder_definition(workdir, encoder)  # an unknown name: one line
    names = [encoder]
  info = None
  for i, name in enumerate(names):
    where = out_path if i == 0 else out_path / ENCODERS_DIR / name
    written = _export_one(workdir, name, where, config, step)
    info = info or written
  return info


def describe_export(out: str) -> list:
  """One line per encoder written at ``out``: its name, what it gives and
  takes, the step, and where it is (the primary at ``out``, the others
  below ``out/encoders/``)."""
  root = checkpoint.workdir_path(out)
  others = root / ENCODERS_DIR
  places = [root, *(sorted(others.glob("*")) if others.exists() else [])]
  lines = []
  for place in places:
    info = _read_info(place)
    gives = (f"{info['feature_dim']} features" if "feature_dim" in info
             else info.get("output", "vector"))
    lines.append(f"wrote encoder {info.get('name', 'encoder')!r} of step {info.get('step')} "
                 f"({gives} of {info.get('input_key') or 'input'} "
                 f"{list(info['input_shape'])}) to {place}: "
                 f"sslax.load_encoder({str(root)!r}"
                 f"{'' if place == root else ', name=' + repr(place.name)})")
  return lines


def _export_one(workdir, name, out_path, config, step):
  encoder = artifact.restore_encoder(workdir, name=name, step=step)
  definition = encoder.definition
  info = {
      **definition.to_json(),
      "name": name,
      "modality": definition.modality,
      "method": config.method,
      # (a source given to train_and_evaluate: its description, not data.name)
      "dataset": config.data.get(run_config.GIVEN_SOURCE) or config.data.name,
      "step": int(step),
      "config": config.to_dict(),
  }
  if definition.output == "vector":
    info["feature_dim"] = encoder_lib.feature_dim(definition, encoder.variables)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(out_path / VARIABLES_DIR, jax.device_get(encoder.variables))
  if jax.process_index() == 0:
    encoder_lib.write_definition(out_path / INFO_FILE, definition, **info)
    for file_name, path in (encoder.assets or {}).items():
      (out_path / file_name).write_text(path.read_text())
  return info


def _legacy_definition(info) -> encoder_lib.EncoderDef:
  """The description of an export written before ``encoder.json`` held one:
  a backbone of ``info['model']`` on normalised images or the L channel."""
  model = info.get("model", {})
  if model.get("encoder") in ("patch_convnet", "waveform"):
    raise UserError("this encoder was exported by an older sslax; export it again "
                    "with `sslax export --workdir DIR --out NEW_PATH`")
  norm = info.get("normalization", {})
  shape = [int(n) for n in info["input_shape"]]
  if norm.get("color_space") == "cie_lab_l":
    preprocess = {"kind": "lab_l", "image_size": shape[:2]}
  else:
    preprocess = {"kind": "normalize", "image_size": shape[:2],
                  "mean": list(norm["mean"]), "std": list(norm["std"])}
  return encoder_lib.EncoderDef(
      network={"kind": "backbone", "model": model,
               "compute_dtype": info.get("compute_dtype", "float32")},
      selection=(((), ()),), preprocess=preprocess, input_shape=tuple(shape))


def _definition(info) -> encoder_lib.EncoderDef:
  if "network" in info:
    return encoder_lib.EncoderDef.from_json(info)
  return _legacy_definition(info)


def load_encoder(path: str, sharding=None, name=None):
  """``(module, variables, info)`` of an exported encoder: the primary one,
  or ``name`` of an export holding several (``info["assets"]`` lists the
  files saved beside it, e.g. a vocabulary).

  ``module.apply(variables, preprocess(images, info), train=False)`` gives
  the features of images (or waveforms) of the exported input shape.
  Variables are restored onto ``sharding`` (default: replicated over this
  process's devices), whatever device count the export was saved from.
  """
  path = checkpoint.workdir_path(path)
  if name is not None and (path / INFO_FILE).exists() and _read_info(path).get(
      "name", "encoder") != name:
    others = sorted(p.name for p in (path / ENCODERS_DIR).glob("*")) if (
        path / ENCODERS_DIR).exists() else []
    if name not in others:
      have = [_read_info(path).get("name", "encoder"), *others]
      raise UserError(f"{path} has no encoder {name!r}; it has {', '.join(have)}")
    path = path / ENCODERS_DIR / name
  if not (path / INFO_FILE).exists():
    raise UserError(f"{path} is not an exported encoder (no {INFO_FILE}); make one "
                    "with `sslax export --workdir DIR --out PATH`")
  info = _read_info(path)
  definition = _definition(info)
  sharding = sharding or checkpoint.local_replicated()
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                        definition.abstract_variables())
  with ocp.StandardCheckpointer() as ckptr:
    variables = ckptr.restore(path / VARIABLES_DIR, target)
  return definition.module(), variables, info


def _read_info(path) -> dict:
  return read_json(path / INFO_FILE, "export the encoder again")


def preprocess(images, info):
  """uint8 (or [0, 1] float) images [n, H, W, C] -> the encoder's input
  (waveforms [n, samples] for a speech encoder; the scaled L channel of RGB or
  gray images for an L-channel encoder); a size other than the exported one
  is a UserError."""
  definition = _definition(info)
  images = images if isinstance(images, jax.Array) else np.asarray(images)
  modalities.owning(definition.preprocess["kind"]).check_input(images, definition)
  return definition.prepare(jnp.asarray(images))


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


# ------------------------------------------------------------------ embedding

def _encoder_at(path: str, name=None):
  """``(Encoder, data config dict)`` of an exported encoder or a workdir."""
  where = checkpoint.workdir_path(path)
  if (where / run_config.CONFIG_FILE).exists():  # a workdir
    config = run_config.load_config(path, reads_data=False)
    return artifact.restore_encoder(path, name=name), config.data.to_dict()
  _, variables, info = load_encoder(path, name=name)
  return (encoder_lib.Encoder(_definition(info), variables),
          info.get("config", {}).get("data", {}))


def _read_size(definition, data: dict):
  """The size images are read at before the encoder's own preprocessing:
  the run's ``data.load_size`` when it had one, else its ``image_size``."""
  return data.get("load_size") or tuple(int(s) for s in definition.preprocess["image_size"])


def embedding_source(definition, data: dict, inputs):
  """``(source, names)``: ``inputs`` (an array of examples, a list of image
  files or a folder) as a source of the encoder's input key, images read as
  training and evaluation read them; ``names`` are the files (None for an
  array)."""
  from sslax.data import folder as folder_lib  # pylint: disable=g-import-not-at-top
  from sslax.data.images import resize_and_center_crop  # pylint: disable=g-import-not-at-top
  from sslax.data.source import ArraySource  # pylint: disable=g-import-not-at-top
  key, image = definition.input_key, definition.modality == "image"
  if isinstance(inputs, (str, list, tuple)) and not image:
    raise UserError(f"the encoder takes {definition.modality} examples; give them as an "
                    "array, not image files")
  if image:
    size = _read_size(definition, data)
    accepted = modalities.image.input_channels(definition)
    channels = accepted[-1]
  if isinstance(inputs, str):
    if not checkpoint.workdir_path(inputs).is_dir():
      raise UserError(f"{inputs} is not a folder of images")
    splits = "+".join(folder_lib.split_dirs(inputs))
    source = folder_lib.FolderSource(inputs, splits, size=size, channels=channels)
    return source, list(source.files)
  if isinstance(inputs, (list, tuple)):
    missing = [f for f in inputs if not checkpoint.workdir_path(f).is_file()]
    if missing:
      raise UserError(f"{missing[0]} is not an image file ({len(missing)} of the "
                      f"{len(inputs)} given are not)")
    source = folder_lib.FileSource(list(inputs), size=size, channels=channels)
    return source, list(source.files)
  examples = np.asarray(inputs)
  if image:
    if examples.ndim == 3:
      examples = examples[..., None]
    if examples.ndim != 4:
      raise UserError(f"images of shape {examples.shape} are not a batch [n, H, W, C]")
    if examples.dtype != np.uint8:
      examples = np.clip(np.round(examples * 255.0), 0, 255).astype(np.uint8)
    examples = np.stack([resize_and_center_crop(x, size) for x in examples]) if len(
        examples) else examples
    if examples.shape[-1] not in accepted:
      raise UserError(f"the images have {examples.shape[-1]} channels but the encoder "
                      f"takes {channels}; convert them first (gray: 1, RGB: 3)")
  else:
    modalities.owning(definition.preprocess["kind"]).check_input(examples, definition)
  return ArraySource(arrays={key: examples}), None


def embed(path: str, inputs, *, batch_size: int = 256, name=None):
  """Features [n, d] (float32 numpy) of raw examples with a trained vector
  encoder: ``path`` an exported encoder (``sslax export``) or a workdir,
  ``name`` one of its encoders (default: the primary). ``inputs``: images
  uint8 (or [0, 1] float) [n, H, W, C] of any size, a list of image files, or
  a folder (every image in it, as ``config.data.name=image_folder`` reads it);
  waveforms [n, samples] for a speech encoder.

  Images go through what training and evaluation do: scaled to cover the
  run's read size (``data.load_size``, else ``image_size``) and centre-cropped,
  then the encoder's own preprocessing; batches are split over every device."""
  return embed_with_names(path, inputs, batch_size=batch_size, name=name)[0]


def embed_with_names(path: str, inputs, *, batch_size: int = 256, name=None):
  """``(features, names)``: ``embed``'s features and the files they are of
  (None for an array)."""
  from sslax.probes.sharded import encode_source  # pylint: disable=g-import-not-at-top
  if int(batch_size) <= 0:
    raise UserError(f"--batch-size must be positive, got {batch_size}")
  encoder, data = _encoder_at(path, name)
  definition = encoder.definition
  if definition.output != "vector":
    raise UserError(f"embed gives one vector per example, and the encoder of {path} "
                    f"gives a {definition.output}; embed with a vector encoder")
  source, names = embedding_source(definition, data, inputs)
  if not len(source):
    raise UserError("there is nothing to embed: no examples given")
  features, _ = encode_source(encoder, source, int(batch_size))
  return features, names
