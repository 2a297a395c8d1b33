#!/usr/bin/env python3
"""Tiny XML-RPC client for Raftian nodes.

    scripts/rpc.py HOST:PORT status           # prints the status struct as JSON
    scripts/rpc.py HOST:PORT click 3          # queues a click on player 3
    scripts/rpc.py HOST:PORT METHOD [ARG...]  # any method; integer-looking args are ints,
                                              # 'nil' is None, 'true'/'false' are booleans

Exit status: 0 on success, 1 on a Fault or a connection error (message on
stderr), 2 on bad usage. The timeout (seconds) is RAFTIAN_RPC_TIMEOUT, default 2.
"""

import json
import os
import socket
import sys
import xmlrpc.client


def parse_arg(a):
    if a == "nil":
        return None
    if a in ("true", "false"):
        return a == "true"
    try:
        return int(a)
    except ValueError:
        return a


class TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout):
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


def proxy(addr, timeout=None):
    if timeout is None:
        timeout = float(os.environ.get("RAFTIAN_RPC_TIMEOUT", "2"))
    if "://" not in addr:
        addr = "http://" + addr
    return xmlrpc.client.ServerProxy(
        addr + "/RPC2", allow_none=True, transport=TimeoutTransport(timeout)
    )


def call(addr, method, *args, timeout=None):
    return getattr(proxy(addr, timeout), method)(*args)


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    addr, method, args = argv[1], argv[2], [parse_arg(a) for a in argv[3:]]
    if method == "click" and len(args) != 1:
        print("usage: rpc.py HOST:PORT click PLAYER(1-4)", file=sys.stderr)
        return 2
    try:
        result = call(addr, method, *args)
    except xmlrpc.client.Fault as f:
        print(f"{addr}: {method}: Fault {f.faultCode}: {f.faultString}", file=sys.stderr)
        return 1
    except (OSError, socket.timeout, xmlrpc.client.ProtocolError) as e:
        print(f"{addr}: {method}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
