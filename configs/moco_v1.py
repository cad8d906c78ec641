"""MoCo v1 (He et al. 2020). Variants: fashion_mnist (default), cifar10,
imagenet, smoke. Example: ``sslax train --config configs/moco_v1.py``."""

import ml_collections

from sslax.config_base import apply_variant, base_config


def moco_config(method: str, arg: str, config_file: str):
  """MoCo v1's settings; ``configs/moco_v2.py`` starts from these."""
  c = base_config(method)
  variant = apply_variant(c, arg, config_file)
  # Key encoder momentum, queue of K keys, InfoNCE temperature; batch norm over
  # sub-batches of 32 with keys rolled by one sub-batch (shuffling BN).
  c.moco = ml_collections.ConfigDict(dict(
      queue_size=65536, momentum=0.999, temperature=0.07,
      bn_groups=max(1, c.global_batch_size // 32)))
  c.head.update(kind="linear", output_dim=128)  # v1: the fc layer gives 128-d keys
  # Colour jitter (0.4, 0.4, 0.4, 0.4) always applied, random grayscale, flip.
  c.augment.update(jitter_prob=1.0, jitter_strength=None, grayscale_prob=0.2,
                   blur_prob=0.0, crop_scale=(0.2, 1.0))
  c.augment.brightness = 0.4
  c.augment.contrast = 0.4
  c.augment.saturation = 0.4
  c.augment.hue = 0.4
  # SGD, lr 0.03 per 256 images, weight decay 1e-4, x0.1 at 60% and 80%.
  c.optimizer.update(name="sgd", learning_rate=0.03, weight_decay=1e-4,
                     momentum=0.9, schedule="step", warmup_steps=0)
  if variant == "fashion_mnist":
    # 1000 steps: a shorter queue and memory, a larger learning rate.
    c.moco.update(queue_size=4096, momentum=0.99)
    c.optimizer.update(learning_rate=0.06, weight_decay=5e-4, warmup_steps=50)
  elif variant == "cifar10":
    c.moco.update(queue_size=4096, momentum=0.99, temperature=0.1)
    c.optimizer.update(learning_rate=0.06, weight_decay=5e-4)
  elif variant == "imagenet":
    c.global_batch_size = 256
    c.num_steps = 200 * 1281167 // 256  # 200 epochs
    c.moco.bn_groups = 8
    c.augment.blur_prob = 0.0
    c.compute_dtype = "bfloat16"
  elif variant == "smoke":
    c.moco.update(queue_size=64, bn_groups=2)
  return c


def get_config(arg: str = "fashion_mnist"):
  return moco_config("moco_v1", arg, "configs/moco_v1.py")
