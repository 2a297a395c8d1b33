#!/usr/bin/env bash
# Fault 4: leader transition after a partition heals (twice).
#
# 1. 5 nodes elect L (term T) and commit clicks.
# 2. L is partitioned away alone. The other 4 elect L2 in a higher term and
#    commit clicks. With --net netns (L keeps running) L must step down by
#    itself (check-quorum) and, unable to win a pre-vote, keep its term T.
# 3. The partition heals: L must become a follower of L2 without disturbing it
#    (L2 stays leader, the term stays T2) and catch up.
# 4. Leadership moves again: L2 is partitioned away alone; the other 4,
#    including the old leader L, elect L3; a click on L commits; heal; all 5
#    converge under L3. Final logs, clicks and hp identical; at most one
#    leader was ever seen per term.
#
# usage: scripts/faults/4_leader_transition.sh [--bin PATH] [--keep] [--port-base N] [--net MODE]
# shellcheck source=scripts/faults/lib.sh
source "$(dirname "$0")/lib.sh"
ft_init leader_transition "$@"

ft_baseline 0:1 1:2
ft_log "leader is node $L in term $T"

rest=$(ft_others "$L")
ft_log "partition: leader $L | $rest"
ft_partition "$L"
r=$(ft_leader "$rest" --min-term $((T + 1)))
read -r L2 T2 <<<"$r"
ft_log "the majority elected node $L2 in term $T2"
ft_click "$L2" 3
ft_click "$(ft_others "$L" "$L2" | cut -d' ' -f1)" 1
r=$(ft_converged "$rest")
read -r L2 T2 _ <<<"$r"
if ft_real_partition; then
	ft_py wait-status "$L" "s['mode'] != 'LEADER'" >/dev/null || ft_fail "isolated leader $L never stepped down"
	ft_keeps_term "$T" "$L"
	ft_log "isolated old leader $L stepped down (check-quorum)"
fi

ft_log "heal"
ft_heal
# shellcheck disable=SC2046
r=$(ft_converged all $(ft_heal_args "$L2" "$T2"))
read -r _ _ len <<<"$r"
read -r L2 T2 _ <<<"$r"
ft_log "old leader $L follows $L2 in term $T2; all 5 hold $len entries"

rest=$(ft_others "$L2")
ft_log "partition: leader $L2 | $rest"
ft_partition "$L2"
r=$(ft_leader "$rest" --min-term $((T2 + 1)))
read -r L3 T3 <<<"$r"
ft_log "the majority elected node $L3 in term $T3"
C=$L # the first leader, now a follower on the majority side
if [ "$C" = "$L2" ] || [ "$C" = "$L3" ]; then C=$(ft_others "$L2" "$L3" | cut -d' ' -f1); fi
ft_click "$C" 2
r=$(ft_converged "$rest")
read -r L3 T3 _ <<<"$r"
ft_log "heal"
ft_heal
# shellcheck disable=SC2046
r=$(ft_converged all $(ft_heal_args "$L3" "$T3"))
read -r L3 T3 len <<<"$r"
ft_log "all 5 follow $L3 in term $T3 and hold $len entries"
# shellcheck disable=SC2119
ft_finish
