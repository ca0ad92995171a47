"""What the test servers in this directory share (Python 3 standard library only): HTTPS on the
listening socket, the port the server got written to a file for the test that started it, and
serving until SIGTERM or Ctrl-C."""

from __future__ import annotations

import os
import signal
import ssl
import threading
from http.server import ThreadingHTTPServer


def use_tls(srv: ThreadingHTTPServer, cert: str, key: str) -> None:
    """Serve HTTPS with this certificate and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)


def publish_port(srv: ThreadingHTTPServer, port_file: str | None) -> int:
    """The port the server listens on, also written to port_file (atomically: a reader never
    sees half a number)."""
    port = srv.server_address[1]
    if port_file:
        tmp = f"{port_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, port_file)
    return port


def serve_until_stopped(srv: ThreadingHTTPServer, also_ends: tuple[type[BaseException], ...] = ()) -> None:
    """Serves until SIGTERM or Ctrl-C (or one of also_ends is raised)."""
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, *also_ends):
        pass
