"""sslax's SimCLR training step against a PyTorch eager implementation of the
same step, timed side by side in one process on the CPU; prints a Markdown table
of images/s (examples, not views) from the median of ``--steps`` timed steps,
after ``--warmup`` untimed ones (compilation, first allocations).

Both sides take the same uint8 batches of synthetic images (fetched before
timing) and do the same work each step: two views augmented on the fly (random
resized crop, flip, colour jitter in random order, grayscale), the encoder and
projection head on both views with batch norm in training mode, NT-Xent, the
backward pass, LARS (optax's ``lars`` as sslax configures it: weight decay and
trust ratio on kernels only, momentum after the learning rate) and the online
linear probe's Adam step on the first view's features.

  python launch/step_benchmark.py                      # both configs, both dtypes
  python launch/step_benchmark.py --configs configs/simclr.py:fashion_mnist \\
      --batch 256 --dtypes float32 --steps 20 --profile
  python launch/step_benchmark.py --only sslax         # without PyTorch

PyTorch comes from the ``bench`` extra: ``pip install -e '.[bench]'``.
``--profile`` also prints where each side's step time goes: augmentation
alone, then the forward loss, forward + backward and the whole step, each
timed on its own (the shares are differences of those medians, so on a busy
machine one can come out negative). ``--torch-compile`` and ``--channels-last``
change the PyTorch side from plain eager NCHW. Set XLA_FLAGS before starting
(importing sslax adds its fast CPU flag); the header shows the flags in effect.
Measure on an otherwise idle machine: PyTorch's OpenMP threads stall far more
than XLA's thread pool when other processes share the cores.
"""

import argparse
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from sslax.config_loading import load_config_file
from sslax.data.arrays import ArraySource
from sslax.data.augment import AugmentParams
from sslax.methods import build_method, common
from sslax.train.run import global_batch, init_state, setup
from sslax.train.step import compile_step

try:
  import torch
  from torch import nn
  import torch.nn.functional as F
except ImportError:
  torch = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIGS = "configs/simclr.py:cifar10,configs/simclr.py:fashion_mnist"
NO_TORCH = "step_benchmark: PyTorch is not installed; pip install -e '.[bench]'"
NUM_CLASSES = 10
PREFETCH = 4  # distinct batches fetched before timing, used in turn


# --------------------------------------------------------------------- configs

def load_config(spec: str, batch: int, dtype: str):
  """``spec`` (relative to the repository if not found here) with the batch
  size and compute dtype overridden."""
  path, sep, arg = spec.partition(":")
  if not os.path.isfile(path) and os.path.isfile(os.path.join(ROOT, path)):
    spec = os.path.join(ROOT, path) + sep + arg
  config = load_config_file(spec)
  if config.method != "simclr":
    sys.exit(f"step_benchmark: {spec} is a {config.method} config; give SimCLR configs")
  config.global_batch_size = batch
  config.compute_dtype = dtype
  return config


def synthetic_source(config, num_examples: int, seed: int = 0) -> ArraySource:
  """Random uint8 images at the config's image size and channel count."""
  rng = np.random.default_rng(seed)
  h, w = (int(n) for n in config.data.image_size)
  c = len(config.data.mean)
  images = rng.integers(0, 256, (num_examples, h, w, c), dtype=np.uint8)
  labels = rng.integers(0, NUM_CLASSES, num_examples).astype(np.int32)
  return ArraySource(images=images, labels=labels, num_classes=NUM_CLASSES)


def sslax_param_count(config) -> int:
  """Trainable parameters of sslax's SimCLR model (encoder + head)."""
  method = build_method(config)
  h, w = (int(n) for n in config.data.image_size)
  images = jnp.zeros((2, h, w, len(config.data.mean)), jnp.uint8)
  params, _, _ = jax.eval_shape(lambda: method.init(jax.random.PRNGKey(0), {"image": images}))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def timed(fn, count: int) -> float:
  """Median seconds of ``count`` calls of ``fn``, which waits for its own
  result: robust to the stalls of a shared machine."""
  seconds = []
  for _ in range(count):
    start = time.perf_counter()
    fn()
    seconds.append(time.perf_counter() - start)
  return float(np.median(seconds))


