#!/usr/bin/env python3
"""A test double of Consul's KV and transaction HTTP API (Python 3.11 stdlib only).

Written from Consul's public API documentation (api-docs/kv, api-docs/txn, api-docs/api-structure),
not from Consul's source. It serves, on 127.0.0.1:

  GET    /v1/kv/<key>      single key, ?recurse, ?keys (+ ?separator), ?raw, ?index&wait (blocking)
  PUT    /v1/kv/<key>      body = value; ?cas=N (0 = create only), ?flags=N; answers true/false
  DELETE /v1/kv/<key>      ?recurse, ?cas=N; answers true/false
  PUT    /v1/txn           KV verbs set, cas, get, get-or-empty, get-tree, check-index,
                           check-not-exists, delete, delete-cas, delete-tree
  GET    /v1/status/leader the health probe (no ACL needed, as in Consul)
  /_double/...             test controls (see docs/testenv.md); never part of Consul

Usage: consul_double.py --port 8500 [--token-file F | env CONSUL_DOUBLE_TOKEN] [--txn-max-ops 64|128]
       [--max-body-bytes 524288] [--datacenter dc1] [--state-file F] [--reject-query-token]
       [--namespaces] [--tls-cert CERT.pem --tls-key KEY.pem]

With --namespaces it behaves as Consul Enterprise: `?ns=` on /v1/kv and `Namespace` in each txn KV
operation select separate keyspaces (default `default`; every namespace exists). Without it, both
are refused with 400, as Consul CE refuses `?ns=`.

See docs/testenv.md ("Consul test double") for the exact behaviour and where it knowingly
differs from Consul.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from test_server import publish_port, serve_until_stopped, use_tls

MAX_UINT64 = 2**64 - 1
# Consul's documented default limits (kv_max_value_size and txn_max_req_len: 512 KiB).
DEFAULT_MAX_BODY = 512 * 1024
DEFAULT_TXN_MAX_OPS = 64  # Consul before 1.14; 128 since
# The AccessorID of Consul's anonymous token, used in its "Permission denied" messages.
ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"
KV_VERBS = {
    "set",
    "cas",
    "get",
    "get-or-empty",
    "get-tree",
    "check-index",
    "check-not-exists",
    "delete",
    "delete-cas",
    "delete-tree",
}
WRITE_VERBS = {"set", "cas", "delete", "delete-cas", "delete-tree"}
DEFAULT_NS = "default"
ENTERPRISE_ONLY = "Namespaces are a Consul Enterprise feature"


def ikey(ns: str, key: str) -> str:
    """The store's own key: namespaces are separate keyspaces."""
    return f"{ns}\x00{key}"


class HttpError(Exception):
    """An error answered as `status` with a text/plain body, like Consul's HTTP layer does."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class TxnAbort(Exception):
    """One transaction operation failed: the whole transaction is rolled back (409)."""

    def __init__(self, op_index: int, what: str) -> None:
        super().__init__(what)
        self.op_index = op_index
        self.what = what


def validate_key(key: str, *, allow_empty: bool) -> None:
    """Refuses what Consul refuses: a leading `/`, a `..` path segment, control characters."""
    if not key:
        if allow_empty:
            return
        raise HttpError(400, "Missing key name")
    if key.startswith("/"):
        raise HttpError(400, f"Invalid key name {json.dumps(key)}: keys must not start with '/'")
    if ".." in key.split("/"):
        raise HttpError(400, f"Invalid key name {json.dumps(key)}: '..' path segments are not allowed")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise HttpError(400, f"Invalid key name {json.dumps(key)}: control characters are not allowed")


def parse_uint(name: str, raw: str) -> int:
    """An unsigned 64-bit query or body number, or 400."""
    try:
        value = int(raw, 10)
    except ValueError:
        raise HttpError(400, f"Invalid {name} value {raw!r}: must be an unsigned integer") from None
    if value < 0 or value > MAX_UINT64:
        raise HttpError(400, f"Invalid {name} value {raw!r}: must be in 0..2^64-1")
    return value


_DURATION = re.compile(r"([0-9.]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wait(raw: str | None) -> float:
    """A Go duration (`10s`, `1m30s`); Consul's default wait is 5 minutes, its maximum 10."""
    if raw is None:
        return 300.0
    parts = _DURATION.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise HttpError(400, f"Invalid wait time {raw!r}")
    return min(sum(float(n) * _UNITS[u] for n, u in parts), 600.0)


