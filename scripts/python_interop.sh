#!/usr/bin/env bash
# Run the paper's five-node cluster with some nodes taken from the ORIGINAL
# Python Raftian (a local checkout, never committed here) and the others from
# this Rust build, click through the Rust nodes, then check that every node
# ended with the same log (scripts/check_replication.sh).
#
# usage: scripts/python_interop.sh PATH [options]
#   PATH             a checkout of mhetacc/RuntimesConcurrencyDistribution
#                    (needs raftian/raftian.py and raftian/bobs/bob1..4.py)
#   --python IDS     ids run by the original, comma separated (default 0:
#                    the original leader with Rust bobs; 1,2,3,4: a Rust
#                    leader with the original bobs)
#   --clicks "P..."  players to click, in order (default "1 2 3 4 1")
#   --click-on ID    the Rust node that gets the clicks (default: the Rust
#                    leader, else the first Rust node). The original ignores
#                    stdin and has no click method, so clicks go to Rust nodes.
#   --bin PATH       the raftian binary (default: cargo build, target/debug)
#   --workdir DIR    where logs/ and each node's output go (default: mktemp)
#   --settle SECS    wait after the last click before stopping (default 2)
#
# The original hardcodes localhost:8000-8004 (which must be free), its names
# (raftian, bob1..bob4) and logs/<name>/<datetime>.<name>.log relative to its
# working directory; it runs headless here with SDL_VIDEODRIVER=dummy. It
# needs pygame: when missing, this script says so and runs `pip install pygame`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    usage
    exit 2
fi
orig=$(cd "$1" && pwd) || { echo "python_interop: no directory '$1'" >&2; exit 2; }
shift
python_ids="0"
clicks="1 2 3 4 1"
click_on=""
bin=""
workdir=""
settle=2
while [[ $# -gt 0 ]]; do
    case $1 in
    --python) python_ids=$2; shift 2 ;;
    --clicks) clicks=$2; shift 2 ;;
    --click-on) click_on=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    *) echo "python_interop: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

names=(raftian bob1 bob2 bob3 bob4)
declare -A is_python=()
IFS=, read -r -a ids <<<"$python_ids"
for id in "${ids[@]}"; do
    [[ $id =~ ^[0-4]$ ]] || { echo "python_interop: --python takes ids 0..4, got '$id'" >&2; exit 2; }
    is_python[$id]=1
done
script_of() {
    if [[ $1 == 0 ]]; then echo "$orig/raftian/raftian.py"; else echo "$orig/raftian/bobs/bob$1.py"; fi
}
for id in "${!is_python[@]}"; do
    [[ -f $(script_of "$id") ]] || { echo "python_interop: $(script_of "$id") not found" >&2; exit 2; }
done
rust_ids=()
for id in 0 1 2 3 4; do [[ -n ${is_python[$id]:-} ]] || rust_ids+=("$id"); done
if [[ -z $click_on ]]; then
    click_on=${rust_ids[0]:-}
fi
if [[ -n $clicks && ( -z $click_on || -n ${is_python[$click_on]:-} ) ]]; then
    echo "python_interop: clicks need a Rust node (--click-on); the original reads none" >&2
    exit 2
fi

if ! python3 -c 'import pygame' >/dev/null 2>&1; then
    echo "python_interop: pygame is missing (the original needs it): running pip install pygame"
    python3 -m pip install --quiet pygame || { echo "python_interop: pip install pygame failed" >&2; exit 2; }
fi
if [[ -z $bin ]]; then
    (cd "$here" && cargo build --quiet)
    bin=$here/target/debug/raftian
