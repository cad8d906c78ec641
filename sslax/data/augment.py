"""On-device image augmentation with one PRNG key per example.

SimCLR's pipeline (Chen et al. 2020, Appendix A): random resized crop,
horizontal flip, colour jitter (brightness, contrast, saturation, hue in random
order) applied with probability p, random grayscale, gaussian blur; solarize
(Grill et al. 2020) is available for methods that use it. Images are float32 in
[0, 1] with a trailing channel axis; on 1-channel images the colour-only ops
(saturation, hue, grayscale) are the identity.
"""

import dataclasses
import math
from typing import Tuple

import dm_pix as pix
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class AugmentParams:
  """Parameters of one view's augmentation; field names follow the papers."""
  crop_scale: Tuple[float, float] = (0.08, 1.0)
  crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3)
  flip_prob: float = 0.5
  jitter_prob: float = 0.8
  brightness: float = 0.4
  contrast: float = 0.4
  saturation: float = 0.4
  hue: float = 0.1
  grayscale_prob: float = 0.2
  blur_prob: float = 0.0
  blur_sigma: Tuple[float, float] = (0.1, 2.0)
  solarize_prob: float = 0.0

  @classmethod
  def from_config(cls, config):
    """From a ConfigDict with any subset of the field names; ``jitter_strength``
    s sets brightness/contrast/saturation to 0.8s and hue to 0.2s."""
    values = dict(config)
    strength = values.pop("jitter_strength", None)
    if strength is not None:
      values.update(brightness=0.8 * strength, contrast=0.8 * strength,
                    saturation=0.8 * strength, hue=0.2 * strength)
    for key in ("crop_scale", "crop_ratio", "blur_sigma"):
      if key in values:
        values[key] = tuple(values[key])
    return cls(**values)


def random_resized_crop(key, image, out_hw, scale, ratio):
  """Crops a box of random area fraction in ``scale`` and aspect ratio in
  ``ratio`` (log-uniform) at a random place, resized bilinearly to ``out_hw``."""
  h, w, c = image.shape
  k_area, k_ratio, k_x, k_y = jax.random.split(key, 4)
  area = h * w * jax.random.uniform(k_area, minval=scale[0], maxval=scale[1])
  aspect = jnp.exp(jax.random.uniform(k_ratio, minval=math.log(ratio[0]),
                                      maxval=math.log(ratio[1])))
  crop_w = jnp.clip(jnp.sqrt(area * aspect), 1.0, w)
  crop_h = jnp.clip(jnp.sqrt(area / aspect), 1.0, h)
  x0 = jax.random.uniform(k_x) * (w - crop_w)
  y0 = jax.random.uniform(k_y) * (h - crop_h)
  scale_hw = jnp.stack([out_hw[0] / crop_h, out_hw[1] / crop_w])
  translation = -jnp.stack([y0, x0]) * scale_hw
  out = jax.image.scale_and_translate(image, (out_hw[0], out_hw[1], c), (0, 1),
                                      scale_hw, translation, method="bilinear",
                                      antialias=True)
  return out


def color_jitter(key, image, params: AugmentParams):
  """Brightness (multiplicative), contrast, saturation and hue, in random order."""
  b, c, s, h = params.brightness, params.contrast, params.saturation, params.hue

  def brightness(img, k):
    return img * jax.random.uniform(k, minval=max(0.0, 1 - b), maxval=1 + b)

  def contrast(img, k):
    return pix.adjust_contrast(img, jax.random.uniform(k, minval=max(0.0, 1 - c),
                                                       maxval=1 + c))

  def saturation(img, k):
    return pix.adjust_saturation(img, jax.random.uniform(k, minval=max(0.0, 1 - s),
                                                         maxval=1 + s))

  def hue(img, k):
    return pix.adjust_hue(img, jax.random.uniform(k, minval=-h, maxval=h))

  ops = [brightness, contrast]
  if image.shape[-1] == 3:
    ops += [saturation, hue]
  ops = [lambda img, k, op=op: jnp.clip(op(img, k), 0.0, 1.0) for op in ops]
  k_order, *k_ops = jax.random.split(key, len(ops) + 1)
  order = jax.random.permutation(k_order, len(ops))
  for i, k in enumerate(k_ops):
    image = jax.lax.switch(order[i], ops, image, k)
  return image


