#!/usr/bin/env bash
# Fault 1: one follower crashes and comes back.
#
# A 5-node election-mode cluster elects a leader and commits clicks. One
# follower is SIGKILLed (a crash: no clean shutdown); clicks go on through the
# leader and through another follower (forwarded) and commit on the 4 live
# nodes (a majority). The follower restarts with the same data dir and must
# catch up without disturbing the leader (same leader, same term: pre-vote),
# then a click made on it is forwarded and committed. Finally every node stops
# cleanly and the final `log = ` lines, the clicks they hold and the hp must
# be identical everywhere.
#
# usage: scripts/faults/1_follower_down.sh [--bin PATH] [--keep] [--port-base N]
# shellcheck source=scripts/faults/lib.sh
source "$(dirname "$0")/lib.sh"
ft_init follower_down "$@"

ft_baseline 0:1 1:2
ft_log "leader is node $L in term $T; all 5 hold $len0 committed entries"
F=$(((L + 1) % 5)) # the follower that crashes
G=$(((L + 2) % 5)) # a follower that stays up

ft_log "SIGKILL follower $F"
ft_kill "$F"
live=$(ft_others "$F")
ft_click "$L" 3
ft_click "$G" 1
r=$(ft_converged "$live" --leader "$L" --term "$T")
read -r _ _ len1 <<<"$r"
[ "$len1" -ge $((len0 + 2)) ] || ft_fail "the 4 live nodes hold $len1 entries, expected at least $((len0 + 2))"
ft_log "the 4 live nodes committed up to $len1 entries without node $F"

ft_log "restart node $F with its data dir"
ft_start "$F"
r=$(ft_converged all --leader "$L" --term "$T")
read -r _ _ len2 <<<"$r"
ft_log "node $F caught up: all 5 hold $len2 entries, leader still $L in term $T"
ft_click "$F" 2
ft_converged all >/dev/null
# shellcheck disable=SC2119
ft_finish
