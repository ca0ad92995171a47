#!/usr/bin/env python3
"""Deterministic packing for scripts/release (Python 3 standard library only).

  release_pack.py zip    OUT.zip    NAME=PATH...   one zip, entries in the given order
  release_pack.py tar    OUT.tar.gz NAME=PATH...   one gzip tar
  release_pack.py finish DIR VERSION ADDRESS       SHA256SUMS, manifest, mirror tree
  release_pack.py h1     ZIP                       Terraform's h1: hash of a provider zip

Every timestamp is SOURCE_DATE_EPOCH (required), owners are 0, modes 0755 for executables and
0644 otherwise, so the same inputs give the same bytes on any machine.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import time
import zipfile

# DOS dates cannot hold anything before 1980.
ZIP_MIN_EPOCH = 315532800


def epoch() -> int:
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if not raw or not raw.isdigit():
        raise SystemExit("release_pack: SOURCE_DATE_EPOCH must be set to a number of seconds")
    return int(raw)


def mode_of(path: str) -> int:
    return 0o755 if os.stat(path).st_mode & stat.S_IXUSR else 0o644


def entries(args: list[str]) -> list[tuple[str, str]]:
    out = []
    for a in args:
        name, sep, path = a.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"release_pack: expected NAME=PATH, got {a!r}")
        out.append((name, path))
    return out


def write_zip(out: str, files: list[tuple[str, str]]) -> None:
    when = time.gmtime(max(epoch(), ZIP_MIN_EPOCH))[:6]
    with zipfile.ZipFile(out, "w") as z:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is honoured by unzip
            info.external_attr = (stat.S_IFREG | mode_of(path)) << 16
            with open(path, "rb") as f:
                z.writestr(info, f.read(), compresslevel=9)


def write_tar(out: str, files: list[tuple[str, str]]) -> None:
    mtime = epoch()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, path in files:
            info = tarfile.TarInfo(name)
            info.size = os.path.getsize(path)
            info.mtime = mtime
            info.mode = mode_of(path)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(path, "rb") as f:
                t.addfile(info, f)
    with open(out, "wb") as raw:
        # No file name and a fixed mtime in the gzip header.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=9) as g:
            g.write(buf.getvalue())


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def h1(zip_path: str) -> str:
    """Terraform's "h1:" package hash: SHA-256 over the sorted lines `<sha256 hex>  <name>\\n`
    of the files in the zip (directories left out), base64-encoded."""
    lines = []
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            lines.append(f"{hashlib.sha256(z.read(info)).hexdigest()}  {info.filename}\n")
    lines.sort()
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()


def finish(out_dir: str, version: str, address: str) -> None:
    provider = "terraform-provider-ep"
    manifest = os.path.join(out_dir, f"{provider}_{version}_manifest.json")
    with open(manifest, "w", encoding="utf-8") as f:
        json.dump({"version": 1, "metadata": {"protocol_versions": ["6.0"]}}, f, indent=2)
        f.write("\n")
    names = sorted(
        n for n in os.listdir(out_dir)
        if n.endswith((".zip", ".tar.gz", "_manifest.json")) and os.path.isfile(os.path.join(out_dir, n))
    )
    sums = os.path.join(out_dir, f"{provider}_{version}_SHA256SUMS")
    with open(sums, "w", encoding="utf-8") as f:
        for n in names:
            f.write(f"{sha256_file(os.path.join(out_dir, n))}  {n}\n")
    # One tree that serves both mirror kinds: a filesystem mirror's packed layout (the zips under
    # HOST/NAMESPACE/TYPE/) and a network mirror (index.json and VERSION.json beside them).
    tree = os.path.join(out_dir, "mirror", *address.split("/"))
    os.makedirs(tree, exist_ok=True)
    archives = {}
    prefix = f"{provider}_{version}_"
    for n in names:
        if not (n.startswith(prefix) and n.endswith(".zip")):
            continue
        platform = n[len(prefix):-len(".zip")]
        src = os.path.join(out_dir, n)
        shutil.copyfile(src, os.path.join(tree, n))
        archives[platform] = {"url": n, "hashes": [h1(src), "zh:" + sha256_file(src)]}
    versions_file = os.path.join(tree, "index.json")
    versions = {}
    if os.path.exists(versions_file):
        with open(versions_file, encoding="utf-8") as f:
            versions = json.load(f).get("versions", {})
    versions[version] = {}
    with open(versions_file, "w", encoding="utf-8") as f:
        json.dump({"versions": dict(sorted(versions.items()))}, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(tree, f"{version}.json"), "w", encoding="utf-8") as f:
        json.dump({"archives": archives}, f, indent=2, sort_keys=True)
        f.write("\n")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd = argv[0]
    if cmd == "zip":
        write_zip(argv[1], entries(argv[2:]))
    elif cmd == "tar":
        write_tar(argv[1], entries(argv[2:]))
    elif cmd == "finish" and len(argv) == 4:
        finish(argv[1], argv[2], argv[3])
    elif cmd == "h1" and len(argv) == 2:
        print(h1(argv[1]))
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
