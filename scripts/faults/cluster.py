#!/usr/bin/env python3
"""Conditions for the fault scripts: poll status() with deadlines, compare log files.

Every command takes --nodes FILE (lines "id name host:port", written by lib.sh).
Every status poll also appends "term id" for each node claiming to be LEADER to
--leaders FILE (if given), so check-leaders can assert one leader per term over
the whole run.

  status      [IDS]                          one line per node (diagnostics)
  wait-leader --among IDS [--not ID] [--min-term N]
              all of IDS reachable, agreeing on one term and one leader that is among
              IDS and says LEADER; prints "LEADER TERM"
  wait-converged --among IDS [--leader ID] [--term N]
              as wait-leader, and the same log_length, hp, commit_index == last_applied
              == log_length - 1 everywhere; prints "LEADER TERM LOG_LENGTH"
  armed-click ID PLAYER --fifo F             click as soon as a line is written to F (started
                                             early so the click lands right after a fault)
  wait-up     --among IDS                    all of IDS answer status()
  hold --among IDS EXPR --for S              EXPR stays true on IDS for S seconds (a safety window)
  wait-status ID EXPR                        EXPR (Python, over the status dict `s`) true
  wait-log-len --logdir D --name N --len L   the newest log file of N shows >= L entries;
                                             prints its last entry "term index command"
  check-logs --logdir D --names N... [--hp JSON] [--orders JSON] [--absent T:I:C] [--counts P=K,...] [--first-has NAME=T:I:C]
              the last `log = ` lines of every node's newest file are identical; the
              applied orders (--orders, status()['orders']) are the expected clicks
              exactly, the log holds at least them, and they give the reported hp
  check-leaders                              no term saw two different leaders

Waits use --timeout SECONDS (default 15). Exit 0 when the condition holds, 1 with
a message naming what was last seen when it does not.
"""

import argparse
import concurrent.futures
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rpc  # noqa: E402

POLL = 0.05
ENTRY_RE = re.compile(r"Raft\.Entry\(term=(\d+), index=(\d+), command=([^)]*)\)")


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def load_nodes(path):
    nodes = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                nodes[int(parts[0])] = (parts[1], parts[2])
    if not nodes:
        fail(f"no nodes in {path}")
    return nodes


def ids_arg(text, nodes):
    if text in (None, "", "all"):
        return sorted(nodes)
    out = []
    for t in re.split(r"[ ,]+", text.strip()):
        i = int(t)
        if i not in nodes:
            fail(f"node {i} is not in the cluster")
        out.append(i)
    return out


class Poller:
    def __init__(self, args):
        self.nodes = load_nodes(args.nodes)
        self.leaders = args.leaders
        self.rpc_timeout = args.rpc_timeout
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(self.nodes))

    def one(self, i):
        try:
            s = rpc.call(self.nodes[i][1], "status", timeout=self.rpc_timeout)
            return s if isinstance(s, dict) else None
        except Exception as e:  # unreachable, stopped, fault: all mean "no status"
            return {"error": str(e)}

    def poll(self, ids):
        res = dict(zip(ids, self.pool.map(self.one, ids)))
        if self.leaders:
            claims = [
                f"{s['term']} {i}\n"
                for i, s in res.items()
                if s and "error" not in s and s.get("mode") == "LEADER"
            ]
            if claims:
                with open(self.leaders, "a") as f:
                    f.writelines(claims)
        return res


def fmt(res):
    lines = []
    for i, s in sorted(res.items()):
        if s is None or "error" in s:
            lines.append(f"  node {i}: unreachable ({(s or {}).get('error', '?')})")
        else:
            lines.append(
                f"  node {i} {s['name']}: {s['mode']} term={s['term']} leader={s['leader_id']} "
                f"log_length={s['log_length']} commit={s['commit_index']} "
                f"applied={s['last_applied']} hp={s['hp']}"
            )
    return "\n".join(lines)


