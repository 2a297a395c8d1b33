# shellcheck shell=bash
# Shared by the fault scripts (source it; bash only).
#
# Each script gets a private temp dir with a 5-node election-mode cluster file
# on free loopback ports, starts/kills/stops/continues node processes, waits on
# status() conditions with deadlines (scripts/faults/cluster.py) and checks the
# final log files. On exit (pass or fail) the trap SIGKILLs every node it
# started; on failure it prints every node's status and the tail of its output
# and keeps the temp dir.
#
# Options every script accepts:
#   --bin PATH       the raftian binary (default target/debug/raftian, built if missing)
#   --keep           keep the temp dir even on success
#   --port-base N    use ports N..N+4 instead of free ones (loopback mode)
#   --net MODE       how partitions are made (scripts 4-6):
#                    netns   - every node in its own network namespace on a private
#                              bridge (10.99.0.x); a partition moves one side's ports
#                              to a second bridge: a real network split, both sides
#                              keep running (needs root and `ip netns`)
#                    sigstop - all nodes on 127.0.0.1; the cut-off side is SIGSTOPped
#                              (frozen: it talks to nobody, not even its own side)
#                    auto    - netns if it works here, else sigstop (the default)
# Environment: FAULT_TIMEOUT (seconds per wait, default 20),
#   FAULT_ELECTION_MS ("MIN MAX", default "500 1000"), FAULT_HEARTBEAT_MS (default 50),
#   FAULT_NET (default for --net), FAULT_TERM_CHECKS (default 1; 0 skips the
#   checks that a cut-off node keeps its term and that healing a partition does
#   not unseat the majority's leader: both rely on pre-vote).

set -euo pipefail

FT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FT_PY=(python3 "$FT_REPO/scripts/faults/cluster.py")
FT_RPC=(python3 "$FT_REPO/scripts/rpc.py")
FT_N=5
FT_TIMEOUT=${FAULT_TIMEOUT:-20}
FT_BIN=""
FT_KEEP=0
FT_PORT_BASE=""
FT_NET=${FAULT_NET:-auto}
FT_NS=""      # netns name prefix when FT_NET=netns
FT_CUT=""     # the ids currently partitioned away
FT_TERM_CHECKS=${FAULT_TERM_CHECKS:-1}
FT_EMAX=1000
FT_DIR=""
FT_NAME=""
FT_T0=$SECONDS
declare -a FT_PID=() FT_ADDR=() FT_NODE_NAME=()
declare -A FT_EXPECT=([1]=0 [2]=0 [3]=0 [4]=0) FT_ATLEAST=([1]="" [2]="" [3]="" [4]="")

ft_log() { printf '[%s +%ss] %s\n' "$FT_NAME" "$((SECONDS - FT_T0))" "$*"; }

ft_fail() {
	printf '[%s] FAIL: %s\n' "$FT_NAME" "$*" >&2
	exit 1
}

