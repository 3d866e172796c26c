/* One layout as `okvm layouts --json` and GET /api/layouts list it (internal to okvm: the CLI
 * and the server share it; libokvm.so does not export it). */
#ifndef OKVM_LIB_KBD_LAYOUT_JSON_H
#define OKVM_LIB_KBD_LAYOUT_JSON_H

#include <cjson/cJSON.h>

#include "okvm/keymap.h"

/* {"name":"de:nodeadkeys","layout":"de","variant":"nodeadkeys","description":"..."}, or NULL
 * when the name does not split into layout and variant. */
cJSON *layout_json(const struct okvm_layout_info *l);

#endif
