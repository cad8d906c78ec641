"""Jigsaw puzzles (Noroozi & Favaro 2016). Variants: fashion_mnist (default),
cifar10, imagenet, smoke. Example: ``sslax train --config configs/jigsaw.py``.

Tiles (``jigsaw``): the image's central square in 3x3 cells of
``side // 3`` pixels, each tile a ``tile``-pixel crop at a random place in its
cell; ``num_permutations`` P permutations from
``jigsaw.hamming_permutations(P, 9, permutation_seed)`` (saved with the run in
the method state as well).

* fashion_mnist (28x28): cells of 9, tiles of 7, P = 30.
* cifar10 (32x32): cells of 10, tiles of 8, P = 100, tiles normalised each.
* imagenet (224x224 crops): cells of 74, tiles of 64, P = 1000, as in the
  paper (225 crops, 75-pixel cells, 64-pixel tiles), tiles normalised each.
* smoke: P = 10.

The nine tiles go through the shared encoder (ConvNet with average pooling on
tiles; the variant's pooling on whole images for evaluation), the nine
features are concatenated and an MLP head (Linear-BN-ReLU-Linear; the paper's
fc7 has 4096 units) gives the P logits; the paper's per-tile fc6 is left out.
Light augmentation of the whole image first; SGD as in
``configs/rotation.py``.
"""

import os

import ml_collections

from sslax.config_loading import load_module

_rotation = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "rotation.py"))


def get_config(arg: str = "fashion_mnist"):
  c, variant = _rotation.pretext_config("jigsaw", arg, "configs/jigsaw.py")
  c.jigsaw = ml_collections.ConfigDict(dict(
      num_permutations=30, permutation_seed=0, tile=7, normalize_tiles=False))
  if variant == "cifar10":
    c.jigsaw.update(num_permutations=100, tile=8, normalize_tiles=True)
    c.head.hidden_dim = 1024
  elif variant == "imagenet":
    c.jigsaw.update(num_permutations=1000, tile=64, normalize_tiles=True)
    c.head.hidden_dim = 4096
  elif variant == "smoke":
    c.jigsaw.num_permutations = 10
  return c
