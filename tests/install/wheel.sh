#!/usr/bin/env bash
# tests/install/wheel.sh — the platform wheel (make wheel) as a user gets it: a fresh venv,
# `pip install --no-index` (offline), the README example run from another folder with no
# TASKER_* variable. Also checks the wheel's contents and RECORD, and that the glibc symbol
# versions listed in bindings/python/README.md are the ones the bundled library needs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WHEEL=${1:-$ROOT/dist/tasker-$VERSION-py3-none-linux_$ARCH.whl}
echo "$NAME: $WHEEL"
[ -f "$WHEEL" ] || die "$WHEEL is missing: run make wheel"

res=$("$PYTHON" - "$WHEEL" <<'PY'
import base64, hashlib, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
print("so" if "tasker/libtasker.so.1" in names else "no-so")
rec = [n for n in names if n.endswith(".dist-info/RECORD")]
bad = []
for line in z.read(rec[0]).decode().splitlines():
    path, digest, size = line.rsplit(",", 2)
    if path == rec[0]:
        continue
    data = z.read(path)
    want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if digest != want or int(size) != len(data):
        bad.append(path)
listed = {line.rsplit(",", 2)[0] for line in z.read(rec[0]).decode().splitlines()}
print("record-ok" if not bad and listed == set(names) else f"record-bad {bad} {set(names) ^ listed}")
wheel = [n for n in names if n.endswith(".dist-info/WHEEL")]
print([l for l in z.read(wheel[0]).decode().splitlines() if l.startswith(("Tag:", "Root-Is-Purelib:"))])
PY
)
expect_eq "the wheel carries tasker/libtasker.so.1" "so" "$(echo "$res" | sed -n 1p)"
expect_eq "RECORD lists every file with its sha256 and size" "record-ok" "$(echo "$res" | sed -n 2p)"
expect_eq "a platform wheel (py3-none-linux_$ARCH, not purelib)" "['Root-Is-Purelib: false', 'Tag: py3-none-linux_$ARCH']" "$(echo "$res" | sed -n 3p)"

# glibc symbol versions (manylinux policy) recorded in the package README
mkdir -p "$T/unz"
(cd "$T/unz" && "$PYTHON" -m zipfile -e "$WHEEL" .) || die "cannot unpack the wheel"
needs=$(objdump -T "$T/unz/tasker/libtasker.so.1" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tr '\n' ' ' | sed 's/ $//')
listed=$(sed -n 's/^glibc symbol versions needed: //p' "$ROOT/bindings/python/README.md" | tr -d '`,' )
expect_eq "bindings/python/README.md lists the glibc symbol versions the library needs" "$needs" "$listed"

# ---- a fresh venv, offline ----
"$PYTHON" -m venv "$T/venv" >/dev/null 2>&1 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
out=$(clean_env "$T/venv/bin/python" -m pip install --no-index --no-cache-dir -q "$WHEEL" 2>&1)
check "pip install --no-index the wheel into a fresh venv" test $? -eq 0 -a -f "$T/venv/bin/python"
[ -z "$out" ] || echo "$out" | sed 's/^/       /'
readme_block "$ROOT/bindings/python/README.md" python >"$T/elsewhere/example.py"
res=$(cd "$T/elsewhere" && clean_env "$T/venv/bin/python" example.py 2>&1)
expect_eq "the README example runs from another folder, no TASKER_* variable" \
    "$(printf 'resize completed {'"'"'width'"'"': 320} None\nexplode failed None ValueError')" "$res"
res=$(cd "$T/elsewhere" && clean_env "$T/venv/bin/python" -c 'import tasker; tasker.load_library(); print(tasker.library_path()); print(tasker.library_version())' 2>&1)
site=$(clean_env "$T/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
expect_eq "it loads the library inside the installed package" \
    "$(printf '%s\nlibtasker %s (abi 1)' "$site/tasker/libtasker.so.1" "$VERSION")" "$res"
res=$(cd "$T/elsewhere" && clean_env TASKER_LIBRARY=/nonexistent/libtasker.so.1 "$T/venv/bin/python" -c 'import tasker; tasker.load_library(); print(tasker.library_path())' 2>&1)
expect_eq "the package's own library comes first, before \$TASKER_LIBRARY" "$site/tasker/libtasker.so.1" "$res"
res=$(clean_env "$T/venv/bin/python" -m pip show -f tasker 2>&1)
expect_in "pip knows the bundled library as part of the package" "tasker/libtasker.so.1" "$res"
out=$(clean_env "$T/venv/bin/python" -m pip uninstall -y -q tasker 2>&1)
check "pip uninstall removes the package and its library" test ! -e "$site/tasker"
finish
