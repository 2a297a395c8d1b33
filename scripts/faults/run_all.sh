#!/usr/bin/env bash
# Run the six fault scripts one after the other and summarise.
#
# usage: scripts/faults/run_all.sh [--bin PATH] [--net netns|sigstop|auto] [--keep] [--only N,N...]
# Every option but --only is passed to each script (see scripts/faults/lib.sh;
# environment: FAULT_TIMEOUT, FAULT_ELECTION_MS, FAULT_HEARTBEAT_MS, FAULT_NET,
# FAULT_TERM_CHECKS). Exits 1 if any script fails, naming them.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$dir/../.." && pwd)
pass=()
only=""
while [ $# -gt 0 ]; do
	case $1 in
	--bin | --net)
		[ $# -ge 2 ] || { echo "run_all: $1 needs a value" >&2; exit 2; }
		pass+=("$1" "$2")
		shift 2
		;;
	--keep)
		pass+=("$1")
		shift
		;;
	--only)
		[ $# -ge 2 ] || { echo "run_all: --only needs script numbers, e.g. 1,3" >&2; exit 2; }
		only=",$2,"
		shift 2
		;;
	-h | --help)
		sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	*)
		echo "run_all: unknown option '$1' (try --help)" >&2
		exit 2
		;;
	esac
done

# Build once here rather than in every script.
if [[ " ${pass[*]-} " != *" --bin "* ]]; then
	(cd "$repo" && cargo build --quiet) || { echo "run_all: cargo build failed" >&2; exit 1; }
	pass+=(--bin "$repo/target/debug/raftian")
fi

# Stop the script that is running if we are interrupted (it cleans up itself).
child=""
trap '[ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failed=()
summary=()
t0=$SECONDS
for script in "$dir"/[1-6]_*.sh; do
	name=$(basename "$script" .sh)
	n=${name%%_*}
	if [ -n "$only" ] && [[ $only != *",$n,"* ]]; then continue; fi
	echo "=== $name"
	start=$SECONDS
	"$script" "${pass[@]}" &
	child=$!
	if wait "$child"; then
		summary+=("PASS $name ($((SECONDS - start))s)")
	else
		summary+=("FAIL $name ($((SECONDS - start))s)")
		failed+=("$name")
	fi
	child=""
done
echo "=== summary ($((SECONDS - t0))s)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "run_all: FAILED: ${failed[*]}" >&2
	exit 1
fi
[ ${#summary[@]} -gt 0 ] || { echo "run_all: no script matched --only" >&2; exit 1; }
echo "run_all: all passed"
