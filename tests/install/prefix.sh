#!/usr/bin/env bash
# tests/install/prefix.sh — `make install` into a temporary prefix, then use it as a user would:
# a C program built with pkg-config, ctypes.util.find_library, and both bindings finding the
# library by its SONAME through the dynamic linker (LD_LIBRARY_PATH), from copies of the
# bindings that are neither in the checkout nor carry a library. Changes nothing outside $T.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MAKE=${MAKE:-make}
P=$T/prefix
SONAME=libtasker.so.1
echo "$NAME: make install PREFIX=$P"

out=$($MAKE -s -C "$ROOT" install PREFIX="$P" 2>&1) || die "make install failed: $out"
check "lib/$SONAME is a regular file" test -f "$P/lib/$SONAME" -a ! -L "$P/lib/$SONAME"
expect_eq "lib/libtasker.so is the dev symlink to $SONAME" "$SONAME" "$(readlink "$P/lib/libtasker.so")"
check "include/tasker.h installed" cmp -s "$ROOT/include/tasker.h" "$P/include/tasker.h"
check "lib/pkgconfig/tasker.pc installed" test -f "$P/lib/pkgconfig/tasker.pc"
expect_in "objdump -p shows the SONAME" "SONAME               $SONAME" "$(objdump -p "$P/lib/$SONAME")"
expect_in "a prefix outside the linker's directories: install prints the LD_LIBRARY_PATH line" \
    "export LD_LIBRARY_PATH=$P/lib" "$out"

# A prefix the dynamic linker searches (here: named in a stand-in for /etc/ld.so.conf):
# as root, install runs ldconfig; otherwise it prints the command. LDCONFIG is replaced by an
# echo so that the test changes nothing on the system.
echo "$T/sys/lib" >"$T/ld.so.conf"
out=$($MAKE -s -C "$ROOT" install PREFIX="$T/sys" LD_SO_CONF="$T/ld.so.conf" LDCONFIG="echo LDCONFIG-RAN" 2>&1) ||
    die "make install (system prefix) failed: $out"
if [ "$(id -u)" = 0 ]; then
    expect_in "system prefix as root: install runs ldconfig" "LDCONFIG-RAN" "$out"
else
    expect_in "system prefix, not root: install prints the command" "sudo ldconfig" "$out"
fi
out=$($MAKE -s -C "$ROOT" install PREFIX="$T/sys" DESTDIR="$T/stage" LD_SO_CONF="$T/ld.so.conf" LDCONFIG="echo LDCONFIG-RAN" 2>&1)
check "DESTDIR install never runs ldconfig" test "${out/LDCONFIG-RAN/}" = "$out"
check "DESTDIR install lands under DESTDIR" test -f "$T/stage$T/sys/lib/$SONAME"

# ---- C: the README's example, built with pkg-config ----
readme_block "$ROOT/README.md" c >"$T/app.c"
check "README.md has a C example" test -s "$T/app.c"
flags=$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs tasker) || die "pkg-config --cflags --libs tasker failed"
expect_eq "pkg-config --modversion is the header's version" \
    "$(sed -n 's/^#define TASKER_VERSION_STRING "libtasker \([0-9.]*\) .*/\1/p' "$ROOT/include/tasker.h")" \
    "$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --modversion tasker)"
# shellcheck disable=SC2086
if (cd "$T" && ${CC:-gcc} -Wall -Wextra -Werror -o app app.c $flags); then
    ok "the C example compiles with pkg-config's flags (-Wall -Wextra -Werror)"
    expect_in "the program records the SONAME (NEEDED)" "NEEDED               $SONAME" "$(objdump -p "$T/app")"
    res=$(cd "$T/elsewhere" && clean_env LD_LIBRARY_PATH="$P/lib" "$T/app" 2>&1)
    expect_in "the C example runs against the installed library" '"status":"completed"' "$res"
    res=$(cd "$T/elsewhere" && clean_env "$T/app" 2>&1)
    expect_in "without the linker path it does not find it (nothing else supplies the library)" \
        "$SONAME: cannot open shared object file" "$res"
else
    bad "the C example compiles with pkg-config's flags"
fi

# ---- ctypes.util.find_library by SONAME ----
res=$(cd "$T/elsewhere" && clean_env LD_LIBRARY_PATH="$P/lib" "$PYTHON" -c 'import ctypes.util; print(ctypes.util.find_library("tasker"))' 2>&1)
expect_eq "ctypes.util.find_library('tasker') finds the SONAME through LD_LIBRARY_PATH" "$SONAME" "$res"

# ---- the bindings outside the checkout, without a bundled library ----
mkdir -p "$T/py" "$T/rb"
cp -r "$ROOT/bindings/python/tasker" "$T/py/"
cp -r "$ROOT/bindings/ruby/lib" "$T/rb/"
rm -f "$T/py/tasker/libtasker.so"* "$T/rb/lib/tasker/libtasker.so"*
readme_block "$ROOT/bindings/python/README.md" python >"$T/elsewhere/example.py"
readme_block "$ROOT/bindings/ruby/README.md" ruby >"$T/elsewhere/example.rb"

