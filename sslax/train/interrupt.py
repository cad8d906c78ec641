"""Stopping a run at a step boundary on SIGTERM (preemption) or SIGINT (Ctrl-C).

``StopOnSignal`` records the first such signal instead of dying; the training
loop asks ``stop.agreed()`` after each step and, when it is non-zero, saves a
checkpoint of that step and raises ``Interrupted``. A second signal gets the
handler that was there before (the default: a second Ctrl-C aborts at once).

With several processes, every process must stop at the same step (a
checkpoint is a collective): ``agreed`` combines the flags of all processes
with one small all-gather per step. A single process runs no collective.
"""

import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The CLI's exit status for a run stopped by each signal: a preempted run
# stopped cleanly (0), a run the user interrupted (128 + SIGINT, as shells do).
EXIT_STATUS = {signal.SIGTERM: 0, signal.SIGINT: 130}


class Interrupted(Exception):
  """``train_and_evaluate`` stopped on a signal after saving ``step``'s checkpoint.

  ``state`` is the TrainState of ``step``; ``signum`` the signal's number
  (``signal.SIGTERM`` or ``signal.SIGINT``). Rerunning with the same config
  and workdir resumes from ``step``."""

  def __init__(self, step: int, signum: int, state=None, workdir: str = ""):
    self.step, self.signum, self.state, self.workdir = step, signum, state, workdir
    super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; "
                     f"its checkpoint is saved in {workdir}")

  @property
  def exit_status(self) -> int:
    return EXIT_STATUS.get(self.signum, 128 + self.signum)


class StopOnSignal:
  """Installs the handlers (main thread only; elsewhere it is inert) until
  ``restore()``."""

  def __init__(self):
    self.signum = 0
    self._previous = {}
    if threading.current_thread() is not threading.main_thread():
      return
    for sig in SIGNALS:
      previous = signal.getsignal(sig)
      # None: a handler installed outside Python, which Python cannot reinstall.
      self._previous[sig] = signal.SIG_DFL if previous is None else previous
      signal.signal(sig, self._handle)

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if not self.signum:
      self.signum = signum
    # The next one of this signal is handled as before: a second Ctrl-C aborts.
    if signum in self._previous:
      signal.signal(signum, self._previous[signum])

  def agreed(self) -> int:
    """The signal that stops every process at this step, or 0."""
    if jax.process_count() == 1:
      return self.signum
    flags = multihost_utils.process_allgather(np.asarray([self.signum], np.int32))
    return int(np.max(flags))

  def restore(self):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
    self._previous = {}
