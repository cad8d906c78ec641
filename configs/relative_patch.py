"""Relative patch location (Doersch et al. 2015). Variants: fashion_mnist
(default), cifar10, imagenet, smoke. Example:
``sslax train --config configs/relative_patch.py``.

Patch geometry (``relative_patch``): a 3x3 grid of ``patch``-sized cells
``gap`` pixels apart, each patch jittered by up to ``jitter`` pixels, must fit
in the image: 3 patch + 2 gap + 2 jitter <= side.

* fashion_mnist (28x28): patch 7, gap 2, jitter 1 (27 <= 28). Neighbours are
  always at least 0 and at most 4 pixels apart, so they never overlap; patch 8
  fits only with gap 1 and jitter 1 (28), where jittered neighbours can share
  a row of pixels, a trivial cue.
* cifar10 (32x32): patch 8, gap 2, jitter 1 (30 <= 32).
* imagenet (224x224 crops): patch 56, gap 16, jitter 7 (214 <= 224); the
  paper's 96-pixel patches with a 48-pixel gap do not fit a 224 crop.
  Colour dropping (``color_drop``) on colour datasets, as in the paper.

The two patches go through the shared encoder (ConvNet with average pooling
on patches; the variant's pooling on whole images for evaluation), their
features are concatenated, and an MLP head (Linear-BN-ReLU-Linear) gives the
8 logits. Light augmentation of the whole image first (crop scale [0.6, 1],
flip); SGD as in ``configs/rotation.py``.
"""

import os

import ml_collections

from sslax.config_loading import load_module

_rotation = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "rotation.py"))


def get_config(arg: str = "fashion_mnist"):
  c, variant = _rotation.pretext_config("relative_patch", arg,
                                        "configs/relative_patch.py")
  c.relative_patch = ml_collections.ConfigDict(dict(
      patch=7, gap=2, jitter=1, color_drop=False))
  if variant == "cifar10":
    c.relative_patch.update(patch=8, gap=2, jitter=1, color_drop=True)
    c.head.hidden_dim = 1024
  elif variant == "imagenet":
    c.relative_patch.update(patch=56, gap=16, jitter=7, color_drop=True)
    c.head.hidden_dim = 4096
  return c
