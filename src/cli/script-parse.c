/*
 * DESIGN: the tokenizer of `okvm script`. Pure: a line in, an argv out, nothing else; no
 * variables, no expansion, no command substitution: a script line means exactly what it says.
 * Fuzzed by fuzz/fuzz_script.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/script-parse.h"
#include "lib/xalloc.h"

static char
unescape_dq(char c)
{
	switch (c) {
	case 'n': return '\n';
	case 't': return '\t';
	default: return c; /* \" \\ and anything else: the character itself */
	}
}

struct splitter {
	const char *p, *end;
	char *w; /* write position in the output buffer */
	bool in_word;
	struct script_line *out;
};

static int
begin_word(struct splitter *s)
{
	if (s->in_word)
		return 0;
	if (s->out->argc == SCRIPT_MAX_ARGS)
		return -E2BIG;
	s->out->argv[s->out->argc++] = s->w;
	s->in_word = true;
	return 0;
}

static void
end_word(struct splitter *s)
{
	if (s->in_word)
		*s->w++ = '\0';
	s->in_word = false;
}

/* One quoted section; s->p is past the opening quote. */
static int
quoted(struct splitter *s, char q)
{
	while (s->p < s->end && *s->p != q) {
		if (q == '"' && *s->p == '\\' && s->p + 1 < s->end) {
			s->p++;
			*s->w++ = unescape_dq(*s->p++);
		} else {
			*s->w++ = *s->p++;
		}
	}
	if (s->p == s->end)
		return -EINVAL;
	s->p++;
	return 0;
}

static int
split(struct splitter *s, const char **why)
{
	while (s->p < s->end) {
		char c = *s->p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			end_word(s);
			s->p++;
			continue;
		}
		if (c == '#' && !s->in_word)
			break;
		if (begin_word(s) < 0)
			return *why = "more than 256 arguments", -EINVAL;
		s->p++;
		if (c == '"' || c == '\'') {
			if (quoted(s, c) < 0)
				return *why = "unterminated quote", -EINVAL;
		} else if (c == '\\') {
			if (s->p == s->end)
				return *why = "backslash at the end of the line", -EINVAL;
			*s->w++ = *s->p++;
		} else {
			*s->w++ = c;
		}
	}
	end_word(s);
	return 0;
}

int
script_split(const char *line, size_t len, struct script_line *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (len > SCRIPT_MAX_LINE) {
		*why = "line longer than 64 KiB";
		return -EINVAL;
	}
	out->buf = xmalloc(len + 1); /* output never exceeds input + one NUL per word */
	struct splitter s = { .p = line, .end = line + len, .w = out->buf, .out = out };
	int rc = split(&s, why);
	if (rc < 0) {
		script_line_free(out);
		return rc;
	}
	out->argv[out->argc] = NULL;
	return 0;
}

void
script_line_free(struct script_line *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}
