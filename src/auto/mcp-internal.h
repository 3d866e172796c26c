/* The MCP server's parts (mcp.c: JSON-RPC and sessions; mcp-tools.c: the tools; mcp-image.c:
 * screenshots). */
#ifndef OKVM_AUTO_MCP_INTERNAL_H
#define OKVM_AUTO_MCP_INTERNAL_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>

#include "auto/mcp.h"

struct auto_ocr;

struct mcp {
	const struct serve_backend *b;
	char *dir, *ocr_lang, *transport;
	double type_cps;
	struct auto_console *console; /* the owner's; NULL: no serial console */
	pthread_mutex_t lock;         /* the fields below */
	bool initialized;
	char version[16];         /* negotiated protocol version */
	char *layout;             /* keyboard_set_layout's choice */
	unsigned char *last_jpeg; /* capture_last_image: the last screenshot sent */
	size_t last_len;
	int last_w, last_h;
	pthread_mutex_t ocr_lock; /* one OCR at a time per session */
	struct auto_ocr *ocr;
};

/* The tools' descriptions for tools/list (a new array). */
cJSON *mcp_tools_list(void);

/* Run one tool: its CallToolResult (a new object, isError set for a failed tool), or NULL when
 * no tool has that name (the caller answers -32602). args may be NULL. */
cJSON *mcp_tool_call(struct mcp *m, const char *name, const cJSON *args, const atomic_bool *cancel);

/* Re-encode a JPEG: scaled down to at most max_width pixels wide (0: as it is), at quality
 * (1..100). Returns 0 with a malloc'd JPEG in out/out_len and its size, or -EINVAL (not a
 * JPEG). */
int mcp_jpeg_scale(const void *jpeg, size_t len, int max_width, int quality, unsigned char **out,
		   size_t *out_len, int *w, int *h);

#endif
