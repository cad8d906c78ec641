"""SimSiam (Chen & He 2021). Variants: fashion_mnist (default), cifar10,
imagenet, smoke. Example: ``sslax train --config configs/simsiam.py``.

Not done: the paper's fixed (not decayed) learning rate for the predictor.
Here the predictor decays on the cosine like every other parameter, the
"lr with decay" baseline of the paper's table 1, a little below the fixed
rate there (it needs a per-parameter schedule in sslax.train.optim). Weight decay also leaves out biases and
BN parameters (``sslax.train.optim.decay_mask``), where the official code
decays every parameter."""

import ml_collections

from sslax.config_base import apply_variant, base_config


def get_config(arg: str = "fashion_mnist"):
  c = base_config("simsiam")
  variant = apply_variant(c, arg, "configs/simsiam.py")
  # Projector: three layers of 2048, BN on each, ReLU on the first two
  # (the output BN has no scale).
  c.head.update(kind="mlp", hidden_dim=2048, output_dim=2048, num_layers=3,
                hidden_bn=True, output_bn=True)
  # Predictor: a bottleneck, 2048 -> 512 (BN, ReLU) -> 2048, no BN on the output.
  c.predictor = ml_collections.ConfigDict(dict(
      kind="mlp", hidden_dim=512, output_dim=2048, num_layers=2, hidden_bn=True,
      output_bn=False))
  # MoCo v2's views: crops of 20-100% of the image, jitter (0.4, 0.4, 0.4, 0.1)
  # with p = 0.8, grayscale p = 0.2, blur p = 0.5, flips; the same for both views.
  c.augment.update(crop_scale=(0.2, 1.0), jitter_prob=0.8, jitter_strength=0.5,
                   grayscale_prob=0.2, blur_prob=0.5)
  # SGD, momentum 0.9, lr 0.05 per 256 images, weight decay 1e-4, cosine
  # decay and no warmup (batch 512).
  c.optimizer.update(name="sgd", learning_rate=0.05, lr_scaling="linear",
                     schedule="cosine", warmup_steps=0, weight_decay=1e-4,
                     momentum=0.9)
  if variant == "fashion_mnist":
    c.head.update(hidden_dim=512, output_dim=512)
    c.predictor.update(hidden_dim=128, output_dim=512)
    c.augment.blur_sigma = (0.1, 1.0)  # 28x28 images
    # 300-step sanity runs at batch 256 (online kNN k=20 at step 300): lr
    # 0.05 78.5% (below the random-init encoder's 79.6%), 0.2 79.7%, 0.5
    # 80.3%, 1.0 79.7%.
    c.optimizer.learning_rate = 0.5
  elif variant == "cifar10":
    # The paper's CIFAR-10 setting (appendix D): a 2-layer projector of 2048,
    # batch 512, lr 0.03 per 256, weight decay 5e-4, 800 epochs, no blur.
    c.head.update(hidden_dim=2048, output_dim=2048, num_layers=2)
    c.augment.blur_prob = 0.0
    c.global_batch_size = 512
    c.num_steps = 800 * 50000 // 512
    c.optimizer.update(learning_rate=0.03, weight_decay=5e-4)
  elif variant == "imagenet":
    c.global_batch_size = 512
    c.num_steps = 100 * 1281167 // 512  # 100 epochs
    c.log_every = 500
    c.checkpoint_every = 5000
    c.online_eval_every = 25000
  elif variant == "smoke":
    c.head.update(hidden_dim=32, output_dim=16)
    c.predictor.update(hidden_dim=8, output_dim=16)
  return c
