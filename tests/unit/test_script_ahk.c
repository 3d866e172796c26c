/* The Script Tool language (src/auto/script-parse.c, script-keys.c, script-run.c): what each
 * statement plans (the dry-run listing), where a bad script is refused (line:col and what was
 * expected), and what the runner calls on a recording backend: modifiers as their own key
 * events, Qt units 0..4096 as exact fractions, the LEDs read before a lock key, release_all
 * on every exit, cancelling a Sleep. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auto/script.h"
#include "okvm/ch9329.h"
#include "serve/backend.h"

/* ---- helpers ---- */

static char *
plan(const char *text)
{
	struct auto_script *s;
	struct auto_script_error err;
	int rc = auto_script_parse(text, strlen(text), &s, &err);
	if (rc) {
		fail_msg("parse: %d:%d: %s", err.line, err.col, err.msg);
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct auto_script_env env = { .dry_run = true, .log = out };
	rc = auto_script_run(s, &env, &err);
	fclose(out);
	assert_int_equal(rc, 0);
	auto_script_free(s);
	return buf;
}

static void
assert_plan(const char *text, const char *want)
{
	char *got = plan(text);
	assert_string_equal(got, want);
	free(got);
}

static void
assert_error(const char *text, int line, int col, const char *part)
{
	struct auto_script *s = (struct auto_script *)1;
	struct auto_script_error err;
	int rc = auto_script_parse(text, strlen(text), &s, &err);
	assert_int_equal(rc, -EINVAL);
	assert_null(s);
	if (err.line != line || err.col != col || !strstr(err.msg, part))
		fail_msg("%s: got %d:%d: %s; want %d:%d: ...%s...", text, err.line, err.col,
			 err.msg, line, col, part);
}

/* ---- the parser ---- */

static void
test_send_modifiers_and_braces(void **state)
{
	(void)state;
	assert_plan("Send ^+s\n", "1:8: char 's' with ControlLeft ShiftLeft\n");
	assert_plan("Send !{F4}\n", "1:7: modifiers AltLeft down\n1:7: key F4 down\n"
				    "1:7: key F4 up\n1:7: modifiers AltLeft up\n");
	assert_plan("Send {Shift down}{a up}{Tab 2}\n",
		    "1:6: key ShiftLeft down\n1:18: key KeyA up\n1:24: key Tab down\n"
		    "1:24: key Tab up\n1:24: key Tab down\n1:24: key Tab up\n");
	assert_plan("Send {{}{}}{!}{Exclam}\n",
		    "1:6: char '{'\n1:9: char '}'\n1:12: char '!'\n1:15: char '!'\n");
	assert_plan("Send {WheelDown 2}{Click 10, 20}\n",
		    "1:6: wheel -1\n1:6: wheel -1\n1:19: mouse to 10,20 of 4096 buttons 1\n"
		    "1:19: buttons 0\n");
	/* key names are case-insensitive, AHK's and the Qt app's */
	assert_plan("send {pgdn}{ENTER}{win}\n",
		    "1:6: key PageDown down\n1:6: key PageDown up\n1:12: key Enter down\n"
		    "1:12: key Enter up\n1:19: key MetaLeft down\n1:19: key MetaLeft up\n");
}

static void
test_send_escapes_quotes_comments(void **state)
{
	(void)state;
	assert_plan("Send `^`!`n`t``\n", "1:6: char '^'\n1:8: char '!'\n1:10: key Enter down\n"
					 "1:10: key Enter up\n1:12: key Tab down\n"
					 "1:12: key Tab up\n1:14: char '`'\n");
	/* Qt's quoted form: first and last quote; `" is a quote inside; a comment after */
	assert_plan("Send \"a\"b`\"\"   ; done\n",
		    "1:7: char 'a'\n1:8: char '\"'\n1:9: char 'b'\n1:10: char '\"'\n");
	/* ";" starts a comment only at the start or after a blank */
	assert_plan("Send a;b ;c\n", "1:6: char 'a'\n1:7: char ';'\n1:8: char 'b'\n");
	assert_plan("; a comment\n/* a block\nSend x\n*/\n   \nSleep 1\n", "6:1: sleep 1 ms\n");
	/* AutoHotkey's "Send, keys" and a Windows editor's BOM and CRLF */
	assert_plan("\xEF\xBB\xBFSend, x\r\n", "1:7: char 'x'\n");
}

static void
test_mouse_statements(void **state)
{
	(void)state;
	assert_plan("Click 100,200, Right, 2\n",
		    "1:1: mouse to 100,200 of 4096 buttons 2\n1:1: buttons 0\n1:1: buttons 2\n"
		    "1:1: buttons 0\n");
	assert_plan("Click\n", "1:1: buttons 1\n1:1: buttons 0\n");
	assert_plan("Click 5 6 Down\nMouseMove 7, 8\nClick Up\n",
		    "1:1: mouse to 5,6 of 4096 buttons 1\n2:1: mouse to 7,8 of 4096 buttons 1\n"
		    "3:1: buttons 0\n");
	assert_plan("MouseMove -5, 10, 0, R\n", "1:1: mouse by -5,10 buttons 0\n");
	assert_plan("Scroll up\nScroll down, 2\n", "1:1: wheel +2\n2:1: wheel -2\n2:1: wheel -2\n");
	assert_plan("Click 0, 0, 0\n", "1:1: mouse to 0,0 of 4096 buttons 0\n");
}

static void
test_other_statements(void **state)
{
	(void)state;
	assert_plan("SetCapsLockState On\nSetNumLockState Toggle\nSetScrollLockState 0\n",
		    "1:1: CapsLock on\n2:1: NumLock toggle\n3:1: ScrollLock off\n");
	assert_plan(
		"FullScreenCapture \"C:\\shots\\a.png\"\nAreaScreenCapture 10, 20, 640, 480 "
		"\"/tmp/area.png\"\n",
		"1:1: capture to C:/shots/a.png\n2:1: capture in 10,20 640x480 to /tmp/area.png\n");
	assert_plan("WaitText \"login:\", 60, 0, 0, 400, 100\nAssertText \"ok\"\n",
		    "1:1: wait up to 60 s for text \"login:\" in 0,0 400x100\n"
		    "2:1: assert text \"ok\"\n");
	assert_plan("WaitScreen needle.png, 5\nWaitStill 500\n",
		    "1:1: wait up to 5 s for image needle.png (similarity 0.95)\n"
		    "2:1: wait up to 60 s for 500 ms without change\n");
	assert_plan("Type \"a`nb\", 50\nSwitch target\nPower cycle\nSetKeyDelay 5\n",
		    "1:1: type \"a\nb\"\n2:1: USB switch to target\n3:1: power cycle\n"
		    "4:1: key delay 5 ms\n");
}

static void
test_errors(void **state)
{
	(void)state;
	assert_error("Sleep 1\nFrobnicate\n", 2, 1, "unknown statement 'Frobnicate'");
	assert_error("  Sleep\n", 1, 3, "expected Sleep MILLISECONDS");
	assert_error("Sleep 1, 2\n", 1, 10, "too many arguments");
	assert_error("Sleep -1\n", 1, 7, "expected milliseconds");
	assert_error("Send \"abc\n", 1, 6, "expected '\"' to close the string");
	assert_error("Send {Enter\n", 1, 6, "expected '}' to close the key name");
	assert_error("Send a}\n", 1, 7, "expected '{' before '}'");
	assert_error("Send {Entr}\n", 1, 7, "unknown key name 'Entr'");
	assert_error("Send {Enter sideways}\n", 1, 13, "expected 'down', 'up' or a repeat");
	assert_error("Send {Tab 10001}\n", 1, 11, "repeat count");
	assert_error("Send x^\n", 1, 7, "expected a key after the modifier '^'");
	assert_error("Send\n", 1, 1, "expected the keys to send");
	assert_error("Send \xff\n", 1, 6, "expected UTF-8");
	assert_error("Click 4097, 0\n", 1, 7, "expected x in 0..4096");
	assert_error("Click 0, -1\n", 1, 10, "expected y in 0..4096");
	assert_error("MouseMove 1\n", 1, 1, "expected MouseMove x, y");
	assert_error("Click 1 2 3 4\n", 1, 13, "at most x, y and a count");
	assert_error("AreaScreenCapture 1, 2, 0, 4\n", 1, 25, "width in pixels");
	assert_error("WaitText \"\", 5\n", 1, 10, "expected some text");
	assert_error("WaitText login, 5\n", 1, 10, "in double quotes");
	assert_error("WaitScreen \"n.png\", 5, 2\n", 1, 24, "similarity threshold");
	assert_error("Switch sideways\n", 1, 8, "expected host or target");
	assert_error("Power up\n", 1, 7, "expected on, off");
	assert_error("If x\n", 1, 1, "no control flow");
	assert_error("KeyWait a\n", 1, 1, "not supported");
	assert_error("^j::\n", 1, 1, "expected a statement");
	assert_error("Sleep 1\n/* open\n", 2, 1, "expected */");
	assert_error("Type \"a\x01\"\n", 1, 8, "without control characters");
}

static void
test_check_layout_and_power(void **state)
{
	(void)state;
	struct auto_script *s;
	struct auto_script_error err;
	const char *text = "Send ab\nType \"xü€\"\n";
	assert_int_equal(auto_script_parse(text, strlen(text), &s, &err), 0);
	assert_int_equal(auto_script_count(s), 2);
	assert_int_equal(auto_script_check(s, "us", false, &err), -EINVAL);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 8); /* the ü */
	assert_non_null(strstr(err.msg, "U+00FC"));
	assert_int_equal(auto_script_check(s, "de", false, &err), 0);
	auto_script_free(s);
	text = "Send a\nPower on\n";
	assert_int_equal(auto_script_parse(text, strlen(text), &s, &err), 0);
	assert_int_equal(auto_script_check(s, NULL, false, &err), -EOPNOTSUPP);
	assert_int_equal(err.line, 2);
	assert_int_equal(auto_script_check(s, NULL, true, &err), 0);
	assert_false(auto_script_needs_video(s));
	auto_script_free(s);
}

