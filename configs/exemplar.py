"""Exemplar networks (Dosovitskiy et al. 2014), parametric or with a memory
bank (Wu et al. 2018). Variants: fashion_mnist (default), cifar10, imagenet,
smoke. Example: ``sslax train --config configs/exemplar.py``, or
``--config.exemplar.variant=memory_bank --config.exemplar.num_seeds=60000``
for instance discrimination over the whole Fashion-MNIST training set.

``exemplar``: ``num_seeds`` N training images (chosen by ``config.seed``) are
the surrogate classes, kept in the method state (N*H*W*C bytes on every device
and in each checkpoint). Each step draws ``global_batch_size`` distinct seeds
and transforms them with ``config.augment`` (SimCLR's crops, flips and colour
jitter; crop scale [0.2, 1] on Fashion-MNIST).

* ``variant='parametric'``: a linear head with N outputs, N-way softmax.
* ``variant='memory_bank'``: a linear head to ``embedding_dim`` (128),
  L2-normalised; softmax over similarities to the N bank entries at
  ``temperature`` 0.07, entries updated with ``bank_momentum`` 0.5 (as Wu et
  al.'s code).

* fashion_mnist: parametric, N = 2000 (1000 steps x 256 images give each seed
  about 128 transformed views, in the range where Dosovitskiy et al. found
  more views per seed stop helping).
* cifar10: parametric, N = 8000.
* imagenet: memory_bank, N = 4096 (0.8 GB of 256x256 seeds per device).
* smoke: parametric, N = 64.

SGD with Nesterov momentum 0.9, lr 0.1 per 256 images, weight decay 5e-4.
"""

import os

import ml_collections

from sslax.config_loading import load_module

_rotation = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "rotation.py"))


def get_config(arg: str = "fashion_mnist"):
  c, variant = _rotation.pretext_config("exemplar", arg, "configs/exemplar.py")
  c.head.kind = "linear"
  c.exemplar = ml_collections.ConfigDict(dict(
      variant="parametric", num_seeds=2000, embedding_dim=128, temperature=0.07,
      bank_momentum=0.5))
  # Heavy augmentation: SimCLR's crops, flips and colour jitter.
  c.augment.update(crop_scale=(0.2, 1.0), jitter_prob=0.8, jitter_strength=0.5,
                   grayscale_prob=0.2)
  if variant == "cifar10":
    c.exemplar.num_seeds = 8000
    c.augment.crop_scale = (0.08, 1.0)
  elif variant == "imagenet":
    c.exemplar.update(variant="memory_bank", num_seeds=4096)
    c.augment.update(crop_scale=(0.08, 1.0), jitter_strength=1.0, blur_prob=0.5)
  elif variant == "smoke":
    c.exemplar.num_seeds = 64
  return c
