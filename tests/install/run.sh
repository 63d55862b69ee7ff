#!/usr/bin/env bash
# tests/install/run.sh — the install tests (`make test-install` builds the packages first):
#   prefix.sh  make install into a temporary prefix; C via pkg-config; both bindings by SONAME
#   wheel.sh   the wheel into a fresh venv, offline
#   gem.sh     the platform gem and the source gem into fresh GEM_HOMEs, offline
# Each makes and removes its own temporary folder and changes nothing on the system.
# Exit status non-zero if any check failed.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 2
failed=()
for t in prefix wheel gem; do
    bash "$t.sh" || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "install tests failed: ${failed[*]}"
    exit 1
fi
echo "install tests: all passed"
