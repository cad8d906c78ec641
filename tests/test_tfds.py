"""TFDS for real: a TFDS dataset prepared here in the array_record format
(no network, no TensorFlow), read back by TFDS's own data sources, trained
on and evaluated through the code path of ``configs/*.py:cifar10`` and
``imagenet`` (``config.data.name`` a TFDS name, ``config.data.data_dir`` its
data_dir)."""

import json
import os
import sys

import numpy as np
import pytest

from conftest import ROOT
from sslax import cli
from sslax.data.arrays import ArraySource
from sslax.data.sources import get_source
from sslax.data.tfds_source import TFDSSource
from sslax.data.tfds_prepare import write_dataset

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")
NAME = "sslax_test_shapes"
CLASSES = ("red", "green", "blue", "gray")


def _split(n, seed):
  """n 32x32 RGB images, class c tinted by colour c, over noise."""
  rng = np.random.default_rng(seed)
  labels = (np.arange(n) % len(CLASSES)).astype(np.int32)
  images = rng.integers(0, 96, (n, 32, 32, 3)).astype(np.int32)
  for i, y in enumerate(labels):
    if y < 3:
      images[i, ..., y] += 150
    else:
      images[i] += 80
  return ArraySource(images=images.astype(np.uint8), labels=labels,
                     num_classes=len(CLASSES))


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  train, test = _split(64, 0), _split(32, 1)
  path = write_dataset(NAME, data_dir, {"train": train, "test": test},
                       class_names=CLASSES)
  assert path == os.path.join(data_dir, NAME, "1.0.0")
  return data_dir, train, test


def test_prepared_files_are_tfds_array_record(tfds_dir):
  data_dir, train, _ = tfds_dir
  files = sorted(os.listdir(os.path.join(data_dir, NAME, "1.0.0")))
  assert {"dataset_info.json", "features.json"} <= set(files)
  assert f"{NAME}-train.array_record-00000-of-00001" in files
  assert f"{NAME}-test.array_record-00000-of-00001" in files
  info = json.load(open(os.path.join(data_dir, NAME, "1.0.0", "dataset_info.json")))
  assert info["fileFormat"] == "array_record"

  # TFDS's own reader, from the files alone (the builder class is not
  # registered): the same images and labels, in TFDS's shuffled order.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(NAME, data_dir=data_dir)
  assert type(builder).__name__ == "ReadOnlyBuilder"
  assert builder.info.features["label"].names == list(CLASSES)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 64, "test": 32}
  records = builder.as_data_source(split="train")
  assert len(records) == 64
  expected = {train.images[i].tobytes(): int(train.labels[i]) for i in range(64)}
  read = {np.asarray(r["image"]).tobytes(): int(r["label"]) for r in records}
  assert read == expected  # PNG is lossless
  assert "tensorflow" not in sys.modules


def test_source_reads_tfds(tfds_dir):
  data_dir, train, test = tfds_dir
  source = TFDSSource(name=NAME, split="test", data_dir=data_dir)
  assert (len(source), source.element_spec["image"][0], source.num_classes) == (32, (32, 32, 3), 4)
  assert sorted(np.bincount(source.labels).tolist()) == [8, 8, 8, 8]
  _examples = source.get([0, 5, 31])
  images, labels = _examples["image"], _examples["label"]
  assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
  assert labels.dtype == np.int32
  if hasattr(source, "class_names"):  # the class names of TFDS's metadata
    assert tuple(source.class_names) == CLASSES


@pytest.mark.slow
def test_train_and_evaluate_on_tfds(tfds_dir, tmp_path, capsys):
  data_dir, _, _ = tfds_dir
  workdir = str(tmp_path / "run")
  data = [f"--config.data.name={NAME}", f"--config.data.data_dir={data_dir}",
          "--config.data.image_size=(32, 32)",
          "--config.data.mean=(0.4, 0.4, 0.4)", "--config.data.std=(0.3, 0.3, 0.3)"]
  cli.main(["train", "--config", SMOKE, "--workdir", workdir,
            "--config.progress_bar=False", *data])
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records] == [2, 4, 6, 8]
  assert all(np.isfinite(r["loss"]) for r in records)
  assert [r["step"] for r in records if "online_knn_top1_k20" in r] == [4, 8]
  encoder = json.load(open(os.path.join(workdir, "encoder.json")))
  assert encoder["dataset"] == NAME and encoder["input_shape"] == [32, 32, 3]
  capsys.readouterr()

  cli.main(["eval", "linear", "--json", "--workdir", workdir])
  linear = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  # The classes are tints (CLASSES): 32 test images, chance 0.25; measured 1.0
  # for both (zero features: 0.25; training labels shuffled: 0.53 and 0.66).
  assert linear["num_labels"] == 64 and linear["top1"] >= 0.75
  cli.main(["eval", "knn", "--json", "--workdir", workdir])
  knn = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert knn["top1_k20"] >= 0.75
  assert os.path.exists(os.path.join(workdir, "eval", "knn.json"))
  cli.main(["viz", "--workdir", workdir])
  pictures = capsys.readouterr().out.split()
  assert pictures and all(os.path.exists(p) for p in pictures)
  assert "tensorflow" not in sys.modules


