"""What every method's config shares: the run, data, encoder, evaluation and
fine-tuning settings, and the dataset variants (``fashion_mnist``, ``cifar10``,
``stl10``, ``imagenet``, ``image_folder``, ``smoke``). A config file ``configs/<method>.py`` calls
``base_config(method)`` and ``apply_variant(c, arg)``, then sets what is its
own (head, loss, optimizer, augmentation)."""

import ml_collections

from sslax.errors import UserError

VARIANTS = ("fashion_mnist", "cifar10", "stl10", "imagenet", "image_folder", "video_frames",
            "smoke")

FASHION_MNIST_STEPS = 1000  # the CPU budget every method gets on Fashion-MNIST


# The data of the evaluations of dense encoders on clips (`sslax eval track`,
# `sslax eval objects`): the video corpus that `make video` builds.
VIDEO_EVALS = {
    "track": dict(data=dict(name="video_corpus", data_dir="data/video", split="test")),
    "objects": dict(data=dict(name="video_corpus", data_dir="data/video",
                              train_split="train", test_split="test")),
}


def schedule_steps(config) -> int:
  """The steps the schedules run over (``config.schedule_steps``, else
  ``config.num_steps``)."""
  return int(config.get("schedule_steps") or config.num_steps)


def base_config(method: str) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = method
  c.seed = 0
  c.compute_dtype = "float32"  # or "bfloat16" (parameters stay float32)
  c.global_batch_size = 256
  c.num_steps = FASHION_MNIST_STEPS
  # Steps the schedules (learning rate, BYOL's tau) run over; 0: num_steps.
  # `sslax train --extend-to N` sets it to the run's old length.
  c.schedule_steps = 0
  c.log_every = 50
  c.checkpoint_every = 500
  c.keep_checkpoints = 2
  c.progress_bar = True
  # Seconds without a heartbeat after which WORKDIR/run.lock is stale on any
  # host (a run killed elsewhere); the holder rewrites it every tenth of that.
  c.lock_timeout = 300
  c.online_eval_every = 250  # steps between online kNN / probe evaluations; 0: off
  c.online_probe = ml_collections.ConfigDict(dict(learning_rate=1e-3))
  # Splits: training reads train_split; evaluation (kNN bank, probes' training
  # set) eval_train_split and scores on eval_split. TFDS split syntax works
  # ("train+unlabelled"), as does "a+b" for image folders and arrays.
  # channels (image folders): 0 as the images are, 1 gray, 3 RGB.
  # validation_fraction > 0: split "validation" is that fraction of "train"
  # (per class, drawn with validation_seed) and "train" is the rest, for every
  # reader; 0: none. tuning: a run that tunes hyperparameters, refused unless
  # it is scored on that validation split (eval_split="validation").
  c.data = ml_collections.ConfigDict(dict(
      name="fashion_mnist", modality="image", data_dir="", image_size=(28, 28),
      load_size=0, mean=(0.2860,), std=(0.3530,), train_split="train",
      eval_train_split="train", eval_split="test", channels=0,
      validation_fraction=0.0, validation_seed=0, tuning=False))
  # Processes that read (decode, resize) training batches on the host
  # (sslax.data.pipeline, on Grain): 0 reads on a background thread of the
  # trainer, best for data held in memory such as Fashion-MNIST, where workers
  # only add copying; -1 is one per CPU core but one (at most 16). The batches
  # are the same whatever the count.
  c.data.workers = 0
  c.model = ml_collections.ConfigDict(dict(
      encoder="convnet", widths=(32, 64, 128), stem_stride=2, pool="avg", stem="cifar",
      width=64))
  c.head = ml_collections.ConfigDict(dict(
      kind="mlp", hidden_dim=512, output_dim=128, num_layers=2, hidden_bn=True,
      output_bn=True))
  c.augment = ml_collections.ConfigDict(dict(
      crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_prob=0.5,
      jitter_prob=0.8, jitter_strength=0.5, grayscale_prob=0.2, blur_prob=0.0,
      blur_sigma=(0.1, 2.0), solarize_prob=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="lars", learning_rate=0.3, lr_scaling="linear", schedule="cosine",
      warmup_steps=100, weight_decay=1e-6, momentum=0.9, trust_coefficient=0.001,
      nesterov=False, b1=0.9, b2=0.999,
      # After schedule_steps (an extended run): "tail", a new cosine from
      # tail_peak x the peak to zero over the added steps; "hold", the
      # schedule's end value.
      extend="tail", tail_peak=0.1))
  # Evaluation. Features are extracted batch_size examples at a time, each
  # batch split over every device. The linear probe (`sslax eval linear`):
  # linear_probe="lbfgs", full-batch L-BFGS with the L2 penalty chosen on a
  # validation split (features on one device), or "sgd", the mini-batch
  # protocol of SimCLR (Chen et al. 2020, appendix B.6) for features that do
  # not fit one device: Nesterov SGD (sgd_momentum), peak rate
  # sgd_learning_rate * sgd_batch_size / 256 decayed on a cosine over
  # sgd_epochs, L2 penalty sgd_weight_decay; with linear_augment its training
  # features are recomputed every step from random resized crops
  # (linear_crop_scale) and flips of the images.
  c.eval = ml_collections.ConfigDict(dict(
      batch_size=1000, knn_temperature=0.07, online_knn_k=20,
      online_train_examples=10000, online_test_examples=10000, tsne_points=3000,
      linear_probe="lbfgs", sgd_epochs=90, sgd_batch_size=4096, sgd_learning_rate=0.1,
      sgd_momentum=0.9, sgd_weight_decay=0.0, linear_augment=False,
      linear_crop_scale=(0.08, 1.0)))
  # Fine-tuning with a fraction of the labels (`sslax eval finetune`): Nesterov
  # SGD, peak lr learning_rate * batch_size / 256, warmup then cosine decay, no
  # weight decay (as SimCLR fine-tunes); the same for the from-scratch baseline.
  c.finetune = ml_collections.ConfigDict(dict(
      batch_size=256, epochs=30, min_steps=200, learning_rate=0.02, momentum=0.9,
      weight_decay=0.0, warmup_steps=20, crop_scale=(0.5, 1.0)))
  # Each evaluation's own data (`sslax eval NAME`), apart from the training
  # data: transfer's labelled target images (a config.data-like group), the
  # word-embedding test files (words: "" reads those of the gensim wheel), the
  # clips of the dense-encoder evaluations (VIDEO_EVALS).
  c.evals = ml_collections.ConfigDict(dict(
      transfer=dict(data=dict(name="fashion_mnist", data_dir="", train_split="train",
                              test_split="test", image_size=(28, 28), load_size=0,
                              channels=0)),
      words=dict(data_dir="", neighbours=("king", "water", "run", "good", "france")),
      **VIDEO_EVALS))
  return c


