#!/bin/sh
# The docs stand alone (issue 11): everything a reader of the repository is pointed at exists.
#  (a) every "hardware.md N" / "hardware.md N.N" cited anywhere names a section of
#      docs/hardware.md ("## N." or "### N.N"); lists and ranges ("2.10/2.11", "3.1-3.4") too;
#  (b) every repository path that README.md or docs/*.md names in a code span, a code block or a
#      link target (src/, tests/, docs/, dist/, fuzz/, bench/, scripts/, include/, web/) exists:
#      globs must match something, {a,b} braces are expanded; paths right after an upstream
#      source's name (QT, MAC, CORE, HW: docs/hardware.md "Sources") are that project's files;
#  (c) nothing cites the design-time spec that is not in the repository ("spec 2.3",
#      "spec/hardware.md", "hardware.md section 2").
# Fails listing every problem.
cd "${OKVM_SRC:-.}" || exit 1
self=tests/check-docs.sh
hw=docs/hardware.md
fails=$(mktemp)
trap 'rm -f "$fails"' EXIT

# Build outputs that docs name by their path in the build tree (they do not exist in the source).
allowed='
bench/fanout_client
tests/fakes/preload-v4l2.so
'
# bench/fanout_client: executable built from bench/fanout_client.c (bench/meson.build)
# tests/fakes/preload-v4l2.so: LD_PRELOAD module built from tests/fakes/preload-v4l2.c

# Text files of the tree: tracked and new ones, without build directories.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	list() { git ls-files -co --exclude-standard; }
else
	list() { find . -path './build*' -prune -o -type f -print | sed 's|^\./||'; }
fi

[ -f "$hw" ] || { echo "$hw is missing"; exit 1; }
sections=$(sed -nE 's/^## ([0-9]+)\. .*/\1/p; s/^### ([0-9]+\.[0-9]+) .*/\1/p' "$hw")

# (a) citations of docs/hardware.md sections
list | grep -v "^$self\$" | while read -r f; do
	[ -f "$f" ] || continue
	grep -IHnoE 'hardware\.md [0-9]+(\.[0-9]+)?([,/-] ?[0-9]+(\.[0-9]+)?)*' "$f" 2>/dev/null
done | while IFS= read -r hit; do
	where=${hit%%:hardware.md *}
	nums=$(printf '%s\n' "${hit#*:hardware.md }" | tr ',/-' '   ')
	for n in $nums; do
		printf '%s\n' "$sections" | grep -qxF "$n" ||
			echo "$where: cites hardware.md $n, which $hw does not have" >>"$fails"
	done
done

# (c) citations of the spec that lives outside the repository
list | grep -v "^$self\$" | while read -r f; do
	[ -f "$f" ] || continue
	grep -IHnE '(^|[^A-Za-z_])[Ss]pec(/hardware\.md)?( table| section| sections)? [0-9]|spec/[a-z]+\.md|hardware\.md sections? [0-9]|of the spec([^a-z]|$)' \
		"$f" 2>/dev/null
done | sed 's/^/outside spec cited: /' >>"$fails"

# (b) repository paths named by the docs. awk prints "file<TAB>path" for each candidate.
for f in README.md docs/*.md; do
	awk -v file="$f" '
	function paths(text,    s, p) {
		s = text
		while (match(s, /(^|[^A-Za-z0-9_.\/-])(src|tests|docs|dist|fuzz|bench|scripts|include|web)\/[A-Za-z0-9_.\/*{},+-]*/)) {
			p = substr(s, RSTART, RLENGTH)
			s = substr(s, RSTART + RLENGTH)
			sub(/^[^a-z]/, "", p)
			sub(/[.,:;]+$/, "", p)
			print file "\t" p
		}
	}
	function para(text,    s, pre, span, upstream) {
		s = text
		upstream = 0
		while (match(s, /`[^`]+`|\]\([^)]*\)/)) {
			pre = substr(s, 1, RSTART - 1)
			span = substr(s, RSTART, RLENGTH)
			s = substr(s, RSTART + RLENGTH)
			# a file of an upstream project ("QT `a`, `b` and `c`"), not of this one
			if (span ~ /^`/ && (pre ~ /(^|[^A-Za-z])(QT|MAC|CORE|HW) $/ ||
			    (upstream && pre ~ /^(, | and | or )$/))) {
				upstream = 1
				continue
			}
			upstream = 0
			paths(span)
		}
	}
	/^ *```/ { fence = !fence; next }
	fence || /^(    |\t)/ { paths($0); next }
	/^[ \t]*$/ { para(buf); buf = ""; next }
	{ buf = buf " " $0 }
	END { para(buf) }
	' "$f"
done | sort -u | while IFS="$(printf '\t')" read -r f p; do
	if printf '%s\n' "$allowed" | grep -qxF "$p"; then
		continue
	fi
	alts=$p
	case $p in *'{'*'}'*)
		pre=${p%%\{*}; rest=${p#*\{}; mid=${rest%%\}*}; post=${rest#*\}}
		alts=$(printf '%s\n' "$mid" | tr ',' '\n' | sed "s|^|$pre|; s|\$|$post|")
	esac
	for a in $alts; do
		# shellcheck disable=SC2086 # globbing wanted
		set -- $a
		[ -e "$1" ] || echo "$f: names $a, which does not exist" >>"$fails"
	done
done

if [ -s "$fails" ]; then
	echo "docs that point nowhere (tests/check-docs.sh):"
	cat "$fails"
	exit 1
fi
echo "docs: every hardware.md section cited exists, every path named exists, no outside spec cited"
