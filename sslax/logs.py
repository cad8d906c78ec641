"""The one place sslax quiets its libraries' logs and shutdown noise
(absl, asyncio, Orbax and TensorStore): what sslax already reported in one
line, or what is not the user's to act on. Used by the ``sslax`` command."""

import logging
import re
import sys
import warnings

def filter_library_logs():
  """The one place sslax quiets the loggers of its libraries. absl (Orbax,
  TFDS: e.g. "OpenCV is not installed ... Defaulting to PIL"): warnings are not
  the user's to act on, errors still show, system errors sslax reports itself.
  asyncio: Orbax's read and save tasks whose failure sslax already reported in
  one line (asyncio logs each such task again when it is collected)."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.ERROR)
  absl_logging.get_absl_logger().addFilter(_drop_system_error_records)
  logging.getLogger("asyncio").addFilter(_drop_orbax_task_records)


def _drop_system_error_records(record) -> bool:
  """A logging filter: Orbax (and asyncio, for Orbax's save tasks) log a full
  disk or unwritable path with its traceback from background threads; sslax
  reports it itself in one line."""
  from sslax.train.workdir import system_error  # pylint: disable=g-import-not-at-top
  exc = record.exc_info[1] if record.exc_info else None
  while exc is not None:
    if system_error(exc):
      return False
    exc = exc.__cause__ or exc.__context__
  return True


def _drop_orbax_task_records(record) -> bool:
  """A logging filter for asyncio's "Task exception was never retrieved" of
  Orbax's coroutines and of the TensorStore reads and writes they wrap: the
  failure reached sslax's main thread already and was reported there."""
  if not _drop_system_error_records(record):
    return False
  if "/orbax/checkpoint/" in record.getMessage():
    return False
  exc = record.exc_info[1] if record.exc_info else None
  return exc is None or not _raised_by_orbax_or_tensorstore(exc)


# TensorStore raises its errors as ValueError("<absl status code>: ...").
_TENSORSTORE_ERROR = re.compile(
    r"(CANCELLED|UNKNOWN|INVALID_ARGUMENT|DEADLINE_EXCEEDED|NOT_FOUND|ALREADY_EXISTS|"
    r"PERMISSION_DENIED|RESOURCE_EXHAUSTED|FAILED_PRECONDITION|ABORTED|OUT_OF_RANGE|"
    r"UNIMPLEMENTED|INTERNAL|UNAVAILABLE|DATA_LOSS|UNAUTHENTICATED): ")


def _raised_by_orbax_or_tensorstore(exc: BaseException) -> bool:
  """Whether ``exc`` is a TensorStore error (a ValueError whose message starts
  with a status code, or carries a ``tensorstore_spec``) or was raised inside
  Orbax's checkpoint code."""
  text = str(exc)
  if "tensorstore_spec=" in text or (isinstance(exc, ValueError) and
                                     _TENSORSTORE_ERROR.match(text)):
    return True
  tb = exc.__traceback__
  while tb is not None:
    if "/orbax/checkpoint/" in tb.tb_frame.f_code.co_filename:
      return True
    tb = tb.tb_next
  return False


def quiet_orbax_shutdown_noise():
  """After a failed Orbax read or write, its background threads and pending
  coroutines print tracebacks of their own ("Event loop is closed", "Exception
  ignored in <coroutine ...>", "coroutine ... was never awaited") below
  sslax's one line; those, and only those, are dropped. An unawaited
  coroutine's warning is raised instead of printed, so that it reaches the
  hook below with the coroutine (and its file) attached: Orbax's are dropped,
  any other prints as before."""
  warnings.filterwarnings("error", message=r"coroutine '.*' was never awaited",
                          category=RuntimeWarning)
  unraisablehook = sys.unraisablehook

  def on_unraisable(info):
    value = info.exc_value
    closed_loop = isinstance(value, RuntimeError) and str(value) == "Event loop is closed"
    code = getattr(info.object, "cr_code", None)
    from_orbax = ((code is not None and "orbax" in code.co_filename) or
                  (value is not None and _raised_by_orbax_or_tensorstore(value)))
    if not (closed_loop or from_orbax):
      unraisablehook(info)

  sys.unraisablehook = on_unraisable
