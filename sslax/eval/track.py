"""Label propagation through a clip with a dense encoder's features, and
its scores: masks by DAVIS's region similarity J and boundary F-measure F
(Perazzi et al. 2016), keypoints by PCK.

The protocol is that of the label-propagation work that followed
"Tracking emerges by colorizing videos" (Vondrick et al. 2018), e.g. Jabri
et al. 2020: the first frame's labels are given; each later frame t takes
its labels from a context of the first frame and the ``context`` frames
before it (their propagated labels). Target position i attends to context
positions j with weights ``softmax(f_i . f_j / temperature)`` over its
``topk`` most similar positions, positions of the short-term frames
restricted to within ``radius`` feature cells of i. Labels are one-hot maps
(one channel per object, background included) and Gaussian heatmaps per
keypoint, at the feature resolution; predictions are upsampled to the
frame and decoded (argmax; a keypoint is its heatmap's peak, refined by the
weighted mean of the 3x3 cells around it).
"""

import math

import numpy as np
from scipy import ndimage

# DAVIS's boundary tolerance: a fraction of the image diagonal.
BOUNDARY_TOLERANCE = 0.008
# radius: 12 feature cells of a DAVIS frame (480p, stride 8: a 60-cell-high grid) are a
# fifth of its height; 3 cells are that fraction of the corpus grid (64 px, stride 4).
DEFAULTS = dict(context=20, topk=10, radius=3.0, temperature=0.05)


def one_hot_masks(masks: np.ndarray, num_objects: int) -> np.ndarray:
  """uint8 [..., H, W] ids (0 background) -> float32 [..., H, W, num_objects + 1]."""
  return (masks[..., None] == np.arange(num_objects + 1)).astype(np.float32)


def downsample(maps: np.ndarray, size) -> np.ndarray:
  """[H, W, C] -> [h, w, C] by averaging blocks (H, W multiples of h, w)."""
  (height, width, channels), (h, w) = maps.shape, size
  return maps.reshape(h, height // h, w, width // w, channels).mean(axis=(1, 3))


def upsample(maps: np.ndarray, size) -> np.ndarray:
  """[h, w, C] -> [H, W, C], bilinear (cell centres at their pixel centres)."""
  h, w, _ = maps.shape
  height, width = size
  zoom = (height / h, width / w, 1)
  return ndimage.zoom(maps, zoom, order=1, mode="nearest", grid_mode=True)


def keypoint_heatmaps(keypoints: np.ndarray, size, stride: float,
                      sigma: float = 0.75) -> np.ndarray:
  """[K, 2] pixel (x, y) -> float32 [h, w, K] Gaussians (``sigma`` in cells)
  at the feature resolution ``size`` whose cells are ``stride`` pixels."""
  h, w = size
  ys, xs = np.mgrid[0:h, 0:w]
  cx = (keypoints[:, 0] + 0.5) / stride - 0.5
  cy = (keypoints[:, 1] + 0.5) / stride - 0.5
  d2 = (xs[..., None] - cx) ** 2 + (ys[..., None] - cy) ** 2
  return np.exp(-d2 / (2 * sigma ** 2)).astype(np.float32)


def heatmap_peaks(heatmaps: np.ndarray, stride: float) -> np.ndarray:
  """[h, w, K] -> [K, 2] pixel (x, y): each map's peak, refined by the
  weighted mean of the 3x3 cells around it."""
  h, w, k = heatmaps.shape
  out = np.zeros((k, 2), np.float32)
  for i in range(k):
    m = heatmaps[..., i]
    y, x = np.unravel_index(np.argmax(m), m.shape)
    y0, y1, x0, x1 = max(y - 1, 0), min(y + 2, h), max(x - 1, 0), min(x + 2, w)
    patch = np.maximum(m[y0:y1, x0:x1], 0)
    gy, gx = np.mgrid[y0:y1, x0:x1]
    total = patch.sum()
    cy, cx = ((gy * patch).sum() / total, (gx * patch).sum() / total) if total > 0 else (y, x)
    out[i] = ((cx + 0.5) * stride - 0.5, (cy + 0.5) * stride - 0.5)
  return out


def _local_mask(size, radius: float) -> np.ndarray:
  """bool [h*w, h*w]: position j is within ``radius`` cells of position i."""
  h, w = size
  ys, xs = np.mgrid[0:h, 0:w]
  p = np.stack([ys.ravel(), xs.ravel()], -1).astype(np.float32)
  d2 = ((p[:, None] - p[None]) ** 2).sum(-1)
  return d2 <= radius ** 2


def _attention(f, t: int, local, *, context: int, topk: int, temperature: float):
  """Where target frame ``t`` of the normalised ``f`` [T, hw, d] attends:
  (its context frames, the top positions int [hw, k] among their
  concatenated positions, their softmax weights [hw, k])."""
  frames = [0] + [s for s in range(max(1, t - context), t)]
  sims = []
  for s in frames:
    sim = f[t] @ f[s].T  # [hw, hw]
    if s != 0:  # the short-term frames: only nearby positions
      sim = np.where(local, sim, -np.inf)
    sims.append(sim)
  sim = np.concatenate(sims, axis=1)  # [hw, len(frames) * hw]
  k = min(topk, sim.shape[1])
  top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
  top_sim = np.take_along_axis(sim, top, axis=1) / temperature
  top_sim = top_sim - top_sim.max(axis=1, keepdims=True)
  weights = np.exp(top_sim)
  return frames, top, weights / weights.sum(axis=1, keepdims=True)


def _normalised(features: np.ndarray) -> np.ndarray:
  """[T, h, w, d] -> float32 [T, h * w, d], L2-normalised per position."""
  t_len, h, w, d = features.shape
  f = features.reshape(t_len, h * w, d).astype(np.float32)
  return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)


