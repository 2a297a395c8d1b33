#!/usr/bin/env bash
# Fault 5: a partition with the leader on the majority side (3 | 2).
#
# 1. 5 nodes elect L (term T) and commit clicks.
# 2. Two followers are partitioned away. L, with 2 followers, is a majority:
#    it stays leader in term T and clicks made on it and on a majority
#    follower commit. With --net netns the cut-off followers keep running: a
#    click is made on one of them (it cannot reach the leader, so it is held
#    and forwarded after the heal: it must commit at least once), and they
#    must not move past term T (pre-vote).
# 3. Heal: the cut-off followers catch up; L is still leader in term T (they
#    did not disrupt it). Final logs, clicks and hp identical on all 5.
#
# usage: scripts/faults/5_partition_leader_majority.sh [--bin PATH] [--keep] [--port-base N] [--net MODE]
# shellcheck source=scripts/faults/lib.sh
source "$(dirname "$0")/lib.sh"
ft_init partition_leader_majority "$@"

ft_baseline 3:1
ft_log "leader is node $L in term $T"
A=$(((L + 1) % 5)); B=$(((L + 2) % 5)) # with the leader
C=$(((L + 3) % 5)); D=$(((L + 4) % 5)) # cut off

ft_log "partition: $L $A $B (leader) | $C $D"
ft_partition "$C" "$D"
if ft_real_partition; then
	ft_click "$C" 4
	ft_log "clicked player 4 on cut-off node $C"
fi
ft_click "$L" 2
ft_click "$A" 3
r=$(ft_converged "$L $A $B" --leader "$L" --term "$T")
read -r _ _ len <<<"$r"
ft_log "the majority side committed up to $len entries under leader $L, term $T"
ft_keeps_term "$T" "$C" "$D"
ft_click "$B" 1
ft_converged "$L $A $B" --leader "$L" --term "$T" >/dev/null

ft_log "heal"
ft_heal
# shellcheck disable=SC2046
r=$(ft_converged all $(ft_heal_args "$L" "$T"))
read -r L2 T2 len <<<"$r"
ft_log "all 5 converged under leader $L2 in term $T2 with $len entries"
ft_click "$D" 2
ft_converged all >/dev/null
# shellcheck disable=SC2119
ft_finish
