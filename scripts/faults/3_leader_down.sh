#!/usr/bin/env bash
# Fault 3: the leader crashes holding an entry nobody else has; a new leader is
# elected; the old leader rejoins as a follower and its entry is dropped.
#
# 1. 5 nodes elect a leader L and commit clicks (players 1-3 only).
# 2. The 4 followers are SIGKILLed, so L can append but not replicate; a click
#    on player 4 is made on L, and L's log file shows the entry (term T, index I)
#    appended. (Followers are killed, not SIGSTOPped: a stopped process's kernel
#    still accepts L's connections and buffers its append_entries_rpc, which
#    the follower would process on SIGCONT: the entry would not be lost.)
# 3. L is SIGKILLed. The 4 followers restart with their data dirs and elect a
#    new leader among themselves (they never saw the entry); clicks commit.
# 4. L restarts with its data dir: its first log line still holds (T, I, 4); it
#    must rejoin as a follower of the new leader and have that entry
#    overwritten. Final logs must be identical, hold no click on player 4, and
#    player 4 must have 100 hp everywhere.
#
# usage: scripts/faults/3_leader_down.sh [--bin PATH] [--keep] [--port-base N]
# shellcheck source=scripts/faults/lib.sh
source "$(dirname "$0")/lib.sh"
ft_init leader_down "$@"

ft_baseline 0:1 1:2
ft_log "leader is node $L in term $T"
followers=$(ft_others "$L")

ft_log "SIGKILL the 4 followers ($followers); click player 4 on the lone leader $L"
ft_arm_click "$L" 4
# shellcheck disable=SC2086
ft_kill $followers
ft_fire_click
ft_py wait-status "$L" "s['log_length'] == $len0 + 1" ||
	ft_fail "leader $L did not append the click (did it step down first? raise FAULT_ELECTION_MS)"
r=$(ft_py wait-log-len --logdir "$FT_DIR/logs" --name "n$L" --len $((len0 + 1))) ||
	ft_fail "leader $L's log file never showed the appended entry"
read -r dT dI dC <<<"$r"
[ "$dC" = 4 ] || ft_fail "leader $L's last entry is ($r), expected the click on player 4"
ft_log "leader $L appended (term $dT, index $dI, command 4) but could not replicate it"

ft_log "SIGKILL leader $L; restart the 4 followers"
ft_kill "$L"
# shellcheck disable=SC2086
ft_start $followers
r=$(ft_leader "$followers" --min-term $((T + 1)))
read -r L2 T2 <<<"$r"
ft_log "new leader is node $L2 in term $T2"
H=$(( (L2 + 1) % 5 )); [ "$H" != "$L" ] || H=$(( (L2 + 2) % 5 ))
ft_click "$L2" 3
ft_click "$H" 1
r=$(ft_converged "$followers")
read -r L2 T2 _ <<<"$r"

ft_log "restart the old leader $L with its data dir"
ft_start "$L"
r=$(ft_converged all --leader "$L2" --term "$T2")
read -r _ _ len3 <<<"$r"
mode=$(ft_status_field "$L" mode)
[ "$mode" = FOLLOWER ] || ft_fail "old leader $L is $mode, expected FOLLOWER"
ft_log "old leader $L rejoined as a follower of $L2; all 5 hold $len3 entries"
ft_click "$L" 2
ft_converged all >/dev/null
hp4=$(ft_status_field "$L" hp)
case $hp4 in *", 100]") ;; *) ft_fail "player 4 was hit (hp $hp4) though its click was never committed" ;; esac
ft_finish --absent "$dT:$dI:4" --first-has "n$L=$dT:$dI:4"