res=$(cd "$T/elsewhere" && clean_env LD_LIBRARY_PATH="$P/lib" PYTHONPATH="$T/py" "$PYTHON" example.py 2>&1)
expect_eq "Python: the README example runs with the system library" \
    "$(printf 'resize completed {'"'"'width'"'"': 320} None\nexplode failed None ValueError')" "$res"
res=$(cd "$T/elsewhere" && clean_env LD_LIBRARY_PATH="$P/lib" PYTHONPATH="$T/py" "$PYTHON" -c 'import tasker; tasker.load_library(); print(tasker.library_path())' 2>&1)
expect_eq "Python: loaded by SONAME from the prefix" "$P/lib/$SONAME" "$res"

res=$(cd "$T/elsewhere" && clean_env LD_LIBRARY_PATH="$P/lib" "$RUBY" -I"$T/rb/lib" example.rb 2>&1 | sort)
expect_eq "Ruby: the README example runs with the system library" \
    "$(printf 'boom: failed no\ngreet: completed hello, Ruby')" "$res"
res=$(cd "$T/elsewhere" && clean_env LD_LIBRARY_PATH="$P/lib" "$RUBY" -I"$T/rb/lib" -e 'require "tasker"; Tasker::Channel.new.close; puts Tasker.library_path' 2>&1)
expect_eq "Ruby: loaded by SONAME from the prefix" "$P/lib/$SONAME" "$res"

# ---- not found: the errors name every place looked and the command that fixes it ----
res=$(cd "$T/elsewhere" && clean_env PYTHONPATH="$T/py" "$PYTHON" -c '
import tasker
try:
    tasker.Channel()
except tasker.LibraryError as e:
    print(e)' 2>&1)
expect_in "Python error: names the bundled place" "$T/py/tasker/$SONAME" "$res"
expect_in "Python error: names TASKER_LIBRARY" "TASKER_LIBRARY" "$res"
expect_in "Python error: names the dynamic linker lookup" "$SONAME through the dynamic linker" "$res"
expect_in "Python error: says how to install (pip)" "pip install tasker-" "$res"
expect_in "Python error: says how to install (make install)" "make install" "$res"
res=$(cd "$T/elsewhere" && clean_env "$RUBY" -I"$T/rb/lib" -e '
require "tasker"
begin
  Tasker::Channel.new
rescue Tasker::LibraryError => e
  puts e.message
end' 2>&1)
expect_in "Ruby error: names the bundled place" "$T/rb/lib/tasker/$SONAME" "$res"
expect_in "Ruby error: names TASKER_LIBRARY" "TASKER_LIBRARY" "$res"
expect_in "Ruby error: names the dynamic linker lookup" "$SONAME through the dynamic linker" "$res"
expect_in "Ruby error: says how to install (gem)" "gem install tasker-" "$res"
expect_in "Ruby error: says how to install (make install)" "make install" "$res"

# A library built against a newer glibc than the machine's (simulated: the installed library with
# its GLIBC_2.34 requirement renamed GLIBC_9.34): the error says so and how to build one here.
mkdir -p "$T/future"
"$PYTHON" -c '
import sys
d = open(sys.argv[1], "rb").read()
assert b"GLIBC_2." in d
open(sys.argv[2], "wb").write(d.replace(b"GLIBC_2.", b"GLIBC_9."))' "$P/lib/$SONAME" "$T/future/$SONAME" || bad "cannot make the future-glibc copy"
res=$(cd "$T/elsewhere" && clean_env TASKER_LIBRARY="$T/future/$SONAME" PYTHONPATH="$T/py" "$PYTHON" -c '
import tasker
try:
    tasker.Channel()
except tasker.LibraryError as e:
    print(e)' 2>&1)
expect_in "Python error, glibc too old: says so" "built against a newer glibc" "$res"
expect_in "Python error, glibc too old: says how to build one here" "make install" "$res"
res=$(cd "$T/elsewhere" && clean_env TASKER_LIBRARY="$T/future/$SONAME" "$RUBY" -I"$T/rb/lib" -e '
require "tasker"
begin
  Tasker::Channel.new
rescue Tasker::LibraryError => e
  puts e.message
end' 2>&1)
expect_in "Ruby error, glibc too old: says so" "built against a newer glibc" "$res"
expect_in "Ruby error, glibc too old: says how to build one here" "source gem" "$res"

$MAKE -s -C "$ROOT" uninstall PREFIX="$P" >/dev/null 2>&1
left=$(find "$P" -type f -o -type l)
expect_eq "make uninstall removes every installed file" "" "$left"
finish
