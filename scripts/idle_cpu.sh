#!/usr/bin/env bash
# Idle CPU of the desktop app with its window shown and nothing happening: launch burncloud
# under a private Xvfb on an empty data folder, wait until the window is drawn and has
# settled, then read the CPU time of the app and every process it started (the webview's
# WebKit processes) once a second for SECONDS seconds. Prints each second's share of one
# core and the median (the number the README quotes; target: at most 1 %).
# Usage: scripts/idle_cpu.sh [path/to/burncloud] [seconds] [settle-seconds]
# Build first: cargo build --release -p burncloud.
set -euo pipefail
BIN=${1:-target/release/burncloud}
SECONDS_TO_SAMPLE=${2:-30}
SETTLE=${3:-15}
for t in Xvfb dbus-launch; do command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 2; }; done
[ -x "$BIN" ] || { echo "$BIN is not an executable (build it first)" >&2; exit 2; }
n=90; while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n+1)); done
Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & XVFB=$!
eval "$(DISPLAY=:$n dbus-launch --sh-syntax)"
dir=$(mktemp -d)
APP=
cleanup() {
  [ -n "$APP" ] && kill "$APP" 2>/dev/null && wait "$APP" 2>/dev/null || true
  kill "$XVFB" 2>/dev/null || true; kill "$DBUS_SESSION_BUS_PID" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
while [ ! -e "/tmp/.X11-unix/X$n" ]; do sleep 0.1; done
DISPLAY=:$n NO_AT_BRIDGE=1 BURNCLOUD_DATA_DIR="$dir" PORT=0 "$BIN" >/dev/null 2>"$dir/log" & APP=$!
until grep -q "window drawn" "$dir/log" 2>/dev/null; do
  kill -0 "$APP" 2>/dev/null || { echo "burncloud exited:"; cat "$dir/log"; exit 1; }
  sleep 0.1
done
sleep "$SETTLE"
hz=$(getconf CLK_TCK)
# utime + stime (clock ticks) of the app and all its descendants.
ticks() {
  local pids=("$APP") i=0 total=0
  while [ $i -lt ${#pids[@]} ]; do
    for c in $(cat "/proc/${pids[$i]}/task/"*/children 2>/dev/null); do pids+=("$c"); done
    i=$((i+1))
  done
  for p in "${pids[@]}"; do
    # Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    local s; s=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    set -- $s
    total=$((total + ${12} + ${13}))
  done
  echo "$total ${#pids[@]}"
}
samples=()
read -r prev procs < <(ticks); prev_t=$(date +%s%N)
for i in $(seq "$SECONDS_TO_SAMPLE"); do
  sleep 1
  read -r now procs < <(ticks); now_t=$(date +%s%N)
  # Share of one core, in hundredths of a percent.
  pct=$(( (now - prev) * 10000 * 1000000000 / hz / (now_t - prev_t) ))
  samples+=("$pct")
  printf 'second %2d: %d.%02d %% of a core (%d processes)\n' "$i" $((pct / 100)) $((pct % 100)) "$procs"
  prev=$now; prev_t=$now_t
done
median=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
mean=$(printf '%s\n' "${samples[@]}" | awk '{s+=$1} END {printf "%d", s/NR}')
printf 'idle CPU, window shown: median %d.%02d %% of a core, mean %d.%02d %% over %d s\n' \
  $((median / 100)) $((median % 100)) $((mean / 100)) $((mean % 100)) "$SECONDS_TO_SAMPLE"