def agreed_leader(res, among, args):
    """(leader, term) if all of `among` agree on it, else None."""
    ok = [s for s in res.values() if s and "error" not in s]
    if len(ok) != len(res):
        return None
    terms = {s["term"] for s in ok}
    leaders = {s["leader_id"] for s in ok}
    if len(terms) != 1 or len(leaders) != 1:
        return None
    leader, term = leaders.pop(), terms.pop()
    if leader is None or leader not in among or res[leader]["mode"] != "LEADER":
        return None
    if getattr(args, "not_", None) is not None and leader == args.not_:
        return None
    if getattr(args, "min_term", None) is not None and term < args.min_term:
        return None
    if getattr(args, "leader", None) is not None and leader != args.leader:
        return None
    if getattr(args, "term", None) is not None and term != args.term:
        return None
    return leader, term


def converged(res, among, args):
    lt = agreed_leader(res, among, args)
    if lt is None:
        return None
    ss = list(res.values())
    n = ss[0]["log_length"]
    if n == 0:
        return None
    for s in ss:
        if s["log_length"] != n or s["hp"] != ss[0]["hp"]:
            return None
        if s["commit_index"] != n - 1 or s["last_applied"] != n - 1:
            return None
    return lt + (n,)


def wait(poller, ids, cond, what, timeout):
    end = time.monotonic() + timeout
    res = {}
    while True:
        res = poller.poll(ids)
        r = cond(res)
        if r is not None:
            return r
        if time.monotonic() > end:
            fail(f"timed out after {timeout}s waiting for {what}; last seen:\n{fmt(res)}")
        time.sleep(POLL)


# ----- log files -----


def newest_log(logdir, name):
    d = os.path.join(logdir, name)
    try:
        files = [os.path.join(d, f) for f in os.listdir(d) if f.endswith(f".{name}.log")]
    except FileNotFoundError:
        return None
    # The names start with the creation time, so the newest sorts last.
    return max(files, key=lambda p: (os.path.basename(p), os.path.getmtime(p))) if files else None


def log_lines(path):
    with open(path, errors="replace") as f:
        return [ln.rstrip("\n") for ln in f if ln.startswith("log = ")]


def parse_entries(line):
    out = []
    for t, i, c in ENTRY_RE.findall(line):
        c = c.strip()
        try:
            c = int(c)
        except ValueError:
            c = c.strip("'\"")
        out.append((int(t), int(i), c))
    return out


def parse_tic(text):
    t, i, c = text.split(":")
    try:
        c = int(c)
    except ValueError:
        pass
    return (int(t), int(i), c)


# ----- commands -----


def cmd_status(poller, args):
    print(fmt(poller.poll(ids_arg(args.ids, poller.nodes))))


def cmd_wait_leader(poller, args):
    among = ids_arg(args.among, poller.nodes)
    lt = wait(
        poller,
        among,
        lambda res: agreed_leader(res, among, args),
        f"nodes {among} to agree on a leader among them",
        args.timeout,
    )
    print(*lt)


def cmd_wait_converged(poller, args):
    among = ids_arg(args.among, poller.nodes)
    r = wait(
        poller,
        among,
        lambda res: converged(res, among, args),
        f"nodes {among} to converge (same leader, term, log length, hp; all committed and applied)",
        args.timeout,
    )
    print(*r)


def cmd_wait_up(poller, args):
    among = ids_arg(args.among, poller.nodes)
    wait(
        poller,
        among,
        lambda res: True if all(s and "error" not in s for s in res.values()) else None,
        f"nodes {among} to answer status()",
        args.timeout,
    )


def cmd_hold(poller, args):
    ids = ids_arg(args.among, poller.nodes)
    end = time.monotonic() + args.for_
    while True:
        res = poller.poll(ids)
        for i, s in res.items():
            if not s or "error" in s:
                fail(f"node {i} stopped answering while checking that {args.expr} holds")
            if not eval(args.expr, {}, {"s": s}):
                fail(f"node {i}: {args.expr} stopped holding; seen:\n{fmt({i: s})}")
        if time.monotonic() > end:
            return
        time.sleep(POLL)


