"""Arrow of time (Wei et al. 2018): is a clip playing forwards or backwards?
Variants: corpus (default), smoke. Build the video corpus first (``make
video``), then ``sslax train --config configs/arrow_of_time.py --workdir
runs/arrow_of_time``; ``sslax eval pretext`` gives the held-out direction
accuracy (chance 50%) and ``sslax eval track`` the tracking figures of its
frame encoder.

The network and budget are those of configs/video_colorization.py (a dense
ConvNet on single RGB frames); 4 frames 2 apart (a span of 7 frames), their
maps fused in order by a 64-wide classifier.
"""

import os

import ml_collections

from sslax.config_loading import load_module

_video = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "video_colorization.py"))
VARIANTS = _video.VARIANTS


def get_config(arg: str = "corpus"):
  c, variant = _video.video_config("arrow_of_time", arg, "configs/arrow_of_time.py")
  c.arrow_of_time = ml_collections.ConfigDict(dict(frames=4, stride=2, head_width=64))
  if variant == "smoke":
    c.arrow_of_time.update(frames=3, head_width=16)
  return c