class Store:
    """The KV store: entries, a Raft-like index, tombstones of deletes (for prefix indexes)."""

    def __init__(self, state_file: str | None) -> None:
        self.cond = threading.Condition()
        self.entries: dict[str, dict] = {}
        self.tombstones: dict[str, int] = {}
        self.index = 1
        self.state_file = state_file
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding="utf-8") as f:
                saved = json.load(f)
            self.index = int(saved["index"])
            self.tombstones = {k: int(v) for k, v in saved.get("tombstones", {}).items()}
            for e in saved["entries"]:
                e = dict(e)
                e["Value"] = base64.b64decode(e["Value"]) if e["Value"] is not None else None
                e.setdefault("Namespace", DEFAULT_NS)
                self.entries[ikey(e["Namespace"], e["Key"])] = e

    # All methods below are called with self.cond held.

    def save(self) -> None:
        if not self.state_file:
            return
        data = {
            "index": self.index,
            "tombstones": self.tombstones,
            "entries": [entry_json(e, with_ns=True) for e in self.entries.values()],
        }
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
        os.replace(tmp, self.state_file)

    def get(self, ns: str, key: str) -> dict | None:
        return self.entries.get(ikey(ns, key))

    def prefix_index(self, ns: str, prefix: str) -> int:
        """X-Consul-Index of a recursive read: the latest change under the prefix."""
        prefix = ikey(ns, prefix)
        idx = 0
        for key, e in self.entries.items():
            if key.startswith(prefix):
                idx = max(idx, e["ModifyIndex"])
        for key, t in self.tombstones.items():
            if key.startswith(prefix):
                idx = max(idx, t)
        return idx or self.index

    def under(self, ns: str | None, prefix: str) -> list[dict]:
        """Entries under `prefix` in `ns` (every namespace when None), sorted."""
        found = [e for e in self.entries.values() if e["Key"].startswith(prefix)]
        if ns is not None:
            found = [e for e in found if e["Namespace"] == ns]
        return sorted(found, key=lambda e: (e["Namespace"], e["Key"]))

    def put(self, ns: str, key: str, value: bytes, flags: int, idx: int) -> dict:
        old = self.get(ns, key)
        entry = {
            "Namespace": ns,
            "Key": key,
            "Value": value,
            "Flags": flags,
            "CreateIndex": old["CreateIndex"] if old else idx,
            "ModifyIndex": idx,
            "LockIndex": old["LockIndex"] if old else 0,
            "Session": None,
        }
        self.entries[ikey(ns, key)] = entry
        self.tombstones.pop(ikey(ns, key), None)
        return entry

    def delete(self, ns: str, key: str, idx: int) -> None:
        if self.entries.pop(ikey(ns, key), None) is not None:
            self.tombstones[ikey(ns, key)] = idx

    def delete_tree(self, ns: str, prefix: str, idx: int) -> None:
        for e in self.under(ns, prefix):
            self.delete(ns, e["Key"], idx)


def entry_json(e: dict, *, with_value: bool = True, with_ns: bool = False) -> dict:
    """An entry as Consul serialises it (Value base64 or null); Enterprise adds its Namespace."""
    out = {
        "LockIndex": e["LockIndex"],
        "Key": e["Key"],
        "Flags": e["Flags"],
        "Value": base64.b64encode(e["Value"]).decode("ascii")
        if with_value and e["Value"] is not None
        else None,
        "CreateIndex": e["CreateIndex"],
        "ModifyIndex": e["ModifyIndex"],
    }
    if e.get("Session"):
        out["Session"] = e["Session"]
    if with_ns:
        out["Namespace"] = e["Namespace"]
    return out


