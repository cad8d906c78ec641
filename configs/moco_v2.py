"""MoCo v2 (Chen et al. 2020, "Improved baselines with momentum contrastive
learning"): MoCo v1 plus an MLP head, gaussian blur, SimCLR's colour jitter,
temperature 0.2 and the cosine schedule. Variants: fashion_mnist (default),
cifar10, imagenet, smoke."""

import os

from sslax.config_loading import load_module

_v1 = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)), "moco_v1.py"))


def get_config(arg: str = "fashion_mnist"):
  c = _v1.moco_config("moco_v2", arg, "configs/moco_v2.py")
  c.moco.temperature = 0.2
  c.head.update(kind="mlp", hidden_dim=2048, output_dim=128, num_layers=2,
                hidden_bn=False, output_bn=False)
  c.augment.update(jitter_prob=0.8, jitter_strength=0.5, blur_prob=0.5)
  c.optimizer.schedule = "cosine"
  variant = arg or "fashion_mnist"
  if variant == "fashion_mnist":
    c.head.hidden_dim = 512
    c.augment.blur_sigma = (0.1, 1.0)  # 28x28 images
  elif variant == "cifar10":
    c.head.hidden_dim = 512
    c.augment.blur_prob = 0.0  # blur hurts on 32x32 images
  elif variant == "smoke":
    c.head.hidden_dim = 32
  return c
