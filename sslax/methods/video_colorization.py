"""Video colourisation (Vondrick et al. 2018, "Tracking emerges by
colorizing videos"): colour a grayscale target frame by pointing into
coloured reference frames.

Each training clip gives ``references`` consecutive reference frames and the
target frame after them (a random place per clip; one horizontal flip, and
with ``config.clip_augment.crop_scale`` one crop, per clip). Every frame is
seen only as its lightness (``lab_l``) by one shared encoder, a dense ConvNet
(``config.model.pool = 'map'``) giving features f [h, w, d]. The colours are
quantised into ``clusters`` centres, k-means in ab space (computed once
before step 0 from a fixed sample of training pixels, kept in the train
state); each frame's ab is averaged over each feature cell and assigned its
nearest centre c. Target position i attends to every reference position j,
``A_ij = softmax_j(f_i . f_j / temperature)``, predicts the colour
distribution ``sum_j A_ij onehot(c_j)`` and is trained by cross-entropy
against its own centre c_i.

The encoder is the run's ``dense`` encoder; ``sslax eval track`` propagates
masks and keypoints with it. ``sslax viz`` draws test clips' targets coloured
by the attention over their references' colours (``colourise``).
"""

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sslax.data.augment import augment_clips
from sslax.data.color import lab, rgb_to_lab, scale_l, to_rgb
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.color_common import block_mean
from sslax.methods.video_common import clip_augmentation
from sslax.models import make_encoder

KMEANS_PIXELS = 100_000
KMEANS_ITERATIONS = 30
PICTURE_CLIPS = 8  # the test clips ``sslax viz`` colours


class _FrameEncoder(nn.Module):
  """The run's network: the dense encoder of single frames, held as
  ``encoder`` (where ``Method.encoder`` selects it)."""
  encoder: nn.Module

  def __call__(self, x, train: bool = True):
    return self.encoder(x, train=train)


class Centres(NamedTuple):
  ab: jax.Array  # [clusters, 2]: the k-means colour centres


