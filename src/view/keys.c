/*
 * DESIGN: the viewer's one key table: SDL scancode -> the KeyboardEvent.code of okvm's key
 * table (src/lib/kbd/keys.c, the names `okvm key` takes), which the backend turns into a HID
 * usage (or a media / ACPI bit) exactly as it does for the web page.
 *
 * SDL2's scancodes are the USB HID keyboard page (0x07) usages: SDL_scancode.h says its values
 * "are from usage page 0x07 (USB keyboard page)", and SDL_SCANCODE_A = 4 ... SDL_SCANCODE_RGUI =
 * 231 = 0xE7 match the HID Usage Tables one for one. So for every key of that page the table is
 * the identity, taken from okvm's own table at first use (each keyboard-page entry's usage is
 * its SDL scancode). The exceptions are written out below: SDL's Mute/VolumeUp/VolumeDown
 * (keyboard-page usages 0x7F-0x81, which only Linux targets honour) go out as the consumer-page
 * bits of the CH9329 multimedia report instead, as the web page sends them; Power (0x66) as the
 * ACPI report; and SDL's scancodes from 258 up (SDL_SCANCODE_AUDIONEXT...), which are SDL's own
 * numbers for consumer-page keys, map to their media keys by name. `okvm view --list-keys`
 * prints the whole table. Main thread only.
 */
#include <SDL.h>
#include <stdio.h>
#include <string.h>

#include "okvm/keymap.h"
#include "view/view.h"

static const struct {
	int scancode;
	const char *code;
} exceptions[] = {
	{ SDL_SCANCODE_MUTE, "AudioVolumeMute" },
	{ SDL_SCANCODE_VOLUMEUP, "AudioVolumeUp" },
	{ SDL_SCANCODE_VOLUMEDOWN, "AudioVolumeDown" },
	{ SDL_SCANCODE_POWER, "Power" },
	{ SDL_SCANCODE_AUDIONEXT, "MediaTrackNext" },
	{ SDL_SCANCODE_AUDIOPREV, "MediaTrackPrevious" },
	{ SDL_SCANCODE_AUDIOSTOP, "MediaStop" },
	{ SDL_SCANCODE_AUDIOPLAY, "MediaPlayPause" },
	{ SDL_SCANCODE_AUDIOMUTE, "AudioVolumeMute" },
	{ SDL_SCANCODE_MEDIASELECT, "MediaSelect" },
	{ SDL_SCANCODE_MAIL, "LaunchMail" },
	{ SDL_SCANCODE_CALCULATOR, "LaunchApp2" },
	{ SDL_SCANCODE_COMPUTER, "LaunchApp1" },
	{ SDL_SCANCODE_AC_SEARCH, "BrowserSearch" },
	{ SDL_SCANCODE_AC_HOME, "BrowserHome" },
	{ SDL_SCANCODE_AC_BACK, "BrowserBack" },
	{ SDL_SCANCODE_AC_FORWARD, "BrowserForward" },
	{ SDL_SCANCODE_AC_STOP, "BrowserStop" },
	{ SDL_SCANCODE_AC_REFRESH, "BrowserRefresh" },
	{ SDL_SCANCODE_AC_BOOKMARKS, "BrowserFavorites" },
	{ SDL_SCANCODE_EJECT, "Eject" },
	{ SDL_SCANCODE_SLEEP, "Sleep" },
};

static const char *table[SDL_NUM_SCANCODES];
static bool built;

static void
build(void)
{
	const char *code, *names;
	struct okvm_key k;
	for (size_t i = 0; okvm_key_table_get(i, &code, &names, &k); i++) {
		/* keyboard page: the usage is the SDL scancode (the first code of a usage wins) */
		if (code && k.kind == OKVM_KEY_KBD && k.usage >= SDL_SCANCODE_A &&
		    k.usage <= SDL_SCANCODE_RGUI && !table[k.usage])
			table[k.usage] = code;
	}
	for (size_t i = 0; i < sizeof(exceptions) / sizeof(exceptions[0]); i++)
		table[exceptions[i].scancode] = exceptions[i].code;
	built = true;
}

const char *
view_scancode_code(int scancode)
{
	if (!built)
		build();
	if (scancode < 0 || scancode >= SDL_NUM_SCANCODES)
		return NULL;
	return table[scancode];
}

int
view_host_key_parse(const char *name)
{
	static const struct {
		const char *name;
		int sc;
	} short_names[] = {
		{ "rctrl", SDL_SCANCODE_RCTRL },      { "right-ctrl", SDL_SCANCODE_RCTRL },
		{ "lctrl", SDL_SCANCODE_LCTRL },      { "ralt", SDL_SCANCODE_RALT },
		{ "right-alt", SDL_SCANCODE_RALT },   { "rgui", SDL_SCANCODE_RGUI },
		{ "rsuper", SDL_SCANCODE_RGUI },      { "rshift", SDL_SCANCODE_RSHIFT },
		{ "menu", SDL_SCANCODE_APPLICATION },
	};
	for (size_t i = 0; i < sizeof(short_names) / sizeof(short_names[0]); i++)
		if (!SDL_strcasecmp(name, short_names[i].name))
			return short_names[i].sc;
	struct okvm_key k;
	if (okvm_key_lookup(name, &k) == 0 && k.kind == OKVM_KEY_KBD && k.usage >= SDL_SCANCODE_A &&
	    k.usage <= SDL_SCANCODE_RGUI)
		return k.usage; /* identity, see above */
	SDL_Scancode sc = SDL_GetScancodeFromName(name);
	return sc == SDL_SCANCODE_UNKNOWN ? -1 : (int)sc;
}

const char *
view_host_key_name(int scancode)
{
	const char *n = SDL_GetScancodeName((SDL_Scancode)scancode);
	return n && *n ? n : "?";
}

void
view_keys_print(FILE *out)
{
	fprintf(out, "# SDL scancode, SDL name, okvm key code, what the target gets\n");
	for (int sc = 0; sc < SDL_NUM_SCANCODES; sc++) {
		const char *code = view_scancode_code(sc);
		if (!code)
			continue;
		struct okvm_key k;
		if (okvm_key_from_code(code, &k))
			continue;
		const char *n = SDL_GetScancodeName((SDL_Scancode)sc);
		char what[32];
		if (k.kind == OKVM_KEY_KBD)
			snprintf(what, sizeof(what), "usage 0x%02x", k.usage);
		else if (k.kind == OKVM_KEY_MEDIA)
			snprintf(what, sizeof(what), "media %02x %02x %02x", k.media_bit[0],
				 k.media_bit[1], k.media_bit[2]);
		else
			snprintf(what, sizeof(what), "acpi %02x", k.media_bit[0]);
		fprintf(out, "%3d\t%-18s\t%-20s\t%s\n", sc, n && *n ? n : "-", code, what);
	}
}
