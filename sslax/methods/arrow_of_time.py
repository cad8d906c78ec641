"""Arrow of time (Wei et al. 2018, "Learning and using the arrow of time"):
is this clip playing forwards or backwards?

Each training clip gives ``frames`` frames ``stride`` apart from a random
start; with probability 1/2 they are shown in reverse. One horizontal flip
per clip. Every frame goes through the shared frame encoder (a dense ConvNet
map; the paper's network sees optical flow, here the frames themselves), the
maps are fused in frame order and a small classifier answers forwards or
backwards (cross-entropy; accuracy ``pretext_top1``, chance 1/2).
"""

import jax
import jax.numpy as jnp

from sslax.errors import UserError
from sslax.methods import video_common
from sslax.methods.base import Method


def span(frames: int, stride: int) -> int:
  """The frames of a clip one example covers."""
  return (frames - 1) * stride + 1


def directed_frames(key, length: int, frames: int, stride: int, batch: int):
  """(frame indices int32 [batch, frames], labels int32 [batch], 1 = forwards):
  ``frames`` indices ``stride`` apart from a random start in a clip of
  ``length``, reversed where the label is 0."""
  k_start, k_dir = jax.random.split(key)
  start = jax.random.randint(k_start, (batch, 1), 0, length - span(frames, stride) + 1)
  forward = start + stride * jnp.arange(frames)[None]
  labels = jax.random.bernoulli(k_dir, 0.5, (batch,))
  index = jnp.where(labels[:, None], forward, forward[:, ::-1])
  return index.astype(jnp.int32), labels.astype(jnp.int32)


def build(config) -> Method:
  at = config.arrow_of_time
  frames, stride = int(at.frames), int(at.stride)
  if frames < 2 or stride < 1:
    raise UserError("config.arrow_of_time needs frames >= 2 and stride >= 1; got "
                    f"frames {frames}, stride {stride}")

  def pick(key, clips):
    return directed_frames(key, clips.shape[1], frames, stride, clips.shape[0])

  return video_common.clip_classification(
      config, pick, frames, span(frames, stride),
      lambda length: "lower --config.arrow_of_time.frames or .stride so that "
      f"(frames - 1) * stride + 1 <= {length}")
