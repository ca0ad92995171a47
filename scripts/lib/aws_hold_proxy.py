#!/usr/bin/env python3
"""An HTTP proxy in front of an AWS emulator that can hold asynchronous operations open
(Python 3 standard library only), on 127.0.0.1.

  aws_hold_proxy.py --upstream URL [--port-file F] [--log F] [--hold-file F]
                    [--hold-target SUFFIX]

Forwards every request to URL unchanged. While the --hold-file exists, answers to requests whose
X-Amz-Target ends with --hold-target (default ".GetOperation", AWS Cloud Map) say the operation is
still PENDING, whatever the emulator says: moto finishes Cloud Map operations at once, and a test
needs a wait that does not end (Ctrl-C in the middle of it). Delete the file to let operations
finish. --log gets one line per request: "TARGET STATUS [held]".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from test_server import publish_port, serve_until_stopped

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    args: argparse.Namespace  # set on the subclass made in main()
    lock = threading.Lock()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        pass

    def do_POST(self) -> None:
        self.forward()

    def do_GET(self) -> None:
        self.forward()

    def forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        up = urlsplit(self.args.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        target = self.headers.get("X-Amz-Target", self.path)
        held = (
            resp.status == 200
            and target.endswith(self.args.hold_target)
            and os.path.exists(self.args.hold_file or "")
        )
        if held:
            doc = json.loads(data)
            doc.setdefault("Operation", {})["Status"] = "PENDING"
            data = json.dumps(doc).encode()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()
        if self.args.log:
            with self.lock, open(self.args.log, "a", encoding="utf-8") as f:
                f.write(f"{target} {resp.status}{' held' if held else ''}\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--hold-file")
    p.add_argument("--hold-target", default=".GetOperation")
    args = p.parse_args(argv)
    handler = type("BoundHandler", (Handler,), {"args": args})
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    publish_port(srv, args.port_file)
    serve_until_stopped(srv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
