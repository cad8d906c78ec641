"""On-device augmentation: shapes, dtypes, ranges, grayscale, identity cases,
determinism; clips cropped and flipped whole, their colours jittered per frame.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from sslax.data import augment

FULL = augment.AugmentParams(blur_prob=0.5, solarize_prob=0.3)


def _images(c, n=6, hw=(20, 24), seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.integers(0, 256, size=(n, *hw, c)), jnp.uint8)


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_dtype_and_range(channels):
  x = _images(channels)
  out = jax.jit(lambda k, x: augment.augment_batch(k, x, FULL, (16, 16)))(
      jax.random.key(0), x)
  assert out.shape == (6, 16, 16, channels)
  assert out.dtype == jnp.float32
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_same_key_same_output_and_keys_differ_per_example():
  x = _images(3)
  f = jax.jit(lambda k, x: augment.augment_batch(k, x, FULL))
  a, b = f(jax.random.key(7), x), f(jax.random.key(7), x)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  c = f(jax.random.key(8), x)
  assert not np.array_equal(np.asarray(a), np.asarray(c))
  # Identical input images get different views: one key per example.
  same = jnp.repeat(x[:1], 4, axis=0)
  views = np.asarray(f(jax.random.key(9), same))
  assert not np.allclose(views[0], views[1])


def test_grayscale_output_has_equal_channels():
  x = _images(3).astype(jnp.float32) / 255.0
  gray = jax.vmap(augment.to_grayscale)(x)
  np.testing.assert_allclose(np.asarray(gray[..., 0]), np.asarray(gray[..., 1]))
  np.testing.assert_allclose(np.asarray(gray[..., 1]), np.asarray(gray[..., 2]))
  params = augment.AugmentParams(grayscale_prob=1.0, jitter_prob=0.0)
  out = augment.augment_batch(jax.random.key(1), _images(3), params)
  np.testing.assert_allclose(np.asarray(out[..., 0]), np.asarray(out[..., 2]), atol=1e-6)


def test_grayscale_and_colour_ops_are_identity_on_one_channel():
  x = _images(1).astype(jnp.float32) / 255.0
  np.testing.assert_array_equal(np.asarray(jax.vmap(augment.to_grayscale)(x)),
                                np.asarray(x))
  # Saturation and hue cannot apply; only brightness and contrast do.
  params = augment.AugmentParams(brightness=0.0, contrast=0.0, saturation=0.9, hue=0.5)
  keys = jax.random.split(jax.random.key(2), x.shape[0])
  out = jax.vmap(lambda k, i: augment.color_jitter(k, i, params))(keys, x)
  np.testing.assert_allclose(np.asarray(out), np.asarray(x), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_zero_strength_jitter_is_identity(channels):
  x = _images(channels).astype(jnp.float32) / 255.0
  params = augment.AugmentParams(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
  keys = jax.random.split(jax.random.key(3), x.shape[0])
  out = jax.vmap(lambda k, i: augment.color_jitter(k, i, params))(keys, x)
  np.testing.assert_allclose(np.asarray(out), np.asarray(x), atol=1e-5)


def test_nonzero_jitter_changes_images():
  x = _images(3).astype(jnp.float32) / 255.0
  params = augment.AugmentParams()
  keys = jax.random.split(jax.random.key(3), x.shape[0])
  out = jax.vmap(lambda k, i: augment.color_jitter(k, i, params))(keys, x)
  assert float(jnp.abs(out - x).max()) > 0.01


def test_full_crop_without_other_ops_is_identity():
  x = _images(3, hw=(16, 16))
  params = augment.AugmentParams(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                                 flip_prob=0.0, jitter_prob=0.0, grayscale_prob=0.0)
  out = augment.augment_batch(jax.random.key(4), x, params)
  np.testing.assert_allclose(np.asarray(out), np.asarray(x) / 255.0, atol=1e-5)


def test_flip_with_probability_one_mirrors():
  x = _images(1, hw=(8, 8))
  params = augment.AugmentParams(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                                 flip_prob=1.0, jitter_prob=0.0, grayscale_prob=0.0)
  out = augment.augment_batch(jax.random.key(5), x, params)
  np.testing.assert_allclose(np.asarray(out), np.asarray(x)[:, :, ::-1] / 255.0, atol=1e-5)


def test_solarize_and_blur_when_certain():
  x = jnp.full((2, 16, 16, 3), 230, jnp.uint8)
  params = augment.AugmentParams(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                                 flip_prob=0.0, jitter_prob=0.0, grayscale_prob=0.0,
                                 solarize_prob=1.0)
  out = augment.augment_batch(jax.random.key(6), x, params)
  np.testing.assert_allclose(np.asarray(out), 1.0 - 230 / 255.0, atol=1e-5)
  checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
  img = jnp.asarray(np.repeat(checker[None, :, :, None], 2, axis=0))
  params = augment.AugmentParams(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                                 flip_prob=0.0, jitter_prob=0.0, grayscale_prob=0.0,
                                 blur_prob=1.0, blur_sigma=(1.5, 2.0))
  blurred = np.asarray(augment.augment_batch(jax.random.key(6), img, params))
  assert blurred[:, 4:12, 4:12].std() < 0.2 * (np.asarray(img) / 255.0).std()


def test_from_config_sets_jitter_strength():
  import ml_collections  # pylint: disable=g-import-not-at-top
  p = augment.AugmentParams.from_config(ml_collections.ConfigDict(
      {"jitter_strength": 0.5, "crop_scale": [0.2, 1.0]}))
  assert p.brightness == pytest.approx(0.4) and p.hue == pytest.approx(0.1)
  assert p.crop_scale == (0.2, 1.0)


# --- clips: one crop and flip per clip, colour jitter per frame ---------------


def _clip_batch(b=3, f=4, size=16, seed=0):
  """Clips whose frame t is the clip's base image plus t / 100."""
  base = np.random.default_rng(seed).uniform(0.1, 0.8, (b, 1, size, size, 3))
  return jnp.asarray(base + np.arange(f)[None, :, None, None, None] / 100, jnp.float32)