def propagate(features: np.ndarray, first_labels: np.ndarray, *, context: int = 20,
              topk: int = 10, radius: float = 3.0, temperature: float = 0.05) -> np.ndarray:
  """``features`` float [T, h, w, d], ``first_labels`` float [h, w, C] ->
  labels float [T, h, w, C] (frame 0 the given ones). Features are
  L2-normalised per position here."""
  t_len, h, w, _ = features.shape
  f = _normalised(features)
  labels = np.zeros((t_len, h * w, first_labels.shape[-1]), np.float32)
  labels[0] = first_labels.reshape(h * w, -1)
  local = _local_mask((h, w), radius)
  for t in range(1, t_len):
    frames, top, weights = _attention(f, t, local, context=context, topk=topk,
                                      temperature=temperature)
    ctx = np.concatenate([labels[s] for s in frames], axis=0)
    labels[t] = np.einsum("ik,ikc->ic", weights, ctx[top])
  return labels.reshape(t_len, h, w, -1)


def pixel_affinities(features: np.ndarray, t: int, position, **options) -> tuple:
  """The weights with which cell ``position`` (row, column of the feature
  grid) of frame ``t`` >= 1 takes its labels in ``propagate``: (its context
  frames, float32 [len(frames), h, w], summing to 1; zero outside its top-k)."""
  options = {**DEFAULTS, **options}
  t_len, h, w, _ = features.shape
  if not 1 <= t < t_len:
    raise ValueError(f"frame {t} has no context: use 1..{t_len - 1}")
  frames, top, weights = _attention(_normalised(features), t,
                                    _local_mask((h, w), options["radius"]),
                                    context=options["context"], topk=options["topk"],
                                    temperature=options["temperature"])
  i = position[0] * w + position[1]
  out = np.zeros(len(frames) * h * w, np.float32)
  out[top[i]] = weights[i]
  return frames, out.reshape(len(frames), h, w)


