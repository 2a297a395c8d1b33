#!/usr/bin/env bash
# Fault 2: two followers crash (one after the other) and come back.
#
# With 2 of 5 nodes down the remaining 3 are still a majority, so the leader
# keeps committing. The first follower is SIGKILLed, a click commits, the
# second is SIGKILLed, two more clicks commit on the 3 live nodes; then both
# restart with their data dirs (they are behind by different amounts) and must
# catch up under the same leader and term. Final logs, clicks and hp must be
# identical on all 5.
#
# usage: scripts/faults/2_two_followers_down.sh [--bin PATH] [--keep] [--port-base N]
# shellcheck source=scripts/faults/lib.sh
source "$(dirname "$0")/lib.sh"
ft_init two_followers_down "$@"

ft_baseline 0:1
ft_log "leader is node $L in term $T"
F1=$(((L + 1) % 5)); F2=$(((L + 2) % 5)); G=$(((L + 3) % 5))

ft_log "SIGKILL follower $F1"
ft_kill "$F1"
ft_click "$G" 2
r=$(ft_converged "$(ft_others "$F1")" --leader "$L" --term "$T")
read -r _ _ len1 <<<"$r"

ft_log "SIGKILL follower $F2"
ft_kill "$F2"
live=$(ft_others "$F1" "$F2")
ft_click "$L" 3
ft_click "$G" 3
r=$(ft_converged "$live" --leader "$L" --term "$T")
read -r _ _ len2 <<<"$r"
[ "$len2" -ge $((len1 + 2)) ] || ft_fail "the 3 live nodes hold $len2 entries, expected at least $((len1 + 2))"
ft_log "3 live nodes (a majority) committed up to $len2 entries"

ft_log "restart nodes $F1 and $F2 with their data dirs"
ft_start "$F1" "$F2"
r=$(ft_converged all --leader "$L" --term "$T")
read -r _ _ len3 <<<"$r"
ft_log "both caught up: all 5 hold $len3 entries, leader still $L in term $T"
ft_click "$F1" 4
ft_click "$F2" 1
ft_converged all >/dev/null
# shellcheck disable=SC2119
ft_finish
