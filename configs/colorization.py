"""Colourisation (Zhang et al. 2016). Variants: photos (default), cifar10,
imagenet, smoke. Build the photo corpus first (``sslax data make-photos --out
data/wallpaper_photos``, or ``make photos``), then
``sslax train --config configs/colorization.py --workdir runs/colorization``.

The encoder is the ConvNet of the other methods' Fashion-MNIST runs (widths
32, 64, 128, first stage stride 2, the flattened 4x4x128 map) on the L channel
alone, so its weights transfer to grayscale images: evaluate with
``sslax.eval.transfer.transfer_linear`` (linear probe on Fashion-MNIST). The
decoder predicts ab at a quarter of the input resolution (8x8 of 32x32, as the
paper's 56x56 of 224x224) over the in-gamut ab bins of grid 10 (261 by
``color_common.ab_bins``; the paper counts 313), with class rebalancing (lambda
0.5) from the bin histogram of 2000 training crops.
``--config.colorization.loss=l2`` is the regression baseline.

On the photo corpus the labels are the source photos, disjoint between train
and test, so online kNN / probe figures mean nothing and online evaluation is
off (``online_eval_every = 0``).
"""

import ml_collections

from sslax.config_base import FASHION_MNIST_STEPS, apply_variant, base_config
from sslax.errors import UserError

VARIANTS = ("photos", "cifar10", "imagenet", "smoke")
# Run settings (batch, steps, schedule, evaluation sizes) come from these
# variants of sslax.config_base; the data and encoder are set here.
_BASE_VARIANT = {"photos": "fashion_mnist", "cifar10": "cifar10",
                 "imagenet": "imagenet", "smoke": "smoke"}
PHOTOS_DATA = dict(name="wallpaper_photos", modality="image", data_dir="data/wallpaper_photos",
                   image_size=(32, 32), load_size=0,
                   mean=(0.4629, 0.4540, 0.3757), std=(0.2922, 0.2605, 0.2903))


def colour_config(method: str, arg: str, config_file: str):
  """The settings colourisation and split-brain autoencoders share; returns
  (config, variant) with ``decoder_widths`` of the variant in
  ``config.<method>`` left to the caller."""
  arg = arg or "photos"
  if arg not in VARIANTS:
    raise UserError(f"{config_file} has no variant {arg!r}; use one of "
                    f"{', '.join(VARIANTS)}")
  c = base_config(method)
  apply_variant(c, _BASE_VARIANT[arg], config_file)
  del c["head"]  # the decoder is the method's own
  if arg in ("photos", "smoke"):
    c.data = ml_collections.ConfigDict(PHOTOS_DATA)
  # The Fashion-MNIST encoder of the other methods (1-channel L input here).
  c.model = ml_collections.ConfigDict(dict(
      encoder="convnet", widths=(32, 64, 128), stem_stride=2, pool="flatten"))
  # Views: crops and flips only; colour augmentation would change the targets.
  c.augment = ml_collections.ConfigDict(dict(
      crop_scale=(0.6, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_prob=0.5, jitter_prob=0.0,
      grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0))
  c.optimizer.update(name="adamw", learning_rate=2e-3, weight_decay=1e-4,
                     warmup_steps=100)
  if arg == "photos":
    c.num_steps = FASHION_MNIST_STEPS
    c.online_eval_every = 0
  elif arg == "cifar10":
    c.model.widths = (64, 128, 256)
  elif arg == "imagenet":
    # 224 -> 7x7x512 after five stages; the decoder goes back to 56x56.
    c.model.widths = (64, 128, 256, 256, 512)
    c.global_batch_size = 1024
    c.num_steps = 30 * 1281167 // 1024  # 30 epochs
    c.optimizer.warmup_steps = 1281167 // 1024
  elif arg == "smoke":
    c.model.widths = (8, 16)  # 32 -> 8x8x16
    c.optimizer.warmup_steps = 2
  return c, arg


def get_config(arg: str = "photos"):
  c, variant = colour_config("colorization", arg, "configs/colorization.py")
  c.colorization = ml_collections.ConfigDict(dict(
      loss="classification",      # or "l2" (regression on ab / 110)
      grid_size=10.0,             # ab bin side (261 in-gamut bins for 10)
      soft_encoding=False,        # True: Gaussian over the nearest bins
      soft_neighbours=5, soft_sigma=5.0,
      rebalance=True, rebalance_lambda=0.5, rebalance_sigma=5.0,
      rebalance_images=2000,      # training images in the bin histogram
      decoder_widths=(64,),       # one stride-2 upsampling each
      temperature=0.38))          # annealed mean, for pictures
  if variant == "cifar10":
    c.colorization.decoder_widths = (128,)
  elif variant == "imagenet":
    c.colorization.decoder_widths = (256, 128, 64)
  elif variant == "smoke":
    c.colorization.update(decoder_widths=(8,), rebalance_images=256)
  return c