def _decode_masks(labels: np.ndarray, first_mask: np.ndarray, channels: int) -> np.ndarray:
  """uint8 [T, H, W]: the argmax of the first ``channels`` of propagated
  ``labels`` [T, h, w, C], upsampled to ``first_mask``'s size; frame 0 is
  ``first_mask`` itself."""
  size = first_mask.shape
  pred = np.stack([np.argmax(upsample(labels[t, ..., :channels], size), -1)
                   for t in range(len(labels))]).astype(np.uint8)
  pred[0] = first_mask
  return pred


def propagate_masks(features: np.ndarray, first_mask: np.ndarray, num_objects: int,
                    **options) -> np.ndarray:
  """The masks of every frame, uint8 [T, H, W], propagated from
  ``first_mask`` (ids 0..num_objects, 0 background) with ``features``
  [T, h, w, d] as ``track_clip`` does."""
  _, h, w, _ = features.shape
  first = downsample(one_hot_masks(first_mask, num_objects), (h, w))
  labels = propagate(features, first, **{**DEFAULTS, **options})
  return _decode_masks(labels, first_mask, num_objects + 1)


def region_similarity(pred: np.ndarray, true: np.ndarray) -> float:
  """J: intersection over union of two bool masks (1 when both are empty)."""
  union = np.logical_or(pred, true).sum()
  return 1.0 if union == 0 else float(np.logical_and(pred, true).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
  """The mask's boundary pixels under sslax's rule: mask pixels with a
  4-neighbour outside it, the image's edge counting as outside."""
  eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1),
                                  border_value=0)
  return mask & ~eroded


def davis_boundary(mask: np.ndarray) -> np.ndarray:
  """The boundary under the DAVIS 2017 toolkit's rule: every pixel, in the
  mask or not, whose right, lower or lower-right neighbour differs from it;
  beyond the image's edge there is no neighbour, so the edge draws none."""
  b = np.zeros(mask.shape, bool)
  b[:, :-1] |= mask[:, :-1] != mask[:, 1:]
  b[:-1, :] |= mask[:-1, :] != mask[1:, :]
  b[:-1, :-1] |= mask[:-1, :-1] != mask[1:, 1:]
  return b


def boundary_f(pred: np.ndarray, true: np.ndarray,
               tolerance: float = BOUNDARY_TOLERANCE, boundary=_boundary) -> float:
  """F: the F-measure of boundary precision and recall, a pixel of one
  ``boundary(mask)`` matching within ``ceil(tolerance * diagonal)`` pixels (a
  disc) of the other. 1 when both boundaries are empty, 0 when one is (under
  ``davis_boundary`` a mask filling the frame has none)."""
  pb, tb = boundary(pred.astype(bool)), boundary(true.astype(bool))
  if not pb.any() and not tb.any():
    return 1.0
  if not pb.any() or not tb.any():
    return 0.0
  r = int(math.ceil(tolerance * math.hypot(*pred.shape)))
  yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
  disc = xx ** 2 + yy ** 2 <= r ** 2
  precision = (pb & ndimage.binary_dilation(tb, structure=disc)).sum() / pb.sum()
  recall = (tb & ndimage.binary_dilation(pb, structure=disc)).sum() / tb.sum()
  return 0.0 if precision + recall == 0 else float(2 * precision * recall /
                                                    (precision + recall))


def pck(pred: np.ndarray, true: np.ndarray, visible: np.ndarray, box_size: np.ndarray,
        alpha: float) -> tuple:
  """(correct, counted): keypoints ``pred`` [N, 2] within ``alpha`` x their
  object's ``box_size`` [N] of ``true`` [N, 2], among the ``visible`` [N]."""
  error = np.linalg.norm(pred - true, axis=-1)
  ok = (error <= alpha * box_size) & visible
  return int(ok.sum()), int(visible.sum())


def object_box_sizes(keypoints: np.ndarray, per_object: int) -> np.ndarray:
  """[K, 2] keypoints of objects with ``per_object`` each -> [K] the larger
  side of each object's keypoint box (its extreme pixels)."""
  k = keypoints.reshape(-1, per_object, 2)
  side = (k.max(axis=1) - k.min(axis=1)).max(axis=-1) + 1.0
  return np.repeat(side, per_object)