def kmeans(points: np.ndarray, k: int, seed: int, iterations: int = KMEANS_ITERATIONS):
  """k-means of ``points`` [n, 2]: k-means++ seeding (Arthur & Vassilvitskii
  2007, fixed by ``seed``), then Lloyd's iterations; float32 [k, 2], sorted
  by the first coordinate then the second."""
  rng = np.random.default_rng(seed)
  points = np.asarray(points, np.float64)
  if len(np.unique(points, axis=0)) < k:
    raise UserError(f"the training clips have fewer distinct colours than "
                    f"config.video_colorization.clusters = {k}; use fewer clusters")
  centres = [points[rng.integers(len(points))]]
  d2 = ((points - centres[0]) ** 2).sum(-1)
  for _ in range(1, k):
    centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    d2 = np.minimum(d2, ((points - centres[-1]) ** 2).sum(-1))
  centres = np.stack(centres)
  for _ in range(iterations):
    nearest = np.argmin(((points[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    for c in range(k):
      members = points[nearest == c]
      if len(members):
        centres[c] = members.mean(axis=0)
  order = np.lexsort((centres[:, 1], centres[:, 0]))
  return centres[order].astype(np.float32)


def nearest_centre(ab, centres):
  """[..., 2] -> int32 [...]: the index of the nearest centre."""
  d = jnp.sum(jnp.square(ab[..., None, :] - centres), axis=-1)
  return jnp.argmin(d, axis=-1).astype(jnp.int32)


def attention_weights(target_f, ref_f, temperature: float):
  """Vondrick et al. 2018, eq. 1: ``A_ij = softmax_j(f_i . f_j / temperature)``
  of ``target_f`` [B, N, d] over ``ref_f`` [B, M, d] -> [B, N, M]."""
  logits = jnp.einsum("bnd,bmd->bnm", target_f, ref_f) / temperature
  return jax.nn.softmax(logits, axis=-1)


def attention_colour_loss(target_f, ref_f, ref_colour, target_colour, num_colours,
                          temperature: float):
  """Vondrick et al. 2018, eq. 1-2. ``target_f`` [B, N, d], ``ref_f`` [B, M, d],
  ``ref_colour`` int [B, M], ``target_colour`` int [B, N] -> (mean cross-
  entropy, accuracy of the most likely colour)."""
  attention = attention_weights(target_f, ref_f, temperature)
  predicted = jnp.einsum("bnm,bmc->bnc", attention,
                         jax.nn.one_hot(ref_colour, num_colours, dtype=attention.dtype))
  p_true = jnp.take_along_axis(predicted, target_colour[..., None], axis=-1)[..., 0]
  loss = -jnp.mean(jnp.log(jnp.maximum(p_true, 1e-8)))
  accuracy = jnp.mean(jnp.argmax(predicted, -1) == target_colour)
  return loss, accuracy


def _frames_and_targets(key, clips, references: int, crop_scale=(1.0, 1.0)):
  """Per clip: the ``references`` frames before a random target frame, and
  that target; one horizontal flip (and one crop of ``crop_scale``, where it
  is not (1, 1)) per clip. uint8 [B, T, H, W, 3] -> (references
  [B, R, H, W, 3], target [B, H, W, 3]) floats in [0, 1]."""
  b, t = clips.shape[:2]
  k_start, k_flip = jax.random.split(key)
  start = jax.random.randint(k_start, (b,), 0, t - references)
  index = start[:, None] + jnp.arange(references + 1)
  frames = jnp.take_along_axis(clips, index[:, :, None, None, None], axis=1)
  frames = augment_clips(k_flip, frames.astype(jnp.float32) / 255.0, crop_scale=crop_scale)
  return frames[:, :references], frames[:, references]


def colourise(net, variables, clips, references: int, temperature: float):
  """Each clip's frame ``references`` coloured from the ``references`` frames
  before it (eval mode): target cell i takes ``sum_j A_ij ab_j``
  (``attention_weights``) of the references' cells' mean ab, their own
  colours (training predicts their k-means centres), upsampled under its
  own L. uint8 ``clips`` [n, T, H, W, 3] -> sRGB [n, H, W, 3] in [0, 1]:
  (the last reference, the target's L, the prediction, the target)."""
  n = clips.shape[0]
  frames = jnp.asarray(clips[:, :references + 1], jnp.float32) / 255.0
  x = lab(frames.reshape(-1, *frames.shape[2:]))
  f = net.apply(variables, scale_l(x[..., :1]), train=False).astype(jnp.float32)
  h, w, d = f.shape[1:]
  f = f.reshape(n, references + 1, h * w, d)
  ab = block_mean(x[..., 1:], (h, w)).reshape(n, references + 1, h * w, 2)
  a = attention_weights(f[:, -1], f[:, :-1].reshape(n, -1, d), temperature)
  predicted = jnp.einsum("bnm,bmc->bnc", a, ab[:, :-1].reshape(n, -1, 2))
  lightness = x.reshape(n, references + 1, *x.shape[1:])[:, -1, ..., :1]
  predicted = predicted.reshape(n, h, w, 2)
  return (frames[:, -2], to_rgb(lightness, jnp.zeros_like(predicted)),
          to_rgb(lightness, predicted), frames[:, -1])


def build(config) -> Method:
  vc = config.video_colorization
  references, clusters = int(vc.references), int(vc.clusters)
  temperature = float(vc.temperature)
  if references < 1 or clusters < 2 or temperature <= 0:
    raise UserError("config.video_colorization needs references >= 1, clusters >= 2 and "
                    f"a positive temperature; got {references}, {clusters}, {temperature}")
  if config.model.get("pool") != "map":
    raise UserError("video_colorization attends over a feature map; set "
                    "--config.model.pool=map")
  augmentation = clip_augmentation(config)
  if augmentation["jitter"]:
    raise UserError("video_colorization copies colours from the reference frames to the "
                    "target: colours jittered per frame leave nothing to copy; set "
                    "--config.clip_augment.jitter=0")
  net = _FrameEncoder(encoder=make_encoder(config.model, config.compute_dtype))

  def constants(source):
    spec = source.element_spec.get("clip")
    if spec is None or len(spec[0]) != 4:
      raise UserError("video_colorization trains on clips [T, H, W, 3]; set "
                      "--config.data.name=video_corpus (build it with `make video`)")
    if spec[0][0] < references + 1:
      raise UserError(f"the clips have {spec[0][0]} frames but video_colorization needs "
                      f"{references} reference frames and a target; set "
                      f"--config.video_colorization.references={spec[0][0] - 1} or less")
    rng = np.random.default_rng([config.seed, 7])
    picks = rng.choice(len(source), min(len(source), 64), replace=False)
    clips = source.get(np.sort(picks))["clip"]
    pixels = clips.reshape(-1, 3)
    pixels = pixels[rng.choice(len(pixels), min(len(pixels), KMEANS_PIXELS), replace=False)]
    ab = rgb_to_lab(pixels.astype(np.float32) / 255.0, xp=np)[:, 1:]
    return kmeans(ab, clusters, config.seed)

  def init(key, examples, centres):
    frame = jnp.asarray(examples["clip"][:, 0], jnp.float32) / 255.0
    params, model_state = common.init_variables(net, key, scale_l(lab(frame)[..., :1]))
    return params, model_state, Centres(ab=jnp.asarray(centres))

  def loss_fn(params, model_state, method_state, batch, key):
    clips = batch["clip"]
    refs, target = _frames_and_targets(key, clips, references,
                                       augmentation["crop_scale"])
    b = clips.shape[0]
    frames = jnp.concatenate([refs.reshape(-1, *refs.shape[2:]), target], axis=0)
    x = lab(frames)
    f, new_state = common.apply_train(net, params, model_state, scale_l(x[..., :1]))
    h, w, d = f.shape[1:]
    colours = nearest_centre(block_mean(x[..., 1:], (h, w)), method_state.ab)
    ref_f = f[:b * references].reshape(b, references * h * w, d)
    ref_c = colours[:b * references].reshape(b, references * h * w)
    tgt_f = f[b * references:].reshape(b, h * w, d)
    tgt_c = colours[b * references:].reshape(b, h * w)
    loss, accuracy = attention_colour_loss(tgt_f, ref_f, ref_c, tgt_c, clusters, temperature)
    return loss, LossAux(new_state, method_state, {"colour_top1": accuracy})

  colour_clips = jax.jit(lambda variables, clips: colourise(net, variables, clips,
                                                            references, temperature))

  def pictures(params, model_state, clips, key):
    del key
    shown = colour_clips({"params": params, **model_state}, clips[:PICTURE_CLIPS])
    names = ("reference", "L input", "predicted", "truth")
    return {"colorization": (tuple(zip(names, shown)), (
        f"frame {references} of test clips coloured from frames 0-{references - 1} by "
        "the attention over their colours (the last reference shown)"))}

  encoder = dataclasses.replace(backbone_def(config, preprocess="lab_l"), output="dense")
  return Method(name="video_colorization", init=init, loss_fn=loss_fn, encoder=encoder,
                constants=constants, reads=("clip",), pictures=pictures)
