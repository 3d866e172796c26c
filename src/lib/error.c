/*
 * DESIGN: okvm_strerror(). One switch over the okvm-only codes with no default, so -Wswitch
 * flags a code added without text (curl's trick); everything else is an errno.
 */
#include <string.h>

#include "okvm/error.h"

static const char *
own_error_text(enum okvm_error e)
{
	switch (e) {
	case OKVM_E_UNMAPPABLE: return "a character cannot be typed on the target layout";
	case OKVM_E_VIDEO_ONLY: return "this unit has video only, no keyboard/mouse link";
	case OKVM_E_LAST: break;
	}
	return NULL;
}

const char *
okvm_strerror(int err)
{
	if (err >= 0)
		return "success";
	int e = -err;
	if (e >= OKVM_E_BASE && e < OKVM_E_LAST) {
		const char *s = own_error_text((enum okvm_error)e);
		if (s)
			return s;
	}
	if (e >= OKVM_E_BASE)
		return "unknown okvm error";
	return strerror(e);
}