def cmd_armed_click(args):
    nodes = load_nodes(args.nodes)
    if args.id not in nodes:
        fail(f"node {args.id} is not in the cluster")
    proxy = rpc.proxy(nodes[args.id][1], timeout=5)
    with open(args.fifo) as f:  # blocks until the script opens it to fire
        f.readline()
    try:
        proxy.click(args.player)
    except Exception as e:
        fail(f"click {args.player} on node {args.id} failed: {e}")


def cmd_wait_status(poller, args):
    i = args.id
    if i not in poller.nodes:
        fail(f"node {i} is not in the cluster")

    def cond(res):
        s = res[i]
        if not s or "error" in s:
            return None
        try:
            return True if eval(args.expr, {}, {"s": s}) else None  # our own scripts' expressions
        except Exception as e:
            fail(f"bad expression {args.expr!r}: {e}")

    wait(poller, [i], cond, f"node {i}: {args.expr}", args.timeout)


def cmd_wait_log_len(args):
    end = time.monotonic() + args.timeout
    seen = None
    while True:
        p = newest_log(args.logdir, args.name)
        if p:
            lines = log_lines(p)
            if lines:
                seen = parse_entries(lines[-1])
                if len(seen) >= args.len:
                    print(*seen[-1])
                    return
        if time.monotonic() > end:
            fail(
                f"timed out after {args.timeout}s waiting for {args.name}'s log file to show "
                f"{args.len} entries; last line has {None if seen is None else len(seen)}"
            )
        time.sleep(POLL)


def cmd_check_logs(args):
    finals = {}
    for name in args.names:
        p = newest_log(args.logdir, name)
        if not p:
            fail(f"no log file for {name} under {args.logdir}")
        lines = log_lines(p)
        if not lines:
            fail(f"{p} has no `log = ` line")
        finals[name] = lines[-1]
    ref_name = args.names[0]
    differ = [n for n in args.names if finals[n] != finals[ref_name]]
    if differ:
        detail = "\n".join(f"  {n}: {finals[n]}" for n in args.names)
        fail(f"final logs differ ({', '.join(differ)} vs {ref_name}):\n{detail}")
    entries = parse_entries(finals[ref_name])
    for k, (t, i, _) in enumerate(entries):
        if k > 0 and (i != entries[k - 1][1] + 1 or t < entries[k - 1][0]):
            fail(f"final log is not a log: entry {k} = {entries[k]} after {entries[k - 1]}")
    # The log may hold a click twice (a forward resent after a lost answer);
    # every node applies it once (client sessions). So the log holds at least
    # the expected clicks, the applied orders exactly them, and the hp follow
    # from the applied orders.
    in_log = {p: sum(1 for e in entries if e[2] == p) for p in range(1, 5)}
    applied = json.loads(args.orders) if args.orders else [in_log[p] for p in range(1, 5)]
    hp = [max(0, 100 - 30 * n) for n in applied]
    if args.hp and json.loads(args.hp) != hp:
        fail(f"nodes reported hp {args.hp} but their applied orders {applied} give {hp}")
    for p in range(1, 5):
        if applied[p - 1] > in_log[p]:
            fail(f"player {p}: {applied[p - 1]} orders applied but the log holds only {in_log[p]}")
    if args.counts:
        for item in args.counts.split(","):
            p, k = item.split("=")
            p, atleast = int(p), k.endswith("+")
            k = int(k.rstrip("+"))
            got = applied[p - 1]
            if got < k or (got > k and not atleast):
                fail(
                    f"player {p} was clicked {'at least ' if atleast else ''}{k} times but the nodes "
                    f"applied {got} orders on it (applied: {applied}; in the log: {in_log}; expected {args.counts})"
                )
            if in_log[p] > got:
                print(f"note: the log holds {in_log[p]} clicks on player {p}, {in_log[p] - got} of them copies skipped at apply")
    for a in args.absent or []:
        e = parse_tic(a)
        if e in entries:
            fail(f"entry term={e[0]} index={e[1]} command={e[2]} should have been dropped but is in the final log")
    for fh in args.first_has or []:
        name, e = fh.split("=", 1)
        e = parse_tic(e)
        p = newest_log(args.logdir, name)
        first = parse_entries(log_lines(p)[0])
        if e not in first:
            fail(f"{name}'s newest log file should start with entry {e} but its first line is {first}")
    print(f"final logs identical on {len(args.names)} nodes: {len(entries)} entries, hp {hp}")