# ----------------------------------------------------------------------- sslax

class SslaxSide:
  """sslax's own trainer pieces: ``setup``, ``init_state``, ``compile_step``
  and ``global_batch`` on synthetic data."""

  def __init__(self, config, compile_now: bool = True):
    batch = config.global_batch_size
    self.run = setup(config, source=synthetic_source(config, max(4 * batch, 64)))
    self.batches = [global_batch(self.run, i) for i in range(PREFETCH)]
    jax.block_until_ready(self.batches)
    self.state = self.step = None
    if compile_now:
      self.state = init_state(self.run)
      self.step = compile_step(self.run, self.state)
    self.count = 0

  def numpy_batches(self):
    """The prefetched batches as host arrays (PyTorch's input)."""
    return [(np.asarray(b["image"]), np.asarray(b["label"])) for b in self.batches]

  def learning_rates(self, count: int) -> np.ndarray:
    """The run's schedule at steps 0..count-1, for the PyTorch side."""
    return np.asarray(jax.jit(jax.vmap(self.run.schedule))(jnp.arange(count)))

  def train(self, steps: int):
    """``steps`` training steps; waits for the last."""
    for _ in range(steps):
      self.state, metrics = self.step(self.state, self.batches[self.count % PREFETCH])
      self.count += 1
    jax.block_until_ready((self.state, metrics))

  def profile(self, steps: int) -> dict:
    """Seconds per call of: the two augmented views, the forward loss (views
    included), its value_and_grad, and the whole step."""
    method, config, mesh = self.run.method, self.run.config, self.run.mesh
    batch = self.batches[0]
    key = jax.random.PRNGKey(1)

    views = jax.jit(lambda images, k: common.two_views(k, images, config))

    def loss_of(params, model_state, method_state, b, k):
      return method.loss_fn(params, model_state, method_state, b, k)

    forward = jax.jit(loss_of)
    grad = jax.jit(jax.value_and_grad(loss_of, has_aux=True))

    def call(fn, *args):
      def run():
        with jax.set_mesh(mesh):
          return jax.block_until_ready(fn(*args))
      return run

    s = self.state
    parts = {
        "augment": call(views, batch["image"], key),
        "forward": call(forward, s.params, s.model_state, s.method_state, batch, key),
        "backward": call(grad, s.params, s.model_state, s.method_state, batch, key),
    }
    out = {}
    for name, fn in parts.items():
      fn()  # compile
      out[name] = timed(fn, steps)
    self.train(1)
    out["step"] = timed(lambda: self.train(1), steps)
    return out


# --------------------------------------------------------------------- PyTorch

