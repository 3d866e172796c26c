/*
 * The MCP server core (docs/automation.md, "MCP"): JSON-RPC 2.0 messages of the Model Context
 * Protocol in, answers out. Transport-free: `okvm mcp` feeds it lines of stdin
 * (src/cli/cmd_mcp.c), `okvm serve` the bodies of POST /mcp (src/serve/mcp-http.c).
 *
 * One struct mcp is one MCP session: its negotiated protocol version, the keyboard layout that
 * keyboard_set_layout chose, the last screenshot (capture_last_image) and its OCR instance.
 *
 * Threads: mcp_handle() may be called from several threads at once for one session (a ping
 * while a wait_for_text runs); tool calls block the calling thread (waits, typing, OCR), so a
 * server calls it off its service thread. The backend's operations are called on the thread
 * that calls mcp_handle(): a transport whose backend wants one thread (okvm serve) passes a
 * backend that hands each call over to that thread.
 */
#ifndef OKVM_AUTO_MCP_H
#define OKVM_AUTO_MCP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct serve_backend;
struct auto_console;

struct mcp_config {
	const struct serve_backend *b; /* the unit; want_frames(true/false) come in pairs */
	const char *layout;            /* the target's XKB layout; NULL = "us" */
	double type_cps;               /* keyboard_type_text's speed; 0 = as fast as the link */
	const char *dir;               /* execute_script's relative paths; NULL = "." */
	const char *ocr_lang;          /* screen_text, wait_for_text; NULL = "eng" */
	const char *transport;         /* "stdio" or "http", for system_status */
	/* The target's serial console (console.h) for serial_wait_for_text, serial_send_text and
	   execute_script's WaitSerial/SendSerial; NULL: none (those tools fail). The owner opens
	   and closes it and keeps it open for the session. */
	struct auto_console *console;
};

struct mcp;

/* Strings in cfg are copied. Cannot fail. */
struct mcp *mcp_new(const struct mcp_config *cfg);
void mcp_free(struct mcp *m);

/*
 * Handle one JSON-RPC message (a request, a notification, a response, or a batch of them) of
 * len bytes. Returns the answer as malloc'd JSON text, or NULL when nothing is to be answered
 * (notifications, responses). A long tool returns early, with an error result, when *cancel
 * becomes true (cancel may be NULL).
 */
char *mcp_handle(struct mcp *m, const char *msg, size_t len, const atomic_bool *cancel);

/* True once the client sent initialize (HTTP: a session is made by it). */
bool mcp_initialized(struct mcp *m);

/* The protocol versions this server speaks, newest first, NULL-terminated. */
extern const char *const mcp_protocol_versions[];

/* Does this request (parsed JSON text) hold an initialize request? (HTTP: no session yet.) */
bool mcp_is_initialize(const char *msg, size_t len);

#endif