/* ---- the runner, on a recording backend ---- */

struct rec {
	char log[4096];
	uint8_t leds;
	int release_all;
	atomic_bool *cancel_on_key; /* set on the first key event */
};

static void
rec_add(struct rec *r, const char *fmt, ...)
{
	size_t n = strlen(r->log);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->log + n, sizeof(r->log) - n, fmt, ap);
	va_end(ap);
}

static int
rec_key(void *ud, const char *code, bool down)
{
	struct rec *r = ud;
	rec_add(r, "%s%c ", code, down ? '+' : '-');
	if (!strcmp(code, "CapsLock") && down)
		r->leds ^= OKVM_LED_CAPS; /* the target's LED, read back at once */
	if (r->cancel_on_key)
		atomic_store(r->cancel_on_key, true);
	return 0;
}

static int
rec_abs(void *ud, double x, double y, uint8_t buttons)
{
	/* the backend's own conversion: lround(f * 4096) */
	rec_add(ud, "abs(%ld,%ld,%u) ", lround(x * OKVM_CH9329_ABS_MAX),
		lround(y * OKVM_CH9329_ABS_MAX), buttons);
	return 0;
}

static int
rec_buttons(void *ud, uint8_t buttons)
{
	rec_add(ud, "btn(%u) ", buttons);
	return 0;
}