ft_usage() {
	sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# ft_init NAME "$@": parse the common options, make the temp dir and cluster file.
ft_init() {
	FT_NAME=$1
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--bin)
			[ $# -ge 2 ] || ft_fail "--bin needs a path"
			FT_BIN=$2
			shift 2
			;;
		--keep)
			FT_KEEP=1
			shift
			;;
		--port-base)
			[ $# -ge 2 ] || ft_fail "--port-base needs a port number"
			FT_PORT_BASE=$2
			shift 2
			;;
		--net)
			[ $# -ge 2 ] || ft_fail "--net needs netns, sigstop or auto"
			FT_NET=$2
			shift 2
			;;
		-h | --help) ft_usage ;;
		*) ft_fail "unknown option '$1' (try --help)" ;;
		esac
	done
	command -v python3 >/dev/null || ft_fail "python3 is needed (XML-RPC client)"
	if [ -z "$FT_BIN" ]; then
		FT_BIN=$FT_REPO/target/debug/raftian
		if [ ! -x "$FT_BIN" ]; then
			ft_log "building $FT_BIN"
			(cd "$FT_REPO" && cargo build --quiet) || ft_fail "cargo build failed"
		fi
	fi
	[ -x "$FT_BIN" ] || ft_fail "no executable raftian binary at '$FT_BIN'"
	FT_BIN=$(cd "$(dirname "$FT_BIN")" && pwd)/$(basename "$FT_BIN")

	FT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/raftian-$FT_NAME.XXXXXX")
	trap ft_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mkdir -p "$FT_DIR/data" "$FT_DIR/logs" "$FT_DIR/out"

	case $FT_NET in
	netns | sigstop) ;;
	auto) if ft_netns_works; then FT_NET=netns; else FT_NET=sigstop; fi ;;
	*) ft_fail "--net must be netns, sigstop or auto (got '$FT_NET')" ;;
	esac

	local ports
	if [ "$FT_NET" = netns ]; then
		ft_netns_setup
		ports=$(seq 8000 $((8000 + FT_N - 1)))
	elif [ -n "$FT_PORT_BASE" ]; then
		if ! [[ $FT_PORT_BASE =~ ^[0-9]+$ ]] || [ "$FT_PORT_BASE" -lt 1024 ] || [ "$FT_PORT_BASE" -gt 65530 ]; then
			ft_fail "--port-base must be a number in 1024..65530"
		fi
		ports=$(seq "$FT_PORT_BASE" $((FT_PORT_BASE + FT_N - 1)))
	else
		# Bind all five at once so they are distinct, then let them go.
		ports=$(python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in ss))' "$FT_N")
	fi
	local election=${FAULT_ELECTION_MS:-500 1000}
	read -r emin emax <<<"$election"
	FT_EMAX=$emax
	{
		echo "# $FT_NAME: 5 nodes, election mode (no static leader)"
		echo "heartbeat_ms = ${FAULT_HEARTBEAT_MS:-50}"
		echo "election_timeout_ms = [$emin, $emax]"
	} >"$FT_DIR/cluster.toml"
	: >"$FT_DIR/nodes"
	local i=0 p host
	for p in $ports; do
		host=127.0.0.1
		[ "$FT_NET" = netns ] && host=10.99.0.$((i + 1))
		FT_ADDR[i]=$host:$p
		FT_NODE_NAME[i]=n$i
		printf '\n[[node]]\nid = %d\nname = "n%d"\naddr = "%s"\n' "$i" "$i" "${FT_ADDR[i]}" >>"$FT_DIR/cluster.toml"
		echo "$i n$i ${FT_ADDR[i]}" >>"$FT_DIR/nodes"
		i=$((i + 1))
	done
	ft_log "temp dir $FT_DIR, partitions by $FT_NET, nodes on ${FT_ADDR[*]}"
}

# ----- network namespaces -----

ft_netns_works() {
	[ "$(id -u)" = 0 ] && command -v ip >/dev/null || return 1
	local probe=rftprobe$$
	ip netns add "$probe" 2>/dev/null || return 1
	local ok=0
	ip -n "$probe" link add b0 type bridge 2>/dev/null &&
		ip -n "$probe" link add v0 type veth peer name v1 2>/dev/null || ok=1
	ip netns del "$probe" 2>/dev/null || true
	return $ok
}

# A hub namespace with two bridges (br0: everyone; br1: the cut-off side) and,
# per node, a namespace with a data link (eth0, 10.99.0.i+1, on a bridge port
# d<i> of the hub) and a management link (10.98.i.2 <-> hub 10.98.i.1) that
# lets this script reach the node whatever the partition. The hub does not
# forward IP, so nodes only meet on the bridges.
ft_netns_setup() {
	FT_NS=rft$$
	local hub=${FT_NS}h i ns
	ip netns add "$hub" || ft_fail "cannot create network namespace $hub"
	ip -n "$hub" link set lo up
	ip netns exec "$hub" sysctl -qw net.ipv4.ip_forward=0
	for b in br0 br1; do
		ip -n "$hub" link add "$b" type bridge
		ip -n "$hub" link set "$b" up
	done
	for ((i = 0; i < FT_N; i++)); do
		ns=${FT_NS}n$i
		ip netns add "$ns" || ft_fail "cannot create network namespace $ns"
		ip -n "$ns" link set lo up
		ip -n "$hub" link add "d$i" type veth peer name eth0 netns "$ns"
		ip -n "$hub" link set "d$i" master br0 up
		ip -n "$ns" addr add "10.99.0.$((i + 1))/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$hub" link add "m$i" type veth peer name mgmt netns "$ns"
		ip -n "$hub" addr add "10.98.$i.1/30" dev "m$i"
		ip -n "$hub" link set "m$i" up
		ip -n "$ns" addr add "10.98.$i.2/30" dev mgmt
		ip -n "$ns" link set mgmt up
		ip -n "$hub" route add "10.99.0.$((i + 1))/32" via "10.98.$i.2" dev "m$i"
	done
	FT_PY=(ip netns exec "$hub" "${FT_PY[@]}")
	FT_RPC=(ip netns exec "$hub" "${FT_RPC[@]}")
}

