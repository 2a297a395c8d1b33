#!/usr/bin/env bash
# Start one raftian node process per [[node]] of a cluster file, in the
# background, and check that every one answers status().
#
# usage: scripts/start_cluster.sh [--config FILE] [--headless] [--ephemeral]
#            [--log-dir D] [--data-root D] [--bin PATH] [--run-dir D] [--timeout S]
#   --config FILE  cluster file (default scripts/cluster.toml: the paper's static
#                  leader; drop its `leader` and `log` lines for elections)
#   --headless     no windows (without a display nodes fall back to headless anyway)
#   --ephemeral    Raft state in memory only (the original's behaviour; static mode)
#   --log-dir D    log files go to D/<name>/ (default logs)
#   --data-root D  durable state in D/<name> (default data)
#   --bin PATH     the raftian binary (default target/debug/raftian, built if missing)
#   --run-dir D    pid files <name>.pid, outputs <name>.out and the node list go
#                  here (default run); scripts/stop_cluster.sh --run-dir D stops them
#   --timeout S    how long to wait for every node to answer (default 20)
# Run from the repository root. On failure every node started is killed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
config=$repo/scripts/cluster.toml
headless=0
ephemeral=0
log_dir=logs
data_root=data
bin=""
run_dir=run
timeout=20

die() {
	echo "start_cluster: $*" >&2
	exit 1
}
need_value() { [ "$2" -ge 2 ] || die "$1 needs a value (try --help)"; }

while [ $# -gt 0 ]; do
	case $1 in
	--config) need_value "$1" $#; config=$2; shift 2 ;;
	--headless) headless=1; shift ;;
	--ephemeral) ephemeral=1; shift ;;
	--log-dir) need_value "$1" $#; log_dir=$2; shift 2 ;;
	--data-root) need_value "$1" $#; data_root=$2; shift 2 ;;
	--bin) need_value "$1" $#; bin=$2; shift 2 ;;
	--run-dir) need_value "$1" $#; run_dir=$2; shift 2 ;;
	--timeout) need_value "$1" $#; timeout=$2; shift 2 ;;
	-h | --help)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option '$1' (try --help)" ;;
	esac
done
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds"
command -v python3 >/dev/null || die "python3 is needed (to read the cluster file and call status())"
[ -f "$config" ] || die "no cluster file '$config'"

if [ -z "$bin" ]; then
	bin=$repo/target/debug/raftian
	if [ ! -x "$bin" ]; then
		echo "building $bin"
		(cd "$repo" && cargo build --quiet) || die "cargo build failed"
	fi
fi
[ -x "$bin" ] || die "no executable raftian binary at '$bin'"

# id, name and a reachable host:port of every node (tomllib: Python 3.11+).
nodes=$(python3 - "$config" <<'EOF'
import sys
try:
    import tomllib
except ImportError:
    sys.exit("python 3.11+ (tomllib) is needed to read the cluster file")
try:
    with open(sys.argv[1], "rb") as f:
        cfg = tomllib.load(f)
except (OSError, tomllib.TOMLDecodeError) as e:
    sys.exit(f"{sys.argv[1]}: {e}")
nodes = cfg.get("node") or []
if not nodes:
    sys.exit(f"{sys.argv[1]}: no [[node]]")
for n in nodes:
    try:
        i, name, addr = int(n["id"]), str(n["name"]), str(n["addr"])
    except (KeyError, ValueError, TypeError) as e:
        sys.exit(f"{sys.argv[1]}: bad [[node]] {n}: {e}")
    host, _, port = addr.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    print(i, name, f"{host}:{port}")
EOF
) || die "cannot read $config"

mkdir -p "$run_dir" || die "cannot create run dir '$run_dir'"
for f in "$run_dir"/*.pid; do
	[ -e "$f" ] || continue
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q raftian; then
		die "a node is already running from $run_dir ($(basename "$f" .pid), pid $pid): scripts/stop_cluster.sh --run-dir $run_dir"
	fi
	rm -f "$f"
done

started=()
ok=0
cleanup() {
	[ "$ok" = 1 ] && return
	local p
	for p in "${started[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${started[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -f "$run_dir"/*.pid
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mode=()
[ "$headless" = 1 ] && mode+=(--headless)
echo "$nodes" >"$run_dir/nodes"
echo "$config" >"$run_dir/config"
while read -r id name addr; do
	data=(--data-dir "$data_root/$name")
	[ "$ephemeral" = 1 ] && data=(--ephemeral)
	"$bin" node --config "$config" --id "$id" "${mode[@]}" "${data[@]}" --log-dir "$log_dir" \
		</dev/null >"$run_dir/$name.out" 2>&1 &
	started+=($!)
	echo $! >"$run_dir/$name.pid"
done <<<"$nodes"

# Every node must answer status() before the deadline.
now_us() { echo "${EPOCHREALTIME//[.,]/}"; } # microseconds
deadline=$(($(now_us) + timeout * 1000000))
while read -r id name addr; do
	pid=$(cat "$run_dir/$name.pid")
	until python3 "$repo/scripts/rpc.py" "$addr" status >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 5 "$run_dir/$name.out" >&2 || true
			die "node $id ($name) exited at start (output: $run_dir/$name.out)"
		fi
		[ "$(now_us)" -lt "$deadline" ] || die "node $id ($name) did not answer status() on $addr within ${timeout}s"
		sleep 0.1
	done
	echo "node $id $name: pid $pid, http://$addr/"
done <<<"$nodes"
ok=1
echo "cluster running ($run_dir). Status: $bin status --config $config [--watch]; click: $bin click --addr ADDR 3; stop: scripts/stop_cluster.sh --run-dir $run_dir"
