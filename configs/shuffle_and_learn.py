"""Shuffle and Learn (Misra et al. 2016): temporal order verification of
frame triplets. Variants: corpus (default), smoke. Build the video corpus
first (``make video``), then ``sslax train --config
configs/shuffle_and_learn.py --workdir runs/shuffle_and_learn``; ``sslax
eval pretext`` gives the held-out order accuracy (chance 50%) and ``sslax
eval track`` the tracking figures of its frame encoder.

The network and budget are those of configs/video_colorization.py (a dense
ConvNet on single RGB frames); five frames a < b < c < d < e within a window
of 8 frames, the highest-motion of 4 draws per clip; the three frames' maps
fused by a 64-wide classifier.
"""

import os

import ml_collections

from sslax.config_loading import load_module

_video = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "video_colorization.py"))
VARIANTS = _video.VARIANTS


def get_config(arg: str = "corpus"):
  c, variant = _video.video_config("shuffle_and_learn", arg, "configs/shuffle_and_learn.py")
  c.shuffle_and_learn = ml_collections.ConfigDict(dict(window=8, candidates=4,
                                                       head_width=64))
  if variant == "smoke":
    c.shuffle_and_learn.update(window=6, candidates=2, head_width=16)
  return c
