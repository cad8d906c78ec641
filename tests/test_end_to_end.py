"""The README's commands end to end on the smoke config: train, then the
linear probe and kNN write their JSON files."""

import json
import os

from conftest import ROOT
from sslax import cli

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")


def test_train_then_evaluate(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  cli.main(["train", "--config", SMOKE, "--workdir", workdir,
            "--config.progress_bar=False"])
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records] == [2, 4, 6, 8]
  assert all({"loss", "lr", "images_per_second"} <= set(r) for r in records)
  assert os.listdir(os.path.join(workdir, "tensorboard"))

  cli.main(["eval", "linear", "--workdir", workdir, "--label-fraction", "0.1"])
  linear = json.load(open(os.path.join(workdir, "eval", "linear_0.1.json")))
  assert linear["num_labels"] == 6000 and linear["feature_dim"] == 16
  assert 0.3 < linear["top1"] <= 1.0  # far above chance (0.1) even for 8 steps

  cli.main(["eval", "knn", "--workdir", workdir])
  knn = json.load(open(os.path.join(workdir, "eval", "knn.json")))
  assert set(knn) >= {"top1_k20", "top1_k200"}
  assert 0.3 < knn["top1_k20"] <= 1.0
  printed = capsys.readouterr().out.strip().splitlines()
  assert json.loads(printed[-1]) == knn