def apply_variant(c: ml_collections.ConfigDict, arg: str, config_file: str) -> str:
  """Sets the dataset, encoder and budget of variant ``arg``; returns the
  variant's name (``fashion_mnist`` when ``arg`` is empty)."""
  arg = arg or "fashion_mnist"
  if arg == "fashion_mnist":
    # Budgeted for a 2-core CPU (`make demo`): the ConvNet reaches 4x4 after
    # three stride-2 stages, and its representation is that 4x4x128 map
    # flattened (2048-d), which keeps the spatial layout that matters for
    # telling shirts from coats.
    c.model.pool = "flatten"
    c.augment.crop_scale = (0.2, 1.0)
  elif arg == "cifar10":
    c.data.update(name="cifar10", image_size=(32, 32),
                  mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
    c.data.workers = -1  # decoding JPEG/PNG records: one worker per core
    c.model.update(encoder="resnet18", stem="cifar")
    c.head.update(hidden_dim=2048, output_dim=128)
    c.global_batch_size = 512
    c.num_steps = 500 * 50000 // 512  # 500 epochs
    c.optimizer.warmup_steps = 10 * 50000 // 512
    c.checkpoint_every = 2000
    c.online_eval_every = 2000
  elif arg == "stl10":
    # Pretraining on the 5,000 labelled and 100,000 unlabelled 96x96 images;
    # the probes train on the labelled 5,000 and score the 8,000 test images.
    c.data.update(name="stl10", image_size=(96, 96), train_split="train+unlabelled",
                  eval_train_split="train", eval_split="test",
                  mean=(0.4467, 0.4398, 0.4066), std=(0.2603, 0.2566, 0.2713))
    c.data.workers = -1  # decoding PNG records: one worker per core
    c.model.update(encoder="resnet18", stem="cifar")
    c.head.update(hidden_dim=2048, output_dim=128)
    c.global_batch_size = 512
    c.num_steps = 200 * 105000 // 512  # 200 epochs
    c.optimizer.warmup_steps = 10 * 105000 // 512
    c.checkpoint_every = 2000
    c.online_eval_every = 2000
    c.eval.update(online_train_examples=5000, online_test_examples=8000)
  elif arg == "imagenet":
    # Host side: shorter side to 256 and the central 256x256 square; on device:
    # random resized crops of it to 224x224.
    # imagenet2012's test split has no labels: evaluation scores validation.
    c.data.update(name="imagenet2012", image_size=(224, 224), load_size=256,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                  eval_split="validation")
    c.data.workers = -1  # decoding JPEG/PNG records: one worker per core
    c.model.update(encoder="resnet50", stem="imagenet")
    c.head.update(hidden_dim=2048, output_dim=128, num_layers=3)
    c.augment.update(jitter_strength=1.0, blur_prob=0.5)
    c.global_batch_size = 4096
    c.num_steps = 100 * 1281167 // 4096  # 100 epochs
    c.optimizer.warmup_steps = 10 * 1281167 // 4096
    c.compute_dtype = "bfloat16"
    c.checkpoint_every = 2000
    c.log_every = 100
    c.online_eval_every = 5000
    # The linear probe as SimCLR's: 90 epochs of SGD in batches of 4096 on
    # random crops and flips (features of 1.28M images do not fit one device).
    c.eval.update(batch_size=512, online_train_examples=50000,
                  online_test_examples=10000, linear_probe="sgd", sgd_epochs=90,
                  sgd_batch_size=4096, linear_augment=True)
  elif arg == "image_folder":
    # Your own photos (--config.data.data_dir=DIR; sslax.data.folder): any
    # sizes, colour or gray, scaled on the host to cover 72x72 and cut to its centre; random
    # resized crops of that to 64x64 on the device. Budgeted like
    # fashion_mnist for a CPU (the ConvNet, 1000 steps); on an accelerator add
    # --config.model.encoder=resnet18 and more steps.
    c.data.update(name="image_folder", image_size=(64, 64), load_size=72,
                  channels=3,  # every image as RGB, gray ones too
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    c.data.workers = -1  # decoding JPEG/PNG files: one worker per core
  elif arg == "video_frames":
    # The frames of the video corpus (`make video`) as still, unlabelled
    # images: a still-image method beside the video methods, on their network
    # (the ConvNet of widths 32, 64 on 64x64 RGB frames; a ConvNet run's
    # `feature_map` encoder is its 16x16x64 map, for `sslax eval track`).
    c.data.update(name="video_frames", data_dir="data/video", image_size=(64, 64),
                  mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    c.model.widths = (32, 64)
    c.augment.crop_scale = (0.2, 1.0)
    c.online_eval_every = 0  # no labels
  elif arg == "smoke":
    # Tiny model, few steps, local data: under a minute on a CPU.
    c.model.widths = (8, 16)
    c.head.update(hidden_dim=32, output_dim=16)
    c.global_batch_size = 32
    c.num_steps = 8
    c.log_every = 2
    c.checkpoint_every = 4
    c.online_eval_every = 4
    c.optimizer.warmup_steps = 2
    c.eval.update(batch_size=2000, online_train_examples=2000, online_test_examples=2000,
                  tsne_points=500)
    c.finetune.update(batch_size=32, epochs=1, min_steps=4, warmup_steps=1)
  else:
    raise UserError(f"{config_file} has no variant {arg!r}; use one of "
                    f"{', '.join(VARIANTS)}")
  return arg


def byol_augmentation(c: ml_collections.ConfigDict):
  """BYOL's asymmetric views (Grill et al. 2020, table 6), also used by Barlow
  Twins: colour jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8, grayscale p = 0.2,
  blur p = 1.0 on view 1 and 0.1 on view 2, solarize p = 0.2 on view 2 only."""
  c.augment.update(jitter_prob=0.8, jitter_strength=None, grayscale_prob=0.2)
  c.augment.brightness = 0.4
  c.augment.contrast = 0.4
  c.augment.saturation = 0.2
  c.augment.hue = 0.1
  c.view_augment = ml_collections.ConfigDict(dict(
      view1=dict(blur_prob=1.0, solarize_prob=0.0),
      view2=dict(blur_prob=0.1, solarize_prob=0.2)))
