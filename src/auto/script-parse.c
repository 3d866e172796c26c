/*
 * DESIGN: lexer and parser of the Script Tool language (docs/automation.md). The language is
 * line-based: one statement per line, a name (case-insensitive) then its arguments, comments
 * from ";" at the start of a line or after a blank, and block comments between lines that begin
 * with "/" "*" and end with "*" "/". Send keeps its argument as text (modifier prefixes ^ + ! #,
 * {Key}, {Key down}, {Key N}, backtick escapes); every other statement splits its arguments at
 * commas and blanks into numbers, words and "strings" (`" is a quote inside one).
 *
 * Facts taken from the Qt app (Openterface_QT scripts/: Lexer, Parser, semanticAnalyzer,
 * KeyboardMouse.h, SendKeyMaps.h): the statement names, Click's and MouseMove's coordinates
 * in the chip's absolute units 0..4096 (not pixels), AreaScreenCapture's rectangle in pixels of
 * the captured frame, Scroll's wheel step of 2 per line, the backtick escapes, the lock-state
 * words (1/True/On, 0/False/Off) and Send's quoted form (the first and the last quote of the
 * line delimit it). Where the Qt app silently skips what it does not understand, this parser
 * refuses the whole script with file:line:col, so nothing of a bad script is ever sent.
 *
 * The result is a flat list of actions (script-internal.h); pure computation, any thread.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auto/script-internal.h"
#include "lib/xalloc.h"
#include "okvm/ch9329.h"
#include "okvm/keymap.h"

struct parser {
	const char *ls, *le; /* the current line, without its end */
	int line;
	struct auto_script *s;
	struct auto_script_error *err;
	uint8_t held; /* mouse buttons held down by Click ... Down */
	char vars[AHK_MAX_VARS][AHK_MAX_VAR_NAME + 1]; /* set by a ReadText above */
	int nvars;
};

static bool
var_known(const struct parser *ps, const char *name, size_t len)
{
	for (int i = 0; i < ps->nvars; i++)
		if (strlen(ps->vars[i]) == len && !strncmp(ps->vars[i], name, len))
			return true;
	return false;
}

/* Whether s names a variable as %name% (set by a ReadText above): then it is replaced when the
 * statement runs. Any other %...% stays as it is. */
static bool
has_var_ref(const struct parser *ps, const char *s)
{
	for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%')) {
		const char *e = strchr(p + 1, '%');
		if (!e)
			return false;
		if (var_known(ps, p + 1, (size_t)(e - p - 1)))
			return true;
	}
	return false;
}

enum tok_kind { T_NUM, T_WORD, T_STR };

struct tok {
	enum tok_kind kind;
	const char *at;
	size_t len;
	char *str; /* T_STR: decoded (owned); T_WORD: a copy */
	double num;
	bool is_int;
};

#define MAX_TOKS 16