def cmd_check_leaders(args):
    by_term = {}
    try:
        with open(args.leaders) as f:
            for line in f:
                t, i = line.split()
                by_term.setdefault(int(t), set()).add(int(i))
    except FileNotFoundError:
        fail(f"no leader observations in {args.leaders}")
    bad = {t: ids for t, ids in by_term.items() if len(ids) > 1}
    if bad:
        fail(f"two leaders in one term (election safety broken): {bad}")
    print("leaders seen: " + ", ".join(f"term {t}: node {min(ids)}" for t, ids in sorted(by_term.items())))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", help="the nodes file (id name host:port a line)")
    ap.add_argument("--leaders", help="append LEADER claims (term id) here")
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--rpc-timeout", type=float, default=0.5)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("status")
    p.add_argument("ids", nargs="?")
    for name in ("wait-leader", "wait-converged"):
        p = sub.add_parser(name)
        p.add_argument("--among")
        p.add_argument("--not", dest="not_", type=int)
        p.add_argument("--min-term", type=int)
        p.add_argument("--leader", type=int)
        p.add_argument("--term", type=int)
    p = sub.add_parser("wait-up")
    p.add_argument("--among")
    p = sub.add_parser("armed-click")
    p.add_argument("id", type=int)
    p.add_argument("player", type=int)
    p.add_argument("--fifo", required=True)
    p = sub.add_parser("hold")
    p.add_argument("--among", required=True)
    p.add_argument("expr")
    p.add_argument("--for", dest="for_", type=float, required=True)
    p = sub.add_parser("wait-status")
    p.add_argument("id", type=int)
    p.add_argument("expr")
    p = sub.add_parser("wait-log-len")
    p.add_argument("--logdir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--len", type=int, required=True)
    p = sub.add_parser("check-logs")
    p.add_argument("--logdir", required=True)
    p.add_argument("--names", nargs="+", required=True)
    p.add_argument("--hp", help="the hp every node reported (JSON list)")
    p.add_argument("--counts", help="expected clicks per player: 1=2,2=1+ (+: at least)")
    p.add_argument("--orders", help="the orders per player a node applied (status()['orders'], JSON list)")
    p.add_argument("--absent", action="append", help="TERM:INDEX:COMMAND not in the final log")
    p.add_argument("--first-has", action="append", help="NAME=TERM:INDEX:COMMAND in the first line")
    sub.add_parser("check-leaders")
    args = ap.parse_args()

    if args.cmd == "armed-click":
        if not args.nodes:
            fail("armed-click needs --nodes FILE")
        return cmd_armed_click(args)
    if args.cmd == "wait-log-len":
        return cmd_wait_log_len(args)
    if args.cmd == "check-logs":
        return cmd_check_logs(args)
    if args.cmd == "check-leaders":
        if not args.leaders:
            fail("check-leaders needs --leaders FILE")
        return cmd_check_leaders(args)
    if not args.nodes:
        fail(f"{args.cmd} needs --nodes FILE")
    poller = Poller(args)
    {
        "status": cmd_status,
        "wait-leader": cmd_wait_leader,
        "wait-converged": cmd_wait_converged,
        "wait-status": cmd_wait_status,
        "wait-up": cmd_wait_up,
        "hold": cmd_hold,
    }[args.cmd](poller, args)


if __name__ == "__main__":
    main()
