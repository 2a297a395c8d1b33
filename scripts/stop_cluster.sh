#!/usr/bin/env bash
# Stop the nodes scripts/start_cluster.sh started: SIGTERM (a clean stop writes
# each node's final `log = ` line), wait, then SIGKILL whatever is left.
#
# usage: scripts/stop_cluster.sh [--run-dir D] [--timeout S]
#   --run-dir D   where start_cluster.sh wrote the pid files (default run)
#   --timeout S   how long to wait after SIGTERM (default 10)
# Exit 0 when every node stopped on SIGTERM (or none was running), 1 when some
# had to be SIGKILLed (their last log line may be missing), 2 on bad usage.
set -euo pipefail

run_dir=run
timeout=10
usage() {
	echo "stop_cluster: $*" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--run-dir)
		[ $# -ge 2 ] || usage "--run-dir needs a directory"
		run_dir=$2
		shift 2
		;;
	--timeout)
		[ $# -ge 2 ] || usage "--timeout needs seconds"
		timeout=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) usage "unknown option '$1' (try --help)" ;;
	esac
done
[[ $timeout =~ ^[0-9]+$ ]] || usage "--timeout takes whole seconds"
[ -d "$run_dir" ] || { echo "stop_cluster: no run dir '$run_dir': nothing to stop"; exit 0; }

# Only signal a pid that is still a raftian process (pids get reused).
is_node() { kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q raftian; }
alive() { is_node "$1" && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

declare -A pid_of=()
n=0
for f in "$run_dir"/*.pid; do
	[ -e "$f" ] || continue
	name=$(basename "$f" .pid)
	pid=$(cat "$f")
	if [[ $pid =~ ^[0-9]+$ ]] && is_node "$pid"; then
		pid_of[$name]=$pid
		n=$((n + 1))
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true # a SIGSTOPped node must run to stop
	else
		rm -f "$f"
	fi
done
if [ "$n" -eq 0 ]; then
	echo "stop_cluster: no node running from $run_dir"
	exit 0
fi

now_us() { echo "${EPOCHREALTIME//[.,]/}"; } # microseconds
deadline=$(($(now_us) + timeout * 1000000))
killed=()
for name in "${!pid_of[@]}"; do
	pid=${pid_of[$name]}
	while alive "$pid" && [ "$(now_us)" -lt "$deadline" ]; do sleep 0.05; done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		killed+=("$name")
	else
		echo "$name (pid $pid) stopped"
	fi
	rm -f "$run_dir/$name.pid"
done
if [ ${#killed[@]} -gt 0 ]; then
	echo "stop_cluster: SIGKILLed after ${timeout}s: ${killed[*]} (their final log lines may be missing)" >&2
	exit 1
fi
