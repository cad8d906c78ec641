"""Denoising autoencoder (Vincent et al. 2010). Variants: fashion_mnist
(default), cifar10, imagenet, smoke. Example:
``sslax train --config configs/denoising_ae.py --config.denoising_ae.corruption=gaussian``.

The encoder is the variant's standard one (on Fashion-MNIST the ConvNet whose
4x4x128 map, flattened, is the 2048-d representation; the decoder upsamples
that map back to 28x28); on ResNet variants the decoder starts from the pooled
vector. Corruption ``denoising_ae.corruption``: gaussian (``sigma``, in pixel units of
[0, 1] images), masking or salt_and_pepper (``rate``); the loss weighs
corrupted components by ``alpha`` and clean ones by ``beta``.
"""

import ml_collections

from sslax.config_base import apply_variant, base_config


def reconstruction_defaults(c, variant):
  """What the reconstruction methods share: the method's group
  ``config.<method>`` with its decoder widths (one per upsampling stage),
  mild augmentation, AdamW at 1e-3."""
  del c["head"]  # no projection head: the decoder reads the representation
  group = c[c.method] = ml_collections.ConfigDict(dict(decoder_widths=(64, 32, 16)))
  # Mild crops and flips only: the task is in the pixels, not in invariances.
  c.augment.update(crop_scale=(0.5, 1.0), flip_prob=0.5, jitter_prob=0.0,
                   grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0)
  c.optimizer.update(name="adamw", learning_rate=1e-3, lr_scaling="none",
                     weight_decay=1e-4, warmup_steps=50, schedule="cosine")
  if variant == "cifar10":
    group.decoder_widths = (256, 128, 64)         # 4x4 from the 512-d vector -> 32x32
    c.optimizer.warmup_steps = 500
  elif variant == "imagenet":
    group.decoder_widths = (256, 128, 64, 32, 16)  # 7x7 from the 2048-d vector -> 224
    c.optimizer.update(learning_rate=2e-3, warmup_steps=1000, weight_decay=0.05)
  elif variant == "smoke":
    c.model.pool = "flatten"                      # the 7x7x16 map to the decoder
    group.decoder_widths = (8, 4)
    c.optimizer.warmup_steps = 2


def get_config(arg: str = "fashion_mnist"):
  c = base_config("denoising_ae")
  variant = apply_variant(c, arg, "configs/denoising_ae.py")
  reconstruction_defaults(c, variant)
  # Emphasised denoising (Vincent et al. 2010, sec. 4.3): corrupted components
  # weigh alpha, the others beta.
  c.denoising_ae.update(corruption="masking", rate=0.25, sigma=0.3, alpha=1.0, beta=0.5)
  return c