fi
[[ -x $bin ]] || { echo "python_interop: no binary at $bin" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

python3 - <<'EOF' || exit 2
import socket, sys
busy = []
for port in range(8000, 8005):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        busy.append(port)
    finally:
        s.close()
if busy:
    sys.exit("python_interop: ports %s are in use (the original needs 8000-8004)" % busy)
EOF

workdir=${workdir:-$(mktemp -d "${TMPDIR:-/tmp}/raftian-python-interop.XXXXXX")}
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
for n in "${names[@]}"; do mkdir -p "$workdir/logs/$n"; done

declare -A pid_of=()
cleanup() {
    for id in "${!pid_of[@]}"; do
        if [[ -n ${is_python[$id]:-} ]]; then
            kill -KILL "${pid_of[$id]}" 2>/dev/null || true
        else
            kill -TERM "${pid_of[$id]}" 2>/dev/null || true
        fi
    done
    for id in "${!pid_of[@]}"; do wait "${pid_of[$id]}" 2>/dev/null || true; done
    pid_of=()
}
trap cleanup EXIT

# One XML-RPC call with a timeout; prints the result (Python repr).
rpc() {
    python3 - "$@" <<'EOF'
import socket, sys, xmlrpc.client
port, method, *args = sys.argv[1:]
socket.setdefaulttimeout(5)
proxy = xmlrpc.client.ServerProxy("http://127.0.0.1:%s" % port, allow_none=True)
print(getattr(proxy, method)(*[int(a) for a in args]))
EOF
}
status_of() { rpc "800$1" status 2>/dev/null; }

wait_until() { # SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            echo "python_interop: timed out waiting for $what" >&2
            return 1
        fi
        sleep 0.1
    done
}
answers() { # ID
    if [[ -n ${is_python[$1]:-} ]]; then rpc "800$1" is_log_empty >/dev/null 2>&1; else status_of "$1" >/dev/null; fi
}

echo "workdir: $workdir"
echo "original Python nodes: ${!is_python[*]}; Rust nodes: ${rust_ids[*]:-none}"
for id in 1 2 3 4 0; do # followers first, the leader last
    name=${names[$id]}
    if [[ -n ${is_python[$id]:-} ]]; then
        (cd "$workdir" && SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1 \
            exec python3 -u "$(script_of "$id")" </dev/null >"$workdir/$name.out" 2>&1) &
    else
        (cd "$workdir" && RUST_LOG=${RUST_LOG:-info} exec "$bin" node --config "$here/scripts/cluster.toml" \
            --id "$id" --headless --ephemeral --log-dir "$workdir/logs" </dev/null >"$workdir/$name.out" 2>&1) &
    fi
    pid_of[$id]=$!
done
alive_and_answers() { # ID
    if ! kill -0 "${pid_of[$1]}" 2>/dev/null; then
        echo "python_interop: ${names[$1]} exited; its output:" >&2
        tail -n 20 "$workdir/${names[$1]}.out" >&2
        exit 1
    fi
    answers "$1"
}
for id in 0 1 2 3 4; do
    wait_until 30 "${names[$id]} to answer on port 800$id" alive_and_answers "$id"
done
echo "all five nodes answer"

result=0
if [[ -n $clicks ]]; then
    # One Python process clicks and polls (spawning one per poll is slow on a
    # loaded machine): after each click, every Rust node must hold one more
    # entry and have applied all it committed.
    python3 - "$click_on" "${rust_ids[*]}" $clicks <<'EOF' || result=1
import socket, sys, time, xmlrpc.client
socket.setdefaulttimeout(5)
click_on, rust_ids, players = int(sys.argv[1]), [int(i) for i in sys.argv[2].split()], sys.argv[3:]
names = ["raftian", "bob1", "bob2", "bob3", "bob4"]
def status(i):
    return xmlrpc.client.ServerProxy("http://127.0.0.1:%d" % (8000 + i)).status()
t0 = time.time()
for p in players:
    before = status(click_on)["log_length"]
    print("%6.2fs click player %s on %s (log length %d)" % (time.time() - t0, p, names[click_on], before), flush=True)
    xmlrpc.client.ServerProxy("http://127.0.0.1:%d" % (8000 + click_on)).click(int(p))
    deadline = time.time() + 20
    while True:
        try:
            ss = [status(i) for i in rust_ids]
            if all(s["log_length"] > before and s["commit_index"] is not None
                   and s["last_applied"] == s["commit_index"] for s in ss):
                break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit("python_interop: player %s's click did not reach every Rust node in 20 s" % p)
        time.sleep(0.05)
print("%6.2fs every click applied on every Rust node" % (time.time() - t0), flush=True)
EOF
fi
sleep "$settle" # the original writes its log line on its own schedule
for id in "${rust_ids[@]}"; do
    s=$(status_of "$id") || s="(no answer)"
    echo "${names[$id]}: $s"
done
for id in "${!is_python[@]}"; do
    if ! answers "$id"; then
        echo "python_interop: the original ${names[$id]} no longer answers (crashed or wedged)" >&2
        result=1
    fi
done
cleanup
echo "node output: $workdir/<name>.out; logs: $workdir/logs"
if ! "$here/scripts/check_replication.sh" "$workdir/logs" "${names[@]}"; then
    result=1
fi
exit $result
