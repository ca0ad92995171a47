#!/usr/bin/env python3
"""Checks the Consul test double with an independent client: PyPI's py-consul.

Usage:
  consul_double_check.py                  start a private double (free port, random token) and check it
  consul_double_check.py --address URL    check a running double; the token comes from the
                                          environment variable named by --token-env
                                          (default EP_TESTENV_CONSUL_TOKEN), never from argv

Exits 0 when every check passes; prints one line per check. Needs py-consul (installed into the
tools venv by `scripts/testenv install`). Fault-mode checks run only against the private double.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import consul
from consul.callback import CB
from consul.exceptions import ACLPermissionDenied, BadRequest, ClientError, ConsulException

HERE = Path(__file__).resolve().parent
FAILED: list[str] = []


def check(name: str, cond: bool, detail: object = "") -> None:
    print(f"{'ok  ' if cond else 'FAIL'} {name}" + (f": {detail}" if detail != "" and not cond else ""))
    if not cond:
        FAILED.append(name)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def start_private(tmp: Path, token: str, *extra: str) -> tuple[subprocess.Popen, int]:
    (tmp / "token").write_text(token)
    port_file = tmp / "port"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "consul_double.py"), "--port", "0", "--port-file", str(port_file),
         "--token-file", str(tmp / "token"), *extra],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "log", "wb"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists():
            return proc, int(port_file.read_text())
        if proc.poll() is not None:
            raise SystemExit(f"double exited: {(tmp / 'log').read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("double did not start in 30 s")


def admin(base: str, action: str) -> None:
    req = urllib.request.Request(f"{base}/_double/{action}", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def ns_put(c: consul.Consul, key: str, value: str, ns: str) -> bool:
    """py-consul's kv has no namespace argument: its HTTP layer sends ?ns= as Enterprise expects."""
    return c.http.put(CB.boolean(), f"/v1/kv/{key}", params=[("ns", ns)], data=value)


def ns_get(c: consul.Consul, key: str, ns: str, recurse: bool = False):
    params = [("ns", ns)] + ([("recurse", "1")] if recurse else [])
    return c.http.get(CB.json(decode="Value"), f"/v1/kv/{key}", params=params)


def run_namespace_checks(host: str, port: int, token: str, enterprise: bool) -> None:
    """Namespaces: separate keyspaces on an Enterprise-like double, refused otherwise."""
    os.environ.pop("CONSUL_HTTP_TOKEN", None)
    c = consul.Consul(host=host, port=port, token=token)
    c.http.session.headers["X-Consul-Token"] = token
    p = f"ns-{uuid.uuid4().hex[:8]}/"
    if not enterprise:
        try:
            ns_get(c, p + "k", "team-a")
            check("CE: ?ns= refused", False, "accepted")
        except (BadRequest, ClientError) as e:
            check("CE: ?ns= refused with 400 naming Enterprise", str(e).startswith("400 ") and "Enterprise" in str(e), e)
        try:
            c.txn.put([{"KV": {"Verb": "set", "Key": p + "k", "Value": b64("v"), "Namespace": "team-a"}}])
            check("CE: txn Namespace refused", False, "accepted")
        except (BadRequest, ClientError) as e:
            check("CE: txn Namespace refused with 400", str(e).startswith("400 "), e)
        return
    check("ns put team-a", ns_put(c, p + "db/host", "a.internal", "team-a") is True)
    check("ns put team-b", ns_put(c, p + "db/host", "b.internal", "team-b") is True)
    a = ns_get(c, p + "db/host", "team-a")
    b = ns_get(c, p + "db/host", "team-b")
    check("each namespace keeps its value", a[0]["Value"] == b"a.internal" and b[0]["Value"] == b"b.internal", (a, b))
    check("entries name their namespace", a[0].get("Namespace") == "team-a", a)
    check("the default namespace does not see them", c.kv.get(p + "db/host")[1] is None)
    res = c.txn.put([
        {"KV": {"Verb": "cas", "Key": p + "jms/url", "Value": b64("tcp://a:61616"), "Index": 0, "Namespace": "team-a"}},
        {"KV": {"Verb": "check-not-exists", "Key": p + "jms/url", "Namespace": "team-b"}},
    ])
    check("txn operations write to their own namespace", res.get("Errors") is None, res)
    check("txn write landed in team-a", ns_get(c, p + "jms/url", "team-a")[0]["Value"] == b"tcp://a:61616")
    check("txn write not in team-b", ns_get(c, p + "jms/url", "team-b") is None)
    # /v1/txn documents only ?dc=: a ?ns= on its URL must not redirect the operations.
    c.http.put(CB.json(), "/v1/txn", params=[("ns", "team-b")],
               data=json.dumps([{"KV": {"Verb": "set", "Key": p + "url-ns", "Value": b64("x")}}]))
    check("?ns= on /v1/txn is not the operations' namespace",
          ns_get(c, p + "url-ns", "team-b") is None and c.kv.get(p + "url-ns")[1] is not None)
    tree = ns_get(c, p, "team-a", recurse=True)
    check("recurse stays in its namespace", [e["Key"] for e in tree] == [p + "db/host", p + "jms/url"], tree)
    check("delete in one namespace", c.http.delete(CB.boolean(), f"/v1/kv/{p}", params=[("ns", "team-a"), ("recurse", "1")]))
    check("the other namespace is untouched", ns_get(c, p + "db/host", "team-b")[0]["Value"] == b"b.internal")


