"""CIE Lab colour: the conversions and the scaled inputs of the Lab networks.

``rgb_to_lab`` and ``lab_to_rgb`` convert sRGB (D65 white) to and from CIE
L*a*b*, the colour space of colourisation (Zhang et al. 2016) and split-brain
autoencoders (Zhang et al. 2017). ``l_input`` is the input of their encoders,
the lightness scaled to [-1, 1]: the preprocessing an exported encoder of
those methods applies to images (``sslax.encoder``), so it lives here, below
the methods.

Every function is pure and works on any leading shape with a trailing channel
axis; images are floats in [0, 1].
"""

import jax
import jax.numpy as jnp
import numpy as np

AB_SCALE = 110.0  # |a|, |b| < 110 for every sRGB colour

# Linear sRGB -> XYZ (IEC 61966-2-1, D65); the white point is its row sums, so
# sRGB white maps to a = b = 0 exactly up to rounding.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = _RGB_TO_XYZ.sum(axis=1)
_DELTA = 6.0 / 29.0


def _apply_matrix(m: np.ndarray, v, xp):
  """v [..., 3] -> v @ m.T as elementwise products (float32-exact on any backend)."""
  m = xp.asarray(m, dtype=v.dtype)
  return xp.sum(v[..., None, :] * m, axis=-1)


def rgb_to_lab(rgb, xp=jnp):
  """sRGB [..., 3] in [0, 1] -> CIE L*a*b* [..., 3] (D65 white; L in [0, 100]),
  the colour space of Zhang et al. 2016; standard sRGB gamma and CIE formulas.

  ``xp`` is the array module: ``jax.numpy`` (traceable, differentiable), or
  ``numpy`` for host-side constants such as the in-gamut ab bins."""
  rgb = xp.asarray(rgb)
  if not xp.issubdtype(rgb.dtype, xp.floating):
    rgb = rgb.astype(xp.float32)
  lin = xp.where(rgb > 0.04045,
                 ((xp.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4,
                 rgb / 12.92)
  t = _apply_matrix(_RGB_TO_XYZ, lin, xp) / xp.asarray(_WHITE_D65, dtype=rgb.dtype)
  f = xp.where(t > _DELTA ** 3, xp.cbrt(xp.maximum(t, _DELTA ** 3)),
               t / (3 * _DELTA ** 2) + 4.0 / 29.0)
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return xp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: jax.Array) -> jax.Array:
  """CIE L*a*b* [..., 3] (D65) -> sRGB [..., 3], the inverse of ``rgb_to_lab``.
  Not clipped: out-of-gamut Lab values give sRGB values outside [0, 1]."""
  lab = jnp.asarray(lab)
  if not jnp.issubdtype(lab.dtype, jnp.floating):
    lab = lab.astype(jnp.float32)
  fy = (lab[..., 0] + 16.0) / 116.0
  f = jnp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
  t = jnp.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0))
  lin = _apply_matrix(_XYZ_TO_RGB, t * jnp.asarray(_WHITE_D65, lab.dtype), jnp)
  return jnp.where(lin > 0.0031308,
                   1.055 * jnp.maximum(lin, 0.0031308) ** (1 / 2.4) - 0.055,
                   12.92 * lin)


def lab(images):
  """CIE Lab [..., 3] of float images [..., C] in [0, 1]; a 1-channel image is
  gray (R = G = B), so its a and b are about 0."""
  images = jnp.asarray(images, jnp.float32)
  if images.shape[-1] == 1:
    images = jnp.broadcast_to(images, images.shape[:-1] + (3,))
  return rgb_to_lab(images)


def scale_l(lightness):
  """L in [0, 100] -> ``L / 50 - 1`` in [-1, 1]."""
  return lightness / 50.0 - 1.0


def l_input(images):
  """The L encoders' input: ``L / 50 - 1`` [..., 1] of float images in [0, 1]
  (RGB or gray)."""
  return scale_l(lab(images)[..., :1])


def lab_input(images):
  """Scaled Lab [..., 3]: ``(L / 50 - 1, a / 110, b / 110)``."""
  x = lab(images)
  return jnp.concatenate([scale_l(x[..., :1]), x[..., 1:] / AB_SCALE], axis=-1)


def to_rgb(lightness, ab):
  """sRGB in [0, 1] of L [n, H, W, 1] and ab [n, h, w, 2] (ab upsampled
  bilinearly to H x W), clipped to [0, 1]."""
  n, hh, ww, _ = lightness.shape
  ab = jax.image.resize(ab, (n, hh, ww, 2), "bilinear")
  return jnp.clip(lab_to_rgb(jnp.concatenate([lightness, ab], -1)), 0.0, 1.0)
