/*
 * DESIGN: the key names of Send's {Name}: AutoHotkey's names (Enter, Esc, PgUp, LCtrl, F1-F24,
 * Numpad0, Volume_Up ...) and the Qt Script Tool's own (Win, Minus, BracketLeft, Exclam ...),
 * looked up case-insensitively, then any browser KeyboardEvent.code ("KeyA", "IntlBackslash").
 * A key resolves to the browser code the serve backend's key operation takes; a name that
 * stands for a character (Exclam, Colon, Less) resolves to that character, which the target's
 * layout then types, so {Exclam} gives "!" on any layout. Pure tables; any thread.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "auto/script-internal.h"
#include "okvm/ch9329.h"
#include "okvm/keymap.h"

struct name_def {
	const char *name;
	const char *code; /* NULL: cp or wheel */
	uint32_t cp;
	int wheel;
	uint8_t mod_bit;
};

/* clang-format off */
static const struct name_def names[] = {
	{ "Enter", "Enter", 0, 0, 0 }, { "Return", "Enter", 0, 0, 0 },
	{ "Escape", "Escape", 0, 0, 0 }, { "Esc", "Escape", 0, 0, 0 },
	{ "Space", "Space", 0, 0, 0 }, { "Tab", "Tab", 0, 0, 0 },
	{ "Backspace", "Backspace", 0, 0, 0 }, { "BS", "Backspace", 0, 0, 0 },
	{ "Delete", "Delete", 0, 0, 0 }, { "Del", "Delete", 0, 0, 0 },
	{ "Insert", "Insert", 0, 0, 0 }, { "Ins", "Insert", 0, 0, 0 },
	{ "Up", "ArrowUp", 0, 0, 0 }, { "Down", "ArrowDown", 0, 0, 0 },
	{ "Left", "ArrowLeft", 0, 0, 0 }, { "Right", "ArrowRight", 0, 0, 0 },
	{ "Home", "Home", 0, 0, 0 }, { "End", "End", 0, 0, 0 },
	{ "PgUp", "PageUp", 0, 0, 0 }, { "PgDn", "PageDown", 0, 0, 0 },
	{ "PageUp", "PageUp", 0, 0, 0 }, { "PageDown", "PageDown", 0, 0, 0 },
	{ "CapsLock", "CapsLock", 0, 0, 0 }, { "ScrollLock", "ScrollLock", 0, 0, 0 },
	{ "NumLock", "NumLock", 0, 0, 0 },
	{ "Control", "ControlLeft", 0, 0, OKVM_MOD_LCTRL }, { "Ctrl", "ControlLeft", 0, 0, OKVM_MOD_LCTRL },
	{ "LControl", "ControlLeft", 0, 0, OKVM_MOD_LCTRL }, { "LCtrl", "ControlLeft", 0, 0, OKVM_MOD_LCTRL },
	{ "RControl", "ControlRight", 0, 0, OKVM_MOD_RCTRL }, { "RCtrl", "ControlRight", 0, 0, OKVM_MOD_RCTRL },
	{ "Shift", "ShiftLeft", 0, 0, OKVM_MOD_LSHIFT }, { "LShift", "ShiftLeft", 0, 0, OKVM_MOD_LSHIFT },
	{ "RShift", "ShiftRight", 0, 0, OKVM_MOD_RSHIFT },
	{ "Alt", "AltLeft", 0, 0, OKVM_MOD_LALT }, { "LAlt", "AltLeft", 0, 0, OKVM_MOD_LALT },
	{ "RAlt", "AltRight", 0, 0, OKVM_MOD_RALT }, { "AltGr", "AltRight", 0, 0, OKVM_MOD_RALT },
	{ "Win", "MetaLeft", 0, 0, OKVM_MOD_LGUI }, { "LWin", "MetaLeft", 0, 0, OKVM_MOD_LGUI },
	{ "RWin", "MetaRight", 0, 0, OKVM_MOD_RGUI },
	{ "AppsKey", "ContextMenu", 0, 0, 0 }, { "PrintScreen", "PrintScreen", 0, 0, 0 },
	{ "Pause", "Pause", 0, 0, 0 }, { "Break", "Pause", 0, 0, 0 }, { "CtrlBreak", "Pause", 0, 0, 0 },
	{ "Help", "Help", 0, 0, 0 }, { "Sleep", "Sleep", 0, 0, 0 },
	{ "Numpad0", "Numpad0", 0, 0, 0 }, { "Numpad1", "Numpad1", 0, 0, 0 },
	{ "Numpad2", "Numpad2", 0, 0, 0 }, { "Numpad3", "Numpad3", 0, 0, 0 },
	{ "Numpad4", "Numpad4", 0, 0, 0 }, { "Numpad5", "Numpad5", 0, 0, 0 },
	{ "Numpad6", "Numpad6", 0, 0, 0 }, { "Numpad7", "Numpad7", 0, 0, 0 },
	{ "Numpad8", "Numpad8", 0, 0, 0 }, { "Numpad9", "Numpad9", 0, 0, 0 },
	{ "NumpadDot", "NumpadDecimal", 0, 0, 0 }, { "NumpadEnter", "NumpadEnter", 0, 0, 0 },
	{ "NumpadMult", "NumpadMultiply", 0, 0, 0 }, { "NumpadDiv", "NumpadDivide", 0, 0, 0 },
	{ "NumpadAdd", "NumpadAdd", 0, 0, 0 }, { "NumpadSub", "NumpadSubtract", 0, 0, 0 },
	{ "Browser_Back", "BrowserBack", 0, 0, 0 }, { "Browser_Forward", "BrowserForward", 0, 0, 0 },
	{ "Browser_Refresh", "BrowserRefresh", 0, 0, 0 }, { "Browser_Stop", "BrowserStop", 0, 0, 0 },
	{ "Browser_Search", "BrowserSearch", 0, 0, 0 },
	{ "Browser_Favorites", "BrowserFavorites", 0, 0, 0 }, { "Browser_Home", "BrowserHome", 0, 0, 0 },
	{ "Volume_Mute", "AudioVolumeMute", 0, 0, 0 }, { "Volume_Down", "AudioVolumeDown", 0, 0, 0 },
	{ "Volume_Up", "AudioVolumeUp", 0, 0, 0 }, { "Media_Next", "MediaTrackNext", 0, 0, 0 },
	{ "Media_Prev", "MediaTrackPrevious", 0, 0, 0 }, { "Media_Stop", "MediaStop", 0, 0, 0 },
	{ "Media_Play_Pause", "MediaPlayPause", 0, 0, 0 }, { "Launch_Mail", "LaunchMail", 0, 0, 0 },
	{ "Launch_Media", "MediaSelect", 0, 0, 0 }, { "Launch_App1", "LaunchApp1", 0, 0, 0 },
	{ "Launch_App2", "LaunchApp2", 0, 0, 0 },
	{ "WheelUp", NULL, 0, 1, 0 }, { "WU", NULL, 0, 1, 0 },
	{ "WheelDown", NULL, 0, -1, 0 }, { "WD", NULL, 0, -1, 0 },
	/* the Qt Script Tool's names: keys at their US positions ... */
	{ "Minus", "Minus", 0, 0, 0 }, { "Equal", "Equal", 0, 0, 0 },
	{ "BracketLeft", "BracketLeft", 0, 0, 0 }, { "BracketRight", "BracketRight", 0, 0, 0 },
	{ "Backslash", "Backslash", 0, 0, 0 }, { "Semicolon", "Semicolon", 0, 0, 0 },
	{ "Apostrophe", "Quote", 0, 0, 0 }, { "QuoteLeft", "Backquote", 0, 0, 0 },
	{ "Comma", "Comma", 0, 0, 0 }, { "Period", "Period", 0, 0, 0 }, { "Slash", "Slash", 0, 0, 0 },
	/* ... and characters, typed through the target's layout */
	{ "Asterisk", NULL, '*', 0, 0 }, { "Plus", NULL, '+', 0, 0 }, { "Exclam", NULL, '!', 0, 0 },
	{ "At", NULL, '@', 0, 0 }, { "NumberSign", NULL, '#', 0, 0 }, { "Dollar", NULL, '$', 0, 0 },
	{ "Percent", NULL, '%', 0, 0 }, { "AsciiCircum", NULL, '^', 0, 0 },
	{ "Ampersand", NULL, '&', 0, 0 }, { "ParenLeft", NULL, '(', 0, 0 },
	{ "ParenRight", NULL, ')', 0, 0 }, { "Underscore", NULL, '_', 0, 0 },
	{ "BraceLeft", NULL, '{', 0, 0 }, { "BraceRight", NULL, '}', 0, 0 },
	{ "Colon", NULL, ':', 0, 0 }, { "QuoteDbl", NULL, '"', 0, 0 }, { "Bar", NULL, '|', 0, 0 },
	{ "Less", NULL, '<', 0, 0 }, { "Greater", NULL, '>', 0, 0 },
	{ "Question", NULL, '?', 0, 0 }, { "AsciiTilde", NULL, '~', 0, 0 },
};
/* clang-format on */