def test_a_clip_is_cropped_and_flipped_the_same_in_every_frame():
  clips = _clip_batch()
  out = np.asarray(augment.augment_clips(jax.random.PRNGKey(3), clips, crop_scale=(0.3, 0.6)))
  assert out.shape == clips.shape
  # the same box and flip in every frame: frame t is still frame 0 plus t / 100
  for t in range(1, clips.shape[1]):
    np.testing.assert_allclose(out[:, t] - out[:, 0], t / 100, atol=2e-5)
  # and a different box for each clip: not the whole frame, not one shared crop
  assert not np.allclose(out[:, 0], np.asarray(clips[:, 0]), atol=1e-3)
  assert not np.allclose(out[0, 0] - np.asarray(clips[0, 0]).mean(),
                         out[1, 0] - np.asarray(clips[1, 0]).mean(), atol=1e-3)


def test_without_crop_or_jitter_a_clip_is_only_flipped_whole():
  clips = _clip_batch(b=16)
  out = np.asarray(augment.augment_clips(jax.random.PRNGKey(0), clips))
  flipped = [np.array_equal(o, np.asarray(c)[:, :, ::-1]) for o, c in zip(out, clips)]
  kept = [np.array_equal(o, np.asarray(c)) for o, c in zip(out, clips)]
  assert all(a or b for a, b in zip(flipped, kept)) and any(flipped) and any(kept)


def test_colour_jitter_is_drawn_per_frame():
  still = jnp.broadcast_to(_clip_batch(b=1, f=1), (1, 4, 16, 16, 3))
  out = np.asarray(augment.augment_clips(jax.random.PRNGKey(1), still, jitter=0.5))
  assert out.min() >= 0 and out.max() <= 1
  for t in range(1, 4):
    assert np.abs(out[0, t] - out[0, 0]).mean() > 1e-3


@pytest.mark.parametrize("settings,message", [
    (dict(crop_scale=(0.0, 1.0)), "crop_scale must be"),
    (dict(crop_scale=(0.5, 1.2)), "crop_scale must be"),
    (dict(jitter=-0.1), "jitter must be >= 0"),
])
def test_clip_augmentation_settings_are_checked(settings, message):
  import ml_collections
  from sslax.errors import UserError
  from sslax.methods.video_common import clip_augmentation
  config = ml_collections.ConfigDict({"clip_augment": dict(crop_scale=(1.0, 1.0), jitter=0.0)})
  config.clip_augment.update(settings)
  with pytest.raises(UserError, match=message):
    clip_augmentation(config)


def test_video_colorization_refuses_colour_jitter():
  from sslax.config_loading import load_config_file
  from sslax.errors import UserError
  from sslax.methods import build_method
  config = load_config_file(os.path.join(ROOT, "configs", "video_colorization.py:smoke"))
  config.clip_augment.jitter = 0.4
  with pytest.raises(UserError, match="set --config.clip_augment.jitter=0"):
    build_method(config)
