#!/usr/bin/env bash
# Run every test: unit, core rules, simulation seeds, wire/interop with a
# Python stdlib peer, multi-process clusters, fault scripts, window under Xvfb,
# a LAN of network namespaces (as root).
# Installs what the tests need (Debian packages) when it can.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v python3 >/dev/null || need+=(python3)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xdotool >/dev/null || need+=(xdotool)
command -v xwd >/dev/null || need+=(x11-apps)
command -v ip >/dev/null || need+=(iproute2) # network namespaces (tests/lan_netns.rs, fault scripts)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, e.g. sudo apt-get install ${need[*]})" >&2
  fi
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test --no-fail-fast "$@" 2>&1 | tee "$out" || status=$?
# One closing line over every test binary (cargo's own last line is the
# doc-tests', which has none).
awk '/^test result:/ { p += $4; f += $6 } END { printf "all test binaries: %d passed, %d failed\n", p, f }' "$out"
exit "$status"
