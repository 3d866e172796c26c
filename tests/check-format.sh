#!/bin/sh
# STYLE.md "Format": the C sources are laid out as .clang-format says (tabs 8 wide, 100 columns,
# return type on its own line). Runs clang-format over src/, include/, fuzz/, tests/unit/,
# tests/recorder/ and tests/fakes/, and
# fails listing every file it would change, with the start of each change; fix one with
# `clang-format -i FILE`. The layout is clang-format 14's (Debian 12): another major version
# formats some constructs differently, so the check is skipped there (set CLANG_FORMAT to a
# clang-format-14 binary to run it anyway).
cd "${OKVM_SRC:-.}" || exit 1
cf="${CLANG_FORMAT:-clang-format}"
if ! command -v "$cf" >/dev/null 2>&1; then
	echo "SKIP: $cf not found (scripts/install-deps --test installs it)"
	exit 77
fi
major=$("$cf" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$major" != 14 ] && [ -z "${CLANG_FORMAT:-}" ]; then
	echo "SKIP: $cf is version $major; the layout is clang-format 14's"
	exit 77
fi

pending=""

tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT
bad=0
checked=0
for f in $(find src include fuzz tests/unit tests/recorder tests/fakes -name '*.[ch]' | LC_ALL=C sort); do
	case "$pending" in *"
$f
"*) continue ;; esac
	checked=$((checked + 1))
	if ! "$cf" --style=file "$f" >"$tmp"; then
		echo "$f: clang-format failed"
		bad=$((bad + 1))
		continue
	fi
	if ! cmp -s "$f" "$tmp"; then
		[ "$bad" -eq 0 ] && echo "not formatted as .clang-format says (clang-format -i FILE):"
		echo "--- $f"
		diff -u "$f" "$tmp" | sed -n '3,14p'
		bad=$((bad + 1))
	fi
done
if [ "$bad" -gt 0 ]; then
	echo "$bad of $checked files differ"
	exit 1
fi
echo "$checked files formatted as .clang-format says"