class Faults:
    """Test-controlled failures: after `after` matching requests pass, the next `count` (-1 = all)
    fail in `mode`: `status` (answer `status` with `body`), `close` (drop the connection without an
    answer), `down` (stop listening: connections are refused from then on, the process exits)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clear()
        self.delay_ms = 0
        self.clear_race()

    def clear_race(self) -> None:
        self.race: tuple[str, bytes, str] | None = None
        self.race_after = 0
        self.race_match = ""

    def take_race(self, request_line: str) -> tuple[str, bytes, str] | None:
        """The write another client makes just before this request, if any (once)."""
        with self.lock:
            if self.race is None or (self.race_match and self.race_match not in request_line):
                return None
            if self.race_after > 0:
                self.race_after -= 1
                return None
            race, self.race = self.race, None
            return race

    def clear(self) -> None:
        self.mode: str | None = None
        self.after = 0
        self.count = 0
        self.status = 500
        self.body = "rpc error making call: EOF"
        self.match = ""
        self.injected = 0

    def take(self, request_line: str) -> str | None:
        """The fault to apply to this request, if any."""
        with self.lock:
            if self.mode is None or (self.match and self.match not in request_line):
                return None
            if self.after > 0:
                self.after -= 1
                return None
            if self.count == 0:
                return None
            if self.count > 0:
                self.count -= 1
            self.injected += 1
            return self.mode


class Double:
    """Configuration and shared state of one double."""

    def __init__(self, args: argparse.Namespace, token: str | None) -> None:
        self.token = token
        self.datacenter = args.datacenter
        self.txn_max_ops = args.txn_max_ops
        self.max_body = args.max_body_bytes
        self.reject_query_token = args.reject_query_token
        self.namespaces = args.namespaces
        self.store = Store(args.state_file)
        self.faults = Faults()
        self.requests = 0
        self.server: ThreadingHTTPServer | None = None


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, every answer has a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "consul-double/1"
    sys_version = ""
    double: Double  # set on the subclass made in main()
    body_consumed = False

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        # Never log query strings: a deprecated ?token= would land in the log.
        sys.stderr.write(
            "%s %s %s\n" % (self.log_date_time_string(), self.command, urlsplit(self.path).path)
        )

    # -------------------------------------------------------------------------------- plumbing

    def send_body(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Consul-Default-Acl-Policy", "deny" if self.double.token else "allow")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value, headers: dict | None = None) -> None:
        body = json.dumps(value, separators=(",", ":")).encode()
        self.send_body(status, body, "application/json", headers)

    def send_text(self, status: int, text: str) -> None:
        self.send_body(status, text.encode(), "text/plain; charset=utf-8")

    def read_body(self, limit: int | None) -> bytes:
        """The request body (Content-Length or chunked); 413 beyond `limit`."""
        if self.body_consumed:
            return b""
        self.body_consumed = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if limit is not None and total > limit:
                    self.close_connection = True
                    raise HttpError(413, f"Request body too large, max size: {limit} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if limit is not None and length > limit:
            # The body is not read: the connection cannot be reused.
            self.close_connection = True
            raise HttpError(
                413, f"Request body({length} bytes) too large, max size: {limit} bytes"
            )
        return self.rfile.read(length) if length else b""

    def query(self) -> dict[str, str]:
        """Query parameters; a flag without a value (`?recurse`) reads as ""."""
        q = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        return {k: v[-1] for k, v in q.items()}

    def check_acl(self, q: dict[str, str]) -> None:
        want = self.double.token
        if want is None:
            return
        got = self.headers.get("X-Consul-Token")
        auth = self.headers.get("Authorization", "")
        if not got and auth.lower().startswith("bearer "):
            got = auth[7:].strip()
        if not got and "token" in q:
            if self.double.reject_query_token:
                raise HttpError(
                    403, "Permission denied: the ?token= query parameter is not accepted here"
                )
            got = q["token"]
        if not got:
            raise HttpError(
                403,
                f"Permission denied: token with AccessorID '{ANONYMOUS_ACCESSOR}' lacks permission",
            )
        if got != want:
            # Consul's answer for a secret it does not know.
            raise HttpError(403, "ACL not found")

    def namespace(self, q: dict[str, str]) -> str:
        """The namespace a KV request names with ?ns= (Enterprise only)."""
        ns = q.get("ns", "")
        if ns and not self.double.namespaces:
            raise HttpError(400, f'Invalid query parameter: "ns" - {ENTERPRISE_ONLY}')
        return ns or DEFAULT_NS

    def check_dc(self, q: dict[str, str]) -> None:
        dc = q.get("dc")
        if dc and dc != self.double.datacenter:
            raise HttpError(500, "No path to datacenter")

    # ------------------------------------------------------------------------------- dispatch

    def do_GET(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        path = urlsplit(self.path).path
        self.body_consumed = False
        try:
            if path.startswith("/_double/"):
                self.admin(path[len("/_double/") :])
                return
            fault = self.double.faults.take(f"{self.command} {path}")
            if self.double.faults.delay_ms:
                time.sleep(self.double.faults.delay_ms / 1000)
            if fault == "close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "down":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                go_down(self.double)
                return
            if fault == "status":
                # Drain the body so the connection stays usable.
                self.read_body(None)
                self.send_text(self.double.faults.status, self.double.faults.body)
                return
            race = self.double.faults.take_race(f"{self.command} {path}")
            if race is not None:
                # A concurrent writer: its write lands between the client's read and this request.
                st = self.double.store
                with st.cond:
                    st.index += 1
                    st.put(race[2], race[0], race[1], 0, st.index)
                    st.save()
                    st.cond.notify_all()
            self.double.requests += 1
            q = self.query()
            if path == "/v1/status/leader" and self.command == "GET":
                self.send_json(200, "127.0.0.1:8300")
                return
            if path.startswith("/v1/kv/") or path == "/v1/kv":
                self.check_acl(q)
                self.check_dc(q)
                key = unquote(path[len("/v1/kv/") :]) if path.startswith("/v1/kv/") else ""
                if self.command == "GET":
                    self.kv_get(key, q)
                elif self.command == "PUT":
                    self.kv_put(key, q)
                elif self.command == "DELETE":
                    self.kv_delete(key, q)
                else:
                    raise HttpError(405, f"method {self.command} not allowed")
                return
            if path == "/v1/txn":
                if self.command != "PUT":
                    raise HttpError(405, f"method {self.command} not allowed")
                self.check_acl(q)
                self.check_dc(q)
                self.txn()
                return
            raise HttpError(404, f"Invalid URL path: {path} is not served by the Consul double")
        except HttpError as e:
            if not self.body_consumed and not self.close_connection:
                # An unread body would be taken for the next request.
                try:
                    self.read_body(self.double.max_body * 4)
                except HttpError:
                    self.close_connection = True
            self.send_text(e.status, e.text)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -------------------------------------------------------------------------------------- KV

    def kv_get(self, key: str, q: dict[str, str]) -> None:
        keys_only = "keys" in q
        recurse = "recurse" in q or keys_only
        validate_key(key, allow_empty=recurse)
        ns = self.namespace(q)
        ens = self.double.namespaces
        st = self.double.store
        with st.cond:
            if "index" in q:
                want = parse_uint("index", q["index"])
                deadline = time.monotonic() + parse_wait(q.get("wait"))
                while True:
                    cur = st.prefix_index(ns, key) if recurse else st.index
                    left = deadline - time.monotonic()
                    if cur > want or left <= 0:
                        break
                    st.cond.wait(left)
            if recurse:
                idx = st.prefix_index(ns, key)
                found = st.under(ns, key)
                hdr = {"X-Consul-Index": idx, "X-Consul-KnownLeader": "true", "X-Consul-LastContact": 0}
                if not found:
                    self.send_body(404, b"", "text/plain", hdr)
                    return
                if keys_only:
                    sep = q.get("separator", "")
                    out: list[str] = []
                    for e in found:
                        k = e["Key"]
                        if sep:
                            cut = k.find(sep, len(key))
                            if cut >= 0:
                                k = k[: cut + len(sep)]
                        if not out or out[-1] != k:
                            out.append(k)
                    self.send_json(200, out, hdr)
                    return
                self.send_json(200, [entry_json(e, with_ns=ens) for e in found], hdr)
                return
            hdr = {"X-Consul-Index": st.index, "X-Consul-KnownLeader": "true", "X-Consul-LastContact": 0}
            e = st.get(ns, key)
            if e is None:
                self.send_body(404, b"", "text/plain", hdr)
                return
            if "raw" in q:
                self.send_body(200, e["Value"] or b"", "text/plain", {**hdr, "X-Content-Type-Options": "nosniff"})
                return
            self.send_json(200, [entry_json(e, with_ns=ens)], hdr)

    def kv_put(self, key: str, q: dict[str, str]) -> None:
        validate_key(key, allow_empty=False)
        if "acquire" in q or "release" in q:
            raise HttpError(400, "sessions (?acquire, ?release) are not implemented by the Consul double")
        flags = parse_uint("flags", q["flags"]) if "flags" in q else 0
        cas = parse_uint("cas", q["cas"]) if "cas" in q else None
        ns = self.namespace(q)
        body = self.read_body(self.double.max_body)
        st = self.double.store
        with st.cond:
            old = st.get(ns, key)
            if cas is not None:
                ok = old is None if cas == 0 else (old is not None and old["ModifyIndex"] == cas)
                if not ok:
                    self.send_json(200, False)
                    return
            st.index += 1
            st.put(ns, key, body, flags, st.index)
            st.save()
            st.cond.notify_all()
        self.send_json(200, True)

    def kv_delete(self, key: str, q: dict[str, str]) -> None:
        recurse = "recurse" in q
        validate_key(key, allow_empty=recurse)
        cas = parse_uint("cas", q["cas"]) if "cas" in q else None
        if cas is not None and recurse:
            raise HttpError(400, "Conflicting flags: cas and recurse")
        ns = self.namespace(q)
        st = self.double.store
        with st.cond:
            if cas is not None:
                old = st.get(ns, key)
                if cas == 0 or (old is not None and old["ModifyIndex"] != cas):
                    self.send_json(200, False)
                    return
                if old is None:
                    # Nothing to delete: Consul answers true and changes nothing.
                    self.send_json(200, True)
                    return
            st.index += 1
            if recurse:
                st.delete_tree(ns, key, st.index)
            else:
                st.delete(ns, key, st.index)
            st.save()
            st.cond.notify_all()
        self.send_json(200, True)

    # ------------------------------------------------------------------------------------- txn

    def txn(self) -> None:
        body = self.read_body(self.double.max_body)
        try:
            ops = json.loads(body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HttpError(400, f"Failed to parse body: {e}") from None
        if not isinstance(ops, list):
            raise HttpError(400, "Failed to parse body: expected a JSON array of operations")
        if len(ops) > self.double.txn_max_ops:
            raise HttpError(
                413,
                f"Transaction contains too many operations ({len(ops)} > {self.double.txn_max_ops})",
            )
        parsed = []
        for i, op in enumerate(ops):
            if not isinstance(op, dict) or set(op) != {"KV"} or not isinstance(op["KV"], dict):
                raise HttpError(
                    400, f"Failed to parse body: operation {i} must be an object with only a KV member"
                )
            kv = op["KV"]
            verb = kv.get("Verb")
            key = kv.get("Key", "")
            if not isinstance(key, str):
                raise HttpError(400, f"Failed to parse body: operation {i}: Key must be a string")
            value = kv.get("Value")
            raw = b""
            if value is not None:
                if not isinstance(value, str):
                    raise HttpError(400, f"Failed to parse body: operation {i}: Value must be base64")
                try:
                    raw = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise HttpError(400, f"Failed to parse body: operation {i}: Value is not valid base64") from None
            try:
                flags = int(kv.get("Flags") or 0)
                index = int(kv.get("Index") or 0)
            except (TypeError, ValueError):
                raise HttpError(400, f"Failed to parse body: operation {i}: Flags and Index must be integers") from None
            if not (0 <= flags <= MAX_UINT64 and 0 <= index <= MAX_UINT64):
                raise HttpError(400, f"Failed to parse body: operation {i}: Flags and Index must be unsigned")
            if verb in KV_VERBS:
                validate_key(key, allow_empty=verb in ("get-tree", "delete-tree"))
            # The namespace is per operation; /v1/txn documents no ?ns= parameter, so one on the
            # URL changes nothing (a client relying on it would write to `default`).
            ns = kv.get("Namespace") or ""
            if not isinstance(ns, str):
                raise HttpError(400, f"Failed to parse body: operation {i}: Namespace must be a string")
            if ns and not self.double.namespaces:
                raise HttpError(400, f"Failed to parse body: operation {i}: {ENTERPRISE_ONLY}")
            parsed.append((verb, ns or DEFAULT_NS, key, raw, flags, index))
        st = self.double.store
        with st.cond:
            try:
                results = self.txn_apply(parsed)
            except TxnAbort as e:
                self.send_json(409, {"Results": None, "Errors": [{"OpIndex": e.op_index, "What": e.what}]})
                return
        self.send_json(200, {"Results": results, "Errors": None}, {"X-Consul-KnownLeader": "true"})

    def txn_apply(self, ops: list) -> list:
        """Applies the operations to a copy; commits only if every one succeeds."""
        st = self.double.store
        ens = self.double.namespaces
        entries = {k: dict(v) for k, v in st.entries.items()}
        tombstones = dict(st.tombstones)
        writes = any(op[0] in WRITE_VERBS for op in ops)
        idx = st.index + 1 if writes else st.index
        results = []
        saved = (st.entries, st.tombstones)
        st.entries, st.tombstones = entries, tombstones
        try:
            for i, (verb, ns, key, raw, flags, index) in enumerate(ops):
                e = st.get(ns, key)
                if verb == "set":
                    results.append({"KV": entry_json(st.put(ns, key, raw, flags, idx), with_value=False, with_ns=ens)})
                elif verb == "cas":
                    ok = e is None if index == 0 else (e is not None and e["ModifyIndex"] == index)
                    if not ok:
                        raise TxnAbort(i, f'failed to set key "{key}", index is stale')
                    results.append({"KV": entry_json(st.put(ns, key, raw, flags, idx), with_value=False, with_ns=ens)})
                elif verb == "get":
                    if e is None:
                        raise TxnAbort(i, f'key "{key}" doesn\'t exist')
                    results.append({"KV": entry_json(e, with_ns=ens)})
                elif verb == "get-or-empty":
                    if e is None:
                        results.append({"KV": {"LockIndex": 0, "Key": key, "Flags": 0, "Value": None,
                                               "CreateIndex": 0, "ModifyIndex": 0}})
                    else:
                        results.append({"KV": entry_json(e, with_ns=ens)})
                elif verb == "get-tree":
                    results.extend({"KV": entry_json(x, with_ns=ens)} for x in st.under(ns, key))
                elif verb == "check-index":
                    if e is None:
                        raise TxnAbort(i, f'key "{key}" doesn\'t exist')
                    if e["ModifyIndex"] != index:
                        raise TxnAbort(
                            i, f'current modify index {e["ModifyIndex"]} for key "{key}" doesn\'t match {index}'
                        )
                    results.append({"KV": entry_json(e, with_value=False, with_ns=ens)})
                elif verb == "check-not-exists":
                    if e is not None:
                        raise TxnAbort(i, f'key "{key}" exists')
                elif verb == "delete":
                    st.delete(ns, key, idx)
                elif verb == "delete-cas":
                    if e is not None and e["ModifyIndex"] != index:
                        raise TxnAbort(i, f'failed to delete key "{key}", index is stale')
                    st.delete(ns, key, idx)
                elif verb == "delete-tree":
                    st.delete_tree(ns, key, idx)
                else:
                    raise TxnAbort(i, f'unknown KV verb "{verb}"')
        except TxnAbort:
            st.entries, st.tombstones = saved
            raise
        if writes:
            st.index = idx
            st.save()
            st.cond.notify_all()
        return results

    # ----------------------------------------------------------------------------------- admin

    def admin(self, what: str) -> None:
        """Test controls. Not authenticated: the double only listens on 127.0.0.1."""
        q = self.query()
        d = self.double
        if self.command in ("PUT", "POST"):
            self.read_body(None)
        if what == "state" and self.command == "GET":
            with d.store.cond:
                self.send_json(200, {
                    "Index": d.store.index,
                    "Requests": d.requests,
                    "FaultsInjected": d.faults.injected,
                    "Entries": [entry_json(e, with_ns=True) for e in d.store.under(None, "")],
                })
            return
        if self.command not in ("PUT", "POST"):
            raise HttpError(405, "admin actions take PUT or POST")
        if what == "reset":
            with d.store.cond:
                d.store.entries.clear()
                d.store.tombstones.clear()
                d.store.index += 1
                d.store.save()
                d.store.cond.notify_all()
            with d.faults.lock:
                d.faults.clear()
                d.faults.clear_race()
                d.faults.delay_ms = 0
        elif what == "fault":
            mode = q.get("mode", "status")
            if mode not in ("status", "close", "down", "none"):
                raise HttpError(400, "mode must be status, close, down or none")
            with d.faults.lock:
                d.faults.clear()
                if mode != "none":
                    d.faults.mode = mode
                    d.faults.after = parse_uint("after", q.get("after", "0"))
                    d.faults.count = int(q.get("count", "-1"))
                    d.faults.status = int(q.get("status", "500"))
                    d.faults.body = q.get("body", d.faults.body)
                    d.faults.match = q.get("match", "")
        elif what == "race":
            key = q.get("key", "")
            validate_key(key, allow_empty=False)
            with d.faults.lock:
                d.faults.race = (key, q.get("value", "").encode(), q.get("ns") or DEFAULT_NS)
                d.faults.race_after = parse_uint("after", q.get("after", "0"))
                d.faults.race_match = q.get("match", "")
        elif what == "delay":
            d.faults.delay_ms = parse_uint("ms", q.get("ms", "0"))
        else:
            raise HttpError(404, f"unknown admin action {what!r}")
        self.send_json(200, True)


def go_down(double: Double) -> None:
    """Stops listening at once (new connections are refused), then exits the process."""
    srv = double.server
    if srv is None:
        os._exit(0)
    sys.stderr.write("consul-double: going down (fault mode 'down')\n")
    sys.stderr.flush()
    try:
        srv.socket.close()
    finally:
        # Give the current handler a moment to finish closing its socket.
        threading.Timer(0.05, lambda: os._exit(0)).start()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="listen address (loopback only)")
    p.add_argument("--port", type=int, default=8500, help="0 = any free port (printed on stdout)")
    p.add_argument("--token-file", help="file holding the ACL token every request must carry")
    p.add_argument("--datacenter", default="dc1")
    p.add_argument("--txn-max-ops", type=int, default=DEFAULT_TXN_MAX_OPS, choices=(64, 128))
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY)
    p.add_argument("--state-file", help="persist the store here (survives a restart)")
    p.add_argument("--reject-query-token", action="store_true",
                   help="refuse the deprecated ?token= query parameter (Consul still accepts it)")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--namespaces", action="store_true",
                   help="Consul Enterprise namespaces: ?ns= on KV, Namespace in txn operations")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    p.add_argument("--tls-key", help="the certificate's PEM private key")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("the Consul double only listens on loopback")
    token = None
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip() or None
    elif os.environ.get("CONSUL_DOUBLE_TOKEN"):
        token = os.environ["CONSUL_DOUBLE_TOKEN"]
    double = Double(args, token)
    handler = type("BoundHandler", (Handler,), {"double": double})
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128  # parallel tests share one double
    srv = ThreadingHTTPServer((args.host, args.port), handler)
    if args.tls_cert:
        # HTTPS, as an agent with `tls.https` set: clients must verify this certificate.
        use_tls(srv, args.tls_cert, args.tls_key)
    double.server = srv
    port = publish_port(srv, args.port_file)
    scheme = "https" if args.tls_cert else "http"
    print(f"consul-double listening on {scheme}://{args.host}:{port} (acl {'on' if token else 'off'}, "
          f"txn max ops {args.txn_max_ops}, max body {args.max_body_bytes}, "
          f"namespaces {'on' if args.namespaces else 'off'})", flush=True)
    # OSError/ValueError: the listening socket was closed by fault mode 'down'.
    serve_until_stopped(srv, also_ends=(OSError, ValueError))
    return 0


if __name__ == "__main__":
    sys.exit(main())
