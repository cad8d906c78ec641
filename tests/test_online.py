"""The online probe and the online kNN evaluation logged while training."""

import jax
import numpy as np
import optax

from sslax.data.sources import SubsetSource, get_source
from sslax.eval.features import encode_source, load_run_encoder
from sslax.probes.knn import knn_accuracy
from sslax.train import online
from sslax.train.loop import train_and_evaluate
from sslax.train.run import global_batch, init_state, setup
from sslax.train.step import compile_step
from sslax.train.metrics import read_metrics


def _two_steps(config, probe_tx):
  run = setup(config)
  state = init_state(run)
  step = compile_step(run, state, probe_tx=probe_tx)
  for s in range(2):
    state, metrics = step(state, global_batch(run, s))
  return state, metrics


def test_probe_learns_without_touching_the_method(smoke_config):
  frozen, _ = _two_steps(smoke_config, optax.sgd(0.0))
  trained, metrics = _two_steps(smoke_config, optax.adam(1e-2))
  # Same method parameters and batch statistics bit for bit: the probe's
  # gradient stops at the features.
  for a, b in zip(jax.tree.leaves((frozen.params, frozen.model_state, frozen.opt_state)),
                  jax.tree.leaves((trained.params, trained.model_state, trained.opt_state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert np.all(np.asarray(frozen.probe["params"]["w"]) == 0)
  assert np.abs(np.asarray(trained.probe["params"]["w"])).max() > 0
  assert {"probe_loss", "probe_train_top1"} <= set(metrics)
  assert np.isfinite(float(metrics["probe_loss"]))


def test_online_knn_equals_offline_knn_on_the_same_examples(tmp_path, smoke_config):
  smoke_config.num_steps = 4
  smoke_config.progress_bar = False
  # At the default 1e-3 the probe's four Adam steps leave it predicting one
  # class for every example, whose accuracy a shuffled label order or a
  # constant encoder would match; at 0.3 it predicts three. (The probe never
  # touches the method: the kNN figures are the same at any probe rate.)
  smoke_config.online_probe.learning_rate = 0.3
  workdir = str(tmp_path)
  state = train_and_evaluate(smoke_config, workdir)
  logged = [r for r in read_metrics(workdir) if "online_knn_top1_k20" in r]
  assert [r["step"] for r in logged] == [4]

  encoder = load_run_encoder(workdir)
  train = get_source(smoke_config.data, "train")
  test = get_source(smoke_config.data, "test")
  chunk = smoke_config.eval.batch_size
  train_idx = online._subset(len(train), smoke_config.eval.online_train_examples,
                             chunk, smoke_config.seed)
  test_idx = online._subset(len(test), smoke_config.eval.online_test_examples,
                            chunk, smoke_config.seed)
  train_x, train_y = encode_source(encoder, SubsetSource(train, train_idx))
  test_x, test_y = encode_source(encoder, SubsetSource(test, test_idx))
  offline = knn_accuracy(train_x, train_y, test_x, test_y, k=20, num_classes=10,
                         temperature=smoke_config.eval.knn_temperature)
  assert len(test_idx) == 2000
  # Equal up to a near-tie flipping under a different summation order.
  assert abs(logged[0]["online_knn_top1_k20"] - offline) <= 2 / len(test_idx)
  # The logged probe top-1 is the final probe's accuracy on those test
  # features, recomputed here in numpy (measured 0.12 both; a shuffled label
  # order gives 0.092, zero features 0.1035).
  probe = jax.tree.map(np.asarray, state.probe["params"])
  predicted = np.argmax(test_x @ probe["w"] + probe["b"], axis=-1)
  assert len(np.unique(predicted)) > 1
  assert abs(logged[0]["online_probe_top1"] - np.mean(predicted == test_y)) <= 2 / len(test_idx)