if torch is not None:

  class TorchConvNet(nn.Module):
    """sslax.models.ConvNet: stages of (3x3 conv, BN, ReLU) x 2; the first
    convolution of stage i has stride ``stem_stride`` (i = 0) or 2."""

    def __init__(self, in_channels, widths, stem_stride, pool):
      super().__init__()
      layers, c = [], in_channels
      for i, width in enumerate(widths):
        for j in range(2):
          stride = (stem_stride if i == 0 else 2) if j == 0 else 1
          layers += [nn.Conv2d(c, width, 3, stride, padding=1, bias=False),
                     nn.BatchNorm2d(width, eps=1e-5, momentum=0.1), nn.ReLU(inplace=True)]
          c = width
      self.body = nn.Sequential(*layers)
      self.pool = pool

    def forward(self, x):
      x = self.body(x)
      x = x.flatten(1) if self.pool == "flatten" else x.mean(dim=(2, 3))
      return x.float()

  class TorchBasicBlock(nn.Module):
    """sslax.models.resnet.BasicBlock: the last BN's scale starts at zero and a
    1x1 projection shortcut appears where the shape changes."""

    def __init__(self, in_channels, filters, stride):
      super().__init__()
      self.conv1 = nn.Conv2d(in_channels, filters, 3, stride, padding=1, bias=False)
      self.bn1 = nn.BatchNorm2d(filters)
      self.conv2 = nn.Conv2d(filters, filters, 3, 1, padding=1, bias=False)
      self.bn2 = nn.BatchNorm2d(filters)
      nn.init.zeros_(self.bn2.weight)
      self.shortcut = None
      if stride != 1 or in_channels != filters:
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, filters, 1, stride, bias=False), nn.BatchNorm2d(filters))

    def forward(self, x):
      y = F.relu(self.bn1(self.conv1(x)))
      y = self.bn2(self.conv2(y))
      residual = x if self.shortcut is None else self.shortcut(x)
      return F.relu(y + residual)

  class TorchResNet(nn.Module):
    """sslax.models.ResNet with BasicBlocks (ResNet-18/34) and the CIFAR stem
    (one 3x3/1 convolution, no pooling) or the ImageNet one; ends in global
    average pooling."""

    def __init__(self, in_channels, stage_sizes, stem="cifar", width=64):
      super().__init__()
      if stem == "cifar":
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
      else:
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, padding=3, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, padding=1))
      blocks, c = [], width
      for i, num_blocks in enumerate(stage_sizes):
        for j in range(num_blocks):
          blocks.append(TorchBasicBlock(c, width * 2**i, 2 if i > 0 and j == 0 else 1))
          c = width * 2**i
      self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
      return self.blocks(self.stem(x)).mean(dim=(2, 3)).float()

  class TorchHead(nn.Module):
    """sslax.models.ProjectionHead: Dense (no bias before a BN), BN, ReLU, ...,
    Dense and an output BN without scale."""

    def __init__(self, in_dim, kind, hidden_dim, output_dim, num_layers, hidden_bn,
                 output_bn):
      super().__init__()
      layers, d = [], in_dim
      if kind == "linear":
        layers.append(nn.Linear(d, output_dim))
      elif kind == "mlp":
        for _ in range(num_layers - 1):
          layers.append(nn.Linear(d, hidden_dim, bias=not hidden_bn))
          if hidden_bn:
            layers.append(nn.BatchNorm1d(hidden_dim))
          layers.append(nn.ReLU(inplace=True))
          d = hidden_dim
        layers.append(nn.Linear(d, output_dim, bias=not output_bn))
      elif kind != "none":
        raise ValueError(f"unknown head kind {kind!r}")
      self.layers = nn.Sequential(*layers)
      self.out_norm = None
      if kind == "mlp" and output_bn:
        self.out_norm = nn.BatchNorm1d(output_dim, affine=False)
        self.out_bias = nn.Parameter(torch.zeros(output_dim))

    def forward(self, x):
      x = self.layers(x)
      if self.out_norm is not None:
        x = self.out_norm(x) + self.out_bias
      return x.float()

  class TorchSimCLR(nn.Module):
    """Encoder and projection head; returns (representation, projection)."""

    def __init__(self, encoder, head):
      super().__init__()
      self.encoder, self.head = encoder, head

    def forward(self, x):
      h = self.encoder(x)
      return h, self.head(h)


def torch_model(config):
  """The PyTorch twin of sslax's SimCLR model for ``config``."""
  m, c = config.model, len(config.data.mean)
  if m.encoder == "convnet":
    encoder = TorchConvNet(c, tuple(m.widths), int(m.stem_stride), m.pool)
  elif m.encoder in ("resnet18", "resnet34"):
    sizes = (2, 2, 2, 2) if m.encoder == "resnet18" else (3, 4, 6, 3)
    encoder = TorchResNet(c, sizes, m.stem, int(m.width))
  else:
    raise ValueError(f"no PyTorch twin of encoder {m.encoder!r}")
  h, w = (int(n) for n in config.data.image_size)
  with torch.no_grad():
    feature_dim = encoder.eval()(torch.zeros(1, c, h, w)).shape[-1]
  hc = config.head
  head = TorchHead(feature_dim, hc.kind, hc.hidden_dim, hc.output_dim, hc.num_layers,
                   hc.get("hidden_bn", True), hc.get("output_bn", True))
  model = TorchSimCLR(encoder, head).train()
  model.feature_dim = int(feature_dim)
  return model


