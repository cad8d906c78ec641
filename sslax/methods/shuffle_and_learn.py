"""Shuffle and Learn (Misra et al. 2016, "Shuffle and learn: unsupervised
learning using temporal order verification"): are three frames in temporal
order?

From each clip, ``candidates`` windows of ``window`` frames are drawn, and in
each five frames a < b < c < d < e (distinct, uniformly); the window whose
frames change most (mean absolute difference of consecutive picked frames,
in place of the paper's optical-flow magnitude) is kept, as the paper takes
its tuples from high-motion windows. With probability 1/2 the clip gives the
positive (b, c, d), otherwise a negative, (b, a, d) or (b, e, d) with equal
probability. One horizontal flip per clip. The three frames go through the
shared frame encoder (a dense ConvNet map each), their maps are fused in
order and a small classifier answers ordered or not (cross-entropy; its
accuracy is ``pretext_top1``, chance 1/2).
"""

import jax
import jax.numpy as jnp

from sslax.errors import UserError
from sslax.methods import video_common
from sslax.methods.base import Method

TUPLE = 5  # a, b, c, d, e


def five_frames(key, length: int, window: int, batch: int):
  """int32 [batch, 5]: sorted distinct frame indices a < b < c < d < e inside
  one window of ``window`` consecutive frames of a clip of ``length``."""
  k_start, k_pick = jax.random.split(key)
  start = jax.random.randint(k_start, (batch, 1), 0, length - window + 1)
  order = jnp.argsort(jax.random.uniform(k_pick, (batch, window)), axis=1)
  return (start + jnp.sort(order[:, :TUPLE], axis=1)).astype(jnp.int32)


def motion(clips, index):
  """float [B]: the mean absolute change between consecutive picked frames
  (``index`` [B, 5]) of uint8 ``clips`` [B, T, H, W, C]."""
  frames = video_common.gather(clips, index).astype(jnp.float32)
  return jnp.mean(jnp.abs(frames[:, 1:] - frames[:, :-1]), axis=(1, 2, 3, 4))


def triplets(key, clips, window: int, candidates: int):
  """The tuples of a batch of uint8 ``clips`` [B, T, H, W, C]: (frame
  indices int32 [B, 3], labels int32 [B], 1 = in order) -- (b, c, d), or
  (b, a, d) / (b, e, d) -- from the highest-motion of ``candidates`` draws."""
  b, t = clips.shape[:2]
  k_draw, k_label, k_side = jax.random.split(key, 3)
  draws = jax.vmap(lambda k: five_frames(k, t, window, b))(jax.random.split(k_draw,
                                                                            candidates))
  moves = jax.vmap(lambda idx: motion(clips, idx))(draws)  # [candidates, B]
  pick = jnp.take_along_axis(draws, jnp.argmax(moves, axis=0)[None, :, None], 0)[0]
  a, bb, c, d, e = (pick[:, i] for i in range(TUPLE))
  ordered = jax.random.bernoulli(k_label, 0.5, (b,))
  outside = jnp.where(jax.random.bernoulli(k_side, 0.5, (b,)), a, e)
  middle = jnp.where(ordered, c, outside)
  return jnp.stack([bb, middle, d], axis=1), ordered.astype(jnp.int32)


def build(config) -> Method:
  sl = config.shuffle_and_learn
  window, candidates = int(sl.window), int(sl.candidates)
  if window < TUPLE or candidates < 1:
    raise UserError("config.shuffle_and_learn needs window >= 5 (five distinct frames) and "
                    f"candidates >= 1; got window {window}, candidates {candidates}")
  return video_common.clip_classification(
      config, lambda key, clips: triplets(key, clips, window, candidates), 3, window,
      lambda length: f"set --config.shuffle_and_learn.window={length} or less")
