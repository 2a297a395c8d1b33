#!/usr/bin/env bash
# Fault 6: a partition with the leader on the minority side (2 | 3).
#
# 1. 5 nodes elect L (term T) and commit clicks.
# 2. L and one follower are partitioned away from the other 3. The 3 elect a
#    new leader in a higher term and commit clicks. With --net netns the
#    minority keeps running: a click on L right after the split is appended by
#    L (and sent to its follower) but can never commit; L must then step
#    down (check-quorum) and keep term T (pre-vote).
# 3. Heal: L and its follower follow the new leader, which is not disturbed
#    (same leader, same term); L's uncommitted entry is overwritten, and L,
#    which stayed up, sends its click again: every node applies it exactly
#    once. Final logs, clicks and hp identical.
#
# usage: scripts/faults/6_partition_leader_minority.sh [--bin PATH] [--keep] [--port-base N] [--net MODE]
# shellcheck source=scripts/faults/lib.sh
source "$(dirname "$0")/lib.sh"
ft_init partition_leader_minority "$@"

ft_baseline 0:1 1:2
ft_log "leader is node $L in term $T"
A=$(((L + 1) % 5)) # with the leader
major=$(ft_others "$L" "$A")

ft_log "partition: $L (leader) $A | $major"
absent=()
if ft_real_partition; then
	ft_arm_click "$L" 4
	ft_partition "$L" "$A"
	ft_fire_click
	ft_expect 4
	ft_py wait-status "$L" "s['log_length'] == $len0 + 1" >/dev/null ||
		ft_fail "cut-off leader $L did not append the click (did it step down first? raise FAULT_ELECTION_MS)"
	r=$(ft_py wait-log-len --logdir "$FT_DIR/logs" --name "n$L" --len $((len0 + 1))) ||
		ft_fail "leader $L's log file never showed the appended entry"
	read -r dT dI dC <<<"$r"
	[ "$dC" = 4 ] || ft_fail "leader $L's last entry is ($r), expected the click on player 4"
	absent=(--absent "$dT:$dI:4")
	ft_log "cut-off leader $L appended (term $dT, index $dI, command 4)"
else
	ft_partition "$L" "$A"
fi
r=$(ft_leader "$major" --min-term $((T + 1)))
read -r L2 T2 <<<"$r"
ft_log "the majority elected node $L2 in term $T2"
ft_click "$L2" 3
ft_click "$(ft_others "$L" "$A" "$L2" | cut -d' ' -f1)" 1
r=$(ft_converged "$major")
read -r L2 T2 _ <<<"$r"
if ft_real_partition; then
	ft_py wait-status "$L" "s['mode'] != 'LEADER'" >/dev/null || ft_fail "cut-off leader $L never stepped down"
	c=$(ft_status_field "$L" commit_index)
	[ "$c" -lt "$dI" ] || ft_fail "cut-off leader $L committed index $dI without a majority (commit_index $c)"
	ft_log "cut-off leader $L stepped down without committing index $dI"
	ft_keeps_term "$T" "$L" "$A"
fi

ft_log "heal"
ft_heal
# shellcheck disable=SC2046
r=$(ft_converged all $(ft_heal_args "$L2" "$T2"))
read -r L2 T2 len <<<"$r"
ft_log "all 5 converged under leader $L2 in term $T2 with $len entries"
ft_click "$A" 2
ft_converged all >/dev/null
ft_finish "${absent[@]}"