static int __attribute__((format(printf, 3, 4)))
fail(struct parser *ps, const char *at, const char *fmt, ...)
{
	ps->err->line = ps->line;
	ps->err->col = at ? (int)(at - ps->ls) + 1 : 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static struct ahk_action *
emit(struct parser *ps, enum ahk_op op, const char *at)
{
	struct auto_script *s = ps->s;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 32;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	struct ahk_action *a = &s->v[s->n++];
	memset(a, 0, sizeof(*a));
	a->op = op;
	a->line = ps->line;
	a->col = (int)(at - ps->ls) + 1;
	return a;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- UTF-8 ---- */

/* Decode one code point at p (< end). Returns its length, or 0 for invalid UTF-8. */
static int
utf8_decode(const char *p, const char *end, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t left = (size_t)(end - p);
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	int n = u[0] >= 0xF0 && u[0] <= 0xF4 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC2 ? 2 : 0;
	if (u[0] >= 0xF5)
		n = 0;
	if (!n || left < (size_t)n)
		return 0;
	uint32_t v = u[0] & (0x7F >> n);
	for (int i = 1; i < n; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (u[i] & 0x3F);
	}
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

/* ---- Send ---- */

static void
emit_mods(struct parser *ps, const char *at, uint8_t mods, bool down)
{
	struct ahk_action *a = emit(ps, AHK_MODS, at);
	a->mods = mods;
	a->down = down;
}

static void
emit_key(struct parser *ps, const char *at, const char *code, uint8_t mods, int how)
{
	/* how: 0 press and release, 1 down, 2 up */
	if (mods)
		emit_mods(ps, at, mods, true);
	if (how != 2) {
		struct ahk_action *a = emit(ps, AHK_KEY, at);
		a->code = code;
		a->down = true;
	}
	if (how != 1) {
		struct ahk_action *a = emit(ps, AHK_KEY, at);
		a->code = code;
		a->down = false;
	}
	if (mods)
		emit_mods(ps, at, mods, false);
}

static void
emit_char(struct parser *ps, const char *at, uint32_t cp, uint8_t mods)
{
	struct ahk_action *a = emit(ps, AHK_CHAR, at);
	a->cp = cp;
	a->mods = mods;
}

static uint8_t
prefix_mod(char c)
{
	switch (c) {
	case '^': return OKVM_MOD_LCTRL;
	case '+': return OKVM_MOD_LSHIFT;
	case '!': return OKVM_MOD_LALT;
	case '#': return OKVM_MOD_LGUI;
	default: return 0;
	}
}

static int
parse_int(const char *p, const char *end, long max, long *out)
{
	if (p == end)
		return -1;
	long v = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
		if (v > max)
			return -2;
	}
	*out = v;
	return 0;
}

/* {Click x, y} inside Send: a left click there (the Qt app's embedded click). */
static int
send_click(struct parser *ps, const char *at, const char *p, const char *end)
{
	long xy[2] = { 0, 0 };
	int n = 0;
	while (p < end && n < 2) {
		while (p < end && (is_blank(*p) || *p == ','))
			p++;
		const char *q = p;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q == p)
			break;
		if (parse_int(p, q, AHK_ABS_MAX, &xy[n]))
			return fail(ps, p, "expected a coordinate in 0..%d in {Click x, y}",
				    AHK_ABS_MAX);
		n++;
		p = q;
	}
	while (p < end && is_blank(*p))
		p++;
	if (p != end || n == 1)
		return fail(ps, p, "expected {Click} or {Click x, y} with x, y in 0..%d",
			    AHK_ABS_MAX);
	struct ahk_action *a;
	if (n == 2) {
		a = emit(ps, AHK_MOVE, at);
		a->x = (int)xy[0];
		a->y = (int)xy[1];
		a->buttons = ps->held | OKVM_BTN_LEFT;
	} else {
		a = emit(ps, AHK_BUTTONS, at);
		a->buttons = ps->held | OKVM_BTN_LEFT;
	}
	emit(ps, AHK_BUTTONS, at)->buttons = ps->held;
	return 0;
}

/* One {...} of Send; p points at '{', close at its '}'. */
static int
send_brace(struct parser *ps, const char *p, const char *close, uint8_t mods)
{
	const char *name = p + 1, *ne = name;
	if (close == name + 1 && (*name == '{' || *name == '}'))
		ne = close; /* {{} and {}} */
	else
		while (ne < close && !is_blank(*ne))
			ne++;
	if (ne == name)
		return fail(ps, p, "expected a key name inside {}");
	const char *arg = ne;
	while (arg < close && is_blank(*arg))
		arg++;
	const char *ae = close;
	while (ae > arg && is_blank(ae[-1]))
		ae--;
	if ((size_t)(ne - name) == 5 && !strncasecmp(name, "Click", 5)) {
		if (mods)
			emit_mods(ps, p, mods, true);
		int rc = send_click(ps, p, arg, ae);
		if (!rc && mods)
			emit_mods(ps, p, mods, false);
		return rc;
	}
	struct ahk_key k;
	uint32_t cp;
	int ulen = utf8_decode(name, ne, &cp);
	if (ulen && name + ulen == ne) {
		memset(&k, 0, sizeof(k));
		k.cp = cp; /* {a}, {!}, {{}: the character */
	} else if (ahk_key_lookup(name, (size_t)(ne - name), &k)) {
		return fail(ps, name,
			    "unknown key name '%.*s' (expected a name such as Enter, Tab, Esc, "
			    "F1, Up, PgDn, LCtrl, Numpad0, or a KeyboardEvent.code)",
			    (int)(ne - name), name);
	}
	int how = 0;
	long count = 1;
	if (arg < ae) {
		size_t al = (size_t)(ae - arg);
		if ((al == 4 && !strncasecmp(arg, "down", 4)))
			how = 1;
		else if (al == 2 && !strncasecmp(arg, "up", 2))
			how = 2;
		else {
			int r = parse_int(arg, ae, AHK_MAX_REPEAT, &count);
			if (r)
				return fail(ps, arg,
					    "expected 'down', 'up' or a repeat count (0..%d) after "
					    "the key name",
					    AHK_MAX_REPEAT);
		}
	}
	if (k.wheel) {
		if (how)
			return fail(ps, arg, "expected a count after %.*s, not down/up",
				    (int)(ne - name), name);
		for (long i = 0; i < count; i++)
			emit(ps, AHK_WHEEL, p)->n = k.wheel;
		return 0;
	}
	if (!k.code && how && ulen == 1 && isalnum((unsigned char)*name)) {
		/* {a down}: the key of that letter or digit at its US position */
		char one[2] = { *name, 0 };
		struct okvm_key ok;
		if (!okvm_key_lookup(one, &ok) && ok.kind == OKVM_KEY_KBD)
			k.code = okvm_key_usage_code(ok.usage);
	}
	if (!k.code) {
		if (how)
			return fail(ps, arg, "expected a key, not the character '%.*s', before %s",
				    (int)(ne - name), name, how == 1 ? "down" : "up");
		for (long i = 0; i < count; i++)
			emit_char(ps, p, k.cp, mods);
		return 0;
	}
	if (how) {
		emit_key(ps, p, k.code, mods, how);
		return 0;
	}
	for (long i = 0; i < count; i++)
		emit_key(ps, p, k.code, mods, 0);
	return 0;
}

static int
send_text(struct parser *ps, const char *p, const char *end)
{
	uint8_t mods = 0;
	const char *mod_at = NULL;
	while (p < end) {
		char c = *p;
		if (c == '`' && p + 1 < end) {
			char e = p[1];
			if (e == 'n' || e == 'r') {
				emit_key(ps, p, "Enter", mods, 0);
			} else if (e == 't') {
				emit_key(ps, p, "Tab", mods, 0);
			} else if (e == 's') {
				emit_char(ps, p, ' ', mods);
			} else {
				uint32_t cp;
				int n = utf8_decode(p + 1, end, &cp);
				if (!n)
					return fail(ps, p + 1, "expected UTF-8 text");
				emit_char(ps, p, cp, mods);
				p += n - 1;
			}
			mods = 0;
			p += 2;
			continue;
		}
		uint8_t m = prefix_mod(c);
		if (m) {
			if (!mods)
				mod_at = p;
			mods |= m;
			p++;
			if (p == end)
				return fail(ps, mod_at,
					    "expected a key after the modifier '%c' (send the "
					    "character itself as `%c)",
					    c, c);
			continue;
		}
		if (c == '{') {
			const char *close;
			if (p + 2 < end && p[1] == '}' && p[2] == '}')
				close = p + 2; /* {}} */
			else
				close = memchr(p + 1, '}', (size_t)(end - p - 1));
			if (!close)
				return fail(ps, p,
					    "expected '}' to close the key name (send a brace "
					    "itself as {{} or `{)");
			int rc = send_brace(ps, p, close, mods);
			if (rc)
				return rc;
			mods = 0;
			p = close + 1;
			continue;
		}
		if (c == '}')
			return fail(ps, p, "expected '{' before '}' (send a brace itself as {}})");
		uint32_t cp;
		int n = utf8_decode(p, end, &cp);
		if (!n)
			return fail(ps, p, "expected UTF-8 text");
		if (cp == '\t') {
			emit_key(ps, p, "Tab", mods, 0);
		} else if (cp < 0x20 || cp == 0x7F) {
			return fail(ps, p, "expected text, not control character 0x%02x", cp);
		} else {
			emit_char(ps, p, cp, mods);
		}
		mods = 0;
		p += n;
	}
	return 0;
}

/* Where a comment starts on this line: ";" at p0 or after a blank; end if none. */
static const char *
comment_start(const char *p0, const char *end)
{
	for (const char *p = p0; p < end; p++)
		if (*p == ';' && (p == p0 || is_blank(p[-1])))
			return p;
	return end;
}

static int
st_send(struct parser *ps, const char *name_at, const char *p, const char *end)
{
	if (p < end && *p == '"') {
		/* The Qt form: from the first quote to the last quote of the line. */
		const char *q = end;
		while (q > p + 1 && q[-1] != '"')
			q--;
		if (q == p + 1) /* the only quote is the opening one */
			return fail(ps, p, "expected '\"' to close the string");
		const char *after = q;
		while (after < end && is_blank(*after))
			after++;
		if (after < end && *after != ';')
			return fail(ps, after, "expected the end of the line after the string");
		/* `" inside is a quote, as every backtick escape */
		return send_text(ps, p + 1, q - 1);
	}
	const char *e = comment_start(p, end);
	while (e > p && is_blank(e[-1]))
		e--;
	if (e == p)
		return fail(ps, name_at, "expected the keys to send after Send");
	return send_text(ps, p, e);
}

/* ---- arguments of the other statements ---- */

static void
toks_free(struct tok *t, int n)
{
	for (int i = 0; i < n; i++)
		free(t[i].str);
}

static int
tokenize(struct parser *ps, const char *p, const char *end, struct tok *t, int *nt)
{
	*nt = 0;
	while (p < end) {
		if (is_blank(*p) || *p == ',') {
			p++;
			continue;
		}
		if (*p == ';' && is_blank(p[-1]))
			break; /* a comment */
		if (*nt == MAX_TOKS)
			return fail(ps, p, "expected at most %d arguments", MAX_TOKS);
		struct tok *k = &t[*nt];
		memset(k, 0, sizeof(*k));
		k->at = p;
		if (*p == '"') {
			const char *q = p + 1;
			char *buf = xmalloc((size_t)(end - p) + 1);
			size_t n = 0;
			while (q < end && *q != '"') {
				if (*q == '`' && q + 1 < end) {
					char e = q[1];
					buf[n++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
					q += 2;
				} else {
					buf[n++] = *q++;
				}
			}
			if (q == end) {
				free(buf);
				return fail(ps, p, "expected '\"' to close the string");
			}
			buf[n] = 0;
			k->kind = T_STR;
			k->str = buf;
			k->len = (size_t)(q + 1 - p);
			p = q + 1;
			(*nt)++;
			continue;
		}
		const char *q = p;
		while (q < end && !is_blank(*q) && *q != ',' && *q != '"')
			q++;
		k->len = (size_t)(q - p);
		k->str = xmalloc(k->len + 1);
		memcpy(k->str, p, k->len);
		k->str[k->len] = 0;
		char *ep;
		double v = strtod(k->str, &ep);
		bool numeric = (k->str[0] >= '0' && k->str[0] <= '9') ||
			       ((k->str[0] == '-' || k->str[0] == '.') && k->len > 1);
		if (numeric && !*ep && isfinite(v)) {
			k->kind = T_NUM;
			k->num = v;
			k->is_int = !strpbrk(k->str, ".eExX") && fabs(v) < 1e9;
		} else {
			k->kind = T_WORD;
		}
		p = q;
		(*nt)++;
	}
	return 0;
}

static bool
word_is(const struct tok *t, const char *w)
{
	return t->kind == T_WORD && !strcasecmp(t->str, w);
}

static int
want_int(struct parser *ps, const struct tok *t, long lo, long hi, const char *what, long *out)
{
	if (t->kind != T_NUM || !t->is_int || t->num < (double)lo || t->num > (double)hi)
		return fail(ps, t->at, "expected %s (a whole number, %ld..%ld)", what, lo, hi);
	*out = (long)t->num;
	return 0;
}

static int
want_num(struct parser *ps, const struct tok *t, double lo, double hi, const char *what,
	 double *out)
{
	if (t->kind != T_NUM || t->num < lo || t->num > hi)
		return fail(ps, t->at, "expected %s (a number, %g..%g)", what, lo, hi);
	*out = t->num;
	return 0;
}

/* The argument count: lo..hi, else "expected USAGE" at the first extra one or the name. */
static int
want_count(struct parser *ps, const char *name_at, int nt, int lo, int hi, const char *usage,
	   const struct tok *t)
{
	if (nt >= lo && nt <= hi)
		return 0;
	if (nt > hi)
		return fail(ps, t[hi].at, "expected %s; too many arguments", usage);
	return fail(ps, name_at, "expected %s; too few arguments", usage);
}

static int
want_rect(struct parser *ps, const struct tok *t, struct ahk_action *a)
{
	long v[4] = { 0 };
	static const char *const what[4] = { "x in pixels", "y in pixels", "width in pixels",
					     "height in pixels" };
	for (int i = 0; i < 4; i++)
		if (want_int(ps, &t[i], i < 2 ? 0 : 1, AHK_MAX_PIXELS, what[i], &v[i]))
			return -EINVAL;
	a->has_rect = true;
	a->rx = (int)v[0];
	a->ry = (int)v[1];
	a->rw = (int)v[2];
	a->rh = (int)v[3];
	return 0;
}

static int
want_str(struct parser *ps, const struct tok *t, bool word_ok, const char *what)
{
	if (t->kind == T_STR || (word_ok && t->kind == T_WORD))
		return 0;
	return fail(ps, t->at, "expected %s in double quotes", what);
}

static int
st_sleep(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	long ms = 0;
	if (want_count(ps, name_at, nt, 1, 1, "Sleep MILLISECONDS", t) ||
	    want_int(ps, &t[0], 0, AHK_MAX_SLEEP_MS, "milliseconds", &ms))
		return -EINVAL;
	emit(ps, AHK_SLEEP, name_at)->n = (int)ms;
	return 0;
}

static int
button_of(const struct tok *t, uint8_t *b)
{
	static const struct {
		const char *w;
		uint8_t b;
	} bs[] = {
		{ "Left", OKVM_BTN_LEFT },     { "L", OKVM_BTN_LEFT },
		{ "Right", OKVM_BTN_RIGHT },   { "R", OKVM_BTN_RIGHT },
		{ "Middle", OKVM_BTN_MIDDLE }, { "M", OKVM_BTN_MIDDLE },
		{ "X1", OKVM_BTN_BACK },       { "X2", OKVM_BTN_FORWARD },
	};
	for (size_t i = 0; i < sizeof(bs) / sizeof(bs[0]); i++)
		if (word_is(t, bs[i].w)) {
			*b = bs[i].b;
			return 0;
		}
	return -1;
}

static int
st_click(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	long num[3] = { 0 };
	const struct tok *num_tok[3];
	int nn = 0, how = 0, wheel = 0;
	bool rel = false;
	uint8_t button = OKVM_BTN_LEFT;
	for (int i = 0; i < nt; i++) {
		uint8_t b;
		if (t[i].kind == T_NUM) {
			if (nn == 3)
				return fail(ps, t[i].at, "expected at most x, y and a count");
			if (want_int(ps, &t[i], -AHK_MAX_PIXELS, AHK_MAX_PIXELS, "a coordinate",
				     &num[nn]))
				return -EINVAL;
			num_tok[nn++] = &t[i];
		} else if (!button_of(&t[i], &b)) {
			button = b;
		} else if (word_is(&t[i], "Down") || word_is(&t[i], "D")) {
			how = 1;
		} else if (word_is(&t[i], "Up") || word_is(&t[i], "U")) {
			how = 2;
		} else if (word_is(&t[i], "Rel") || word_is(&t[i], "Relative")) {
			rel = true;
		} else if (word_is(&t[i], "WheelUp") || word_is(&t[i], "WU")) {
			wheel = 1;
		} else if (word_is(&t[i], "WheelDown") || word_is(&t[i], "WD")) {
			wheel = -1;
		} else {
			return fail(ps, t[i].at,
				    "expected x, y, Left, Right, Middle, a count, Down, Up, Rel, "
				    "WheelUp or WheelDown");
		}
	}
	if (nn == 1 && !wheel)
		return fail(ps, num_tok[0]->at, "expected y after x");
	if (wheel) {
		if (nn > 1)
			return fail(ps, num_tok[1]->at, "expected only a count with a wheel");
		long c = 1;
		if (nn == 1 && want_int(ps, num_tok[0], 0, AHK_MAX_REPEAT, "a count", &c))
			return -EINVAL;
		for (long i = 0; i < c; i++)
			emit(ps, AHK_WHEEL, name_at)->n = wheel;
		return 0;
	}
	long count = 1;
	if (nn == 3 && want_int(ps, num_tok[2], 0, AHK_MAX_REPEAT, "a click count", &count))
		return -EINVAL;
	if (nn >= 2 && !rel) {
		for (int i = 0; i < 2; i++)
			if (num[i] < 0 || num[i] > AHK_ABS_MAX)
				return fail(ps, num_tok[i]->at,
					    "expected %s in 0..%d (the Qt app's units: 0 is the "
					    "%s edge, %d the %s); %ld is off the screen",
					    i ? "y" : "x", AHK_ABS_MAX, i ? "top" : "left",
					    AHK_ABS_MAX, i ? "bottom" : "right", num[i]);
	}
	bool moved = false;
	if (nn >= 2 && rel) {
		struct ahk_action *a = emit(ps, AHK_REL, name_at);
		a->x = (int)num[0];
		a->y = (int)num[1];
		a->buttons = ps->held;
		moved = true;
	}
	if (how == 2)
		count = 1;
	for (long i = 0; i < count; i++) {
		uint8_t press = how == 2 ? (uint8_t)(ps->held & ~button) : ps->held | button;
		struct ahk_action *a;
		if (nn >= 2 && !moved) {
			a = emit(ps, AHK_MOVE, name_at);
			a->x = (int)num[0];
			a->y = (int)num[1];
			moved = true;
		} else {
			a = emit(ps, AHK_BUTTONS, name_at);
		}
		a->buttons = press;
		if (how == 1)
			ps->held = press;
		else if (how == 2)
			ps->held = press;
		else
			emit(ps, AHK_BUTTONS, name_at)->buttons = ps->held;
	}
	if (count == 0 && nn >= 2 && !rel) {
		struct ahk_action *a = emit(ps, AHK_MOVE, name_at);
		a->x = (int)num[0];
		a->y = (int)num[1];
		a->buttons = ps->held;
	}
	return 0;
}

static int
st_mousemove(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	if (nt < 2)
		return fail(ps, name_at, "expected MouseMove x, y [, speed] [, R]");
	long xy[2] = { 0, 0 };
	bool rel = nt == 4 ? word_is(&t[3], "R") : nt == 3 && word_is(&t[2], "R");
	for (int i = 0; i < 2; i++) {
		if (want_int(ps, &t[i], rel ? -AHK_MAX_PIXELS : 0,
			     rel ? AHK_MAX_PIXELS : AHK_ABS_MAX,
			     rel ? "a distance in mickeys"
			     : i ? "y in 0..4096 (the Qt app's units; 4096 is the bottom)"
				 : "x in 0..4096 (the Qt app's units; 4096 is the right edge)",
			     &xy[i]))
			return -EINVAL;
	}
	for (int i = 2; i < nt; i++) {
		long speed;
		if (i == 2 && t[i].kind == T_NUM) {
			if (want_int(ps, &t[i], 0, 100, "a speed", &speed))
				return -EINVAL;
		} else if (!word_is(&t[i], "R") || i != nt - 1) {
			return fail(ps, t[i].at, "expected a speed (0..100) or R (relative)");
		}
	}
	struct ahk_action *a = emit(ps, rel ? AHK_REL : AHK_MOVE, name_at);
	a->x = (int)xy[0];
	a->y = (int)xy[1];
	a->buttons = ps->held;
	return 0;
}

static int
st_scroll(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	if (want_count(ps, name_at, nt, 1, 2, "Scroll up|down [, lines]", t))
		return -EINVAL;
	int dir;
	if (word_is(&t[0], "up"))
		dir = 1;
	else if (word_is(&t[0], "down"))
		dir = -1;
	else
		return fail(ps, t[0].at, "expected up or down");
	long lines = 1;
	if (nt == 2 && want_int(ps, &t[1], 1, AHK_MAX_REPEAT, "lines", &lines))
		return -EINVAL;
	for (long i = 0; i < lines; i++)
		emit(ps, AHK_WHEEL, name_at)->n = 2 * dir; /* the Qt app: delta 100 / 50 */
	return 0;
}

static int
st_lock(struct parser *ps, const char *name_at, struct tok *t, int nt, uint8_t led)
{
	if (want_count(ps, name_at, nt, 1, 1, "On, Off or Toggle", t))
		return -EINVAL;
	int how;
	if (word_is(&t[0], "On") || word_is(&t[0], "True") || word_is(&t[0], "AlwaysOn") ||
	    (t[0].kind == T_NUM && t[0].num == 1))
		how = 1;
	else if (word_is(&t[0], "Off") || word_is(&t[0], "False") || word_is(&t[0], "AlwaysOff") ||
		 (t[0].kind == T_NUM && t[0].num == 0))
		how = 0;
	else if (word_is(&t[0], "Toggle"))
		how = 2;
	else
		return fail(ps, t[0].at, "expected On, Off or Toggle");
	struct ahk_action *a = emit(ps, AHK_LOCK, name_at);
	a->n = led;
	a->a = how;
	return 0;
}

static char *
path_of(const struct tok *t)
{
	char *s = xstrdup(t->str);
	for (char *c = s; *c; c++)
		if (*c == '\\')
			*c = '/'; /* the Qt app turns Windows separators into slashes */
	return s;
}

static int
st_capture(struct parser *ps, const char *name_at, struct tok *t, int nt, bool area)
{
	int first = area ? 4 : 0;
	if (want_count(ps, name_at, nt, first, first + 1,
		       area ? "AreaScreenCapture x, y, width, height [\"file\"]"
			    : "FullScreenCapture [\"file\"]",
		       t))
		return -EINVAL;
	struct ahk_action a0 = { 0 };
	if (area && want_rect(ps, t, &a0))
		return -EINVAL;
	if (nt > first && want_str(ps, &t[first], true, "a file name"))
		return -EINVAL;
	struct ahk_action *a = emit(ps, AHK_CAPTURE, name_at);
	a->has_rect = a0.has_rect;
	a->rx = a0.rx;
	a->ry = a0.ry;
	a->rw = a0.rw;
	a->rh = a0.rh;
	a->s = nt > first ? path_of(&t[first]) : NULL;
	ps->s->needs_frames = true;
	return 0;
}

static int
st_wait_text(struct parser *ps, const char *name_at, struct tok *t, int nt, bool assert)
{
	int base = assert ? 1 : 2;
	const char *usage = assert ? "AssertText \"text\" [, x, y, w, h]"
				   : "WaitText \"text\", timeout_s [, x, y, w, h]";
	if (nt != base && nt != base + 4)
		return fail(ps, nt > base ? t[base].at : name_at, "expected %s", usage);
	if (want_str(ps, &t[0], false, "the text"))
		return -EINVAL;
	if (!t[0].str[0])
		return fail(ps, t[0].at, "expected some text between the quotes");
	struct ahk_action a0 = { 0 };
	double timeout = 0;
	if (!assert && want_num(ps, &t[1], 0, AHK_MAX_TIMEOUT_S, "a timeout in seconds", &timeout))
		return -EINVAL;
	if (nt == base + 4 && want_rect(ps, &t[base], &a0))
		return -EINVAL;
	struct ahk_action *a = emit(ps, assert ? AHK_ASSERT_TEXT : AHK_WAIT_TEXT, name_at);
	a->s = xstrdup(t[0].str);
	a->interp = has_var_ref(ps, a->s);
	a->f = timeout;
	a->has_rect = a0.has_rect;
	a->rx = a0.rx;
	a->ry = a0.ry;
	a->rw = a0.rw;
	a->rh = a0.rh;
	ps->s->needs_frames = true;
	return 0;
}

static int
st_wait_screen(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	if (want_count(ps, name_at, nt, 2, 3, "WaitScreen \"needle.png\", timeout_s [, threshold]",
		       t) ||
	    want_str(ps, &t[0], true, "the needle image (a PNG file)"))
		return -EINVAL;
	double timeout = 0, thr = 0.95;
	if (want_num(ps, &t[1], 0, AHK_MAX_TIMEOUT_S, "a timeout in seconds", &timeout) ||
	    (nt == 3 && want_num(ps, &t[2], 0, 1, "a similarity threshold", &thr)))
		return -EINVAL;
	struct ahk_action *a = emit(ps, AHK_WAIT_SCREEN, name_at);
	a->s = path_of(&t[0]);
	a->f = timeout;
	a->g = thr;
	ps->s->needs_frames = true;
	return 0;
}

static int
st_wait_still(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	long ms = 0;
	double timeout = 60;
	if (want_count(ps, name_at, nt, 1, 2, "WaitStill ms [, timeout_s]", t) ||
	    want_int(ps, &t[0], 1, AHK_MAX_SLEEP_MS, "milliseconds of stillness", &ms) ||
	    (nt == 2 &&
	     want_num(ps, &t[1], 0, AHK_MAX_TIMEOUT_S, "a timeout in seconds", &timeout)))
		return -EINVAL;
	struct ahk_action *a = emit(ps, AHK_WAIT_STILL, name_at);
	a->n = (int)ms;
	a->f = timeout;
	ps->s->needs_frames = true;
	return 0;
}

static int
st_type(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	double cps = 0;
	if (want_count(ps, name_at, nt, 1, 2, "Type \"text\" [, chars_per_second]", t) ||
	    want_str(ps, &t[0], false, "the text") ||
	    (nt == 2 && want_num(ps, &t[1], 1, 10000, "characters per second", &cps)))
		return -EINVAL;
	for (const char *c = t[0].str, *e = c + strlen(c); c < e;) {
		uint32_t cp;
		int n = utf8_decode(c, e, &cp);
		if (!n || (cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0x7F)
			return fail(ps, t[0].at + 1 + (c - t[0].str),
				    "expected UTF-8 text without control characters");
		c += n;
	}
	struct ahk_action *a = emit(ps, AHK_TYPE, name_at);
	a->s = xstrdup(t[0].str);
	a->interp = has_var_ref(ps, a->s);
	a->f = cps;
	a->x = (int)(t[0].at - ps->ls) + 2; /* the column of the first character */
	return 0;
}

/* ReadText name [, x, y, w, h]: the text OCR reads there, for %name% in later statements. */
static int
st_read_text(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	if (nt != 1 && nt != 5)
		return fail(ps, nt > 1 ? t[1].at : name_at,
			    "expected ReadText name [, x, y, w, h]");
	if (t[0].kind != T_WORD)
		return fail(ps, t[0].at, "expected a variable name (letters, digits, _)");
	const char *n = t[0].str;
	size_t len = strlen(n);
	bool ok = len >= 1 && len <= AHK_MAX_VAR_NAME && !(n[0] >= '0' && n[0] <= '9');
	for (size_t i = 0; ok && i < len; i++)
		ok = (n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
		     (n[i] >= '0' && n[i] <= '9') || n[i] == '_';
	if (!ok)
		return fail(ps, t[0].at,
			    "expected a variable name (letters, digits, _; at most %d)",
			    AHK_MAX_VAR_NAME);
	struct ahk_action a0 = { 0 };
	if (nt == 5 && want_rect(ps, &t[1], &a0))
		return -EINVAL;
	if (!var_known(ps, n, len)) {
		if (ps->nvars == AHK_MAX_VARS)
			return fail(ps, t[0].at, "more than %d variables", AHK_MAX_VARS);
		snprintf(ps->vars[ps->nvars++], AHK_MAX_VAR_NAME + 1, "%s", n);
	}
	struct ahk_action *a = emit(ps, AHK_READ_TEXT, name_at);
	a->s = xstrdup(n);
	a->has_rect = a0.has_rect;
	a->rx = a0.rx;
	a->ry = a0.ry;
	a->rw = a0.rw;
	a->rh = a0.rh;
	ps->s->needs_frames = true;
	return 0;
}

/* Print "text": a line on the script's standard output, with %name% replaced. */
static int
st_print(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	if (want_count(ps, name_at, nt, 1, 1, "Print \"text\"", t) ||
	    want_str(ps, &t[0], false, "the text"))
		return -EINVAL;
	struct ahk_action *a = emit(ps, AHK_PRINT, name_at);
	a->s = xstrdup(t[0].str);
	a->interp = has_var_ref(ps, a->s);
	return 0;
}

static int
st_switch(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	if (want_count(ps, name_at, nt, 1, 1, "Switch host|target", t))
		return -EINVAL;
	int to;
	if (word_is(&t[0], "target"))
		to = 1;
	else if (word_is(&t[0], "host"))
		to = 0;
	else
		return fail(ps, t[0].at, "expected host or target");
	emit(ps, AHK_SWITCH, name_at)->a = to;
	return 0;
}

static int
st_power(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	static const char *const acts[] = { "on", "off", "force-off", "reset", "cycle" };
	if (want_count(ps, name_at, nt, 1, 1, "Power on|off|force-off|reset|cycle", t))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (word_is(&t[0], acts[i])) {
			emit(ps, AHK_POWER, name_at)->s = xstrdup(acts[i]);
			return 0;
		}
	return fail(ps, t[0].at, "expected on, off, force-off, reset or cycle");
}

/* WaitSerial "text", timeout_s: the text on the target's serial console. */
static int
st_wait_serial(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	double timeout = 0;
	if (want_count(ps, name_at, nt, 2, 2, "WaitSerial \"text\", timeout_s", t) ||
	    want_str(ps, &t[0], false, "the text"))
		return -EINVAL;
	if (!t[0].str[0])
		return fail(ps, t[0].at, "expected some text between the quotes");
	if (want_num(ps, &t[1], 0, AHK_MAX_TIMEOUT_S, "a timeout in seconds", &timeout))
		return -EINVAL;
	struct ahk_action *a = emit(ps, AHK_WAIT_SERIAL, name_at);
	a->s = xstrdup(t[0].str);
	a->f = timeout;
	return 0;
}

/* SendSerial "text": bytes for the target's serial console, with Send's escapes: `n and `r are
 * Enter (a CR, as a terminal sends it), `t a tab, `s a space, `X the character X. The raw
 * token text is read again here, since the tokenizer's `n is a line feed. */
static int
st_send_serial(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	if (want_count(ps, name_at, nt, 1, 1, "SendSerial \"text\"", t) ||
	    want_str(ps, &t[0], false, "the text"))
		return -EINVAL;
	const char *p = t[0].at + 1, *end = t[0].at + t[0].len - 1;
	char *buf = xmalloc((size_t)(end - p) + 1);
	size_t n = 0;
	while (p < end) {
		if (*p == '`' && p + 1 < end) {
			char e = p[1];
			buf[n++] = e == 'n' || e == 'r' ? '\r'
				   : e == 't'           ? '\t'
				   : e == 's'           ? ' '
							: e;
			p += 2;
			continue;
		}
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t') || c == 0x7F) {
			free(buf);
			return fail(ps, p,
				    "expected text, not control character 0x%02x (Enter is `n)", c);
		}
		buf[n++] = *p++;
	}
	buf[n] = 0;
	if (!n) {
		free(buf);
		return fail(ps, t[0].at, "expected some text between the quotes");
	}
	struct ahk_action *a = emit(ps, AHK_SEND_SERIAL, name_at);
	a->s = buf;
	a->n = (int)n;
	return 0;
}

static int
st_key_delay(struct parser *ps, const char *name_at, struct tok *t, int nt)
{
	long ms = 0;
	if (want_count(ps, name_at, nt, 1, 2, "SetKeyDelay ms [, press_ms]", t) ||
	    want_int(ps, &t[0], -1, 10000, "milliseconds", &ms))
		return -EINVAL;
	if (nt == 2) {
		long press = 0;
		if (want_int(ps, &t[1], -1, 10000, "milliseconds", &press))
			return -EINVAL;
	}
	emit(ps, AHK_KEY_DELAY, name_at)->n = ms < 0 ? 0 : (int)ms;
	return 0;
}

/* ---- statements ---- */

/* What the Qt app's lexer knows as commands but does nothing with. */
static const char *const qt_ignored[] = {
	"BlockInput",
	"ControlClick",
	"ControlSend",
	"GetKeyName",
	"GetKeySC",
	"GetKeyState",
	"GetKeyVK",
	"KeyHistory",
	"KeyWait",
	"Input",
	"InputHook",
	"MouseClick",
	"MouseClickDrag",
	"MouseGetPos",
	"SendLevel",
	"SendMode",
	"CoordMode",
	"SetDefaultMouseSpeed",
	"SetStoreCapsLockMode",
};
static const char *const qt_keywords[] = {
	"If",      "Else",  "Loop",   "While", "For",      "Try",   "Catch",
	"Finally", "Throw", "Return", "Goto",  "Continue", "Until", "Break",
};

static int
statement(struct parser *ps, const char *p, const char *end)
{
	const char *name_at = p;
	while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			   (*p >= '0' && *p <= '9' && p > name_at) || *p == '_'))
		p++;
	size_t nl = (size_t)(p - name_at);
	if (!nl || (p < end && !is_blank(*p) && *p != ','))
		return fail(ps, name_at,
			    "expected a statement (Send, Click, MouseMove, Scroll, Sleep, "
			    "SetCapsLockState, FullScreenCapture, WaitText ...)");
	char name[40];
	snprintf(name, sizeof(name), "%.*s", (int)(nl < 39 ? nl : 39), name_at);
	while (p < end && is_blank(*p))
		p++;
	if (p < end && *p == ',') /* AutoHotkey's "Send, keys" */
		p++;
	while (p < end && is_blank(*p))
		p++;
	if (!strcasecmp(name, "Send") || !strcasecmp(name, "SendInput") ||
	    !strcasecmp(name, "SendEvent") || !strcasecmp(name, "SendPlay")) {
		int rc = st_send(ps, name_at, p, end);
		if (!rc)
			emit(ps, AHK_SYNC, name_at);
		return rc;
	}
	struct tok t[MAX_TOKS];
	int nt;
	int rc = tokenize(ps, p, end, t, &nt);
	if (rc) {
		toks_free(t, nt);
		return rc;
	}
	static const struct {
		const char *name;
		int kind;
	} table[] = {
		{ "Sleep", 1 },
		{ "Click", 2 },
		{ "MouseMove", 3 },
		{ "Scroll", 4 },
		{ "SetCapsLockState", 5 },
		{ "SetNumLockState", 6 },
		{ "SetScrollLockState", 7 },
		{ "FullScreenCapture", 8 },
		{ "AreaScreenCapture", 9 },
		{ "WaitText", 10 },
		{ "AssertText", 11 },
		{ "WaitScreen", 12 },
		{ "WaitStill", 13 },
		{ "Type", 14 },
		{ "Switch", 15 },
		{ "Power", 16 },
		{ "SetKeyDelay", 17 },
		{ "ReadText", 18 },
		{ "Print", 19 },
		{ "WaitSerial", 20 },
		{ "SendSerial", 21 },
	};
	int kind = 0;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcasecmp(name, table[i].name))
			kind = table[i].kind;
	switch (kind) {
	case 1: rc = st_sleep(ps, name_at, t, nt); break;
	case 2: rc = st_click(ps, name_at, t, nt); break;
	case 3: rc = st_mousemove(ps, name_at, t, nt); break;
	case 4: rc = st_scroll(ps, name_at, t, nt); break;
	case 5: rc = st_lock(ps, name_at, t, nt, OKVM_LED_CAPS); break;
	case 6: rc = st_lock(ps, name_at, t, nt, OKVM_LED_NUM); break;
	case 7: rc = st_lock(ps, name_at, t, nt, OKVM_LED_SCROLL); break;
	case 8: rc = st_capture(ps, name_at, t, nt, false); break;
	case 9: rc = st_capture(ps, name_at, t, nt, true); break;
	case 10: rc = st_wait_text(ps, name_at, t, nt, false); break;
	case 11: rc = st_wait_text(ps, name_at, t, nt, true); break;
	case 12: rc = st_wait_screen(ps, name_at, t, nt); break;
	case 13: rc = st_wait_still(ps, name_at, t, nt); break;
	case 14: rc = st_type(ps, name_at, t, nt); break;
	case 15: rc = st_switch(ps, name_at, t, nt); break;
	case 16: rc = st_power(ps, name_at, t, nt); break;
	case 17: rc = st_key_delay(ps, name_at, t, nt); break;
	case 18: rc = st_read_text(ps, name_at, t, nt); break;
	case 19: rc = st_print(ps, name_at, t, nt); break;
	case 20: rc = st_wait_serial(ps, name_at, t, nt); break;
	case 21: rc = st_send_serial(ps, name_at, t, nt); break;
	default: {
		bool ignored = false, keyword = false;
		for (size_t i = 0; i < sizeof(qt_ignored) / sizeof(qt_ignored[0]); i++)
			ignored |= !strcasecmp(name, qt_ignored[i]);
		for (size_t i = 0; i < sizeof(qt_keywords) / sizeof(qt_keywords[0]); i++)
			keyword |= !strcasecmp(name, qt_keywords[i]);
		if (ignored)
			rc = fail(ps, name_at,
				  "%s is not supported (the Qt app ignores it too); expected Send, "
				  "Click, MouseMove, Scroll, Sleep ...",
				  name);
		else if (keyword)
			rc = fail(ps, name_at,
				  "%s: the Script Tool language has no control flow; expected a "
				  "statement such as Send or Click",
				  name);
		else
			rc = fail(
				ps, name_at,
				"unknown statement '%s' (expected Send, Click, MouseMove, Scroll, "
				"Sleep, SetCapsLockState, SetNumLockState, SetScrollLockState, "
				"FullScreenCapture, AreaScreenCapture, WaitText, WaitScreen, "
				"WaitStill, AssertText, Type, Switch, Power, ReadText, Print, "
				"WaitSerial or SendSerial)",
				name);
	}
	}
	toks_free(t, nt);
	if (!rc && kind != 1 && kind != 17)
		emit(ps, AHK_SYNC, name_at);
	return rc;
}

