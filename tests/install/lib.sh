# tests/install/lib.sh — helpers shared by the install tests (sourced, not run).
#
# Every test makes one temporary folder (T), removes it on exit whatever happens, and runs the
# installed product with a minimal environment: `clean_env` keeps PATH (the system's, without
# Go unless asked), HOME inside T and nothing from TASKER_*, PYTHON*, GEM_*, RUBY*, LD_*.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/tasker-install-$NAME.XXXXXX")
trap 'rm -rf "$T"' EXIT
failures=0
checks=0

ok() { checks=$((checks + 1)); echo "  ok   $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "  FAIL $*"; }
# check DESCRIPTION COMMAND... — passes when the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1"; printf '       expected: %s\n       actual:   %s\n' "$2" "$3" | sed 's/^/       /' | cut -c1-400 | head -n 14; fi
}
# expect_in DESCRIPTION NEEDLE HAYSTACK
expect_in() {
    if [[ $3 == *"$2"* ]]; then ok "$1"; else bad "$1"; printf '       missing: %s\n       in: %s\n' "$2" "$3" | cut -c1-400 | head -n 14; fi
}
finish() {
    echo "$NAME: $checks checks, $failures failed"
    [ "$failures" -eq 0 ]
}
die() { echo "  FAIL $*"; echo "$NAME: stopped"; exit 1; }

# The system PATH without Go (and without pyenv shims): what a user's shell has at least.
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
clean_env() { env -i PATH="$BASE_PATH" HOME="$T/home" LANG=C.UTF-8 "$@"; }
mkdir -p "$T/home" "$T/elsewhere"

# readme_block FILE LANG — the first ```LANG block of FILE
readme_block() { awk -v lang="$2" '$0 == "```" lang {on=1; next} on && $0 == "```" {exit} on {print}' "$1"; }

# The interpreters as absolute paths (a pyenv shim or a PATH entry may not survive clean_env).
PYTHON=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
RUBY=$("${RUBY:-ruby}" -e 'require "rbconfig"; puts RbConfig.ruby')
VERSION=$(sed -n 's/^#define TASKER_VERSION_STRING "libtasker \([0-9.]*\) .*/\1/p' "$ROOT/include/tasker.h")
ARCH=$(uname -m)