def score_clip(pred_masks, masks, pred_keypoints, keypoints, visible, num_objects: int,
               per_object: int) -> dict:
  """J and F per object and PCK counts of one clip. sslax's J and F are means
  over frames 1..T-1 with ``_boundary``; the DAVIS 2017 toolkit's
  (``davis2017``) leave the last frame out too and draw ``davis_boundary``
  (a clip of 2 frames or fewer has no such frame: NaN, as in the toolkit).
  A keypoint visible in frames 0 and t is correct within alpha x the larger
  side of its object's keypoint box in frame t."""
  out = {"J": [], "F": [], "davis2017": {"J": [], "F": []},
         "pck": {0.1: [0, 0], 0.2: [0, 0]}}
  t_len = len(masks)
  for k in range(1, num_objects + 1):
    pred, true = pred_masks == k, masks == k
    j = [region_similarity(pred[t], true[t]) for t in range(1, t_len)]
    out["J"].append(np.mean(j))
    out["F"].append(np.mean([boundary_f(pred[t], true[t]) for t in range(1, t_len)]))
    out["davis2017"]["J"].append(np.mean(j[:-1]))
    out["davis2017"]["F"].append(np.mean([boundary_f(pred[t], true[t], boundary=davis_boundary)
                                          for t in range(1, t_len - 1)]))
  for t in range(1, t_len):
    counted = visible[t] & visible[0]  # a keypoint hidden at the start is not tracked
    size = object_box_sizes(keypoints[t], per_object)
    for alpha in out["pck"]:
      c, n = pck(pred_keypoints[t], keypoints[t], counted, size, alpha)
      out["pck"][alpha][0] += c
      out["pck"][alpha][1] += n
  return out


def track_clip(features, masks, keypoints, visible, *, num_objects: int, per_object: int,
               **options) -> tuple:
  """Propagates a clip's first-frame masks and keypoints with ``features``
  [T, h, w, d]; returns (predicted masks [T, H, W], keypoints [T, K, 2])."""
  t_len, height, _ = masks.shape
  _, h, w, _ = features.shape
  stride = height / h
  first = np.concatenate([downsample(one_hot_masks(masks[0], num_objects), (h, w)),
                          keypoint_heatmaps(keypoints[0], (h, w), stride)], axis=-1)
  labels = propagate(features, first, **{**DEFAULTS, **options})
  c = num_objects + 1
  pred_masks = _decode_masks(labels, masks[0], c)
  pred_kp = np.stack([heatmap_peaks(labels[t, ..., c:], stride) for t in range(t_len)])
  pred_kp[0] = keypoints[0]
  return pred_masks, pred_kp


def _j_and_f(scores) -> dict:
  """Means of J and F over every object of ``scores`` (each a dict of
  per-object lists ``J`` and ``F``), and J&F, in percent."""
  j = np.concatenate([s["J"] for s in scores])
  f = np.concatenate([s["F"] for s in scores])
  out = {"J": 100 * float(j.mean()), "F": 100 * float(f.mean())}
  out["J&F"] = (out["J"] + out["F"]) / 2
  return out


def summarise(scores) -> dict:
  """Means over every object of every clip (J, F, J&F; and under the DAVIS
  2017 toolkit's rules, ``davis2017``) and PCK@0.1/0.2 over every counted
  keypoint, in percent."""
  out = _j_and_f(scores)
  out["davis2017"] = _j_and_f([s["davis2017"] for s in scores])
  for alpha in (0.1, 0.2):
    correct = sum(s["pck"][alpha][0] for s in scores)
    counted = sum(s["pck"][alpha][1] for s in scores)
    out[f"PCK@{alpha}"] = 100 * correct / max(counted, 1)
  out["objects"] = int(sum(len(s["J"]) for s in scores))
  return out


