"""Training on a user's own data: image folders (JPEG and PNG of mixed sizes,
class-per-subfolder or flat and unlabelled), .npz/.npy arrays, the split keys
of config.data, and the one-line errors for bad input."""

import json
import os

import numpy as np
import pytest

from conftest import ROOT, fails_cleanly
from sslax import cli
from sslax.data.source import labelled

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")
CLASSES = ("cat", "dog", "eel")
# Tiny colour images and a short run: each training test compiles one smoke model.
RGB = ["--config.data.image_size=(16, 16)", "--config.data.mean=(0.5, 0.5, 0.5)",
       "--config.data.std=(0.25, 0.25, 0.25)", "--config.progress_bar=False",
       "--config.num_steps=4", "--config.checkpoint_every=4", "--config.log_every=2",
       "--config.online_eval_every=4", "--config.global_batch_size=16"]


def _image(rng, cls, gray=False):
  """A random-size image whose colour says its class."""
  h, w = rng.integers(12, 40, size=2)
  base = np.zeros(3, np.float32)
  base[cls % 3] = 200.0
  image = base + rng.normal(0, 30, (h, w, 3))
  image = np.clip(image, 0, 255).astype(np.uint8)
  return image.mean(-1).astype(np.uint8) if gray else image


def _save(path, image):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(image).save(path)


def make_folder(root, *, splits=(("train", 8), ("test", 4)), classes=CLASSES, seed=0):
  """root/<split>/<class>/<i>.jpg|png (alternating), or root/<class>/... when
  ``splits`` is one unnamed split (``((None, n),)``)."""
  rng = np.random.default_rng(seed)
  for split, n in splits:
    for c, name in enumerate(classes):
      folder = os.path.join(root, *(s for s in (split, name) if s))
      os.makedirs(folder, exist_ok=True)
      for i in range(n):
        _save(os.path.join(folder, f"{i}.{'jpg' if i % 2 else 'png'}"), _image(rng, c))
  return str(root)


def make_flat_folder(root, n=24, seed=0):
  rng = np.random.default_rng(seed)
  os.makedirs(root, exist_ok=True)
  for i in range(n):
    _save(os.path.join(root, f"{i:03d}.{'jpg' if i % 2 else 'png'}"), _image(rng, i))
  return str(root)


def _train(workdir, data_args, extra=()):
  cli.main(["train", "--config", SMOKE, "--workdir", str(workdir), *RGB, *data_args,
            *extra])