static const char *const mod_codes[8] = {
	"ControlLeft",  "ShiftLeft",  "AltLeft",  "MetaLeft",
	"ControlRight", "ShiftRight", "AltRight", "MetaRight",
};

const char *
ahk_mod_code(uint8_t bit)
{
	for (int i = 0; i < 8; i++)
		if (bit == (1u << i))
			return mod_codes[i];
	return NULL;
}

static bool
is_fkey(const char *name, size_t len, unsigned *n)
{
	if (len < 2 || len > 3 || (name[0] != 'F' && name[0] != 'f'))
		return false;
	unsigned v = 0;
	for (size_t i = 1; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (unsigned)(name[i] - '0');
	}
	*n = v;
	return v >= 1 && v <= 24 && name[1] != '0';
}

int
ahk_key_lookup(const char *name, size_t len, struct ahk_key *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) == len && !strncasecmp(names[i].name, name, len)) {
			out->code = names[i].code;
			out->cp = names[i].cp;
			out->wheel = names[i].wheel;
			out->mod_bit = names[i].mod_bit;
			return 0;
		}
	}
	unsigned f;
	if (is_fkey(name, len, &f)) {
		static const char *const fcodes[24] = {
			"F1",  "F2",  "F3",  "F4",  "F5",  "F6",  "F7",  "F8",
			"F9",  "F10", "F11", "F12", "F13", "F14", "F15", "F16",
			"F17", "F18", "F19", "F20", "F21", "F22", "F23", "F24",
		};
		out->code = fcodes[f - 1];
		return 0;
	}
	/* a browser KeyboardEvent.code, exactly */
	char buf[48];
	if (len >= sizeof(buf))
		return -ENOENT;
	memcpy(buf, name, len);
	buf[len] = 0;
	for (size_t i = 0;; i++) {
		const char *code;
		struct okvm_key k;
		if (!okvm_key_table_get(i, &code, NULL, &k))
			break;
		if (code && !strcmp(code, buf)) {
			out->code = code;
			out->mod_bit = k.kind == OKVM_KEY_KBD ? k.modifier_bit : 0;
			return 0;
		}
	}
	return -ENOENT;
}
