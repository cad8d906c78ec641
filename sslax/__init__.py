"""sslax: self-supervised representation learning in JAX and Flax.

Importing sslax turns on XLA:CPU's faster fusion path (the YNNPACK-backed
``--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce``; convolutions
and matrix products about 1.8x faster on x86 CPUs) by adding it to
``XLA_FLAGS``, unless the user's ``XLA_FLAGS`` already sets that flag or
``SSLAX_FAST_CPU=0``. It takes effect when sslax is imported before JAX runs
its first computation (the ``sslax`` command always is); GPU and TPU backends
ignore it.
"""

import os

__all__ = ["embed", "load_encoder", "preprocess"]

FAST_CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce"


def fast_cpu_xla_flags(environ) -> str:
  """``environ``'s XLA_FLAGS with sslax's fast CPU flag added (unchanged when
  it sets the flag itself, or when ``SSLAX_FAST_CPU=0``)."""
  flags = environ.get("XLA_FLAGS", "")
  if environ.get("SSLAX_FAST_CPU", "1") == "0" or "xla_cpu_experimental_ynn_fusion_type" in flags:
    return flags
  return f"{flags} {FAST_CPU_FLAG}".strip()


os.environ["XLA_FLAGS"] = fast_cpu_xla_flags(os.environ)
if not os.environ["XLA_FLAGS"]:
  del os.environ["XLA_FLAGS"]


def __getattr__(name):
  # PEP 562: `sslax.load_encoder` (and `embed`) loads sslax.export (jax, orbax) on first use,
  # so importing a light submodule (sslax.errors, sslax.losses) stays light.
  if name in __all__:
    from sslax import export  # pylint: disable=g-import-not-at-top
    return getattr(export, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
