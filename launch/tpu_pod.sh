#!/bin/bash
# Runs sslax on every worker of a Cloud TPU VM pod slice. Each worker reads its
# own shard of every global batch; jax.distributed.initialize() finds the other
# workers by itself. TFDS data must already be prepared in DATA_DIR (a gs://
# bucket all workers can read), e.g. with
#   tfds build imagenet2012 --data_dir gs://BUCKET/tfds --file_format array_record
#
# Usage: launch/tpu_pod.sh [--dry-run] COMMAND TPU_NAME ZONE [ARGS ...]
#   create TPU_NAME ZONE [GCLOUD_FLAGS ...]
#       creates the slice: ACCELERATOR_TYPE (e.g. v4-32; or --accelerator-type)
#       and RUNTIME_VERSION (default tpu-ubuntu2204-base, the image for v4; use
#       v2-alpha-tpuv5-lite for v5e, v2-alpha-tpuv5 for v5p, v2-alpha-tpuv6e
#       for v6e; or --version).
#   launch TPU_NAME ZONE CONFIG WORKDIR DATA_DIR [--config.key=value ...]
#       on every worker: clones REPO into ~/sslax (or fetches it) at COMMIT,
#       makes ~/sslax/.venv with Python 3.11 (installed by uv where the VM's
#       python3 is older, as Ubuntu 22.04's 3.10 is), installs sslax[gcp] and
#       jax[tpu] with constraints.txt, and starts `sslax train --distributed`
#       detached (setsid nohup: it outlives the ssh session). Each worker logs
#       to ~/sslax-logs/RUN-workerN.log (its pid in RUN-workerN.pid).
#   watch TPU_NAME ZONE [RUN]    follows worker 0's log (default: its newest)
#   stop TPU_NAME ZONE [RUN]     SIGTERM to the run (default: every run) on
#       every worker: sslax saves a checkpoint at the next step and exits 0;
#       waits up to STOP_WAIT seconds (default 600) for the workers to exit.
#       `launch` again with the same WORKDIR resumes from that checkpoint.
#   delete TPU_NAME ZONE [GCLOUD_FLAGS ...]
# Example: launch/tpu_pod.sh launch my-v4-64 us-central2-b configs/simclr.py:imagenet \
#            gs://BUCKET/runs/simclr gs://BUCKET/tfds
#
# --dry-run (or DRY_RUN=1) prints every command, with its whole remote script,
# instead of running it; it needs neither gcloud nor a network.
# Environment: REPO (git URL the workers clone; default: this checkout's
# origin; a local path is refused), COMMIT (default: this checkout's HEAD; it
# must be pushed: a commit that origin's branches lack is refused), RUN (the
# run's name in log file names; default: WORKDIR's last component),
# PYTHON_VERSION (default 3.11, the version constraints.txt was made for),
# PROJECT (gcloud --project), ACCELERATOR_TYPE, RUNTIME_VERSION, STOP_WAIT.
set -euo pipefail

PROG="$0"
USAGE="usage: $PROG [--dry-run] {create|launch|watch|stop|delete} TPU_NAME ZONE [ARGS ...]"

die() {  # a usage mistake: one line on stderr, status 2
  echo "tpu_pod.sh: error: $*" >&2
  exit 2
}

