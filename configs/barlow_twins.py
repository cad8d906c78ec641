"""Barlow Twins (Zbontar et al. 2021). Variants: fashion_mnist (default),
cifar10, imagenet, smoke. Example: ``sslax train --config configs/barlow_twins.py``."""

import ml_collections

from sslax.config_base import apply_variant, base_config, byol_augmentation


def get_config(arg: str = "fashion_mnist"):
  c = base_config("barlow_twins")
  variant = apply_variant(c, arg, "configs/barlow_twins.py")
  c.barlow_twins = ml_collections.ConfigDict(dict(lambd=5e-3))
  # Projector: three linear layers of 8192, BN + ReLU after the first two.
  c.head.update(kind="mlp", hidden_dim=8192, output_dim=8192, num_layers=3,
                hidden_bn=True, output_bn=False)
  # Views as in BYOL: blur p = 1.0 / 0.1, solarize p = 0.0 / 0.2.
  byol_augmentation(c)
  # LARS, lr 0.2 per 256 images, weight decay 1.5e-6.
  c.optimizer.update(name="lars", learning_rate=0.2, weight_decay=1.5e-6)
  if variant == "fashion_mnist":
    c.head.update(hidden_dim=1024, output_dim=1024)
    c.augment.blur_sigma = (0.1, 1.0)  # 28x28 images
    c.optimizer.learning_rate = 0.5
  elif variant == "cifar10":
    c.head.update(hidden_dim=2048, output_dim=2048)
    c.optimizer.learning_rate = 0.5
  elif variant == "smoke":
    c.head.update(hidden_dim=32, output_dim=32)
  return c
