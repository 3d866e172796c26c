/*
 * DESIGN: what the virtual target experiences, as events: to the listeners (video renderer,
 * web server) and, with --emu-events FILE, as one JSON object per line (ARCHITECTURE 4.2, keys in
 * that order, cJSON's compact printing). Each line goes out in a single write() on an O_APPEND
 * fd, so a test tailing the file never sees half a line and nothing sits in a stdio buffer.
 * The first failed write (a closed pipe: `--emu-events /dev/stdout | head`, a full disk) is
 * reported once and ends the file: the fd is closed and no further line is attempted.
 * Runs on the emu thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "emu/emu-internal.h"
#include "okvm/log.h"
#include "lib/xalloc.h"

static const char *const type_names[] = {
	[EMU_EV_TEXT] = "text",       [EMU_EV_KEY] = "key",
	[EMU_EV_MOUSE] = "mouse",     [EMU_EV_USB] = "usb",
	[EMU_EV_LEDS] = "leds",       [EMU_EV_SWITCH] = "switch",
	[EMU_EV_DROPPED] = "dropped", [EMU_EV_USB_POWER] = "usb_power",
	[EMU_EV_MEDIA] = "media",     [EMU_EV_POWER] = "power",
	[EMU_EV_ATX] = "atx",         [EMU_EV_CONSOLE] = "console",
	[EMU_EV_ADAPTER] = "adapter",
};

static void
add_fields(cJSON *o, const struct emu_event *ev)
{
	switch (ev->type) {
	case EMU_EV_TEXT: cJSON_AddStringToObject(o, "text", ev->text); break;
	case EMU_EV_KEY:
		cJSON_AddNumberToObject(o, "usage", ev->usage);
		cJSON_AddBoolToObject(o, "down", ev->down);
		break;
	case EMU_EV_MOUSE:
		cJSON_AddNumberToObject(o, "x", ev->x);
		cJSON_AddNumberToObject(o, "y", ev->y);
		cJSON_AddNumberToObject(o, "buttons", ev->buttons);
		cJSON_AddNumberToObject(o, "wheel", ev->wheel);
		break;
	case EMU_EV_USB: cJSON_AddBoolToObject(o, "connected", ev->on); break;
	case EMU_EV_LEDS:
		cJSON_AddBoolToObject(o, "num", ev->leds & OKVM_LED_NUM);
		cJSON_AddBoolToObject(o, "caps", ev->leds & OKVM_LED_CAPS);
		cJSON_AddBoolToObject(o, "scroll", ev->leds & OKVM_LED_SCROLL);
		break;
	case EMU_EV_SWITCH:
		cJSON_AddStringToObject(o, "to", ev->to_target ? "target" : "host");
		break;
	case EMU_EV_DROPPED: cJSON_AddStringToObject(o, "report", ev->report); break;
	case EMU_EV_USB_POWER: cJSON_AddBoolToObject(o, "on", ev->on); break;
	case EMU_EV_POWER:
		cJSON_AddStringToObject(o, "state", ev->on ? "on" : "off");
		cJSON_AddStringToObject(o, "cause", ev->text);
		break;
	case EMU_EV_ATX:
		cJSON_AddStringToObject(o, "switch", ev->report);
		cJSON_AddBoolToObject(o, "closed", ev->down);
		break;
	case EMU_EV_ADAPTER: cJSON_AddBoolToObject(o, "plugged", ev->on); break;
	case EMU_EV_CONSOLE:
		cJSON_AddStringToObject(o, "dir", ev->report);
		cJSON_AddStringToObject(o, "text", ev->text);
		break;
	case EMU_EV_MEDIA: {
		cJSON_AddNumberToObject(o, "id", ev->media_id);
		int bits[3] = { ev->media_bits[0], ev->media_bits[1], ev->media_bits[2] };
		cJSON_AddItemToObject(o, "bits", cJSON_CreateIntArray(bits, 3));
		break;
	}
	}
}

char *
emu_event_json(const struct emu_event *ev)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		abort();
	cJSON_AddStringToObject(o, "type", type_names[ev->type]);
	add_fields(o, ev);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		abort();
	return s;
}

static void
write_line(struct emu *e, const struct emu_event *ev)
{
	char *s = emu_event_json(ev);
	size_t n = strlen(s);
	char *line = xmalloc(n + 2);
	memcpy(line, s, n);
	line[n] = '\n';
	ssize_t w = write(e->events_fd, line, n + 1);
	if (w != (ssize_t)(n + 1)) {
		okvm_log(OKVM_LOG_WARN, "emu: could not write to %s (%s); no more events go there",
			 e->events_path, w < 0 ? strerror(errno) : "short write");
		close(e->events_fd);
		e->events_fd = -1;
	}
	free(line);
	cJSON_free(s);
}

void
emu_emit(struct emu *e, const struct emu_event *ev)
{
	if (e->events_fd >= 0)
		write_line(e, ev);
	for (int i = 0; i < e->n_listeners; i++)
		e->listeners[i].fn(ev, e->listeners[i].ud);
}