# Prints a command as shell input: a multi-line argument (a remote script) as
# a quoted here-document, so that it reads as it runs.
show() {
  local line="" arg quoted
  for arg in "$@"; do
    if [[ "$arg" == *$'\n'* ]]; then
      line+=" \"\$(cat <<'REMOTE'"$'\n'"$arg"$'\n'"REMOTE"$'\n'")\""
    elif [[ "$arg" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      line+=" $arg"
    else
      quoted=${arg//\'/\'\\\'\'}
      line+=" '$quoted'"
    fi
  done
  printf '%s\n' "${line# }"
}

run() {
  if ((DRY_RUN)); then
    show "$@"
  else
    "$@"
  fi
}

# `name=value` lines that set remote variables, each value quoted for bash.
assign() {
  while (($#)); do
    printf '%s=%q\n' "$1" "$2"
    shift 2
  done
}

tpu_ssh() {  # tpu_ssh WORKER SCRIPT
  run gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" ${PROJECT:+--project "$PROJECT"} \
      --worker="$1" --command "$2"
}

# Helpers every remote script starts with.
remote_common() {
  cat <<'EOF'
set -euo pipefail
logs="$HOME/sslax-logs"
alive() {  # a live `sslax train` process (not a reused pid)
  kill -0 "$1" 2>/dev/null &&
    [[ "$(tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null)" == *"sslax train"* ]]
}
EOF
}

remote_launch() {
  cat <<'EOF'
worker="$(curl -sf -H 'Metadata-Flavor: Google' \
  http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number \
  || hostname)"
log="$logs/$run-worker$worker.log"
pidfile="$logs/$run-worker$worker.pid"
mkdir -p "$logs"
if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then
  echo "worker $worker: run $run is running (pid $(cat "$pidfile")); stop it first" >&2
  exit 1
fi
# The repository at one commit, the same on every worker.
cd "$HOME"
[ -d "$dir/.git" ] || git clone -q "$repo" "$dir"
cd "$dir"
git remote set-url origin "$repo"
git fetch -q origin
git checkout -q --detach "$commit" ||
  { echo "worker $worker: no commit $commit in $repo; push it first" >&2; exit 1; }
# Python >= 3.11: the VM's python3 (3.10 on Ubuntu 22.04) is usually older,
# so uv installs its own build of $python_version where none is found.
export PATH="$HOME/.local/bin:$PATH"
command -v uv >/dev/null || curl -LsSf https://astral.sh/uv/install.sh | sh
if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  uv python find "$python_version" >/dev/null 2>&1 || uv python install "$python_version"
  rm -rf .venv
  uv venv -q --python "$python_version" .venv
fi
uv pip install -q --python .venv/bin/python -c constraints.txt -e '.[gcp]' 'jax[tpu]'
# Detached from the ssh session: its own session (setsid), SIGHUP ignored
# (nohup), no terminal. The pid file holds sslax's own pid (exec).
export PYTHONUNBUFFERED=1
setsid nohup bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" \
  .venv/bin/sslax train --distributed --config "$config" --workdir "$workdir" \
  --config.data.data_dir="$data_dir" "${extra[@]}" > "$log" 2>&1 < /dev/null &
echo "worker $worker: sslax train started (pid $!), log $log"
EOF
}

remote_watch() {
  cat <<'EOF'
if [ -n "$run" ]; then
  log="$logs/$run-worker0.log"
else
  log="$(ls -t "$logs"/*-worker0.log 2>/dev/null | head -n 1)"
fi
if [ -z "$log" ] || [ ! -f "$log" ]; then
  echo "worker 0 has no sslax log ${log:-in $logs}; start a run with launch" >&2
  exit 1
fi
exec tail -n 100 -F "$log"
EOF
}

remote_stop() {
  cat <<'EOF'
shopt -s nullglob
if [ -n "$run" ]; then
  pidfiles=("$logs/$run"-worker*.pid)
else
  pidfiles=("$logs"/*-worker*.pid)
fi
pids=()
for pidfile in "${pidfiles[@]}"; do
  pid="$(cat "$pidfile")"
  if alive "$pid"; then
    kill -TERM "$pid"
    echo "$(hostname): SIGTERM to sslax train (pid $pid, ${pidfile%.pid}.log)"
    pids+=("$pid")
  fi
done
[ ${#pids[@]} -gt 0 ] || { echo "$(hostname): no sslax run to stop"; exit 0; }
for ((waited = 0; waited < wait_s; waited += 2)); do
  running=0
  for pid in "${pids[@]}"; do
    if alive "$pid"; then running=1; fi
  done
  [ "$running" = 1 ] || { echo "$(hostname): stopped"; exit 0; }
  sleep 2
done
echo "$(hostname): still running after ${wait_s}s" >&2
exit 1
EOF
}

# --- arguments ---------------------------------------------------------------
case "${DRY_RUN:-0}" in
  1|true|yes) DRY_RUN=1 ;;
  *) DRY_RUN=0 ;;
esac
if [[ "${1:-}" == "--dry-run" ]]; then
  DRY_RUN=1
  shift
fi
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  create|launch|watch|stop|delete) COMMAND="$1"; shift ;;
  "") die "no command given; $USAGE" ;;
  *) die "unknown command '$1'; $USAGE" ;;
esac
case "$COMMAND" in
  create|delete) SYNOPSIS="$COMMAND TPU_NAME ZONE [GCLOUD_FLAGS ...]"; MIN=2; MAX=-1 ;;
  launch) SYNOPSIS="launch TPU_NAME ZONE CONFIG WORKDIR DATA_DIR [--config.key=value ...]"
          MIN=5; MAX=-1 ;;
  watch|stop) SYNOPSIS="$COMMAND TPU_NAME ZONE [RUN]"; MIN=2; MAX=3 ;;
esac
if (($# < MIN)) || { ((MAX >= 0)) && (($# > MAX)); }; then
  die "$COMMAND: wrong number of arguments ($#); usage: $PROG [--dry-run] $SYNOPSIS"
fi
TPU="$1"
ZONE="$2"
shift 2
[[ -n "$TPU" && -n "$ZONE" ]] || die "TPU_NAME and ZONE must not be empty"

case "$COMMAND" in
  create)
    flags=("$@")
    if [[ " $* " != *" --accelerator-type"* ]]; then
      [[ -n "${ACCELERATOR_TYPE:-}" ]] ||
        die "set ACCELERATOR_TYPE (e.g. v4-32) or pass --accelerator-type"
      flags+=(--accelerator-type "$ACCELERATOR_TYPE")
    fi
    [[ " $* " == *" --version"* || " $* " == *" --runtime-version"* ]] ||
      flags+=(--version "${RUNTIME_VERSION:-tpu-ubuntu2204-base}")
    run gcloud compute tpus tpu-vm create "$TPU" --zone "$ZONE" ${PROJECT:+--project "$PROJECT"} \
        "${flags[@]}"
    ;;
  launch)
    CONFIG="$1"; WORKDIR="$2"; DATA_DIR="$3"
    shift 3
    [[ -n "$CONFIG" && -n "$WORKDIR" && -n "$DATA_DIR" ]] ||
      die "CONFIG, WORKDIR and DATA_DIR must not be empty"
    REPO="${REPO:-$(git remote get-url origin 2>/dev/null || true)}"
    [[ -n "$REPO" ]] || die "set REPO to the git URL the workers clone sslax from"
    # The workers clone over the network: a path on this machine is not there.
    case "$REPO" in
      /* | ./* | ../* | file://* | ~*)
        die "REPO $REPO is a path on this machine, which the workers cannot clone; set REPO to a URL they can reach (https://... or git@HOST:...)" ;;
    esac
    [[ "$REPO" == *://* || "$REPO" =~ ^[^/]+@[^/]+: ]] ||
      die "REPO $REPO is not a git URL, so the workers cannot clone it; set REPO to https://... or git@HOST:..."
    COMMIT="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}"
    [[ -n "$COMMIT" ]] || die "set COMMIT (not in a git checkout)"
    # A commit the remote lacks fails on every worker: when REPO is this
    # checkout's origin, its remote-tracking branches (as last fetched) must
    # hold COMMIT.
    if [[ "$REPO" == "$(git remote get-url origin 2>/dev/null || true)" ]] &&
        git rev-parse -q --verify "$COMMIT^{commit}" >/dev/null &&
        [[ -z "$(git branch -r --contains "$COMMIT" 2>/dev/null)" ]]; then
      die "COMMIT $COMMIT is not on any branch of origin ($REPO) as last fetched; push it (git push) or set COMMIT to a pushed commit"
    fi
    RUN_NAME="${RUN:-$(basename "${WORKDIR%/}")}"
    [[ "$RUN_NAME" =~ ^[A-Za-z0-9._-]+$ ]] ||
      die "run name '$RUN_NAME' is not usable in a file name; set RUN"
    script="$(remote_common)"$'\n'"$(assign run "$RUN_NAME" repo "$REPO" \
        commit "$COMMIT" dir sslax python_version "${PYTHON_VERSION:-3.11}" \
        config "$CONFIG" workdir "$WORKDIR" data_dir "$DATA_DIR")"
    script+=$'\n'"extra=($(if (($#)); then printf ' %q' "$@"; fi) )"$'\n'"$(remote_launch)"
    tpu_ssh all "$script"
    ;;
  watch)
    tpu_ssh 0 "$(remote_common)"$'\n'"$(assign run "${1:-}")"$'\n'"$(remote_watch)"
    ;;
  stop)
    tpu_ssh all "$(remote_common)"$'\n'"$(assign run "${1:-}" wait_s "${STOP_WAIT:-600}")"$'\n'"$(remote_stop)"
    ;;
  delete)
    run gcloud compute tpus tpu-vm delete "$TPU" --zone "$ZONE" ${PROJECT:+--project "$PROJECT"} "$@"
    ;;
esac
