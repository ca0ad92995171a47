#!/usr/bin/env python3
"""A static file server for tests (Python 3 standard library only), on 127.0.0.1.

  static_server.py --dir DIR [--port 0] [--port-file F] [--tls-cert C --tls-key K]
                   [--basic-auth USER:PASSWORD-FILE] [--log F]
                   [--drop-after BYTES --drop-count N --drop-match SUBSTRING] [--no-ranges]

Serves DIR read-only over HTTP/1.1 (HTTPS with --tls-cert/--tls-key) with Content-Length, and
single byte ranges (206) unless --no-ranges. Used as a Terraform provider network mirror (which
must be HTTPS) and as a Maven-layout repository. Test controls:
  --basic-auth U:F   every request needs HTTP Basic user U with the password in file F (else 401)
  --log F            one line per request: "METHOD PATH STATUS BYTES-SENT [RANGE]"
  --drop-after B     the first --drop-count GETs whose path ends with --drop-match (default: all)
                     announce the full length, send B bytes of the body, then close the connection
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from test_server import publish_port, serve_until_stopped, use_tls


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.root = os.path.realpath(args.dir)
        self.ranges = not args.no_ranges
        self.auth = None
        if args.basic_auth:
            user, _, pw_file = args.basic_auth.partition(":")
            with open(pw_file, encoding="utf-8") as f:
                pw = f.read().strip()
            self.auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        self.log = args.log
        self.drop_after = args.drop_after
        self.drops_left = args.drop_count
        self.drop_match = args.drop_match
        self.lock = threading.Lock()

    def record(self, line: str) -> None:
        if self.log:
            with self.lock, open(self.log, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def take_drop(self, path: str) -> bool:
        with self.lock:
            if self.drop_after is None or self.drops_left <= 0 or not path.endswith(self.drop_match):
                return False
            self.drops_left -= 1
            return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State  # set on the subclass made in main()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        pass

    def do_HEAD(self) -> None:
        self.serve(head=True)

    def do_GET(self) -> None:
        self.serve(head=False)

    def finish_with(self, status: int, body: bytes, sent_note: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.state.record(f"{self.command} {urlsplit(self.path).path} {status} {len(body)}{sent_note}")

    def serve(self, head: bool) -> None:
        st = self.state
        path = unquote(urlsplit(self.path).path)
        if st.auth and self.headers.get("Authorization") != st.auth:
            self.finish_with(401, b"authentication required\n")
            return
        full = os.path.realpath(os.path.join(st.root, path.lstrip("/")))
        if not full.startswith(st.root + os.sep) or not os.path.isfile(full):
            self.finish_with(404, b"not found\n")
            return
        size = os.path.getsize(full)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if st.ranges and m:
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                st.record(f"{self.command} {path} 416 0 {rng}")
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        # Terraform's network mirror protocol requires application/json for its documents.
        ctype = {".json": "application/json", ".xml": "application/xml", ".zip": "application/zip"}
        self.send_header("Content-Type", ctype.get(os.path.splitext(full)[1], "application/octet-stream"))
        if st.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            st.record(f"HEAD {path} {status} 0")
            return
        drop = st.take_drop(path)
        with open(full, "rb") as f:
            f.seek(start)
            data = f.read(length)
        if drop:
            cut = min(st.drop_after, len(data))
            self.wfile.write(data[:cut])
            self.wfile.flush()
            st.record(f"GET {path} {status} {cut} dropped{' ' + rng if rng else ''}")
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(data)
        st.record(f"GET {path} {status} {len(data)}{' ' + rng if rng else ''}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--basic-auth")
    p.add_argument("--log")
    p.add_argument("--drop-after", type=int)
    p.add_argument("--drop-count", type=int, default=1)
    p.add_argument("--drop-match", default="")
    p.add_argument("--no-ranges", action="store_true")
    args = p.parse_args(argv)
    handler = type("BoundHandler", (Handler,), {"state": State(args)})
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    if args.tls_cert:
        use_tls(srv, args.tls_cert, args.tls_key)
    publish_port(srv, args.port_file)
    serve_until_stopped(srv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
