"""What the clip-classification pretext tasks share (Shuffle and Learn,
arrow of time): frames picked from each clip, one flip and crop per clip,
and a network that sees a few frames through the shared frame encoder and
classifies them together."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from sslax.data.augment import augment_clips
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import classification, normalize
from sslax.models import compute_dtype, make_encoder


class FrameSequenceClassifier(nn.Module):
  """Frames [B, F, H, W, C] -> logits [B, classes].

  Each frame goes through ``encoder`` (a dense encoder, maps [h, w, d]); the F
  maps are stacked along channels in frame order ([h, w, F d], late fusion as
  in the arrow-of-time network of Wei et al. 2018), then a 3x3 convolution,
  global average pooling and a two-layer classifier."""
  encoder: nn.Module
  width: int
  classes: int = 2
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, frames, train: bool = True):
    b, f = frames.shape[:2]
    maps = self.encoder(frames.reshape((b * f,) + frames.shape[2:]), train=train)
    h, w, d = maps.shape[1:]
    x = maps.reshape(b, f, h, w, d).transpose(0, 2, 3, 1, 4).reshape(b, h, w, f * d)
    x = nn.relu(nn.Conv(self.width, (3, 3), dtype=self.dtype, name="fuse")(x))
    x = jnp.mean(x, axis=(1, 2))
    x = nn.relu(nn.Dense(self.width, dtype=self.dtype, name="hidden")(x))
    return nn.Dense(self.classes, dtype=self.dtype, name="logits")(x)


def check_clips(name: str, examples, need: int, fix):
  """One line unless ``examples`` hold clips [B, T, H, W, C] of at least
  ``need`` frames; ``fix(frames)`` says which setting lowers the need."""
  clip = examples.get("clip")
  if clip is None or clip.ndim != 5:
    raise UserError(f"{name} trains on clips [T, H, W, C]; set "
                    "--config.data.name=video_corpus (build it with `make video`)")
  if clip.shape[1] < need:
    raise UserError(f"the clips have {clip.shape[1]} frames but {name} needs {need}; {fix(clip.shape[1])}")


def gather(clips, index):
  """``clips`` [B, T, ...], ``index`` int [B, F] -> [B, F, ...]."""
  expand = index.reshape(index.shape + (1,) * (clips.ndim - 2))
  return jnp.take_along_axis(clips, expand, axis=1)


def clip_augmentation(config) -> dict:
  """The keyword arguments of ``augment.augment_clips`` from
  ``config.clip_augment`` (none: one flip per clip); one line for a crop
  scale outside (0, 1] or a negative jitter."""
  settings = dict(config.get("clip_augment") or {})
  scale = tuple(settings.get("crop_scale", (1.0, 1.0)))
  jitter = float(settings.get("jitter", 0.0))
  if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
    raise UserError(f"config.clip_augment.crop_scale must be (low, high) with 0 < low <= "
                    f"high <= 1, got {scale}")
  if jitter < 0:
    raise UserError(f"config.clip_augment.jitter must be >= 0 (0: none), got {jitter}")
  return dict(crop_scale=scale, jitter=jitter)


def frames_input(frames, config):
  """uint8 frames [B, F, H, W, C] -> normalised float32 (the encoder's
  ``normalize`` preprocessing)."""
  return normalize(frames.astype(jnp.float32) / 255.0, config)



def clip_classification(config, pick, shown: int, need: int, fix) -> Method:
  """The Method of a clip-classification pretext task named ``config.method``:
  ``pick(key, clips) -> (frame indices int32 [B, shown], labels int32 [B])``
  chooses each clip's frames and its class (0 or 1); the frames get one flip
  (and, with ``config.clip_augment``, one crop) per clip and their colours
  jittered per frame (``augment.augment_clips``), and go through ``FrameSequenceClassifier`` (its width
  ``config.<method>.head_width``), trained by cross-entropy. Clips need at
  least ``need`` frames (``fix(frames)``: the setting that lowers it)."""
  name = config.method
  if config.model.get("pool") != "map":
    raise UserError(f"{name} fuses the frames' feature maps; set --config.model.pool=map")
  width = int(config[name].head_width)
  if width < 1:
    raise UserError(f"config.{name}.head_width must be positive, got {width}")
  augmentation = clip_augmentation(config)
  net = FrameSequenceClassifier(encoder=make_encoder(config.model, config.compute_dtype),
                                width=width, dtype=compute_dtype(config.compute_dtype))

  def init(key, examples):
    check_clips(name, examples, need, fix)
    frames = frames_input(jnp.asarray(examples["clip"][:, :shown]), config)
    params, model_state = common.init_variables(net, key, frames)
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key):
    clips = batch["clip"]
    k_pick, k_flip = jax.random.split(key)
    index, labels = pick(k_pick, clips)
    frames = augment_clips(k_flip, gather(clips, index).astype(jnp.float32) / 255.0,
                           **augmentation)
    logits, new_state = common.apply_train(net, params, model_state,
                                           normalize(frames, config))
    loss, metrics = classification(logits, labels)
    return loss, LossAux(new_state, method_state, metrics)

  encoder = dataclasses.replace(backbone_def(config), output="dense")
  return Method(name=name, init=init, loss_fn=loss_fn, encoder=encoder, reads=("clip",))