def torch_param_count(model) -> int:
  return sum(p.numel() for p in model.parameters() if p.requires_grad)


def torch_nt_xent(z1, z2, temperature: float):
  """sslax.losses.nt_xent in float32: cosine similarities / temperature, each
  of the 2N views' positive is the other view of its example."""
  with torch.autocast("cpu", enabled=False):
    def unit(x):
      x = x.float()
      return x * torch.rsqrt(torch.clamp((x * x).sum(-1, keepdim=True), min=1e-24))
    z = torch.cat([unit(z1), unit(z2)])
    n = z1.shape[0]
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), -1e9)
    positives = torch.cat([torch.arange(n) + n, torch.arange(n)])
    return F.cross_entropy(logits, positives)


class TorchLARS:
  """optax.lars as sslax.train.optim configures it: ``u = g + wd * p`` and
  ``u *= tc * |p| / |u|`` (1 where a norm is 0) for kernels (ndim > 1) only,
  then ``m = momentum * m - lr * u`` and ``p += m``; foreach ops."""

  def __init__(self, params, weight_decay, momentum, trust_coefficient):
    params = list(params)
    self.decayed = [p for p in params if p.ndim > 1]
    self.plain = [p for p in params if p.ndim <= 1]
    self.params = self.decayed + self.plain
    self.momentum = [torch.zeros_like(p) for p in self.params]
    self.wd, self.mu, self.tc = weight_decay, momentum, trust_coefficient

  def zero_grad(self):
    for p in self.params:
      p.grad = None

  def step(self, lr: float):
    with torch.no_grad():
      grads = [p.grad for p in self.decayed]
      updates = list(torch._foreach_add(grads, self.decayed, alpha=self.wd))
      p_norm = torch.stack(torch._foreach_norm(self.decayed))
      u_norm = torch.stack(torch._foreach_norm(updates))
      ratio = torch.where((p_norm == 0) | (u_norm == 0), torch.ones_like(p_norm),
                          self.tc * p_norm / u_norm)
      torch._foreach_mul_(updates, list(ratio.unbind()))
      updates += [p.grad for p in self.plain]
      torch._foreach_mul_(self.momentum, self.mu)
      torch._foreach_add_(self.momentum, updates, alpha=-lr)
      torch._foreach_add_(self.params, self.momentum)