def _last_json(capsys):
  return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_image_folder_source(tmp_path):
  """Splits, labels from sorted class names, host resizing, channel handling."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  data_dir = make_folder(tmp_path / "photos", splits=(("train", 3), ("test", 2)))
  config = ml_collections.ConfigDict(dict(name="image_folder", data_dir=data_dir,
                                          image_size=(10, 12), load_size=0, channels=0))
  train = get_source(config, "train")
  assert len(train) == 9 and train.element_spec["image"][0] == (10, 12, 3)
  assert train.class_names == CLASSES and train.num_classes == 3 and labelled(train)
  np.testing.assert_array_equal(train.labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
  _examples = train.get([8, 0, 4])
  images, labels = _examples["image"], _examples["label"]
  assert images.shape == (3, 10, 12, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, [2, 0, 1])
  # The colour of its class survives decoding and resizing (JPEG and PNG).
  assert [int(np.argmax(im.reshape(-1, 3).mean(0))) for im in images] == [2, 0, 1]
  assert len(get_source(config, "train+test")) == 15
  config.update(channels=1, load_size=8)
  gray = get_source(config, "test")
  assert gray.element_spec["image"][0] == (8, 8, 1) and gray.get([0])["image"].shape == (1, 8, 8, 1)
  # Without train/ the folder itself is the training split.
  only = make_folder(tmp_path / "one", splits=((None, 2),))
  source = get_source(ml_collections.ConfigDict(dict(
      name="image_folder", data_dir=only, image_size=(8, 8))), "train")
  assert len(source) == 6 and source.class_names == CLASSES
  # Gray images stay gray (channels 0: as the images are).
  os.makedirs(tmp_path / "gray")
  for i in range(3):
    _gray_image(str(tmp_path / "gray" / f"{i}.png"))
  gray = get_source(ml_collections.ConfigDict(dict(
      name="image_folder", data_dir=str(tmp_path / "gray"), image_size=(8, 8))), "train")
  assert gray.element_spec["image"][0] == (8, 8, 1) and gray.num_classes == 0 and not labelled(gray)
  assert gray.get([0, 2])["image"].shape == (2, 8, 8, 1) and gray.labels.tolist() == [-1] * 3


def test_train_and_evaluate_on_an_image_folder(tmp_path, capsys):
  data_dir = make_folder(tmp_path / "photos")
  workdir = tmp_path / "run"
  data = ["--config.data.name=image_folder", f"--config.data.data_dir={data_dir}"]
  _train(workdir, data)
  records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
  assert [r["step"] for r in records] == [2, 4]
  # test/ scored online. Each class has its own colour (_image): on the 12
  # test images (chance 1/3) online kNN, the linear probe and kNN measured 1.0.
  assert records[-1]["online_knn_top1_k20"] >= 0.75
  capsys.readouterr()
  cli.main(["eval", "linear", "--json", "--workdir", str(workdir)])
  linear = _last_json(capsys)
  assert linear["num_labels"] == 24 and linear["top1"] >= 0.75
  cli.main(["eval", "knn", "--json", "--workdir", str(workdir)])
  assert _last_json(capsys)["top1_k20"] >= 0.75
  # Evaluation splits are config: probing on train+test and scoring train works.
  cli.main(["eval", "knn", "--json", "--workdir", str(workdir),
            "--config.data.eval_train_split=train+test", "--config.data.eval_split=train"])
  assert _last_json(capsys)["top1_k20"] > 0.5  # train images are in the bank
  # A split the folder does not have: one line listing those it has.
  fails_cleanly(capsys, ["eval", "knn", "--workdir", str(workdir),
                          "--config.data.eval_split=validation"],
                 "has splits test, train, not 'validation'; set config.data.eval_split")
  # Pictures of a small evaluation split (12 test images), legend from folder names.
  cli.main(["viz", "--workdir", str(workdir)])
  assert [os.path.basename(p) for p in capsys.readouterr().out.split()] == [
      "tsne.png", "retrieval.png", "curves.png"]


def test_unlabelled_folder_trains_and_refuses_label_based_evaluation(tmp_path, capsys):
  data_dir = make_flat_folder(tmp_path / "photos")
  workdir = tmp_path / "run"
  _train(workdir, ["--config.data.name=image_folder", f"--config.data.data_dir={data_dir}"])
  err = capsys.readouterr().err
  assert "online evaluation is off" in err
  assert "online linear probe is off: the training data has no labels" in err
  # what to run next: the probes only with labelled data given
  done = err.strip().splitlines()[-1]
  assert "next: " in done and "export --workdir" in done
  assert "eval knn" not in done and "eval finetune" not in done
  assert f"eval linear --workdir {workdir} --config.data.data_dir=LABELLED_DATA" in done
  records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
  assert [r["step"] for r in records] == [2, 4]
  assert not any("online_knn_top1_k20" in r for r in records)
  assert all(np.isfinite(r["loss"]) and "probe_loss" not in r for r in records)
  for protocol in ("linear", "knn", "finetune"):
    fails_cleanly(capsys, ["eval", protocol, "--workdir", str(workdir)],
                   "needs labels but split 'train' of image_folder "
                   "(config.data.eval_train_split) has examples without one")
  # The encoder is probed on a labelled folder instead.
  labelled = make_folder(tmp_path / "labelled", splits=(("train", 4), ("test", 2)))
  cli.main(["eval", "linear", "--json", "--workdir", str(workdir),
            f"--config.data.data_dir={labelled}"])
  assert _last_json(capsys)["num_labels"] == 12


def test_arrays_train_and_evaluate(tmp_path, capsys):
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(3), 12)
  images = np.stack([_image(rng, c)[:12, :12] for c in labels])
  test_labels = np.repeat(np.arange(3), 4)
  test_images = np.stack([_image(rng, c)[:12, :12] for c in test_labels])
  path = tmp_path / "data.npz"
  np.savez(path, images=images, labels=labels, test_images=test_images,
           test_labels=test_labels, unlabelled_images=images[:8],
           unlabelled_labels=np.full(8, -1))
  workdir = tmp_path / "run"
  _train(workdir, ["--config.data.name=arrays", f"--config.data.data_dir={path}",
                   "--config.data.train_split=train+unlabelled"])
  # 12x12 images trained at image_size 16x16: said once, with the override.
  err = capsys.readouterr().err
  assert err.count("sslax: note: the training images are 12x12 and "
                   "config.data.image_size is 16x16: every view is resized") == 1, err
  assert "--config.data.image_size=12,12" in err
  records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
  assert "online_knn_top1_k20" in records[-1]
  capsys.readouterr()
  cli.main(["eval", "linear", "--json", "--workdir", str(workdir)])
  assert _last_json(capsys)["num_labels"] == 36
  cli.main(["eval", "knn", "--json", "--workdir", str(workdir)])
  # Colour-coded classes, 12 test images: chance 1/3, measured 1.0.
  assert _last_json(capsys)["top1_k20"] >= 0.75
  # An evaluation split whose labels are all -1: one line naming the fix.
  fails_cleanly(capsys, ["eval", "linear", "--workdir", str(workdir),
                          "--config.data.eval_split=unlabelled"],
                 "set --config.data.eval_split to a labelled split")
  # ...and one partly labelled (kNN reads every label): the same.
  fails_cleanly(capsys, ["eval", "knn", "--workdir", str(workdir),
                          "--config.data.eval_train_split=train+unlabelled"],
                 "config.data.eval_train_split")


def test_arrays_layouts(tmp_path):
  """A directory of <split>.npz files, a .npy of unlabelled gray images."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  images = np.zeros((5, 6, 6, 3), np.uint8)
  os.makedirs(tmp_path / "dir")
  np.savez(tmp_path / "dir" / "train.npz", images=images, labels=np.arange(5) % 2,
           class_names=np.array(["a", "b"]))
  np.savez(tmp_path / "dir" / "test.npz", images=images[:2])
  np.save(tmp_path / "gray.npy", np.zeros((4, 6, 6), np.uint8))

  def source(data_dir, split):
    return get_source(ml_collections.ConfigDict(dict(name="arrays", data_dir=str(data_dir))),
                      split)

  train = source(tmp_path / "dir", "train")
  assert len(train) == 5 and train.num_classes == 2 and train.class_names == ("a", "b")
  test = source(tmp_path / "dir", "test")
  assert not labelled(test) and test.labels.tolist() == [-1, -1]
  gray = source(tmp_path / "gray.npy", "train")
  assert gray.element_spec["image"][0] == (6, 6, 1) and gray.num_classes == 0 and not labelled(gray)


