"""Context encoder (Pathak et al. 2016). Variants: fashion_mnist (default),
cifar10, imagenet, smoke. Example:
``sslax train --config configs/context_encoder.py --config.context_encoder.mask=central``.

Random-block masks, 4 squares of a quarter of the side (at most a quarter of
the image), or the central block (``side_fraction`` of each side). Pathak et
al. compare central, random-block and random-region masks; masks at random
places avoid the fixed boundary that the central block lets the encoder
latch onto (arbitrary random-region shapes are not implemented here).
Masked L2 loss, plus the adversarial loss with weight
``context_encoder.adversarial_weight`` (the paper's 0.001; 0 turns it off and creates
no discriminator). The discriminator has its own Adam optimizer, 10x slower
than the encoder's (as in the paper), held in the method's state.
"""

import os

import ml_collections

from sslax.config_base import apply_variant, base_config
from sslax.config_loading import load_module

_dae = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "denoising_ae.py"))


def get_config(arg: str = "fashion_mnist"):
  c = base_config("context_encoder")
  variant = apply_variant(c, arg, "configs/context_encoder.py")
  _dae.reconstruction_defaults(c, variant)
  c.context_encoder.update(
      mask="random_blocks", side_fraction=0.5, num_blocks=4, block_size=7,
      outside_weight=0.0, adversarial_weight=0.001,
      discriminator=ml_collections.ConfigDict(dict(
          widths=(32, 64), learning_rate=1e-4, b1=0.5)))
  if variant == "cifar10":
    c.context_encoder.block_size = 8               # 4 x 8x8 of 32x32
    c.context_encoder.discriminator.widths = (64, 128, 256)
  elif variant == "imagenet":
    c.context_encoder.block_size = 56              # 4 x 56x56 of 224x224
    c.context_encoder.discriminator.widths = (64, 128, 256, 512, 512)
    c.context_encoder.discriminator.learning_rate = 2e-4
  elif variant == "smoke":
    c.context_encoder.discriminator.widths = (8, 16)
  return c