ft_netns_teardown() {
	[ -n "$FT_NS" ] || return 0
	local i
	for ((i = 0; i < FT_N; i++)); do ip netns del "${FT_NS}n$i" 2>/dev/null || true; done
	ip netns del "${FT_NS}h" 2>/dev/null || true
}

# ft_partition IDS: cut nodes IDS off from the others (see --net). In netns
# mode both sides run on; in sigstop mode IDS are frozen.
ft_partition() {
	local i
	[ -z "$FT_CUT" ] || ft_fail "already partitioned ($FT_CUT cut off)"
	FT_CUT=$*
	if [ "$FT_NET" = netns ]; then
		for i in "$@"; do ip -n "${FT_NS}h" link set "d$i" master br1; done
	else
		ft_stop "$@"
	fi
}

# ft_heal: undo ft_partition.
ft_heal() {
	local i
	[ -n "$FT_CUT" ] || ft_fail "no partition to heal"
	if [ "$FT_NET" = netns ]; then
		# shellcheck disable=SC2086
		for i in $FT_CUT; do ip -n "${FT_NS}h" link set "d$i" master br0; done
	else
		# shellcheck disable=SC2086
		ft_cont $FT_CUT
	fi
	FT_CUT=""
}

# True when both sides of a partition keep running (clicks on the cut-off side are possible).
ft_real_partition() { [ "$FT_NET" = netns ]; }

# ft_keeps_term TERM IDS: cut-off nodes IDS, once they have noticed they lost
# their leader, stay at TERM for 3 election timeouts (pre-vote: a node that
# cannot win a pre-vote must not start a real election). netns only.
ft_keeps_term() {
	local t=$1 i
	shift
	ft_real_partition && [ "$FT_TERM_CHECKS" = 1 ] || return 0
	for i in "$@"; do
		ft_py wait-status "$i" "s['mode'] == 'PRECANDIDATE'" >/dev/null ||
			ft_fail "cut-off node $i never started a pre-vote"
	done
	ft_py hold --among "$*" "s['term'] == $t" --for "$(awk -v m="$FT_EMAX" 'BEGIN{print 3*m/1000}')" ||
		ft_fail "a cut-off node left term $t: a failed pre-vote must not start a real election (FAULT_TERM_CHECKS=0 skips this check)"
}

# ft_heal_args L T: cluster.py options requiring that healing left L leader in T.
ft_heal_args() {
	if [ "$FT_TERM_CHECKS" = 1 ]; then echo "--leader $1 --term $2"; fi
}

ft_cleanup() {
	local rc=$? i pid
	trap - EXIT INT TERM
	if [ "$rc" -ne 0 ] && [ -n "$FT_DIR" ] && [ -f "$FT_DIR/nodes" ]; then
		echo "---- $FT_NAME failed (exit $rc); node status:" >&2
		"${FT_PY[@]}" --nodes "$FT_DIR/nodes" status >&2 2>&1 || true
		for i in "${!FT_NODE_NAME[@]}"; do
			[ -f "$FT_DIR/out/${FT_NODE_NAME[i]}.out" ] || continue
			echo "---- tail of ${FT_NODE_NAME[i]}'s output:" >&2
			tail -n 15 "$FT_DIR/out/${FT_NODE_NAME[i]}.out" >&2 || true
		done
	fi
	if [ -n "$FT_ARMED" ]; then kill "$FT_ARMED" 2>/dev/null || true; fi
	for i in "${!FT_PID[@]}"; do
		pid=${FT_PID[i]}
		[ -n "$pid" ] || continue
		kill -KILL "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	ft_netns_teardown
	if [ -n "$FT_DIR" ]; then
		if [ "$rc" -ne 0 ] || [ "$FT_KEEP" = 1 ]; then
			echo "[$FT_NAME] kept $FT_DIR" >&2
		else
			rm -rf "$FT_DIR"
		fi
	fi
	exit "$rc"
}