def test_python_entry_point_with_arrays_in_memory(tmp_path, smoke_config, capsys):
  from sslax.data.arrays import ArraySource  # pylint: disable=g-import-not-at-top
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(2), 16).astype(np.int32)
  images = np.stack([_image(rng, c)[:12, :12] for c in labels])
  config = smoke_config
  config.data.update(image_size=(12, 12), mean=(0.5,) * 3, std=(0.25,) * 3)
  config.update(num_steps=2, checkpoint_every=2, log_every=1, global_batch_size=16,
                progress_bar=False)
  source = ArraySource(images, labels, num_classes=2)
  state = train_and_evaluate(config, str(tmp_path / "run"), source=source,
                             eval_sources=(source, source))
  assert int(state.step) == 2
  records = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
  assert "online_knn_top1_k20" in records[-1]
  # config.json says the run saw these arrays, not the config's data.name
  # (fashion_mnist): an evaluation of the saved config's data is refused...
  run = str(tmp_path / "run")
  saved = json.load(open(os.path.join(run, "config.json")))
  assert saved["data"]["given_source"] == "ArraySource of 32 examples"
  line = fails_cleanly(capsys, ["eval", "knn", "--workdir", run], "given to train_and_evaluate")
  assert "--config.data.name=arrays --config.data.data_dir=" in line and "fashion_mnist" in line
  # ...and runs on the arrays once the command says where they are.
  np.savez(tmp_path / "mine.npz", images=images, labels=labels, test_images=images,
           test_labels=labels)
  cli.main(["eval", "knn", "--workdir", run, "--config.data.name=arrays",
            f"--config.data.data_dir={tmp_path / 'mine.npz'}"])
  assert 0.0 <= json.load(open(os.path.join(run, "eval", "knn.json")))["top1_k20"] <= 1.0
  # The export needs no data and records what the run trained on.
  cli.main(["export", "--workdir", run, "--out", str(tmp_path / "enc")])
  info = json.load(open(tmp_path / "enc" / "encoder.json"))
  assert info["dataset"] == "ArraySource of 32 examples"
  # Resumed with the same source: the same config, nothing to do.
  again = train_and_evaluate(config, run, source=source, eval_sources=(source, source))
  assert int(again.step) == 2