def copy_first_frame(clip, masks, keypoints):
  """The baseline that tracks nothing: every frame gets the first's labels."""
  del clip
  return (np.repeat(masks[:1], len(masks), axis=0),
          np.repeat(keypoints[:1], len(keypoints), axis=0))


def lab_pixel_features(clip: np.ndarray, stride: int) -> np.ndarray:
  """The raw-pixel baseline's features: each ``stride`` x ``stride`` cell's
  CIE Lab pixels (L / 100, a / 110, b / 110), flattened, centred per clip.
  uint8 [T, H, W, 3] -> float32 [T, H / stride, W / stride, 3 stride^2]."""
  from sslax.data.color import rgb_to_lab  # pylint: disable=g-import-not-at-top
  lab = rgb_to_lab(clip.astype(np.float32) / 255.0, xp=np) / np.array([100.0, 110.0, 110.0])
  t, height, width, c = lab.shape
  h, w = height // stride, width // stride
  cells = lab.reshape(t, h, stride, w, stride, c).transpose(0, 1, 3, 2, 4, 5)
  cells = cells.reshape(t, h, w, stride * stride * c)
  return (cells - cells.mean(axis=(0, 1, 2))).astype(np.float32)


def flow_track(clip, masks, keypoints):
  """The optical-flow baseline: TV-L1 flow (Zach et al. 2007, scikit-image's
  ``optical_flow_tvl1``) between consecutive gray frames; masks are warped
  backwards (nearest pixel), keypoints moved forwards, frame by frame."""
  try:
    from skimage.registration import optical_flow_tvl1  # pylint: disable=g-import-not-at-top
  except ImportError:
    from sslax.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError("the flow baseline needs scikit-image: pip install -e '.[video]'") from None
  gray = clip.astype(np.float32).mean(-1) / 255.0
  t_len, height, width = masks.shape
  ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
  pred, kp = [masks[0]], [keypoints[0].copy()]
  for t in range(1, t_len):
    back = optical_flow_tvl1(gray[t], gray[t - 1])  # gray[t](r) ~ gray[t-1](r + back)
    sy = np.clip(np.round(ys + back[0]), 0, height - 1).astype(int)
    sx = np.clip(np.round(xs + back[1]), 0, width - 1).astype(int)
    pred.append(pred[-1][sy, sx])
    fwd = optical_flow_tvl1(gray[t - 1], gray[t])  # a point r of t-1 is at r + fwd in t
    p = kp[-1]
    iy = np.clip(np.round(p[:, 1]), 0, height - 1).astype(int)
    ix = np.clip(np.round(p[:, 0]), 0, width - 1).astype(int)
    kp.append(p + np.stack([fwd[1][iy, ix], fwd[0][iy, ix]], -1))
  return np.stack(pred), np.stack(kp).astype(np.float32)


def evaluate(source, features_fn, *, num_objects: int, per_object: int, limit=None,
             tracker=None, **options) -> dict:
  """``summarise`` over the clips of ``source`` (the video corpus' examples),
  each tracked with ``features_fn(clip) -> [T, h, w, d]`` by ``track_clip``,
  or by ``tracker(clip, masks, keypoints) -> (masks, keypoints)`` when given
  (``copy_first_frame``, ``flow_track``)."""
  scores = []
  n = len(source) if limit is None else min(limit, len(source))
  for i in range(n):
    ex = source.get(np.array([i]))
    clip, masks = ex["clip"][0], ex["masks"][0]
    keypoints, visible = ex["keypoints"][0], ex["visible"][0]
    if tracker is not None:
      pred, pred_kp = tracker(clip, masks, keypoints)
    else:
      pred, pred_kp = track_clip(features_fn(clip), masks, keypoints, visible,
                                 num_objects=num_objects, per_object=per_object, **options)
    scores.append(score_clip(pred, masks, pred_kp, keypoints, visible, num_objects,
                             per_object))
  return summarise(scores)


