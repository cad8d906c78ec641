"""Image CPC (van den Oord et al. 2018; Henaff et al. 2020). Variants:
fashion_mnist (default), cifar10, imagenet, smoke. Example:
``sslax train --config configs/cpc_image.py``.

Overlapping patches (8x8 every 4 pixels: a 6x6 grid on 28x28 images), each
encoded by the same convolutional net with layer norm (the patch size and
stride are the net's receptive field and total stride); a GRU down each column
of the grid; the context predicts the codes 2 and 3 rows below.
"""

import ml_collections

from sslax.config_base import apply_variant, base_config


def get_config(arg: str = "fashion_mnist"):
  c = base_config("cpc")
  variant = apply_variant(c, arg, "configs/cpc_image.py")
  del c["head"]  # CPC predicts codes with its own W_k
  c.data.modality = "image"
  c.cpc = ml_collections.ConfigDict(dict(pool_grid=3, context_dim=128, offsets=(2, 3)))
  # Receptive field 8, total stride 4: 8x8 patches every 4 pixels.
  c.model = ml_collections.ConfigDict(dict(
      encoder="patch_convnet", widths=(32, 64, 128, 128), kernels=(2, 3, 2, 1),
      strides=(2, 1, 2, 1)))
  # One augmented view of the whole image, then the patch grid.
  c.augment.update(crop_scale=(0.3, 1.0), jitter_prob=0.8, grayscale_prob=0.0)
  c.optimizer.update(name="adamw", learning_rate=2e-3, weight_decay=1e-4,
                     warmup_steps=100)
  if variant == "cifar10":
    c.cpc.update(pool_grid=7, offsets=(2, 3, 4))  # 7x7 grid of 8x8 patches
    c.model.update(widths=(64, 128, 256, 256))
  elif variant == "imagenet":
    # Henaff et al.: 64x64 patches every 32 pixels of a 224 crop (6x6 grid).
    c.cpc.update(pool_grid=6, context_dim=512, offsets=(2, 3, 4, 5))
    c.model.update(widths=(64, 128, 128, 256, 256, 512, 512),
                   kernels=(4, 3, 3, 2, 3, 2, 2), strides=(4, 1, 1, 2, 1, 2, 2))
  elif variant == "smoke":
    c.cpc.update(context_dim=16)
    c.model.update(widths=(8, 16, 16, 16))
  return c
