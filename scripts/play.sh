#!/usr/bin/env bash
# Play: build the game and run the paper's 5-node cluster on this machine,
# one process per node: windows where a display exists; headless otherwise,
# and then this script shows the live status table (raftian status --watch).
#   scripts/play.sh              the paper's setup: static leader, seeded logs
#   scripts/play.sh --election   the same five nodes electing their leader
#   scripts/play.sh --config F   any cluster file
# Other options go to scripts/start_cluster.sh (e.g. --ephemeral).
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
headless=0
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  extra+=(--headless)
  headless=1
fi
trap 'scripts/stop_cluster.sh --run-dir run' EXIT
trap 'exit 130' INT TERM
scripts/start_cluster.sh --config "$config" --bin "$bin" --run-dir run "${extra[@]}"
# A follower's address for the hint (start_cluster lists "id name addr").
addr=$(awk 'NR == 2 { print $3 } END { if (NR < 2) print $3 }' run/nodes)
if [ "$headless" = 1 ]; then
  # No windows: the live status table, until Ctrl+C (the EXIT trap then
  # stops every node).
  echo "no display: running headless. Click with e.g.  $bin click --addr $addr 3"
  "$bin" status --config "$config" --watch
  exit 0
fi
echo "watch: $bin status --config $config --watch ; click: $bin click --addr $addr 3 ; Ctrl+C to stop"
# Until Ctrl+C, or until every node has gone (e.g. all windows closed).
any_alive() {
  local f
  for f in run/*.pid; do
    [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0
  done
  return 1
}
while any_alive; do sleep 1; done
