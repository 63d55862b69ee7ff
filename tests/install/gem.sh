#!/usr/bin/env bash
# tests/install/gem.sh — the gems as a user gets them, offline, each into a fresh GEM_HOME
# (Debian's ffi gem stays visible through the default gem path):
#   - the platform gem (make gem): `gem install --local`, the README example from another
#     folder with no TASKER_* variable, loading the library the gem carries;
#   - the source gem (make gem-source): without Go on PATH the install stops with a message
#     that says what to do; with Go (when this machine has it) it builds the library at
#     install time and the README example runs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
GEM_PLATFORM=${1:-$ROOT/dist/tasker-$VERSION-$ARCH-linux.gem}
GEM_SOURCE=${2:-$ROOT/dist/tasker-$VERSION.gem}
GEMCMD=$(dirname "$RUBY")/gem
[ -x "$GEMCMD" ] || GEMCMD=$(command -v gem)
echo "$NAME: $GEM_PLATFORM, $GEM_SOURCE"
[ -f "$GEM_PLATFORM" ] || die "$GEM_PLATFORM is missing: run make gem"
[ -f "$GEM_SOURCE" ] || die "$GEM_SOURCE is missing: run make gem-source"
readme_block "$ROOT/bindings/ruby/README.md" ruby >"$T/elsewhere/example.rb"
EXPECTED=$(printf 'boom: failed no\ngreet: completed hello, Ruby')

# the files inside the gem (a .gem is a tar with data.tar.gz)
files=$(cd "$T" && tar -xOf "$GEM_PLATFORM" data.tar.gz | tar -tzf - 2>/dev/null)
expect_in "the platform gem carries lib/tasker/libtasker.so.1" "lib/tasker/libtasker.so.1" "$files"

# ---- platform gem ----
G=$T/gems-platform
out=$(cd "$T" && clean_env GEM_HOME="$G" "$GEMCMD" install --local --no-document "$GEM_PLATFORM" 2>&1)
check "gem install --local the platform gem into a fresh GEM_HOME" test $? -eq 0
[[ $out == *"Successfully installed tasker-$VERSION-$ARCH-linux"* ]] || echo "$out" | sed 's/^/       /'
res=$(cd "$T/elsewhere" && clean_env GEM_HOME="$G" "$RUBY" example.rb 2>&1 | sort)
expect_eq "the README example runs from another folder, no TASKER_* variable" "$EXPECTED" "$res"
res=$(cd "$T/elsewhere" && clean_env GEM_HOME="$G" "$RUBY" -e 'require "tasker"; puts Tasker.library_version; puts Tasker.library_path' 2>&1)
expect_eq "it loads the library inside the installed gem" \
    "$(printf 'libtasker %s (abi 1)\n%s' "$VERSION" "$G/gems/tasker-$VERSION-$ARCH-linux/lib/tasker/libtasker.so.1")" "$res"

res=$(cd "$T/elsewhere" && clean_env GEM_HOME="$G" TASKER_LIBRARY=/nonexistent/libtasker.so.1 "$RUBY" -e 'require "tasker"; Tasker::Channel.new.close; puts Tasker.library_path' 2>&1)
expect_eq "the gem's own library comes first, before \$TASKER_LIBRARY" "$G/gems/tasker-$VERSION-$ARCH-linux/lib/tasker/libtasker.so.1" "$res"

# ---- source gem, no Go on PATH ----
G=$T/gems-nogo
nogo_path=$BASE_PATH
out=$(cd "$T" && env -i PATH="$nogo_path" HOME="$T/home" GEM_HOME="$G" "$GEMCMD" install --local --no-document "$GEM_SOURCE" 2>&1)
rc=$?
if env -i PATH="$nogo_path" sh -c 'command -v go' >/dev/null 2>&1; then
    bad "the system PATH ($nogo_path) has go; cannot test the no-Go message"
else
    check "source gem without Go: gem install fails" test $rc -ne 0
    expect_in "source gem without Go: says Go is missing" "Go is not on PATH" "$out"
    expect_in "source gem without Go: names the platform gem instead" "gem install tasker-<version>-$ARCH-linux.gem" "$out"
fi

# ---- source gem, with Go: builds libtasker at install time ----
GO_BIN=$(command -v "${GO:-go}" || true)
if [ -z "$GO_BIN" ]; then
    bad "no Go on this machine: cannot test the source gem's build (Go is required to build libtasker anyway)"
else
    G=$T/gems-source
    gocache=$("$GO_BIN" env GOCACHE)
    out=$(cd "$T" && env -i PATH="$(dirname "$GO_BIN"):$BASE_PATH" HOME="$T/home" GOCACHE="$gocache" GOFLAGS= GOPROXY=off \
        GEM_HOME="$G" "$GEMCMD" install --local --no-document "$GEM_SOURCE" 2>&1)
    check "source gem with Go: gem install builds libtasker (offline)" test $? -eq 0
    [[ $out == *"Successfully installed tasker-$VERSION"* ]] || echo "$out" | tail -n 30 | sed 's/^/       /'
    built=$G/gems/tasker-$VERSION/lib/tasker/libtasker.so.1
    expect_in "the built library has the SONAME" "SONAME               libtasker.so.1" "$(objdump -p "$built" 2>&1)"
    res=$(cd "$T/elsewhere" && clean_env GEM_HOME="$G" "$RUBY" example.rb 2>&1 | sort)
    expect_eq "source gem: the README example runs from another folder" "$EXPECTED" "$res"
    res=$(cd "$T/elsewhere" && clean_env GEM_HOME="$G" "$RUBY" -e 'require "tasker"; Tasker::Channel.new.close; puts Tasker.library_path' 2>&1)
    expect_eq "source gem: it loads the library it built" "$built" "$res"
fi
finish
