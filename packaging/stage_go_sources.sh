#!/usr/bin/env bash
# packaging/stage_go_sources.sh DEST — copy what `go build ./ffi` needs into DEST, as a
# self-contained module for the source gem: go.mod, go.sum, the non-test source files of every
# package of this module that ./ffi imports (found with `go list`, so new packages are picked up),
# ffi/libtasker.map, include/, the LICENSE if any, and vendor/ with the dependencies
# (`go mod vendor`, from the module cache: nothing is downloaded when it is filled).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=${1:?usage: $0 DEST}
GO=${GO:-go}
rm -rf "$dest"
mkdir -p "$dest"
mod=$("$GO" list -m)
cp go.mod go.sum "$dest/"
[ -f LICENSE ] && cp LICENSE "$dest/"
cp -r include "$dest/"
"$GO" list -deps -f '{{if .Module}}{{if eq .Module.Path "'"$mod"'"}}{{.Dir}}|{{join .GoFiles " "}} {{join .CgoFiles " "}} {{join .CFiles " "}} {{join .HFiles " "}}{{end}}{{end}}' ./ffi |
while IFS='|' read -r dir files; do
    rel=${dir#"$PWD"/}
    mkdir -p "$dest/$rel"
    for f in $files; do cp "$dir/$f" "$dest/$rel/$f"; done
done
cp ffi/libtasker.map "$dest/ffi/"
# vendor/ for the packages the staged (test-free) sources import; go.mod's test-only
# requirements stay listed but are not needed to build.
(cd "$dest" && GOFLAGS=-mod=mod GOPROXY=off "$GO" mod vendor)
# prove the staged tree builds on its own, offline, before it goes into a gem
(cd "$dest" && GOFLAGS=-mod=vendor GOPROXY=off "$GO" build -o /dev/null ./ffi)
echo "$dest"