def run_checks(host: str, port: int, token: str, private: bool) -> None:
    base = f"http://{host}:{port}"
    # py-consul prefers $CONSUL_HTTP_TOKEN to the token argument: keep it out of the checks.
    os.environ.pop("CONSUL_HTTP_TOKEN", None)
    c = consul.Consul(host=host, port=port, token=token)
    anon = consul.Consul(host=host, port=port, token=None)
    p = f"check-{uuid.uuid4().hex[:8]}/"

    # KV put / get, flags, index.
    check("kv.put creates", c.kv.put(p + "db/host", "db.internal", flags=42) is True)
    idx, item = c.kv.get(p + "db/host")
    check("kv.get value", item is not None and item["Value"] == b"db.internal", item)
    check("kv.get flags", item is not None and item["Flags"] == 42, item)
    check("kv.get index header", isinstance(idx, str) and int(idx) >= item["ModifyIndex"], idx)
    check("kv.get missing is None", c.kv.get(p + "nope")[1] is None)

    # CAS.
    mod = item["ModifyIndex"]
    check("kv.put cas=0 on existing key refused", c.kv.put(p + "db/host", "x", cas=0) is False)
    check("kv.put cas=0 on new key", c.kv.put(p + "db/port", "3306", cas=0) is True)
    check("kv.put cas=stale refused", c.kv.put(p + "db/host", "x", cas=mod + 1000) is False)
    check("kv.put cas=current", c.kv.put(p + "db/host", "db2.internal", cas=mod) is True)
    _, item2 = c.kv.get(p + "db/host")
    check("cas write bumped ModifyIndex", item2["ModifyIndex"] > mod and item2["CreateIndex"] == item["CreateIndex"],
          item2)
    check("cas write kept value", item2["Value"] == b"db2.internal")

    # Recurse on a prefix with and without the trailing slash.
    c.kv.put(p[:-1] + "food", "not under the prefix")
    _, tree = c.kv.get(p, recurse=True)
    keys = [e["Key"] for e in tree or []]
    check("kv.get recurse lists the prefix, sorted", keys == [p + "db/host", p + "db/port"], keys)
    _, loose = c.kv.get(p[:-1], recurse=True)
    check("recurse without a trailing slash also matches a sibling", p[:-1] + "food" in [e["Key"] for e in loose or []])
    _, klist = c.kv.get(p, keys=True, separator="/")
    check("kv.get keys with separator", klist == [p + "db/"], klist)

    # Transactions (py-consul's txn.put sends no token header: set it on the session).
    c.http.session.headers["X-Consul-Token"] = token
    _, cur = c.kv.get(p + "db/port")
    res = c.txn.put([
        {"KV": {"Verb": "cas", "Key": p + "db/port", "Value": b64("3307"), "Index": cur["ModifyIndex"]}},
        {"KV": {"Verb": "cas", "Key": p + "jms/url", "Value": b64("tcp://mq:61616"), "Index": 0}},
        {"KV": {"Verb": "get", "Key": p + "db/host"}},
        {"KV": {"Verb": "get-or-empty", "Key": p + "absent"}},
    ])
    check("txn.put commits", res.get("Errors") is None and len(res["Results"]) == 4, res)
    check("txn results carry no value for writes", res["Results"][0]["KV"]["Value"] is None, res)
    check("txn get result is base64", base64.b64decode(res["Results"][2]["KV"]["Value"]) == b"db2.internal")
    check("txn get-or-empty of a missing key", res["Results"][3]["KV"]["Value"] is None)
    writes = {r["KV"]["ModifyIndex"] for r in res["Results"][:2]}
    check("one index for every write of a transaction", len(writes) == 1, writes)
    check("txn writes visible", c.kv.get(p + "jms/url")[1]["Value"] == b"tcp://mq:61616")

    # A conflicting transaction rolls back as a whole: 409 with Errors.
    try:
        c.txn.put([
            {"KV": {"Verb": "set", "Key": p + "rolled/back", "Value": b64("x")}},
            {"KV": {"Verb": "check-not-exists", "Key": p + "db/host"}},
        ])
        check("txn conflict raises", False, "no error")
    except ClientError as e:
        msg = str(e)
        body = json.loads(msg.split(" ", 1)[1])
        check("txn conflict is 409", msg.startswith("409 "), msg)
        check("txn conflict names the op", body["Errors"][0]["OpIndex"] == 1 and "exists" in body["Errors"][0]["What"], body)
    check("txn conflict rolled back the set", c.kv.get(p + "rolled/back")[1] is None)

    # Too many operations: 413.
    try:
        c.txn.put([{"KV": {"Verb": "get-or-empty", "Key": f"{p}k{i}"}} for i in range(65)])
        check("65 operations refused", False, "no error")
    except ClientError as e:
        check("65 operations refused with 413", str(e).startswith("413 "), e)
    res = c.txn.put([{"KV": {"Verb": "get-or-empty", "Key": f"{p}k{i}"}} for i in range(64)])
    check("64 operations accepted", len(res["Results"]) == 64)

    # delete-cas, delete-tree in a transaction.
    _, cur = c.kv.get(p + "jms/url")
    try:
        c.txn.put([{"KV": {"Verb": "delete-cas", "Key": p + "jms/url", "Index": cur["ModifyIndex"] + 99}}])
        check("stale delete-cas refused", False, "no error")
    except ClientError as e:
        check("stale delete-cas refused with 409", str(e).startswith("409 ") and "stale" in str(e), e)
    res = c.txn.put([{"KV": {"Verb": "delete-cas", "Key": p + "jms/url", "Index": cur["ModifyIndex"]}}])
    check("delete-cas returns no result entry", res["Results"] == [] or res["Results"] is None, res)
    check("delete-cas deleted", c.kv.get(p + "jms/url")[1] is None)
    del c.http.session.headers["X-Consul-Token"]

    # kv.delete with cas and recurse.
    _, cur = c.kv.get(p + "db/port")
    check("kv.delete cas stale refused", c.kv.delete(p + "db/port", cas=cur["ModifyIndex"] + 5) is False)
    check("kv.delete cas current", c.kv.delete(p + "db/port", cas=cur["ModifyIndex"]) is True)
    check("kv.delete recurse", c.kv.delete(p, recurse=True) is True and c.kv.get(p, recurse=True)[1] is None)
    c.kv.delete(p[:-1] + "food")

    # Tokens: none, wrong, deprecated query parameter.
    try:
        anon.kv.get(p + "db/host")
        check("no token refused", False, "no error")
    except ACLPermissionDenied as e:
        check("no token refused with 403 Permission denied", "Permission denied" in str(e), e)
    try:
        consul.Consul(host=host, port=port, token="wrong-" + token).kv.put(p + "x", "y")
        check("wrong token refused", False, "no error")
    except ACLPermissionDenied as e:
        check("wrong token refused with 403", True, e)
    try:
        anon.txn.put([{"KV": {"Verb": "get-or-empty", "Key": p + "x"}}])
        check("txn without token refused", False, "no error")
    except ACLPermissionDenied:
        check("txn without token refused with 403", True)
    check("token as a per-call argument", anon.kv.put(p + "percall", "v", token=token) is True)
    anon.kv.delete(p + "percall", token=token)

    # Key validation: py-consul refuses a leading slash itself; check the server too.
    req = urllib.request.Request(f"{base}/v1/kv//lead", headers={"X-Consul-Token": token})
    try:
        urllib.request.urlopen(req, timeout=10)
        check("leading slash refused", False, "200")
    except urllib.error.HTTPError as e:
        check("leading slash refused with 400", e.code == 400, e.code)
    # (requests normalises dot segments away, so send this one with http.client as it is.)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("PUT", "/v1/kv/" + p + "a/../b", body=b"x", headers={"X-Consul-Token": token})
    r = conn.getresponse()
    check("a '..' segment refused with 400", r.status == 400 and b".." in r.read(), r.status)
    conn.close()
    try:
        c.kv.put(p + "big", "x" * (512 * 1024 + 1))
        check("value over 512 KiB refused", False, "accepted")
    except ClientError as e:
        check("value over 512 KiB refused with 413", str(e).startswith("413 "), e)

    # Datacenter parameter.
    check("?dc=dc1 accepted", c.kv.put(p + "dc", "1", dc="dc1") is True)
    try:
        c.kv.get(p + "dc", dc="elsewhere")
        check("unknown dc refused", False, "accepted")
    except ConsulException as e:
        check("unknown dc refused with 500 No path to datacenter", "No path to datacenter" in str(e), e)
    c.kv.delete(p + "dc")

    if not private:
        return
    # Faults (only on the private double).
    admin(base, "fault?mode=status&count=1&status=500")
    try:
        c.kv.get(p + "any")
        check("injected 500", False, "no error")
    except ConsulException as e:
        check("injected 500 seen by the client", str(e).startswith("500"), e)
    check("fault count spent, next request fine", c.kv.put(p + "after", "1") is True)
    admin(base, "fault?mode=close&count=1")
    try:
        c.kv.get(p + "after")
        check("closed connection", False, "no error")
    except Exception as e:  # requests' ConnectionError
        check("closed connection seen by the client", "Connection" in type(e).__name__ or "aborted" in str(e), repr(e))
    # Race: another writer's write lands just before the next transaction, so a cas on the
    # index read before it is stale (what a provider sees from a concurrent writer).
    c.http.session.headers["X-Consul-Token"] = token
    check("race key written first", c.kv.put(p + "race", "mine") is True)
    _, cur = c.kv.get(p + "race")
    admin(base, "race?key=" + p + "race&value=theirs&match=PUT%20/v1/txn")
    try:
        c.txn.put([{"KV": {"Verb": "cas", "Key": p + "race", "Value": b64("mine2"), "Index": cur["ModifyIndex"]}}])
        check("cas after a concurrent write refused", False, "no error")
    except ClientError as e:
        check("cas after a concurrent write refused with 409", str(e).startswith("409 ") and "stale" in str(e), e)
    check("the concurrent write is what is stored", c.kv.get(p + "race")[1]["Value"] == b"theirs")
    res = c.txn.put([{"KV": {"Verb": "get", "Key": p + "race"}}])
    check("the race fires once", res["Results"][0]["KV"]["Value"] == b64("theirs"), res)
    c.kv.delete(p + "race")
    admin(base, "fault?mode=down&after=1&match=PUT%20/v1/txn")
    c.txn.put([{"KV": {"Verb": "set", "Key": p + "t1", "Value": b64("1")}}])
    try:
        c.txn.put([{"KV": {"Verb": "set", "Key": p + "t2", "Value": b64("2")}}])
        check("server goes down mid-apply", False, "no error")
    except Exception as e:
        check("server goes down mid-apply", True, e)
    time.sleep(0.3)
    with socket.socket() as s:
        s.settimeout(2)
        refused = s.connect_ex((host, port)) != 0
    check("connections refused once down", refused)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", help="http://127.0.0.1:PORT of a running double")
    ap.add_argument("--token-env", default="EP_TESTENV_CONSUL_TOKEN")
    args = ap.parse_args()
    if args.address:
        hostport = args.address.split("://", 1)[-1].rstrip("/")
        host, port = hostport.rsplit(":", 1)
        token = os.environ.get(args.token_env, "")
        if not token:
            print(f"FAIL no token in ${args.token_env}")
            return 1
        run_checks(host, int(port), token, private=False)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            token = secrets.token_hex(16)
            proc, port = start_private(Path(tmp), token)
            try:
                run_namespace_checks("127.0.0.1", port, token, enterprise=False)
                run_checks("127.0.0.1", port, token, private=True)
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(10)
        with tempfile.TemporaryDirectory() as tmp:
            token = secrets.token_hex(16)
            proc, port = start_private(Path(tmp), token, "--namespaces")
            try:
                run_namespace_checks("127.0.0.1", port, token, enterprise=True)
            finally:
                proc.terminate()
                proc.wait(10)
    print(f"consul double check: {'all ok' if not FAILED else 'FAILED: ' + ', '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
