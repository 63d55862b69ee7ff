#!/usr/bin/env python3
"""Build the platform wheel of the Python binding with the standard library only (no network,
no setuptools): bindings/python/tasker/*.py + py.typed + the shared library inside the package as
tasker/libtasker.so.<abi>, plus the .dist-info (METADATA, WHEEL, RECORD) of PEP 427 / PEP 376.

    python3 packaging/build_wheel.py --library build/libtasker.so.1 --out dist

The wheel is tagged py3-none-<platform> (linux_x86_64 on x86-64 Linux): pure-Python code, no
CPython extension, but a native library for one platform. Prints the wheel's path.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import sys
import sysconfig
import zipfile
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None  # type: ignore[assignment]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG_ROOT = os.path.join(ROOT, "bindings", "python")
# A fixed timestamp for every entry, so that the same inputs give the same wheel bytes.
EPOCH = (1980, 1, 1, 0, 0, 0)


def read_project() -> dict[str, Any]:
    with open(os.path.join(PKG_ROOT, "pyproject.toml"), "rb") as f:
        data = f.read()
    if tomllib is None:
        sys.exit("build_wheel.py needs Python >= 3.11 (tomllib) to read pyproject.toml")
    project: dict[str, Any] = tomllib.loads(data.decode())["project"]
    return project


def platform_tag() -> str:
    # sysconfig's platform is e.g. "linux-x86_64"; wheel tags use "linux_x86_64".
    return re.sub(r"[^a-zA-Z0-9_]", "_", sysconfig.get_platform())


def metadata(project: dict[str, Any]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project['description']}",
    ]
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    lic = project.get("license", {})
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    for c in project.get("classifiers", []):
        lines.append(f"Classifier: {c}")
    for dep in project.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    readme = project.get("readme")
    body = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(PKG_ROOT, readme), encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--library", required=True, help="the built shared library (build/libtasker.so.1)")
    ap.add_argument("--out", default="dist", help="output folder (default dist)")
    ap.add_argument("--abi", default="1", help="the ABI major: the bundled file is libtasker.so.<abi>")
    args = ap.parse_args()

    project = read_project()
    name, version = project["name"], project["version"]
    tag = f"py3-none-{platform_tag()}"
    dist_info = f"{name}-{version}.dist-info"

    files: list[tuple[str, bytes, int]] = []  # (path in the wheel, bytes, unix mode)
    pkg_dir = os.path.join(PKG_ROOT, "tasker")
    for entry in sorted(os.listdir(pkg_dir)):
        if entry.endswith(".py") or entry == "py.typed":
            with open(os.path.join(pkg_dir, entry), "rb") as f:
                files.append((f"tasker/{entry}", f.read(), 0o644))
    if not any(p == "tasker/__init__.py" for p, _, _ in files):
        sys.exit(f"no tasker/__init__.py under {pkg_dir}")
    with open(args.library, "rb") as f:
        lib = f.read()
    if not lib.startswith(b"\x7fELF"):
        sys.exit(f"{args.library} is not an ELF shared library")
    files.append((f"tasker/libtasker.so.{args.abi}", lib, 0o755))

    files.append((f"{dist_info}/METADATA", metadata(project).encode(), 0o644))
    wheel_meta = (
        "Wheel-Version: 1.0\n"
        "Generator: libtasker packaging/build_wheel.py\n"
        "Root-Is-Purelib: false\n"
        f"Tag: {tag}\n"
    )
    files.append((f"{dist_info}/WHEEL", wheel_meta.encode(), 0o644))
    record_name = f"{dist_info}/RECORD"
    record = "\n".join([record_line(p, d) for p, d, _ in files] + [f"{record_name},,"]) + "\n"
    files.append((record_name, record.encode(), 0o644))

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{name}-{version}-{tag}.whl")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data, mode in files:
            info = zipfile.ZipInfo(arcname, date_time=EPOCH)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    with open(path + ".tmp", "wb") as f:
        f.write(buf.getvalue())
    os.replace(path + ".tmp", path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