def _rgb_to_hsv(x):
  """[n, 3, H, W] in [0, 1] -> hue, saturation, value planes."""
  r, g, b = x.unbind(1)
  v, _ = x.max(1)
  spread = v - x.min(1)[0]
  s = torch.where(v > 0, spread / torch.where(v > 0, v, torch.ones_like(v)),
                  torch.zeros_like(v))
  safe = torch.where(spread > 0, spread, torch.ones_like(spread))
  h = torch.where(v == r, (g - b) / safe,
                  torch.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
  h = torch.where(spread > 0, torch.remainder(h / 6, 1.0), torch.zeros_like(h))
  return h, s, v


def _hsv_to_rgb(h, s, v):
  dh = torch.remainder(h, 1.0) * 6
  r = torch.clamp(torch.abs(dh - 3) - 1, 0, 1)
  g = torch.clamp(2 - torch.abs(dh - 2), 0, 1)
  b = torch.clamp(2 - torch.abs(dh - 4), 0, 1)
  return torch.stack([(1 - s + s * c) * v for c in (r, g, b)], 1)


def _per_image(f):
  return f.view(-1, 1, 1, 1)


def _brightness(x, f):
  return x * _per_image(f)


def _contrast(x, f):
  mean = x.mean(dim=(2, 3), keepdim=True)
  return _per_image(f) * (x - mean) + mean


def _saturation(x, f):
  h, s, v = _rgb_to_hsv(x)
  return _hsv_to_rgb(h, torch.clamp(s * f.view(-1, 1, 1), 0, 1), v)


def _hue(x, f):
  h, s, v = _rgb_to_hsv(x)
  return _hsv_to_rgb(h + f.view(-1, 1, 1), s, v)


class TorchAugment:
  """sslax.data.augment's view, batched with per-image random parameters:
  random resized crop (bilinear, one affine grid per image), flip, colour
  jitter in a random order per image (brightness, contrast, and for RGB
  saturation and hue; clipped after each), grayscale, then normalisation."""

  def __init__(self, config, seed=0):
    a = AugmentParams.from_config(config.augment)  # as sslax reads it
    self.scale = tuple(a.crop_scale)
    self.log_ratio = tuple(math.log(r) for r in a.crop_ratio)
    self.flip_prob, self.jitter_prob = a.flip_prob, a.jitter_prob
    self.grayscale_prob = a.grayscale_prob
    self.b, self.c, self.s, self.h = a.brightness, a.contrast, a.saturation, a.hue
    if a.blur_prob > 0 or a.solarize_prob > 0:
      raise ValueError("the PyTorch twin has no blur or solarize")
    self.out_hw = tuple(int(n) for n in config.data.image_size)
    self.mean = torch.tensor(config.data.mean, dtype=torch.float32).view(1, -1, 1, 1)
    self.std = torch.tensor(config.data.std, dtype=torch.float32).view(1, -1, 1, 1)
    self.gen = torch.Generator().manual_seed(seed)

  def _uniform(self, n, low, high):
    return torch.rand(n, generator=self.gen) * (high - low) + low

  def _crop(self, x):
    n, _, h, w = x.shape
    area = h * w * self._uniform(n, *self.scale)
    aspect = torch.exp(self._uniform(n, *self.log_ratio))
    cw = torch.clamp(torch.sqrt(area * aspect), 1.0, w)
    ch = torch.clamp(torch.sqrt(area / aspect), 1.0, h)
    x0 = torch.rand(n, generator=self.gen) * (w - cw)
    y0 = torch.rand(n, generator=self.gen) * (h - ch)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cw / w
    theta[:, 0, 2] = (2 * x0 + cw) / w - 1
    theta[:, 1, 1] = ch / h
    theta[:, 1, 2] = (2 * y0 + ch) / h - 1
    grid = F.affine_grid(theta, (n, x.shape[1], *self.out_hw), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)

  def _jitter(self, x):
    n = x.shape[0]
    ops = [(_brightness, max(0.0, 1 - self.b), 1 + self.b),
           (_contrast, max(0.0, 1 - self.c), 1 + self.c)]
    if x.shape[1] == 3:
      ops += [(_saturation, max(0.0, 1 - self.s), 1 + self.s), (_hue, -self.h, self.h)]
    factors = [self._uniform(n, lo, hi) for _, lo, hi in ops]
    order = torch.argsort(torch.rand(n, len(ops), generator=self.gen), dim=1)
    for position in range(len(ops)):
      out = x.clone()
      for j, (op, _, _) in enumerate(ops):
        rows = (order[:, position] == j).nonzero().squeeze(1)
        if rows.numel():
          out[rows] = torch.clamp(op(x[rows], factors[j][rows]), 0.0, 1.0)
      x = out
    return x

  def view(self, images_u8):
    """One normalised view [n, C, H, W] float32 of uint8 images [n, H, W, C]."""
    x = images_u8.permute(0, 3, 1, 2).float().div_(255.0)
    n = x.shape[0]
    x = self._crop(x)
    flip = _per_image(torch.rand(n, generator=self.gen) < self.flip_prob)
    x = torch.where(flip, x.flip(-1), x)
    rows = (torch.rand(n, generator=self.gen) < self.jitter_prob).nonzero().squeeze(1)
    if rows.numel():
      x[rows] = self._jitter(x[rows])
    if x.shape[1] == 3:
      gray = _per_image(torch.rand(n, generator=self.gen) < self.grayscale_prob)
      luma = (0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]).unsqueeze(1)
      x = torch.where(gray, luma.expand_as(x), x)
    x = torch.clamp(x, 0.0, 1.0)
    return (x - self.mean) / self.std


