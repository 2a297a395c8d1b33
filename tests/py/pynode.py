#!/usr/bin/env python3
"""pynode: a stand-in for the original Python Raftian node, for wire tests.

Python 3.11, standard library only. It is written from the original's
observable behaviour (what it sends, what it answers, when it breaks), not
from its code, so the Rust nodes can be tested against a peer that behaves
like `raftian.py` (leader) or `bobs/bob*.py` (followers) on the wire:

Server (both roles): a single-threaded SimpleXMLRPCServer, allow_none, on
`/` and `/RPC2`, HTTP/1.0, one connection per call. It serves only
`append_entries_rpc(entries, term, commit_index, all_log)` and
`is_log_empty()`, plus test helpers whose names start with `test_`.
Its periodic work runs in `service_actions`, on the server thread, so the
server answers nothing while it replicates or forwards (like the original).

Follower quirks kept:
- `entries` nil (a heartbeat) raises before anything: the caller gets a
  Fault `<class 'TypeError'>:'NoneType' object is not iterable`;
- a non-nil `commit_index` not greater than its own gets `[False, term]`
  before the entries are looked at (and a greater one is taken even if the
  entries are then refused);
- all_log clears the log; an empty log appends whatever comes; otherwise the
  first entry must match (index and term) an entry of the log, which is cut
  there and the batch appended;
- the apply loop walks the log from the last applied entry until it meets
  `commit_index` exactly; running off the log kills the server (IndexError);
- clicks are forwarded to the leader as entries with a nil index, retried
  on the same connection until the leader answers True.

Leader quirks kept:
- heartbeats `append_entries_rpc(nil, term, commit_index, False)` to every
  follower every 3 ms (a new connection each), from a timer thread;
- new commands are numbered after the last entry; the batch is
  `[last entry] + new`; for each follower: `is_log_empty()` before every
  attempt (if empty: the whole log is put in front, e.g. 4,5,6,7,7,8), a
  reject prepends one more entry of the log (walking back one at a time),
  `all_log` is set when the batch starts at the first entry of the log;
- when at least half of the followers accepted, the new entries join the
  log and `commit_index` becomes the last index (sent by the next call);
- forwarded commands (any append while leader) are queued as clicks.

Test helpers: test_click(player), test_log(), test_log_line(), test_status().
A crash of the server thread is printed and ends the process (exit code 3):
on the wire the same as the original, whose server socket closes.

Usage:
  pynode.py --role leader --id 0 --port 8000 --peers 1=8001,2=8002 \
            [--seed-log paper] [--log-dir DIR] [--stdin]
  pynode.py --role follower --id 1 --port 8001 --peers 0=8000 --leader-id 0
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCServer

PLAYERS = 4
MAX_HP = 100
DAMAGE = 30

SEEDS = {
    "leader": [(1, 4, 5), (1, 5, 5), (1, 6, 5), (1, 7, 5)],
    "bobs": [(1, 0, 9), (1, 1, 9), (1, 2, 9), (1, 3, 9)],
    "empty": [],
}


class Entry:
    """A log entry; travels as a struct with members term, index, command."""

    def __init__(self, term, index, command):
        self.term = term
        self.index = index
        self.command = command

    def __repr__(self):
        return "Raft.Entry(term=%r, index=%r, command=%r)" % (
            self.term,
            self.index,
            self.command,
        )

    def __eq__(self, other):
        return isinstance(other, Entry) and self.wire() == other.wire()

    def wire(self):
        # Insertion order is the order of the struct's members on the wire.
        return {"term": self.term, "index": self.index, "command": self.command}


def wire_list(entries):
    return [e.wire() for e in entries]


def log_line(entries):
    return "log = [" + ", ".join(repr(e) for e in entries) + "]"


class PyNode(SimpleXMLRPCServer):
    def __init__(self, opts):
        super().__init__(
            (opts.host, opts.port), allow_none=True, logRequests=opts.verbose
        )
        self.node_id = opts.id
        self.name = opts.name or ("raftian" if opts.role == "leader" else "bob%d" % opts.id)
        self.role = opts.role
        self.term = 1
        self.leader_id = opts.leader_id
        self.peers = opts.peers  # [(id, url)]
        self.log = [Entry(*t) for t in opts.seed]
        self.new_entries = []
        self.commit_index = None
        self.last_applied = -1
        self.clicks = queue.Queue()
        self.hp = [MAX_HP] * PLAYERS
        self.applied = []
        self.verbose = opts.verbose
        self.rpc_timeout = opts.rpc_timeout
        self.heartbeat_interval = opts.heartbeat_ms / 1000.0
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, len(self.peers))
        )
        self.last_round = time.time()
        self.file_lock = threading.Lock()
        self.log_file = None
        self.last_line = None
        if opts.log_dir:
            folder = os.path.join(opts.log_dir, self.name)
            os.makedirs(folder, exist_ok=True)
            stamp = datetime.datetime.now()
            self.log_path = os.path.join(folder, "%s.%s.log" % (stamp, self.name))
            self.log_file = open(self.log_path, "a", encoding="utf-8")
        self.write_log_line()
        for fn in (self.append_entries_rpc, self.is_log_empty):
            self.register_function(fn)
        for fn in (self.test_click, self.test_log, self.test_log_line, self.test_status):
            self.register_function(fn)

    # ----- output -----

    def note(self, text):
        if self.log_file is not None:
            with self.file_lock:
                self.log_file.write(text + "\n")
                self.log_file.flush()
        if self.verbose:
            print("%s: %s" % (self.name, text), file=sys.stderr, flush=True)

    def write_log_line(self):
        line = log_line(self.log)
        if line != self.last_line:
            self.last_line = line
            self.note(line)

    def proxy(self, url):
        if self.rpc_timeout:
            transport = TimeoutTransport(self.rpc_timeout)
            return xmlrpc.client.ServerProxy(url, allow_none=True, transport=transport)
        return xmlrpc.client.ServerProxy(url, allow_none=True)

    # ----- the original's methods -----

    def append_entries_rpc(self, entries, term, commit_index, all_log):
        # Iterating nil raises TypeError here: that is the heartbeat Fault.
        batch = [Entry(**e) for e in entries]
        if self.role == "leader":
            if term > self.term:
                self.role = "follower"
                return (False, self.term)
            for e in batch:
                self.clicks.put(e.command)
            return (True, self.term)
        if term < self.term:
            return (False, self.term)
        if commit_index is not None:
            if self.commit_index is not None and commit_index <= self.commit_index:
                return (False, self.term)
            self.commit_index = commit_index
        if all_log:
            self.log.clear()
        if self.log:
            # batch[0] must be in the log: an empty batch raises IndexError.
            first = batch[0]
            at = None
            for pos, mine in enumerate(self.log):
                if mine.index == first.index and mine.term == first.term:
                    at = pos
                    break
            self.note("entry log index = %s" % at)
            if at is None:
                return (False, self.term)
            del self.log[at:]
        self.log.extend(batch)
        return (True, self.term)

    def is_log_empty(self):
        return not self.log

    # ----- test helpers -----

    def test_click(self, player):
        if not isinstance(player, int) or not 1 <= player <= PLAYERS:
            raise ValueError("unknown player %r: players are 1 to %d" % (player, PLAYERS))
        if self.hp[player - 1] <= 0:
            raise ValueError("Player %d already dead" % player)
        self.clicks.put(player)
        return True

    def test_log(self):
        return wire_list(self.log)

    def test_log_line(self):
        return log_line(self.log)

    def test_status(self):
        return {
            "id": self.node_id,
            "name": self.name,
            "role": self.role,
            "term": self.term,
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "log_length": len(self.log),
            "hp": list(self.hp),
            "applied": list(self.applied),
            "pending": len(self.new_entries) + self.clicks.qsize(),
        }

    # ----- periodic work, on the server thread -----

    def service_actions(self):
        if time.time() - self.last_round >= 0.005:
            if not self.clicks.empty():
                if self.role == "leader":
                    self.replicate()
                else:
                    self.forward()
            self.apply_committed()
            self.last_round = time.time()
        self.write_log_line()
        super().service_actions()

    def take_clicks(self):
        out = []
        while True:
            try:
                out.append(self.clicks.get_nowait())
            except queue.Empty:
                return out

    def replicate(self):
        index = self.log[-1].index if self.log else -1
        for command in self.take_clicks():
            index += 1
            self.new_entries.append(Entry(self.term, index, command))
        if self.log:
            batch = [self.log[-1]] + self.new_entries
            back = -2
        else:
            batch = list(self.new_entries)
            back = -1
        jobs = [self.pool.submit(self.push_to, url, batch, back) for _, url in self.peers]
        accepted = 0
        for job in concurrent.futures.as_completed(jobs):
            try:
                if job.result():
                    accepted += 1
            except Exception as exc:  # the original prints and goes on
                self.note("push failed: %r" % (exc,))
        if accepted >= len(self.peers) / 2:
            self.log.extend(self.new_entries)
            self.new_entries.clear()
            self.commit_index = self.log[-1].index

    def push_to(self, url, batch, back):
        all_log = False
        with self.proxy(url) as peer:
            while True:
                if batch[0].index == self.log[0].index:
                    all_log = True
                if peer.is_log_empty():
                    batch = self.log + batch
                reply = peer.append_entries_rpc(
                    wire_list(batch), self.term, self.commit_index, all_log
                )
                if reply[1] > self.term:
                    self.role = "follower"
                    return False
                if reply[0]:
                    return True
                batch = [self.log[back]] + batch  # IndexError past the start
                back -= 1
                self.note("log iterator = %d, entries = %r" % (back, batch))

    def forward(self):
        for command in self.take_clicks():
            self.new_entries.append(Entry(self.term, None, command))
        urls = [url for pid, url in self.peers if pid == self.leader_id]
        jobs = [self.pool.submit(self.forward_to, url, self.new_entries) for url in urls]
        done = False
        for job in concurrent.futures.as_completed(jobs):
            try:
                done = done or bool(job.result())
            except Exception as exc:
                self.note("forward failed: %r" % (exc,))
        if done:
            self.new_entries.clear()

    def forward_to(self, url, entries):
        with self.proxy(url) as leader:
            while True:
                reply = leader.append_entries_rpc(
                    wire_list(entries), self.term, self.commit_index, False
                )
                if reply[0]:
                    return True

    def apply_committed(self):
        if self.commit_index is None or self.commit_index <= self.last_applied:
            return
        if self.last_applied == -1:
            self.apply(self.log[0])
            self.last_applied = self.log[0].index
        pos = -1
        for i, e in enumerate(self.log):
            if e.index == self.last_applied:
                pos = i
                break
        pos += 1
        while self.last_applied != self.commit_index:
            e = self.log[pos]  # past the end: IndexError, the server dies
            self.apply(e)
            self.last_applied = e.index
            pos += 1

    def apply(self, entry):
        c = entry.command
        self.applied.append(c)
        if isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= PLAYERS:
            if self.hp[c - 1] > 0:
                self.hp[c - 1] -= DAMAGE

    # ----- leader heartbeats, on a timer thread -----

    def heartbeat_forever(self):
        while True:
            time.sleep(self.heartbeat_interval)
            if self.role != "leader":
                continue
            term, commit = self.term, self.commit_index
            jobs = [
                self.pool.submit(self.heartbeat_to, url, term, commit) for _, url in self.peers
            ]
            for job in concurrent.futures.as_completed(jobs):
                try:
                    job.result()
                except Exception as exc:  # Python followers always fault here
                    if self.verbose:
                        print("%s: heartbeat: %r" % (self.name, exc), file=sys.stderr)

    def heartbeat_to(self, url, term, commit):
        with self.proxy(url) as peer:
            return peer.append_entries_rpc(None, term, commit, False)


class TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def parse_peers(text, host):
    peers = []
    if not text:
        return peers
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise argparse.ArgumentTypeError("peer %r is not id=port or id=host:port" % item)
        pid, where = item.split("=", 1)
        if ":" in where:
            h, port = where.rsplit(":", 1)
        else:
            h, port = host, where
        try:
            peers.append((int(pid), "http://%s:%d" % (h, int(port))))
        except ValueError:
            raise argparse.ArgumentTypeError("peer %r is not id=port or id=host:port" % item)
    return peers


def parse_seed(text, role):
    if text == "paper":
        return SEEDS["leader" if role == "leader" else "bobs"]
    if text in SEEDS:
        return SEEDS[text]
    try:
        raw = json.loads(text)
        seed = [(int(t), int(i), c) for t, i, c in raw]
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            "--seed-log must be paper, leader, bobs, empty or JSON [[term, index, command], ...]: %s"
            % exc
        )
    return seed


def read_stdin_clicks(node):
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            node.test_click(int(line))
        except ValueError as exc:
            print("ignored %r: %s" % (line, exc), file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", choices=("leader", "follower"), required=True)
    ap.add_argument("--id", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--peers", default="", help="id=port or id=host:port, comma separated")
    ap.add_argument("--leader-id", type=int, default=0)
    ap.add_argument("--seed-log", default="paper")
    ap.add_argument("--name", default=None)
    ap.add_argument("--log-dir", default=None)
    ap.add_argument("--heartbeat-ms", type=float, default=3.0)
    ap.add_argument("--rpc-timeout", type=float, default=None,
                    help="seconds; the original has none (a hung peer blocks it)")
    ap.add_argument("--stdin", action="store_true", help="read clicks (1-4) from stdin")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args(argv)
    try:
        opts.peers = parse_peers(opts.peers, opts.host)
        opts.seed = parse_seed(opts.seed_log, opts.role)
    except argparse.ArgumentTypeError as exc:
        ap.error(str(exc))

    try:
        node = PyNode(opts)
    except OSError as exc:
        print("pynode: cannot listen on %s:%d: %s" % (opts.host, opts.port, exc), file=sys.stderr)
        return 2

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    if opts.role == "leader":
        threading.Thread(target=node.heartbeat_forever, daemon=True).start()
    if opts.stdin:
        threading.Thread(target=read_stdin_clicks, args=(node,), daemon=True).start()
    print("pynode %s (%s) serving on %s:%d" % (node.name, node.role, opts.host, opts.port),
          flush=True)
    code = 0
    try:
        node.serve_forever()
    except (SystemExit, KeyboardInterrupt):
        code = 0
    except BaseException:
        text = traceback.format_exc()
        print("pynode %s: server thread died:\n%s" % (node.name, text), file=sys.stderr, flush=True)
        node.note("server thread died: " + text.strip().splitlines()[-1])
        code = 3
    node.server_close()
    node.write_log_line()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