# ft_start ID...: start nodes (same data dir as before if restarted); wait until they answer.
ft_start() {
	local i
	for i in "$@"; do
		[ -z "${FT_PID[i]:-}" ] || ft_fail "node $i is already running (pid ${FT_PID[i]})"
		local pre=()
		[ "$FT_NET" = netns ] && pre=(ip netns exec "${FT_NS}n$i")
		"${pre[@]}" "$FT_BIN" node --config "$FT_DIR/cluster.toml" --id "$i" --headless \
			--data-dir "$FT_DIR/data/${FT_NODE_NAME[i]}" --log-dir "$FT_DIR/logs" \
			</dev/null >>"$FT_DIR/out/${FT_NODE_NAME[i]}.out" 2>&1 &
		FT_PID[i]=$!
	done
	"${FT_PY[@]}" --nodes "$FT_DIR/nodes" --timeout "$FT_TIMEOUT" wait-up --among "$*" >/dev/null ||
		ft_fail "node(s) $* did not come up (see $FT_DIR/out/)"
}

# ft_signal SIG ID...
ft_signal() {
	local sig=$1 i
	shift
	for i in "$@"; do
		[ -n "${FT_PID[i]:-}" ] || ft_fail "node $i is not running"
		kill -"$sig" "${FT_PID[i]}" || ft_fail "cannot send SIG$sig to node $i"
	done
}

# ft_kill ID...: SIGKILL (a crash); reaps the process.
ft_kill() {
	local i
	ft_signal KILL "$@"
	for i in "$@"; do
		wait "${FT_PID[i]}" 2>/dev/null || true
		FT_PID[i]=""
	done
}

# ft_stop ID...: SIGSTOP = the node is cut off from everyone (and its clock stops).
ft_stop() {
	local i deadline=$((SECONDS + 5))
	ft_signal STOP "$@"
	for i in "$@"; do
		until [ "$(awk '{print $3}' "/proc/${FT_PID[i]}/stat" 2>/dev/null)" = T ]; do
			[ $SECONDS -le $deadline ] || ft_fail "node $i did not stop"
			sleep 0.01
		done
	done
}

# ft_cont ID...: the partition heals for these nodes.
ft_cont() { ft_signal CONT "$@"; }

# ft_term_all: SIGTERM every running node (clean stop writes the final log line); wait.
ft_term_all() {
	local i deadline
	for i in "${!FT_PID[@]}"; do
		[ -n "${FT_PID[i]}" ] || continue
		kill -TERM "${FT_PID[i]}" 2>/dev/null || true
		kill -CONT "${FT_PID[i]}" 2>/dev/null || true
	done
	deadline=$((SECONDS + FT_TIMEOUT))
	for i in "${!FT_PID[@]}"; do
		[ -n "${FT_PID[i]}" ] || continue
		while kill -0 "${FT_PID[i]}" 2>/dev/null && [ "$(awk '{print $3}' "/proc/${FT_PID[i]}/stat" 2>/dev/null)" != Z ]; do
			[ $SECONDS -le "$deadline" ] || ft_fail "node $i did not exit within ${FT_TIMEOUT}s of SIGTERM"
			sleep 0.05
		done
		wait "${FT_PID[i]}" 2>/dev/null || ft_fail "node $i exited with an error after SIGTERM (see $FT_DIR/out/${FT_NODE_NAME[i]}.out)"
		FT_PID[i]=""
	done
}

# ft_click ID PLAYER [lost|atleast]: click on node ID. Every node must apply it
# exactly once (client sessions: a copy that reached the log twice is
# skipped); "lost": not at all; "atleast": once or more.
ft_click() {
	local i=$1 p=$2 err
	err=$("${FT_RPC[@]}" "${FT_ADDR[i]}" click "$p" 2>&1 >/dev/null) ||
		ft_fail "click $p on node $i refused: $err"
	case ${3:-} in
	lost) ;;
	atleast)
		FT_EXPECT[$p]=$((FT_EXPECT[$p] + 1))
		FT_ATLEAST[$p]=+
		;;
	*) FT_EXPECT[$p]=$((FT_EXPECT[$p] + 1)) ;;
	esac
}

