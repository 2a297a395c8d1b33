#!/usr/bin/env bash
# Did every node end with the same log? The original authors' check compared
# the last `log = [...]` line of each node's newest log file. Nodes that
# compact their logs hold different prefixes, so this compares what they hold
# in common: every index two nodes both hold must have the same entry, every
# node must end at the same index, and nodes whose latest `snapshot = {...}`
# line is at the same index must have the same game in it (board, round,
# sessions). Without snapshots that is the original check.
#
# usage: scripts/check_replication.sh [LOGDIR] [names...]
#        scripts/check_replication.sh --status HOST:PORT...
#   --status  asks running nodes instead: once they have applied as far as
#             each other (within 10 s), their status().state_digest must be
#             equal (the digest also sits in every snapshot line, and is
#             compared with the rest of the game there).
#   LOGDIR  default: logs. Files are LOGDIR/<name>/<datetime>.<name>.log (the
#           original's and the Rust nodes' layout) or LOGDIR/<datetime>.<name>.log;
#           .log.gz files are read too.
#   names   default: every <name> found in LOGDIR.
# Exit 0 when the nodes agree; 1 naming the nodes that differ (from what most
# nodes have); 2 for a missing log file or bad usage.
set -euo pipefail

if [[ ${1:-} == --status ]]; then
    shift
    [[ $# -ge 2 ]] || { echo "check_replication: --status needs two or more HOST:PORT" >&2; exit 2; }
    exec python3 - "$@" <<'PY'
import sys, time, xmlrpc.client
addrs = sys.argv[1:]
def status(a):
    try:
        return xmlrpc.client.ServerProxy(f"http://{a}/RPC2", allow_none=True).status()
    except Exception as e:
        print(f"check_replication: {a}: {e}", file=sys.stderr)
        sys.exit(2)
deadline = time.time() + 10
while True:
    st = {a: status(a) for a in addrs}
    applied = {s["last_applied"] for s in st.values()}
    if len(applied) == 1 or time.time() > deadline:
        break
    time.sleep(0.1)
for a, s in st.items():
    print(f"{s['name']:<10} applied {s['last_applied']}  digest {s.get('state_digest', '-')}  ({a})")
if len(applied) != 1:
    print("replication FAILED: the nodes did not reach the same index within 10 s", file=sys.stderr)
    sys.exit(1)
digests = {s.get("state_digest") for s in st.values()}
if len(digests) != 1:
    print("replication FAILED: the state digests differ", file=sys.stderr)
    sys.exit(1)
print(f"replication OK: {len(addrs)} nodes applied up to {applied.pop()} with the same state digest")
PY
fi

logdir=${1:-logs}
[[ $# -gt 0 ]] && shift
if [[ ! -d $logdir ]]; then
    echo "check_replication: no log directory '$logdir'" >&2
    exit 2
fi

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
    mapfile -t names < <(
        {
            find "$logdir" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'
            find "$logdir" -mindepth 1 -maxdepth 1 -type f \( -name '*.log' -o -name '*.log.gz' \) -printf '%f\n' |
                sed -E 's/\.log(\.gz)?$//; s/.*\.//'
        } | sort -u
    )
fi
if [[ ${#names[@]} -eq 0 ]]; then
    echo "check_replication: no node logs in '$logdir'" >&2
    exit 2
fi

# The newest log file of a node: file names start with the date and time.
newest() {
    local name=$1
    {
        [[ -d $logdir/$name ]] && find "$logdir/$name" -maxdepth 1 -type f \
            \( -name "*.$name.log" -o -name "*.$name.log.gz" \) -print
        find "$logdir" -maxdepth 1 -type f \( -name "*.$name.log" -o -name "*.$name.log.gz" \) -print
    } | awk -F/ '{ print $NF "\t" $0 }' | sort | tail -n 1 | cut -f2-
}

read_lines() {
    local file=$1
    if [[ $file == *.gz ]]; then
        gzip -dc -- "$file"
    else
        cat -- "$file"
    fi | grep -E '^(log|snapshot) = ' || true
}

args=()
for name in "${names[@]}"; do
    file=$(newest "$name")
    if [[ -z $file ]]; then
        echo "check_replication: no log file for: $name" >&2
        exit 2
    fi
    args+=("$name" "$file")
done

command -v python3 >/dev/null || { echo "check_replication: python3 is needed" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((k = 0; k < ${#args[@]}; k += 2)); do
    read_lines "${args[k+1]}" >"$tmp/${args[k]}"
done
exec python3 - "$tmp" "${args[@]}" <<'PY'
import json, re, sys
from collections import Counter

tmp, pairs = sys.argv[1], sys.argv[2:]
names, files = pairs[0::2], pairs[1::2]
ENTRY = re.compile(r"Raft\.Entry\(term=(\d+), index=(\d+), command=(.*?)\)(?:, |\]$)")
held, snaps = {}, {}
for name, file in zip(names, files):
    lines = open(f"{tmp}/{name}").read().splitlines()
    logs = [l for l in lines if l.startswith("log = ")]
    if not logs:
        print(f"check_replication: {name}: no 'log = ' line in {file}", file=sys.stderr)
        sys.exit(2)
    held[name] = {int(i): (int(t), c) for t, i, c in ENTRY.findall(logs[-1])}
    snap = [l for l in lines if l.startswith("snapshot = ")]
    snaps[name] = json.loads(snap[-1][len("snapshot = "):]) if snap else None
    last = max(held[name], default=None)
    s = snaps[name]
    print(f"{name:<10} {len(held[name]):4d} entries, last index {last}"
          + (f", snapshot at {s['lastIndex']}" if s else "") + f"  ({file})")

def end(n):
    s = snaps[n]
    return max(held[n], default=s["lastIndex"] if s else None)

differ = set()
# Every node ends where most nodes end.
ends = Counter(end(n) for n in names)
common_end = ends.most_common(1)[0][0]
differ |= {n for n in names if end(n) != common_end}
# An index held by several nodes holds what most of them have there.
for i in sorted(set().union(*held.values())):
    have = [n for n in names if i in held[n]]
    votes = Counter(held[n][i] for n in have)
    want = votes.most_common(1)[0][0]
    differ |= {n for n in have if held[n][i] != want}
# The same snapshot point holds the same game.
game = lambda s: {k: v for k, v in s.items() if k not in ("servers",)}
by_point = {}
for n in names:
    if snaps[n]:
        by_point.setdefault(snaps[n]["lastIndex"], []).append(n)
for point, ns in by_point.items():
    votes = Counter(json.dumps(game(snaps[n]), sort_keys=True) for n in ns)
    want = votes.most_common(1)[0][0]
    differ |= {n for n in ns if json.dumps(game(snaps[n]), sort_keys=True) != want}
if differ:
    bad = [n for n in names if n in differ]
    print(f"replication FAILED: {' '.join(bad)} differ from what most nodes hold", file=sys.stderr)
    sys.exit(1)
print(f"replication OK: {' '.join(names)} agree on every index they hold and end at {common_end}")
PY
