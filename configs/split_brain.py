"""Split-brain autoencoders (Zhang et al. 2017). Variants: photos (default),
cifar10, imagenet, smoke. Build the photo corpus first (``sslax data
make-photos --out data/wallpaper_photos``), then
``sslax train --config configs/split_brain.py --workdir runs/split_brain``.

Two sub-networks with the colourisation run's encoder and decoder: L -> ab
(the in-gamut ab bins of grid 10) and ab -> L (50 bins of [0, 100]), trained with
the sum of their cross-entropies (no class rebalancing unless
``split_brain.rebalance``). Each half is as wide as colourisation's encoder
(the paper halves them so that the concatenation matches one network), so
the L -> ab half, which the linear probes and the transfer to grayscale
Fashion-MNIST evaluate, compares directly with colourisation; the concatenated
representation is the run's second encoder, ``full``. Online
evaluation is off on the photo corpus (labels are the source photos).
"""

import os

import ml_collections

from sslax.config_loading import load_module

_col = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "colorization.py"))
VARIANTS = _col.VARIANTS


def get_config(arg: str = "photos"):
  c, variant = _col.colour_config("split_brain", arg, "configs/split_brain.py")
  c.split_brain = ml_collections.ConfigDict(dict(
      grid_size=10.0, l_bins=50,
      rebalance=False, rebalance_lambda=0.5, rebalance_sigma=5.0, rebalance_images=2000,
      decoder_widths=(64,), temperature=0.38))
  if variant == "cifar10":
    c.split_brain.decoder_widths = (128,)
  elif variant == "imagenet":
    c.split_brain.decoder_widths = (256, 128, 64)
  elif variant == "smoke":
    c.split_brain.update(decoder_widths=(8,), rebalance_images=256)
  return c
