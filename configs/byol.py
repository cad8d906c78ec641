"""BYOL (Grill et al. 2020). Variants: fashion_mnist (default), cifar10,
imagenet, smoke. Example: ``sslax train --config configs/byol.py``."""

import ml_collections

from sslax.config_base import apply_variant, base_config, byol_augmentation


def get_config(arg: str = "fashion_mnist"):
  c = base_config("byol")
  variant = apply_variant(c, arg, "configs/byol.py")
  # Target decay rate: tau_base rising to 1 on a cosine schedule.
  c.byol = ml_collections.ConfigDict(dict(tau_base=0.996))
  # Projector and predictor: Linear-BN-ReLU-Linear (4096 -> 256 in the paper).
  c.head.update(kind="mlp", hidden_dim=4096, output_dim=256, num_layers=2,
                hidden_bn=True, output_bn=False)
  c.predictor = ml_collections.ConfigDict(dict(
      kind="mlp", hidden_dim=4096, output_dim=256, num_layers=2, hidden_bn=True,
      output_bn=False))
  # Asymmetric views: blur always on view 1 and with p = 0.1 on view 2;
  # solarize only on view 2 (p = 0.2). Jitter (0.4, 0.4, 0.2, 0.1), p = 0.8.
  byol_augmentation(c)
  # LARS, lr 0.2 per 256 images, weight decay 1.5e-6 (not on biases and BN).
  c.optimizer.update(name="lars", learning_rate=0.2, weight_decay=1.5e-6)
  if variant == "fashion_mnist":
    c.byol.tau_base = 0.99  # 1000 steps
    c.head.update(hidden_dim=512, output_dim=128)
    c.predictor.update(hidden_dim=512, output_dim=128)
    c.augment.blur_sigma = (0.1, 1.0)  # 28x28 images
    c.optimizer.learning_rate = 1.0
  elif variant == "cifar10":
    c.byol.tau_base = 0.99
    c.head.update(hidden_dim=2048, output_dim=256)
    c.predictor.update(hidden_dim=2048, output_dim=256)
    c.optimizer.learning_rate = 1.0
  elif variant == "smoke":
    c.head.update(hidden_dim=32, output_dim=16)
    c.predictor.update(hidden_dim=32, output_dim=16)
  return c
