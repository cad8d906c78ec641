"""Rotation prediction (Gidaris et al. 2018). Variants: fashion_mnist
(default), cifar10, imagenet, smoke. Example:
``sslax train --config configs/rotation.py``.

All four rotations of each lightly augmented image (random resized crop with
scale in [0.6, 1] and a horizontal flip), a 4-way classifier head on the
variant's standard encoder (on Fashion-MNIST the ConvNet whose 4x4x128 map,
flattened, is the 2048-d representation): an MLP (Linear-BN-ReLU-Linear, 512
hidden units) by default, ``--config.head.kind=linear`` for a linear one.
SGD with Nesterov momentum 0.9, lr 0.1 per 256 images, weight decay 5e-4 (as
in the paper), warmup then cosine decay.

``pretext_config`` is shared by the other classification pretext tasks
(``configs/relative_patch.py``, ``jigsaw.py``, ``exemplar.py``).
"""

import ml_collections

from sslax.config_base import apply_variant, base_config


def pretext_config(method: str, arg: str, config_file: str):
  """``(config, variant)`` with what the classification pretext tasks share:
  a classifier head (its output size is the task's number of classes), light
  augmentation and SGD."""
  c = base_config(method)
  variant = apply_variant(c, arg, config_file)
  c.head = ml_collections.ConfigDict(dict(kind="mlp", hidden_dim=512, num_layers=2,
                                          hidden_bn=True))
  # Light augmentation: the pretext task is the supervision, not invariances.
  c.augment.update(crop_scale=(0.6, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_prob=0.5,
                   jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0,
                   solarize_prob=0.0)
  c.optimizer.update(name="sgd", learning_rate=0.1, lr_scaling="linear",
                     schedule="cosine", warmup_steps=50, weight_decay=5e-4,
                     momentum=0.9, nesterov=True)
  if variant == "cifar10":
    c.num_steps = 100 * 50000 // c.global_batch_size  # 100 epochs
    c.optimizer.warmup_steps = 5 * 50000 // c.global_batch_size
  elif variant == "imagenet":
    # ResNet-50 pretext training as in Kolesnikov et al. 2019: 35 epochs.
    c.global_batch_size = 1024
    c.num_steps = 35 * 1281167 // 1024
    c.optimizer.update(warmup_steps=5 * 1281167 // 1024, weight_decay=1e-4)
    c.head.hidden_dim = 2048
  elif variant == "smoke":
    c.model.pool = "flatten"  # as on Fashion-MNIST: patches average pool, images flatten
    c.head.hidden_dim = 32
    c.optimizer.warmup_steps = 2
  return c, variant


def get_config(arg: str = "fashion_mnist"):
  c, _ = pretext_config("rotation", arg, "configs/rotation.py")
  return c