static int
rec_wheel(void *ud, int dy, int dx)
{
	rec_add(ud, "wheel(%d,%d) ", dy, dx);
	return 0;
}

static int
rec_rel(void *ud, int dx, int dy, uint8_t buttons)
{
	rec_add(ud, "rel(%d,%d,%u) ", dx, dy, buttons);
	return 0;
}

static int
rec_type(void *ud, const char *text, size_t len, const char *layout, double cps,
	 serve_type_progress_fn fn, void *fn_ud)
{
	rec_add(ud, "type(%.*s,%s,%g) ", (int)len, text, layout, cps);
	fn(len, len, 0, fn_ud);
	return 0;
}

static int
rec_release_all(void *ud)
{
	struct rec *r = ud;
	r->release_all++;
	rec_add(r, "release ");
	return 0;
}

static int
rec_switch(void *ud, enum okvm_usb_dir to)
{
	(void)ud;
	(void)to;
	return -EOPNOTSUPP;
}

static void
rec_state(void *ud, struct serve_state *out)
{
	struct rec *r = ud;
	out->leds = r->leds;
}

static struct okvm_frame *
rec_frame(void *ud)
{
	(void)ud;
	return NULL;
}

static void
rec_unref(void *ud, struct okvm_frame *f)
{
	(void)ud;
	(void)f;
}

