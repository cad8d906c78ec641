"""The README's commands end to end on the smoke config: train, then the
linear probe and kNN write their JSON files."""

import json
import os

import numpy as np
import pytest

from conftest import ROOT, fails_cleanly
from sslax import cli

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")


def _top1_of_finetuned(state, config):
  """The test-split top-1 of a fine-tuned (encoder, linear head), recomputed:
  the encoder on the normalised images in eval mode, the head in numpy."""
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  from sslax.models import make_encoder  # pylint: disable=g-import-not-at-top
  _examples = get_source(config.data, "test").get(np.arange(10000))
  images, labels = _examples["image"], _examples["label"]
  x = (images.astype(np.float32) / 255.0 - np.float32(config.data.mean)) / np.float32(
      config.data.std)
  h = np.asarray(make_encoder(config.model).apply(
      {"params": state.params["encoder"],
       "batch_stats": state.model_state["batch_stats"]["encoder"]}, x, train=False))
  head = state.params["head"]
  predicted = np.argmax(h @ np.asarray(head["kernel"]) + np.asarray(head["bias"]), -1)
  return float(np.mean(predicted == labels))


def test_train_then_evaluate(tmp_path, capsys, monkeypatch):
  workdir = str(tmp_path / "run")
  # Fine-tuning's final states, to score them again here.
  from sslax.eval import finetune as finetune_lib  # pylint: disable=g-import-not-at-top
  finetuned = []

  def keep_state(start_variables, train_source, test_source, indices, config, **kwargs):
    result, state = real_finetune(start_variables, train_source, test_source, indices,
                                  config, **kwargs)
    finetuned.append((state, config))
    return result, state

  real_finetune = finetune_lib.finetune
  monkeypatch.setattr(finetune_lib, "finetune", keep_state)
  cli.main(["train", "--config", SMOKE, "--workdir", workdir,
            "--config.progress_bar=False"])
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records] == [2, 4, 6, 8]
  assert all({"loss", "lr", "examples_per_second", "probe_loss"} <= set(r) for r in records)
  online = [r for r in records if "online_knn_top1_k20" in r]
  assert [r["step"] for r in online] == [4, 8]  # online_eval_every = 4
  assert all(0.2 < r["online_knn_top1_k20"] <= 1.0 for r in online)
  assert os.listdir(os.path.join(workdir, "tensorboard"))

  cli.main(["eval", "linear", "--workdir", workdir, "--label-fraction", "0.1"])
  linear = json.load(open(os.path.join(workdir, "eval", "linear_0.1.json")))
  assert linear["num_labels"] == 6000 and linear["feature_dim"] == 16
  assert 0.3 < linear["top1"] <= 1.0  # far above chance (0.1) even for 8 steps

  cli.main(["eval", "knn", "--workdir", workdir])
  knn = json.load(open(os.path.join(workdir, "eval", "knn.json")))
  assert set(knn) >= {"top1_k20", "top1_k200"}
  assert 0.3 < knn["top1_k20"] <= 1.0
  # Printed: a short table, rounded; the file keeps every digit.
  printed = capsys.readouterr().out.strip().splitlines()
  header = (f"sslax eval knn of {workdir} (the whole result: {workdir}/eval/, or --json)")
  assert header in printed
  rows = dict(line.split() for line in printed[printed.index(header) + 1:])
  assert rows["top1_k20"] == f"{knn['top1_k20']:.4f}" and rows["features"] == "encoder"
  # --config.key=value reaches evaluation too: another batch size, the same
  # figures (up to a near-tie); a key the config does not have is one line,
  # status 2.
  cli.main(["eval", "knn", "--json", "--workdir", workdir, "--config.eval.batch_size=700"])
  again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert abs(again["top1_k20"] - knn["top1_k20"]) <= 2e-4
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["eval", "knn", "--workdir", workdir, "--config.eval.no_such_key=1"])
  err = capsys.readouterr().err.strip()
  assert exit_info.value.code == 2 and "no_such_key" in err and "\n" not in err

  cli.main(["eval", "finetune", "--workdir", workdir, "--label-fraction", "0.01"])
  cli.main(["eval", "finetune", "--workdir", workdir, "--label-fraction", "0.01",
            "--init", "random_init", "--epochs", "1"])
  tuned = json.load(open(os.path.join(workdir, "eval", "finetune_0.01.json")))
  scratch = json.load(open(os.path.join(workdir, "eval",
                                        "finetune_random_init_0.01.json")))
  assert tuned["num_labels"] == scratch["num_labels"] == 600
  assert tuned["steps"] == scratch["steps"] == 19  # ceil(1 epoch * 600 / 32)
  assert tuned["init"] == "encoder" and scratch["epochs"] == 1.0
  # 19 steps at the smoke lr move neither far from chance (measured 0.1021 and
  # 0.1078): each JSON's top-1 is its final state's accuracy on the 10000 test
  # images, recomputed (up to a near-tie).
  assert len(finetuned) == 2
  for result, (state, config) in zip((tuned, scratch), finetuned):
    assert config.data.name == "fashion_mnist" and len(config.data.mean) == 1
    assert abs(result["top1"] - _top1_of_finetuned(state, config)) <= 2e-4
  capsys.readouterr()

  cli.main(["viz", "--workdir", workdir])
  pngs = capsys.readouterr().out.split()
  assert [os.path.basename(p) for p in pngs] == ["tsne.png", "retrieval.png", "curves.png"]
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for path in pngs:
    with Image.open(path) as image:
      assert image.format == "PNG" and min(image.size) > 200

  cli.main(["report", workdir])
  table = capsys.readouterr().out.strip().splitlines()
  assert table[0].startswith("| run | method | dataset | step |") and len(table) == 2 + 5
  assert (f"| {workdir} | simclr | fashion_mnist | 8 | encoder | linear | 0.1 | "
          f"{100 * linear['top1']:.2f} |") in table
  assert any("kNN k=200" in line for line in table)
  assert (f"| {workdir} | simclr | fashion_mnist | 8 | random_init | finetune | 0.01 | "
          f"{100 * scratch['top1']:.2f} |") in table
  # A directory that is not a workdir, and a workdir without results: one line
  # each, saying which.
  fails_cleanly(capsys, ["report", str(tmp_path)], "is not a workdir")
  fresh = tmp_path / "fresh"
  fresh.mkdir()
  (fresh / "config.json").write_text("{}")
  fails_cleanly(capsys, ["report", str(fresh)], "has no evaluation results yet")

  # Trained further, the run is fine-tuned again from its new encoder, not
  # answered by the fine-tuning of step 8.
  cli.main(["train", "--config", SMOKE, "--workdir", workdir, "--extend-to", "10",
            "--config.progress_bar=False"])
  cli.main(["eval", "finetune", "--workdir", workdir, "--label-fraction", "0.01"])
  again = json.load(open(os.path.join(workdir, "eval", "finetune_0.01.json")))
  assert len(finetuned) == 3 and again["step"] == 10
  # its learning rate over its own 19 steps, not the 8 of the pretraining
  # schedule that the extension keeps
  extended = finetuned[2][1]
  assert extended.schedule_steps == 8
  ft_config = finetune_lib.finetune_config(extended, steps=19, seed=0, num_classes=10)
  assert ft_config.num_steps == 19 and ft_config.get("schedule_steps") == 0
  import jax  # pylint: disable=g-import-not-at-top
  first, last = (jax.device_get(finetuned[i][0].params["encoder"]) for i in (0, 2))
  assert any(np.abs(a - b).max() > 0 for a, b in zip(jax.tree.leaves(first),
                                                     jax.tree.leaves(last)))
  assert abs(again["top1"] - _top1_of_finetuned(*finetuned[2])) <= 2e-4


def test_bfloat16_compute_trains_with_float32_parameters(tmp_path, smoke_config):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  from sslax.train.metrics import read_metrics  # pylint: disable=g-import-not-at-top
  smoke_config.compute_dtype = "bfloat16"
  smoke_config.num_steps = 4
  smoke_config.progress_bar = False
  state = train_and_evaluate(smoke_config, str(tmp_path))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
  losses = [r["loss"] for r in read_metrics(str(tmp_path))]
  assert len(losses) == 2 and np.all(np.isfinite(losses))
