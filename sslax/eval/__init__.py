"""Evaluation of frozen or fine-tuned encoders: linear probe, kNN, fine-tuning,
export, report and pictures. Workdir-level entry points are in
``sslax.eval.evaluate``."""