# ft_arm_click ID PLAYER, then the fault, then ft_fire_click: the click lands
# milliseconds after the fault (no interpreter start-up in between). It is made
# on a node that cannot replicate it now: it is lost if that node goes down,
# and applied once if the node stays up (then say so with ft_expect PLAYER).
FT_ARMED=""
ft_arm_click() {
	rm -f "$FT_DIR/fire"
	mkfifo "$FT_DIR/fire"
	"${FT_PY[@]}" --nodes "$FT_DIR/nodes" armed-click "$1" "$2" --fifo "$FT_DIR/fire" &
	FT_ARMED=$!
}
ft_fire_click() {
	[ -n "$FT_ARMED" ] || ft_fail "ft_fire_click without ft_arm_click"
	echo go >"$FT_DIR/fire"
	wait "$FT_ARMED" || ft_fail "the armed click failed"
	FT_ARMED=""
}

# ft_expect PLAYER: one more click on PLAYER must be applied exactly once.
ft_expect() { FT_EXPECT[$1]=$((FT_EXPECT[$1] + 1)); }

ft_py() { "${FT_PY[@]}" --nodes "$FT_DIR/nodes" --leaders "$FT_DIR/leaders" --timeout "$FT_TIMEOUT" "$@"; }

# ft_leader IDS [more cluster.py options]: prints "LEADER TERM" once IDS agree.
ft_leader() {
	local among=$1
	shift
	ft_py wait-leader --among "$among" "$@" || ft_fail "no agreed leader among nodes $among"
}

# ft_converged IDS [options]: prints "LEADER TERM LOG_LENGTH".
ft_converged() {
	local among=$1
	shift
	ft_py wait-converged --among "$among" "$@" || ft_fail "nodes $among did not converge"
}

ft_status_field() { # ID FIELD
	"${FT_RPC[@]}" "${FT_ADDR[$1]}" status | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# ft_finish [check-logs options]: stop everything cleanly, then compare the final
# log lines, the clicks they hold and the hp every node showed; check one
# leader per term.
ft_finish() {
	local hp orders names=() i
	hp=$(ft_status_field 0 hp | tr -d ' ')
	orders=$(ft_status_field 0 orders | tr -d ' ')
	for i in "${!FT_NODE_NAME[@]}"; do names+=("${FT_NODE_NAME[i]}"); done
	ft_term_all
	local counts="1=${FT_EXPECT[1]}${FT_ATLEAST[1]},2=${FT_EXPECT[2]}${FT_ATLEAST[2]},3=${FT_EXPECT[3]}${FT_ATLEAST[3]},4=${FT_EXPECT[4]}${FT_ATLEAST[4]}"
	ft_py check-logs --logdir "$FT_DIR/logs" --names "${names[@]}" --hp "$hp" --orders "$orders" --counts "$counts" "$@" ||
		ft_fail "final log check failed"
	if [ -x "$FT_REPO/scripts/check_replication.sh" ]; then
		"$FT_REPO/scripts/check_replication.sh" "$FT_DIR/logs" "${names[@]}" >/dev/null ||
			ft_fail "scripts/check_replication.sh disagrees"
	fi
	ft_py check-leaders || ft_fail "leader check failed"
	ft_log "PASS in $((SECONDS - FT_T0))s"
}

# ft_others EXCLUDED...: the ids not listed, space-separated.
ft_others() {
	local i x skip out=()
	for ((i = 0; i < FT_N; i++)); do
		skip=0
		for x in "$@"; do [ "$x" = "$i" ] && skip=1; done
		[ $skip = 1 ] || out+=("$i")
	done
	echo "${out[*]}"
}

# ft_baseline OFFSET:PLAYER...: start all five nodes, wait for a leader, click
# PLAYER on node (leader + OFFSET) % 5 for each argument, and wait until every
# node holds and has applied the same committed log. Sets L (leader), T (term)
# and len0 (log length).
ft_baseline() {
	local r spec
	ft_start 0 1 2 3 4
	r=$(ft_leader all)
	read -r L T <<<"$r"
	for spec in "$@"; do
		ft_click "$(((L + ${spec%%:*}) % 5))" "${spec##*:}"
	done
	r=$(ft_converged all)
	# shellcheck disable=SC2034 # L, T and len0 are for the calling script
	read -r L T len0 <<<"$r"
}
