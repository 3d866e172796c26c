#!/bin/sh
# STYLE.md (curl's checksrc idea): these functions have no bounds or no error reporting; use
# snprintf, memcpy/strdup with a length, strtol. Product code only (src, include, fuzz); test
# helpers and benchmarks parse their own trusted arguments. Fails listing every use.
cd "${OKVM_SRC:-.}" || exit 1
hits=$(grep -rnwE 'sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol' \
	--include='*.c' --include='*.h' src include fuzz | grep -vE '^[^:]+:[0-9]+:\s*(/?\*|//)')
if [ -n "$hits" ]; then
	echo "banned functions (STYLE.md):"
	echo "$hits"
	exit 1
fi
echo "no banned functions"