class TorchSide:
  """The eager PyTorch step: views, model, NT-Xent, backward, LARS, probe."""

  def __init__(self, config, batches, learning_rates, *, channels_last=False,
               compile_model=False):
    torch.manual_seed(config.seed)
    self.config = config
    self.model = torch_model(config)
    self.lars = TorchLARS(self.model.parameters(), config.optimizer.weight_decay,
                          config.optimizer.momentum, config.optimizer.trust_coefficient)
    self.probe = nn.Linear(self.model.feature_dim, NUM_CLASSES)
    nn.init.zeros_(self.probe.weight)
    nn.init.zeros_(self.probe.bias)
    self.probe_opt = torch.optim.Adam(self.probe.parameters(),
                                      lr=config.online_probe.learning_rate)
    self.augment = TorchAugment(config, seed=config.seed)
    self.channels_last = channels_last
    if channels_last:
      self.model = self.model.to(memory_format=torch.channels_last)
    self.forward_model = torch.compile(self.model) if compile_model else self.model
    self.bf16 = config.compute_dtype == "bfloat16"
    self.temperature = float(config.simclr.temperature)
    self.batches = [(torch.from_numpy(np.array(i)), torch.from_numpy(np.array(l)).long())
                    for i, l in batches]
    self.lrs = learning_rates
    self.count = 0
    self.grad_norm = None

  def views(self, images):
    x = torch.cat([self.augment.view(images), self.augment.view(images)])
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    return x

  def loss(self, images):
    """(loss, first view's features) with autograd recording."""
    x = self.views(images)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
      h, z = self.forward_model(x)
    n = images.shape[0]
    return torch_nt_xent(z[:n], z[n:], self.temperature), h[:n]

  def train(self, steps: int):
    for _ in range(steps):
      images, labels = self.batches[self.count % PREFETCH]
      loss, features = self.loss(images)
      self.lars.zero_grad()
      loss.backward()
      with torch.no_grad():
        self.grad_norm = torch.linalg.vector_norm(
            torch.stack(torch._foreach_norm([p.grad for p in self.lars.params])))
      self.lars.step(float(self.lrs[self.count % len(self.lrs)]))
      probe_loss = F.cross_entropy(self.probe(features.detach().float()), labels)
      self.probe_opt.zero_grad(set_to_none=True)
      probe_loss.backward()
      self.probe_opt.step()
      self.count += 1

  def profile(self, steps: int) -> dict:
    images = self.batches[0][0]

    def forward_backward():
      self.lars.zero_grad()
      self.loss(images)[0].backward()

    parts = {"augment": lambda: self.views(images),
             "forward": lambda: self.loss(images),
             "backward": forward_backward,
             "step": lambda: self.train(1)}
    out = {}
    for name, fn in parts.items():
      fn()
      out[name] = timed(fn, steps)
    self.lars.zero_grad()
    return out


# ------------------------------------------------------------------- reporting

def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.partition(":")[2].strip()
  except OSError:
    pass
  import platform  # pylint: disable=g-import-not-at-top
  return platform.processor() or "unknown CPU"


def header(torch_side: str) -> str:
  threads = f"{os.cpu_count()} CPUs"
  if torch is not None:
    threads += f", PyTorch threads {torch.get_num_threads()}"
  torch_version = f"torch {torch.__version__} ({torch_side})" if torch is not None \
      else "torch not installed"
  return (f"CPU: {cpu_model()}; {threads}; jax {jax.__version__} "
          f"({jax.devices()[0].platform} x{jax.device_count()}); {torch_version}; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '') or '(unset)'}")


def share_cells(t: dict) -> list:
  """Augment, forward, backward and optimizer shares of a profile: ms (% of
  the step), from differences of the cumulative timings."""
  step = t["step"]
  parts = [t["augment"], t["forward"] - t["augment"], t["backward"] - t["forward"],
           step - t["backward"]]
  return [f"{1000 * p:.1f} ({100 * p / step:.0f}%)" for p in parts] + [f"{1000 * step:.1f}"]