def _corrupt(path):
  with open(path, "wb") as f:
    f.write(b"this is not an image")


def _truncate(path):
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) * 3 // 4])  # the header survives: found when decoded


def _gray_image(path):
  _save(path, _image(np.random.default_rng(1), 0, gray=True))


@pytest.mark.parametrize("damage,match", [
    ("empty", "holds no images"),
    ("missing", "does not exist"),
    ("corrupt", "cannot read image"),
    ("truncated", "cannot read image"),
    ("mixed", "mixes gray and colour images"),
    ("loose", "holds both images"),
])
def test_bad_image_folders(tmp_path, capsys, damage, match):
  data_dir = make_folder(tmp_path / "photos", splits=((None, 6),))
  broken = os.path.join(data_dir, "dog", "3.jpg")
  if damage == "empty":
    data_dir = str(tmp_path / "empty")
    os.makedirs(data_dir)
  elif damage == "missing":
    data_dir = str(tmp_path / "nowhere")
  elif damage == "corrupt":
    _corrupt(broken)
  elif damage == "truncated":
    _truncate(broken)
  elif damage == "mixed":
    broken = os.path.join(data_dir, "dog", "2.png")
    _gray_image(broken)
  elif damage == "loose":
    _gray_image(os.path.join(data_dir, "stray.png"))
  workdir = tmp_path / "run"
  err = fails_cleanly(capsys, [
      "train", "--config", SMOKE, "--workdir", str(workdir), *RGB,
      "--config.data.name=image_folder", f"--config.data.data_dir={data_dir}",
      "--config.online_eval_every=0"], match)
  if damage in ("corrupt", "truncated", "mixed"):
    assert broken in err  # names the file
  if damage == "mixed":
    assert "--config.data.channels=3" in err
    # ... and that fix works: every image converted to RGB.
    from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
    import ml_collections  # pylint: disable=g-import-not-at-top
    source = get_source(ml_collections.ConfigDict(dict(
        name="image_folder", data_dir=data_dir, image_size=(8, 8), channels=3)), "train")
    assert source.get(np.arange(len(source)))["image"].shape == (18, 8, 8, 3)
  assert not (workdir / "checkpoints").exists() or damage == "truncated"


def _npz(path, **arrays):
  np.savez(path, **arrays)
  return str(path)


@pytest.mark.parametrize("arrays,match", [
    (dict(x=np.zeros((4, 8, 8, 3), np.uint8), y=np.zeros(4, np.int64)),
     "has arrays x uint8 [4, 8, 8, 3], y int64 [4]; expected images uint8"),
    (dict(images=np.zeros((4, 8, 8, 3), np.float32)), "has images float32 [4, 8, 8, 3]"),
    (dict(images=np.zeros((4, 3, 8, 8), np.uint8)), "channels first"),
    (dict(images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.zeros(5, np.int64)),
     "expected labels int [4]"),
    (dict(images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.zeros(4, np.float32)),
     "has labels float32 [4]"),
    (dict(images=np.zeros((4, 8, 8, 3), np.uint8), test_lables=np.zeros(4, np.int64)),
     "test_lables"),
])
def test_bad_arrays(tmp_path, capsys, arrays, match):
  path = _npz(tmp_path / "data.npz", **arrays)
  fails_cleanly(capsys, ["train", "--config", SMOKE, "--workdir", str(tmp_path / "run"),
                          *RGB, "--config.data.name=arrays",
                          f"--config.data.data_dir={path}"], match)


