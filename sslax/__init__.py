"""sslax: self-supervised representation learning in JAX and Flax."""

__all__ = ["load_encoder", "preprocess"]


def __getattr__(name):
  # PEP 562: `sslax.load_encoder` loads sslax.export (jax, orbax) on first use,
  # so importing a light submodule (sslax.errors, sslax.losses) stays light.
  if name in __all__:
    from sslax import export  # pylint: disable=g-import-not-at-top
    return getattr(export, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
