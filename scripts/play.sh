#!/usr/bin/env bash
# Play: build the game and run the paper's 5-node cluster on this machine,
# one process per node (windows where a display exists, headless otherwise).
#   scripts/play.sh              the paper's setup: static leader, seeded logs
#   scripts/play.sh --election   the same five nodes electing their leader
#   scripts/play.sh --config F   any cluster file
# Ctrl+C stops every node cleanly (final log lines land in logs/).
set -euo pipefail
cd "$(dirname "$0")/.."
config=scripts/cluster.toml
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --election) config=$(mktemp --suffix=.toml); grep -v '^leader' scripts/cluster.toml | grep -v '^log = ' > "$config"; shift ;;
    --config) config=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
cargo build --release --quiet
bin=target/release/raftian
mode=()
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  mode=(--headless)
  echo "no display: running headless. Click with e.g.  scripts/rpc.py 127.0.0.1:8001 click 3"
fi
pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ids=$(sed -n 's/^id *= *\([0-9]*\)/\1/p' "$config")
for id in $ids; do
  "$bin" node --config "$config" --id "$id" "${mode[@]}" "${extra[@]}" < /dev/null &
  pids+=($!)
done
echo "nodes running (pids ${pids[*]}); status:  scripts/rpc.py 127.0.0.1:8000 status ; Ctrl+C to stop"
wait