def split_list(text: str, kind=str) -> list:
  return [kind(x.strip()) for x in text.split(",") if x.strip()]


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                      help="comma-separated SimCLR config specs")
  parser.add_argument("--batch", default="64,256", help="comma-separated global batch sizes")
  parser.add_argument("--dtypes", default="float32,bfloat16",
                      help="comma-separated compute dtypes (float32, bfloat16)")
  parser.add_argument("--steps", type=int, default=10, help="timed steps")
  parser.add_argument("--warmup", type=int, default=3,
                      help="untimed steps first (at least 1: compilation)")
  parser.add_argument("--only", choices=("sslax", "pytorch"),
                      help="time one side alone")
  parser.add_argument("--profile", action="store_true",
                      help="also print where each side's step time goes")
  parser.add_argument("--channels-last", action="store_true",
                      help="PyTorch: channels-last memory format")
  parser.add_argument("--torch-compile", action="store_true",
                      help="PyTorch: torch.compile the model (default: eager)")
  args = parser.parse_args(argv)
  args.configs = split_list(args.configs)
  args.batch = split_list(args.batch, int)
  args.dtypes = split_list(args.dtypes)
  if args.steps < 1 or min(args.batch, default=0) < 1:
    parser.error("--steps and every --batch must be positive")
  args.warmup = max(args.warmup, 1)
  return args


def main(argv=None):
  args = parse_args(argv)
  want_torch = args.only != "sslax"
  if want_torch and torch is None:
    print(NO_TORCH, file=sys.stderr)
    sys.exit(2)
  if want_torch:
    torch.set_num_threads(os.cpu_count())
  torch_kind = ("torch.compile" if args.torch_compile else "eager") + \
      (", channels-last" if args.channels_last else "")
  print(header(torch_kind))
  print()
  print("| config | dtype | batch | sslax images/s | PyTorch images/s | sslax / PyTorch |")
  print("|---|---|---|---|---|---|", flush=True)
  profiles = []
  for spec in args.configs:
    for dtype in args.dtypes:
      for batch in args.batch:
        config = load_config(spec, batch, dtype)
        ours = SslaxSide(config, compile_now=args.only != "pytorch")
        ours_rate = theirs_rate = None
        if args.only != "pytorch":
          ours.train(args.warmup)
          ours_rate = batch / timed(lambda: ours.train(1), args.steps)
        theirs = None
        if want_torch:
          lrs = ours.learning_rates(args.warmup + 2 * args.steps + 4)
          theirs = TorchSide(config, ours.numpy_batches(), lrs,
                             channels_last=args.channels_last,
                             compile_model=args.torch_compile)
          time.sleep(0.2)  # let the other side's worker threads go idle
          theirs.train(args.warmup)
          theirs_rate = batch / timed(lambda: theirs.train(1), args.steps)
        ratio = f"{ours_rate / theirs_rate:.2f}" if ours_rate and theirs_rate else "-"
        cells = [f"{ours_rate:.0f}" if ours_rate else "-",
                 f"{theirs_rate:.0f}" if theirs_rate else "-", ratio]
        print(f"| {spec} | {dtype} | {batch} | {' | '.join(cells)} |", flush=True)
        if args.profile:
          name = f"{spec} | {dtype} | {batch}"
          if args.only != "pytorch":
            profiles.append(("sslax", name, ours.profile(args.steps)))
          if theirs is not None:
            time.sleep(0.2)
            profiles.append(("PyTorch", name, theirs.profile(args.steps)))
        ours = theirs = None  # free both models before the next row
  if profiles:
    print()
    print("Step time by part, ms (% of the step): augment = the two views alone; "
          "forward = the loss minus augment; backward = value_and_grad minus the "
          "loss; optimizer = the whole step minus value_and_grad (LARS, probe, "
          "metrics, dispatch).")
    print()
    print("| side | config | dtype | batch | augment | forward | backward | optimizer "
          "| step ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for side, name, t in profiles:
      print(f"| {side} | {name} | {' | '.join(share_cells(t))} |", flush=True)


if __name__ == "__main__":
  main()
