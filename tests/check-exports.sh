#!/bin/sh
# STYLE.md (libinput's check): libokvm.so exports exactly the functions of the public headers.
# 1. The names listed in src/lib/libokvm.sym are the okvm_* functions declared in include/okvm/*.h.
# 2. nm -D of the built library shows exactly those (no internal helper leaks out).
# 3. Each public header compiles on its own (it includes what it uses).
# Usage: check-exports.sh LIBOKVM.SO CC; OKVM_SRC is the source tree. Fails listing differences.
set -u
lib=$(realpath "$1") || exit 1
cc="$2"
cd "${OKVM_SRC:-.}" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

cat include/okvm/*.h | tr '\n' ' ' | grep -oE '\bokvm_[a-z0-9_]+ *\(' | sed 's/ *($//' |
	sort -u >"$tmp/declared"
sed -n 's/^[[:space:]]*\(okvm_[a-z0-9_]*\);[[:space:]]*$/\1/p' src/lib/libokvm.sym | sort -u >"$tmp/listed"
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"

if ! diff -u "$tmp/declared" "$tmp/listed" >"$tmp/d1"; then
	echo "libokvm.sym differs from the functions of include/okvm/*.h (- header, + sym):"
	tail -n +3 "$tmp/d1" | grep '^[-+]'
	fail=1
fi
if ! diff -u "$tmp/listed" "$tmp/exported" >"$tmp/d2"; then
	echo "nm -D $lib differs from libokvm.sym (- sym, + exported):"
	tail -n +3 "$tmp/d2" | grep '^[-+]'
	fail=1
fi
for h in include/okvm/*.h; do
	if ! $cc -std=gnu17 -Wall -Wextra -Werror -fsyntax-only -Iinclude -x c "$h" 2>"$tmp/err"; then
		echo "$h does not compile on its own:"
		cat "$tmp/err"
		fail=1
	fi
done
[ "$fail" = 0 ] && echo "$(wc -l <"$tmp/exported") exports match libokvm.sym and the headers; every header compiles alone"
exit "$fail"
