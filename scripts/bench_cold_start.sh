#!/usr/bin/env bash
# Cold start to a drawn window: launch burncloud under a private Xvfb with an empty data
# folder and time until it logs "window drawn" (its first frame is painted: two
# requestAnimationFrame after the first render). Prints each run and the median (ms).
# Usage: scripts/bench_cold_start.sh [path/to/burncloud] [runs]
# Build first: cargo build --release -p burncloud (the number that counts is release).
set -euo pipefail
BIN=${1:-target/release/burncloud}
RUNS=${2:-5}
for t in Xvfb dbus-launch; do command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 2; }; done
n=90; while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n+1)); done
Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & XVFB=$!
eval "$(DISPLAY=:$n dbus-launch --sh-syntax)"
cleanup() { kill "$XVFB" 2>/dev/null || true; kill "$DBUS_SESSION_BUS_PID" 2>/dev/null || true; }
trap cleanup EXIT
while [ ! -e "/tmp/.X11-unix/X$n" ]; do sleep 0.1; done
times=()
for i in $(seq "$RUNS"); do
  dir=$(mktemp -d)
  start=$(date +%s%N)
  DISPLAY=:$n NO_AT_BRIDGE=1 BURNCLOUD_DATA_DIR="$dir" PORT=0 "$BIN" >/dev/null 2>"$dir/log" & APP=$!
  until grep -q "window drawn" "$dir/log" 2>/dev/null; do
    kill -0 "$APP" 2>/dev/null || { echo "burncloud exited:"; cat "$dir/log"; exit 1; }
    sleep 0.01
  done
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  echo "run $i: ${ms} ms to a drawn window ($(grep -o 'window drawn [0-9]* ms' "$dir/log") by its own clock)"
  times+=("$ms")
  kill "$APP"; wait "$APP" 2>/dev/null || true
  rm -rf "$dir"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] " ms"}'
