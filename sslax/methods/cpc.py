"""Contrastive Predictive Coding (van den Oord et al. 2018; Henaff et al. 2020).

An encoder g_enc turns each step of a sequence into a code z_t, a GRU g_ar
scanned over time summarises z_{<=t} into a context c_t, and for each offset k
a linear map W_k predicts z_{t+k} from c_t. The loss is InfoNCE: the true
z_{t+k} against the codes of every other step of every sequence in the global
batch (``sslax.losses.cpc_infonce``; candidates are gathered across devices).

* Images (``config.data.modality = 'image'``): an overlapping grid of patches,
  each encoded on its own by the same network (``PatchConvNet``, which encodes
  all of them in one pass; layer norm, not batch statistics, which would leak
  information between patches). Every column of
  the grid is a sequence read from top to bottom; the GRU's input at a cell is
  the codes of the cell and its left and right neighbours, and the context
  predicts the codes ``offsets`` rows below (offsets start at 2 because
  neighbouring rows overlap). The representation is the code grid average
  pooled to ``pool_grid x pool_grid`` and flattened.
* Speech (``'audio'``): a strided 1-D ConvNet on a random window of the raw
  waveform gives one code per 10 ms; the representation is the context c_t
  averaged over the clip.
"""

import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from sslax import losses
from sslax.data import modality
from sslax.encoder import EncoderDef, image_preprocess, network_of
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import make_encoder
from sslax.models.audio import num_codes, receptive_field
from sslax.models.gru import ScannedGRU
from sslax.models.patchnet import patch_geometry
from sslax.models.readout import pool_codes
from sslax.sharding import over_global_batch


def patch_grid(images, patch: int, stride: int):
  """[B, H, W, C] -> [B, rows, cols, patch, patch, C], patches every ``stride``
  pixels from the top-left corner (what ``PatchConvNet`` encodes, cell by
  cell)."""
  _, h, w, _ = images.shape
  rows = [images[:, i:i + patch] for i in range(0, h - patch + 1, stride)]
  return jnp.stack([jnp.stack([r[:, :, j:j + patch] for j in range(0, w - patch + 1, stride)],
                              axis=1) for r in rows], axis=1)


def with_neighbour_columns(z):
  """[B, R, C, D] -> [B, R, C, 3D]: each cell's code with its left and right
  neighbours' (zeros beyond the border)."""
  padded = jnp.pad(z, ((0, 0), (0, 0), (1, 1), (0, 0)))
  return jnp.concatenate([padded[:, :, :-2], z, padded[:, :, 2:]], axis=-1)


class CPCModel(nn.Module):
  """Returns ``(representation, predictions [n, T, K, D], codes [n, T, D])``.
  The representation is ``encoder_def``'s network on the same variables."""
  encoder: nn.Module  # images -> [B, rows, cols, D] codes; audio -> [B, T, D]
  image: bool
  context_dim: int
  num_offsets: int
  pool_grid: int = 1

  @nn.compact
  def __call__(self, x, train: bool = True):
    if self.image:
      grid = self.encoder(x, train=train)                           # [B, R, C, D]
      features = pool_codes(grid, self.pool_grid)
      b, r, c, d = grid.shape
      steps = with_neighbour_columns(grid).transpose(0, 2, 1, 3).reshape(b * c, r, 3 * d)
      codes = grid.transpose(0, 2, 1, 3).reshape(b * c, r, d)        # columns
      context = ScannedGRU(self.context_dim, name="autoregressor")(steps)
    else:
      codes = self.encoder(x, train=train)                          # [B, T, D]
      context = ScannedGRU(self.context_dim, name="autoregressor")(codes)
      features = jnp.mean(context, axis=1)
    predictions = nn.DenseGeneral((self.num_offsets, codes.shape[-1]), use_bias=False,
                                  name="predictors")(context)       # W_k c_t
    return features, predictions, codes


def _offsets(config, steps: int) -> Sequence[int]:
  offsets = tuple(int(k) for k in config.cpc.offsets)
  if not offsets or min(offsets) < 1 or len(set(offsets)) != len(offsets):
    raise UserError(f"config.cpc.offsets must be distinct positive integers, got "
                    f"{tuple(config.cpc.offsets)}")
  if max(offsets) >= steps:
    raise UserError(f"config.cpc.offsets reach {max(offsets)} steps ahead but a "
                    f"sequence has only {steps} steps; use offsets below {steps}")
  return offsets


def _image_model(config):
  if config.model.encoder != "patch_convnet":
    raise UserError("image CPC encodes patches with config.model.encoder = "
                    f"'patch_convnet', not {config.model.encoder!r}")
  h, w = config.data.image_size
  patch, stride = patch_geometry(tuple(config.model.kernels), tuple(config.model.strides))
  if patch > min(h, w):
    raise UserError(f"the encoder's {patch}x{patch} patches do not fit {h}x{w} images")
  rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
  g = int(config.cpc.pool_grid)
  if g < 1 or rows % g or cols % g:
    raise UserError(f"config.cpc.pool_grid {g} must divide the {rows}x{cols} patch grid")
  return make_encoder(config.model, config.compute_dtype), rows


def _audio_model(config):
  kernels, strides = tuple(config.model.kernels), tuple(config.model.strides)
  field = receptive_field(kernels, strides)
  crop = int(config.data.crop_length)
  if crop < field:
    raise UserError(f"config.data.crop_length {crop} samples is shorter than the "
                    f"encoder's receptive field ({field} samples); use a longer crop")
  return make_encoder(config.model, config.compute_dtype), num_codes(crop, kernels, strides)


def build(config) -> Method:
  image = modality.of_config(config.data).NAME == "image"
  encoder, steps = _image_model(config) if image else _audio_model(config)
  offsets = _offsets(config, steps)
  model = CPCModel(encoder=encoder, image=image, context_dim=int(config.cpc.context_dim),
                   num_offsets=len(offsets),
                   pool_grid=int(config.cpc.pool_grid) if image else 1)
  pair_loss = functools.partial(losses.cpc_infonce, offsets=offsets)
  aug = common.view_params(config, 1) if image else None

  def training_input(key, x):
    if image:
      return common.augmented_view(key, x, config, aug)
    return modality.audio.standardize(
        modality.audio.random_windows(key, x, int(config.data.crop_length)))

  input_key = "image" if image else "audio"

  def init(key, examples):
    params, model_state = common.init_variables(
        model, key, training_input(key, examples[input_key]))
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key):
    x = training_input(key, batch[input_key])
    (features, predictions, codes), new_state = common.apply_train(
        model, params, model_state, x)
    loss = over_global_batch(pair_loss, predictions, codes)
    return loss, LossAux(new_state, method_state, {}, features)

  return Method(name="cpc", init=init, loss_fn=loss_fn,
                encoder=encoder_def(config, image))


def encoder_def(config, image: bool) -> EncoderDef:
  """The representation: the code grid pooled (images), or the GRU's
  context averaged over the clip (speech), with the training network's
  ``encoder`` (and ``autoregressor``) variables."""
  if image:
    preprocess, shape = image_preprocess(config)
    return EncoderDef(
        network=network_of(config, "pooled_code_grid", pool_grid=int(config.cpc.pool_grid)),
        selection=((("encoder",), ("encoder",)),), preprocess=preprocess,
        input_shape=shape)
  return EncoderDef(
      network=network_of(config, "mean_context", context_dim=int(config.cpc.context_dim)),
      selection=((("encoder",), ("encoder",)), (("autoregressor",), ("autoregressor",))),
      preprocess={"kind": "waveform"}, input_shape=(int(config.data.crop_length),))
