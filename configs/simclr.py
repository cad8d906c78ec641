"""SimCLR (Chen et al. 2020). Variants: fashion_mnist (default), cifar10,
stl10, imagenet, image_folder, video_frames (the video corpus' frames),
smoke. Example: ``sslax train --config configs/simclr.py:cifar10``."""

import ml_collections

from sslax.config_base import apply_variant, base_config


def get_config(arg: str = "fashion_mnist"):
  c = base_config("simclr")
  variant = apply_variant(c, arg, "configs/simclr.py")
  c.simclr = ml_collections.ConfigDict(dict(temperature=0.2))
  if variant in ("fashion_mnist", "video_frames"):
    c.optimizer.learning_rate = 1.0
  elif variant == "cifar10":
    c.simclr.temperature = 0.5
    c.optimizer.learning_rate = 1.0
  elif variant == "imagenet":
    c.simclr.temperature = 0.1
    c.optimizer.learning_rate = 0.3
  return c