def test_bad_split_names(tmp_path, capsys):
  data_dir = make_folder(tmp_path / "photos", splits=((None, 2),))
  argv = ["train", "--config", SMOKE, "--workdir", str(tmp_path / "run"), *RGB,
          "--config.data.name=image_folder", f"--config.data.data_dir={data_dir}"]
  # Labelled, without a test split: online evaluation names both fixes.
  err = fails_cleanly(capsys, argv, "has splits train, not 'test'; set config.data.eval_split")
  assert "--config.online_eval_every=0" in err
  fails_cleanly(capsys, argv + ["--config.data.train_split=unlabelled"],
                 "has splits train, not 'unlabelled'; set config.data.train_split")
  path = _npz(tmp_path / "data.npz", images=np.zeros((4, 8, 8, 3), np.uint8))
  fails_cleanly(capsys, ["train", "--config", SMOKE, "--workdir", str(tmp_path / "r2"),
                          *RGB, "--config.data.name=arrays", f"--config.data.data_dir={path}",
                          "--config.data.train_split=train+extra"],
                 "have splits train, not 'extra'")


def test_variants_name_their_splits():
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  stl = load_config_file(os.path.join(ROOT, "configs", "simclr.py:stl10"))
  assert (stl.data.train_split, stl.data.eval_train_split, stl.data.eval_split) == (
      "train+unlabelled", "train", "test")
  imagenet = load_config_file(os.path.join(ROOT, "configs", "simclr.py:imagenet"))
  assert imagenet.data.eval_split == "validation"
  folder = load_config_file(os.path.join(ROOT, "configs", "simclr.py:image_folder"))
  assert (folder.data.name, folder.data.channels, len(folder.data.mean)) == (
      "image_folder", 3, 3)
  smoke = load_config_file(SMOKE)
  assert (smoke.data.train_split, smoke.data.eval_split) == ("train", "test")


def test_online_probe_skips_unlabelled_examples():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from sslax.train import online  # pylint: disable=g-import-not-at-top
  tx = online.probe_optimizer(_Cfg())
  probe = online.init_probe(4, 3, tx)
  features = jnp.ones((4, 4))
  _, m_all = online.update_probe(probe, tx, features, jnp.array([0, 1, 2, 0]))
  _, m_some = online.update_probe(probe, tx, features, jnp.array([0, -1, -1, -1]))
  _, m_none = online.update_probe(probe, tx, features, jnp.array([-1, -1, -1, -1]))
  np.testing.assert_allclose(m_all["probe_loss"], np.log(3), rtol=1e-6)
  np.testing.assert_allclose(m_some["probe_loss"], np.log(3), rtol=1e-6)
  assert float(m_none["probe_loss"]) == 0.0 and np.isfinite(float(m_none["probe_train_top1"]))


class _Cfg:
  class online_probe:  # pylint: disable=invalid-name
    learning_rate = 1e-3


def test_tfds_split_syntax_and_unlabelled_splits(tmp_path):
  """As the stl10 variant reads STL-10: training on "train+unlabelled" (TFDS
  split syntax), labelled evaluation refused on a split of -1 labels."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from sslax.data.arrays import ArraySource  # pylint: disable=g-import-not-at-top
  from sslax.data.sources import labelled_source, split_source  # pylint: disable=g-import-not-at-top
  from sslax.data.tfds_prepare import write_dataset  # pylint: disable=g-import-not-at-top
  from sslax.errors import UnknownSplit, UserError  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)

  def split(n, labelled=True):
    labels = np.arange(n) % 3 if labelled else np.full(n, -1)
    return ArraySource(rng.integers(0, 255, (n, 8, 8, 3)).astype(np.uint8), labels, 3)

  write_dataset("sslax_test_splits", str(tmp_path), {
      "train": split(10), "test": split(6), "unlabelled": split(12, labelled=False)},
                class_names=("a", "b", "c"))
  config = ml_collections.ConfigDict(dict(
      name="sslax_test_splits", data_dir=str(tmp_path), image_size=(8, 8), load_size=0,
      train_split="train+unlabelled", eval_train_split="train", eval_split="unlabelled"))
  train = split_source(config, "train_split")
  assert len(train) == 22 and not labelled(train) and train.class_names == ("a", "b", "c")
  assert sorted(train.labels.tolist()).count(-1) == 12
  assert labelled(labelled_source(config, "eval_train_split", "kNN evaluation"))
  with pytest.raises(UserError, match="kNN evaluation needs labels but split 'unlabelled'"):
    labelled_source(config, "eval_split", "kNN evaluation")
  config.eval_split = "validation"
  with pytest.raises(UnknownSplit, match=r"has splits \['test', 'train', 'unlabelled'\], "
                     "not 'validation'; set config.data.eval_split"):
    split_source(config, "eval_split")
