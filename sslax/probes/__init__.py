"""Probes of frozen features: the weighted kNN vote (``knn``) and the linear
probe (``linear``). They take arrays of features and labels, never a
checkpoint, a method or the trainer, so both the trainer's online probe and the
offline evaluation use them."""
