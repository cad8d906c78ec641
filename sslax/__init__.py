"""sslax: self-supervised representation learning in JAX and Flax."""

from sslax.export import load_encoder, preprocess

__all__ = ["load_encoder", "preprocess"]
