"""The life of the input worker processes (``config.data.workers > 0``):
they die with the trainer, whatever kills it, and leave no shared memory.

- ``watch_parent`` runs in each worker (Grain's ``worker_init_fn``): a daemon
  thread ends the worker as soon as its parent, the trainer, is gone (a
  SIGKILL, the out-of-memory killer), instead of it living on re-parented to
  PID 1.
- Batches cross from workers to the trainer in shared-memory segments that
  Python's resource tracker (a process the trainer starts, which the workers
  share) records. When the trainer and its workers are gone it removes the
  segments still recorded; ``quiet_resource_tracker`` starts it with its
  warnings about doing so turned off (they name no action to take).
- ``reclaim_orphaned_segments`` removes, when a run with workers starts,
  segments that outlived every process (the tracker was killed too): those
  that no process has open or mapped and that are older than ``min_age_s``.
- ``died(exc)`` tells a worker's death apart from other input errors:
  training then ends with ``InputWorkerDied`` (exit status 4).
"""

import os
import re
import sys
import threading
import time

from sslax.errors import UserError

SHM_DIR = "/dev/shm"
SEGMENT_PREFIX = "psm_"  # multiprocessing.shared_memory's names on Linux
_WORKER_DIED = re.compile(r"Worker process was terminated unexpectedly with exit code (-?\d+)")
WATCH_INTERVAL_S = 0.5


class InputWorkerDied(UserError):
  """An input worker process died mid-run (killed, out of memory). The
  message names how it ended and how to resume; exit status 4."""
  exit_code = 4


def watch_parent(worker_index: int, worker_count: int):
  """Grain's ``worker_init_fn``: ends this worker when its parent is gone."""
  del worker_index, worker_count
  parent = os.getppid()

  def watch():
    while True:
      time.sleep(WATCH_INTERVAL_S)
      if os.getppid() != parent:
        os._exit(0)  # pylint: disable=protected-access

  threading.Thread(target=watch, name="sslax-watch-parent", daemon=True).start()


def quiet_resource_tracker():
  """Starts Python's resource tracker, if it is not running yet, with its
  warnings off: it is started with this interpreter's ``-W`` options, read
  from ``sys.warnoptions`` at that moment."""
  from multiprocessing import resource_tracker  # pylint: disable=g-import-not-at-top
  option = "ignore::UserWarning"
  sys.warnoptions.append(option)
  try:
    resource_tracker.ensure_running()
  finally:
    sys.warnoptions.remove(option)


def _in_use() -> set:
  """Names under /dev/shm that some process (that this user may inspect)
  has open or mapped."""
  used = set()
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/maps") as f:
        for line in f:
          if SHM_DIR in line:
            used.add(os.path.basename(line.split(None, 5)[-1].strip().split(" ")[0]))
      for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith(SHM_DIR + "/"):
          used.add(os.path.basename(target))
    except OSError:
      continue  # gone meanwhile, or not ours to read
  return used


def reclaim_orphaned_segments(min_age_s: float = 600.0) -> tuple:
  """Removes this user's ``psm_*`` segments that no process holds and that
  are older than ``min_age_s``; returns (count, bytes)."""
  if not os.path.isdir(SHM_DIR) or not os.path.isdir("/proc"):
    return 0, 0
  now, uid = time.time(), os.getuid()
  candidates = []
  for name in os.listdir(SHM_DIR):
    if not name.startswith(SEGMENT_PREFIX):
      continue
    try:
      st = os.stat(os.path.join(SHM_DIR, name))
    except OSError:
      continue
    if st.st_uid == uid and now - st.st_mtime > min_age_s:
      candidates.append((name, st.st_size))
  if not candidates:
    return 0, 0
  used = _in_use()
  count = size = 0
  for name, nbytes in candidates:
    if name in used:
      continue
    try:
      os.unlink(os.path.join(SHM_DIR, name))
    except OSError:
      continue
    count, size = count + 1, size + nbytes
  return count, size


def died(exc: BaseException):
  """The exit code of the input worker whose death ``exc`` reports, or None."""
  match = _WORKER_DIED.search(str(exc)) if isinstance(exc, RuntimeError) else None
  return int(match.group(1)) if match else None


def describe_exit(code: int) -> str:
  if code < 0:
    import signal  # pylint: disable=g-import-not-at-top
    try:
      name = signal.Signals(-code).name
    except ValueError:
      name = f"signal {-code}"
    return f"was killed by {name}" + (" (the out-of-memory killer sends it)"
                                      if -code == signal.SIGKILL else "")
  return f"exited with status {code}"