def test_make_tfds_from_image_folder(tmp_path, capsys):
  """`sslax data make-tfds` writes an image folder (mixed sizes, PNG and
  JPEG) as a TFDS dataset sslax then reads by name, class names included."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for split, per_class in (("train", 3), ("test", 2)):
    for name in ("cat", "dog"):
      os.makedirs(tmp_path / "photos" / split / name)
      for i in range(per_class):
        h, w = rng.integers(40, 90, 2)
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "photos" / split / name /
                                     f"{i}.{'jpg' if i % 2 else 'png'}")
  out = str(tmp_path / "tfds")
  cli.main(["data", "make-tfds", "--from", "image_folder", "--data-dir",
            str(tmp_path / "photos"), "--name", "my_pets", "--out", out, "--size", "24"])
  printed = capsys.readouterr().out.strip().splitlines()
  # Only where it wrote the data: no TFDS line saying it downloads.
  assert printed == [os.path.join(out, "my_pets", "1.0.0")], printed
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(dict(name="my_pets", data_dir=out, load_size=0))
  train = get_source(config, "train")
  assert (len(train), train.element_spec["image"][0], train.num_classes) == (6, (24, 24, 3), 2)
  assert sorted(train.labels.tolist()) == [0, 0, 0, 1, 1, 1]
  if hasattr(train, "class_names"):
    assert tuple(train.class_names) == ("cat", "dog")

  # Mistakes: one line, status 2, nothing overwritten.
  for argv, words in (
      (["--name", "my_pets"], "already exists"),
      (["--name", "cifar10"], "TFDS catalogue"),
      (["--name", "My-Pets"], "lower_snake_case"),
      (["--name", "other", "--splits", "train,val"], "not 'val'"),
  ):
    with pytest.raises(SystemExit) as exit_info:
      cli.main(["data", "make-tfds", "--from", "image_folder", "--data-dir",
                str(tmp_path / "photos"), "--out", out, "--size", "24", *argv])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and words in err and "\n" not in err, err
  assert sorted(os.listdir(out)) == ["my_pets"]


def test_a_dataset_without_labels_reads_and_refuses_label_based_evaluation(tmp_path):
  """No ClassLabel needed: a TFDS dataset of images alone gives examples with
  an "image" and no "label"; evaluation that needs labels refuses it in one
  line."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from sslax.data.source import labelled  # pylint: disable=g-import-not-at-top
  from sslax.data.sources import labelled_source  # pylint: disable=g-import-not-at-top
  from sslax.errors import UserError  # pylint: disable=g-import-not-at-top
  images = _split(8, 0).images
  write_dataset("sslax_test_unlabelled", str(tmp_path), {"train": ArraySource(images)})
  source = TFDSSource(name="sslax_test_unlabelled", split="train", data_dir=str(tmp_path))
  assert source.element_spec == {"image": ((32, 32, 3), "uint8")} and not labelled(source)
  got = source.get([0, 3])
  assert set(got) == {"image"}
  originals = {im.tobytes() for im in images}  # (in TFDS's shuffled order)
  assert all(im.tobytes() in originals for im in got["image"])
  data = ml_collections.ConfigDict(dict(name="sslax_test_unlabelled", data_dir=str(tmp_path),
                                        eval_train_split="train"))
  with pytest.raises(UserError, match="the linear probe needs labels"):
    labelled_source(data, "eval_train_split", "the linear probe")


def test_make_tfds_names_its_own_flag_for_a_mixed_folder(tmp_path, capsys):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from conftest import fails_cleanly  # pylint: disable=g-import-not-at-top
  for i, mode in enumerate(("RGB", "L")):
    os.makedirs(tmp_path / "photos" / "train" / "cat", exist_ok=True)
    Image.new(mode, (20, 20)).save(tmp_path / "photos" / "train" / "cat" / f"{i}.png")
  args = ["data", "make-tfds", "--from", "image_folder", "--data-dir",
          str(tmp_path / "photos"), "--name", "mixed", "--out", str(tmp_path / "tfds"),
          "--size", "16"]
  line = fails_cleanly(capsys, args, "mixes gray and colour images")
  assert "--channels 3" in line and "--config.data.channels" not in line
  cli.main(args + ["--channels", "3"])
  assert capsys.readouterr().out.strip().endswith(os.path.join("mixed", "1.0.0"))