def augment_clips(key, clips, *, crop_scale=(1.0, 1.0), crop_ratio=(3 / 4, 4 / 3),
                  jitter: float = 0.0):
  """Clips [B, F, H, W, C] floats in [0, 1], augmented consistently across
  each clip's frames: one horizontal flip (probability 1/2) and, where
  ``crop_scale`` is not (1, 1), one random resized crop per clip, the same
  box in every frame (the motion between frames is left as it was); then,
  with ``jitter`` s > 0, colour jitter drawn per frame (brightness, contrast
  and saturation 0.8 s, hue 0.2 s, as ``AugmentParams.from_config``)."""
  b, f, h, w, _ = clips.shape
  flip = jax.random.bernoulli(key, 0.5, (b,))
  clips = jnp.where(flip[:, None, None, None, None], clips[:, :, :, ::-1], clips)
  if tuple(crop_scale) != (1.0, 1.0):
    keys = jax.random.split(jax.random.fold_in(key, 1), b)
    crop_frames = jax.vmap(lambda k, frame: random_resized_crop(
        k, frame, (h, w), tuple(crop_scale), tuple(crop_ratio)), in_axes=(None, 0))
    clips = jax.vmap(crop_frames)(keys, clips)
  if jitter > 0:
    params = AugmentParams.from_config({"jitter_strength": jitter})
    keys = jax.random.split(jax.random.fold_in(key, 2), b * f).reshape(b, f, -1)
    clips = jax.vmap(jax.vmap(lambda k, frame: color_jitter(k, frame, params)))(keys, clips)
  return clips


def to_grayscale(image):
  if image.shape[-1] != 3:
    return image
  gray = pix.rgb_to_grayscale(image, keep_dims=True)
  return jnp.broadcast_to(gray, image.shape)


def gaussian_blur(key, image, sigma_range):
  """Blur with sigma uniform in ``sigma_range`` and a kernel ~10% of the side."""
  side = max(image.shape[0], image.shape[1])
  kernel_size = max(3, int(side * 0.1) // 2 * 2 + 1)
  sigma = jax.random.uniform(key, minval=sigma_range[0], maxval=sigma_range[1])
  return pix.gaussian_blur(image, sigma, kernel_size)


def _maybe(key, prob, fn, image):
  if prob <= 0.0:
    return image
  apply = jax.random.uniform(key) < prob
  return jnp.where(apply, fn(image), image)


def augment_view(key, image, params: AugmentParams, out_hw):
  """One augmented view of one float image in [0, 1]; output in [0, 1]."""
  keys = jax.random.split(key, 9)
  image = random_resized_crop(keys[0], image, out_hw, params.crop_scale,
                              params.crop_ratio)
  image = _maybe(keys[1], params.flip_prob, pix.flip_left_right, image)
  image = _maybe(keys[2], params.jitter_prob,
                 lambda img: color_jitter(keys[3], img, params), image)
  image = _maybe(keys[4], params.grayscale_prob, to_grayscale, image)
  image = _maybe(keys[5], params.blur_prob,
                 lambda img: gaussian_blur(keys[6], img, params.blur_sigma), image)
  image = _maybe(keys[7], params.solarize_prob,
                 lambda img: pix.solarize(img, 0.5), image)
  return jnp.clip(image, 0.0, 1.0)


def augment_batch(key, images, params: AugmentParams, out_hw=None):
  """Augments a batch [n, H, W, C] (uint8 or float in [0, 1]), one key each."""
  if images.dtype == jnp.uint8:
    images = images.astype(jnp.float32) / 255.0
  out_hw = tuple(out_hw or images.shape[1:3])
  keys = jax.random.split(key, images.shape[0])
  return jax.vmap(lambda k, x: augment_view(k, x, params, out_hw))(keys, images)


def normalize(images, mean, std):
  """(x - mean) / std per channel, for images in [0, 1]."""
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return (images - mean) / std


def center_view(images, out_hw=None):
  """The evaluation view: uint8 to [0, 1], resized to ``out_hw`` if given."""
  images = images.astype(jnp.float32) / 255.0 if images.dtype == jnp.uint8 else images
  if out_hw is not None and tuple(out_hw) != tuple(images.shape[1:3]):
    images = jax.image.resize(images, (images.shape[0], *out_hw, images.shape[3]),
                              "bilinear")
  return images