void
auto_script_free(struct auto_script *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].s);
	free(s->v);
	free(s);
}

size_t
auto_script_count(const struct auto_script *s)
{
	return s ? s->statements : 0;
}

bool
auto_script_needs_serial(const struct auto_script *s)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].op == AHK_WAIT_SERIAL || s->v[i].op == AHK_SEND_SERIAL)
			return true;
	return false;
}

bool
auto_script_needs_video(const struct auto_script *s)
{
	return s && s->needs_frames;
}

int
auto_script_parse(const char *text, size_t len, struct auto_script **out,
		  struct auto_script_error *err)
{
	struct auto_script_error scratch;
	if (!err)
		err = &scratch;
	memset(err, 0, sizeof(*err));
	*out = NULL;
	struct parser ps = { .err = err, .s = xcalloc(1, sizeof(struct auto_script)) };
	const char *p = text, *end = text + len;
	int rc = 0;
	int block_line = 0;
	const char *block_at = NULL;
	if (len > AHK_MAX_BYTES) {
		ps.line = 1;
		ps.ls = text;
		rc = fail(&ps, text, "expected a script of at most %u MiB", AHK_MAX_BYTES >> 20);
	}
	/* a UTF-8 byte order mark, as Windows editors write */
	if (!rc && len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	while (!rc && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		ps.line++;
		ps.ls = p;
		ps.le = le > p && le[-1] == '\r' ? le - 1 : le;
		const char *q = p;
		while (q < ps.le && is_blank(*q))
			q++;
		const char *te = ps.le;
		while (te > q && is_blank(te[-1]))
			te--;
		if (memchr(q, '\0', (size_t)(ps.le - q))) {
			rc = fail(&ps, memchr(q, '\0', (size_t)(ps.le - q)),
				  "expected text, not a NUL byte");
		} else if (block_at) {
			if ((te - q >= 2 && !memcmp(q, "*/", 2)) ||
			    (te - q >= 2 && !memcmp(te - 2, "*/", 2)))
				block_at = NULL;
		} else if (te - q >= 2 && !memcmp(q, "/*", 2)) {
			if (!(te - q >= 4 && !memcmp(te - 2, "*/", 2))) {
				block_at = q;
				block_line = ps.line;
			}
		} else if (q < te && *q != ';') {
			size_t before = ps.s->n;
			rc = statement(&ps, q, ps.le);
			if (!rc && ps.s->n >= before)
				ps.s->statements++;
		}
		p = nl ? nl + 1 : end;
	}
	if (!rc && block_at) {
		err->line = block_line;
		err->col = 1;
		snprintf(err->msg, sizeof(err->msg), "expected */ to close this comment");
		rc = -EINVAL;
	}
	if (rc) {
		auto_script_free(ps.s);
		return rc;
	}
	*out = ps.s;
	return 0;
}