static void
rec_want(void *ud, bool want)
{
	rec_add(ud, "want(%d) ", want);
}

static const struct serve_backend_ops rec_ops = {
	.key = rec_key,
	.mouse_abs = rec_abs,
	.buttons = rec_buttons,
	.wheel = rec_wheel,
	.rel = rec_rel,
	.type = rec_type,
	.release_all = rec_release_all,
	.usb_switch = rec_switch,
	.get_state = rec_state,
	.newest_frame = rec_frame,
	.frame_unref = rec_unref,
	.want_frames = rec_want,
};

static int
run_on(struct rec *r, const char *text, const atomic_bool *cancel, struct auto_script_error *err)
{
	struct auto_script *s;
	assert_int_equal(auto_script_parse(text, strlen(text), &s, err), 0);
	struct serve_backend b = { .ops = &rec_ops, .ud = r };
	struct auto_script_env env = { .b = &b, .layout = "us", .cancel = cancel };
	int rc = auto_script_run(s, &env, err);
	auto_script_free(s);
	return rc;
}

static void
test_run_keys_and_mouse(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct auto_script_error err;
	assert_int_equal(run_on(&r,
				"Send ^c A\nClick 4096, 1\nScroll up\nMouseMove 3,4,0,R\n"
				"Type \"hi\", 20\n",
				NULL, &err),
			 0);
	assert_string_equal(r.log, "ControlLeft+ KeyC+ KeyC- ControlLeft- Space+ Space- ShiftLeft+ "
				   "KeyA+ KeyA- ShiftLeft- abs(4096,1,1) btn(0) wheel(-2,0) "
				   "rel(3,4,0) type(hi,us,20) release ");
}

static void
test_run_lock_state_reads_leds(void **state)
{
	(void)state;
	struct rec r = { .leds = OKVM_LED_CAPS };
	struct auto_script_error err;
	/* Caps Lock already on: On sends nothing; Off and Toggle press it */
	assert_int_equal(run_on(&r,
				"SetCapsLockState On\nSetCapsLockState Off\n"
				"SetCapsLockState Toggle\nSend a\n",
				NULL, &err),
			 0);
	/* with Caps Lock on, the layout engine types "a" with Shift */
	assert_string_equal(r.log, "CapsLock+ CapsLock- CapsLock+ CapsLock- ShiftLeft+ KeyA+ KeyA- "
				   "ShiftLeft- release ");
}

static void
test_run_failure_and_cancel_release(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct auto_script_error err;
	/* a statement the unit cannot do stops the script at its line; all is released */
	assert_int_equal(run_on(&r, "Send {Shift down}\nSwitch target\nSend never\n", NULL, &err),
			 -EOPNOTSUPP);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "no switchable USB port"));
	assert_string_equal(r.log, "ShiftLeft+ release ");
	/* cancelled during a long Sleep: returns soon, releases */
	struct rec r2 = { 0 };
	atomic_bool cancel = false;
	r2.cancel_on_key = &cancel;
	assert_int_equal(run_on(&r2, "Send {a down}\nSleep 600000\nSend never\n", &cancel, &err),
			 -ECANCELED);
	assert_string_equal(r2.log, "KeyA+ release ");
	assert_int_equal(r2.release_all, 1);
}

static void
test_run_capture_without_frames(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct auto_script_error err;
	/* no frame ever comes: a clear error after the wait, frames wanted and unwanted */
	assert_int_equal(run_on(&r, "FullScreenCapture \"/nonexistent/x.jpg\"\n", NULL, &err),
			 -ENODATA);
	assert_int_equal(err.line, 1);
	assert_non_null(strstr(err.msg, "no frame"));
	assert_string_equal(r.log, "want(1) release want(0) ");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_modifiers_and_braces),
		cmocka_unit_test(test_send_escapes_quotes_comments),
		cmocka_unit_test(test_mouse_statements),
		cmocka_unit_test(test_other_statements),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_check_layout_and_power),
		cmocka_unit_test(test_run_keys_and_mouse),
		cmocka_unit_test(test_run_lock_state_reads_leds),
		cmocka_unit_test(test_run_failure_and_cancel_release),
		cmocka_unit_test(test_run_capture_without_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