def encoder_features(encoder):
  """``features_fn(clip)``: the encoder's maps of each frame (eval mode)."""
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.encoder import embed_fn  # pylint: disable=g-import-not-at-top
  embed = jax.jit(embed_fn(encoder.definition))

  def features(clip):
    return np.asarray(embed(encoder.variables, clip))

  return features


def clip_features(workdir: str, features: str, encoder=None):
  """``features_fn(clip) -> [T, h, w, d]`` of ``features``: ``encoder``, the
  workdir's dense encoder ``encoder`` (default: the primary); ``random_init``,
  the same network at its initialisation; ``lab_pixels``, raw Lab cells of
  4x4 pixels."""
  if features == "lab_pixels":
    return lambda clip: lab_pixel_features(clip, 4)
  from sslax.train import artifact  # pylint: disable=g-import-not-at-top
  return encoder_features(artifact.restore_encoder(workdir, name=encoder,
                                                   random_init=features == "random_init"))


def clip_data(config, evaluation: str):
  """The data config of ``config.evals.<evaluation>.data``, the video corpus
  in ``data/video`` where it names none."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  settings = config.get("evals", {}).get(evaluation, {})
  data = ml_collections.ConfigDict(dict(settings.get("data", {}) or {}))
  with data.unlocked():
    data.name = data.get("name") or "video_corpus"
    data.data_dir = data.get("data_dir") or "data/video"
  return data


def clip_source(config) -> tuple:
  """The test clips of ``config.evals.track.data`` (default the video corpus
  in ``data/video``): ``(source, its data config, objects per clip, keypoints
  per object)``; one line when its examples lack masks or keypoints."""
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  from sslax.errors import UserError  # pylint: disable=g-import-not-at-top
  data = clip_data(config, "track")
  source = get_source(data, data.get("split") or "test")
  spec = source.element_spec
  missing = [k for k in ("clip", "masks", "keypoints", "visible") if k not in spec]
  if missing:
    raise UserError(f"`sslax eval track` needs clips with masks and keypoints, but "
                    f"{data.name} examples lack {', '.join(missing)}; set "
                    "--config.evals.track.data.name=video_corpus")
  t, height, width = spec["masks"][0]
  if spec["clip"][0][:3] != (t, height, width) or spec["keypoints"][0][:1] != (t,):
    raise UserError(f"{data.name}: masks {spec['masks'][0]}, keypoints "
                    f"{spec['keypoints'][0]} do not match the clips {spec['clip'][0]}")
  num_objects = int(source.get(np.arange(min(len(source), 50)))["masks"].max())
  per_object = spec["keypoints"][0][1] // max(num_objects, 1)
  return source, data, num_objects, per_object


def evaluate_workdir(workdir: str, features: str = "encoder", *, limit=None, overrides=(),
                     encoder=None, **options) -> dict:
  """``sslax eval track``: the workdir's dense encoder (or a baseline) on the
  test clips of ``config.evals.track.data``; writes ``eval/track*.json``."""
  from sslax.eval.evaluate import write_eval  # pylint: disable=g-import-not-at-top
  from sslax.train import checkpoint, run_config  # pylint: disable=g-import-not-at-top
  config = run_config.load_config(workdir, overrides, reads_data=False)
  source, data, num_objects, per_object = clip_source(config)
  tracker = {"copy": copy_first_frame, "flow": flow_track}.get(features)
  fn = None if tracker is not None else clip_features(workdir, features, encoder)
  result = evaluate(source, fn, num_objects=num_objects, per_object=per_object,
                    limit=limit, tracker=tracker, **options)
  result.update(features=features, encoder=encoder, options=options,
                clips=len(source) if limit is None else min(limit, len(source)),
                dataset=f"{data.name} ({data.data_dir}, test)",
                step=checkpoint.latest_step(workdir))
  write_eval(workdir, "track" if features == "encoder" else f"track_{features}", result)
  return result
