/*
 * DESIGN: the MCP server's JSON-RPC 2.0 half (https://modelcontextprotocol.io/specification,
 * revisions 2025-06-18, 2025-03-26 and 2024-11-05).
 *
 * A message is parsed with cJSON and answered here: initialize (the client's protocol version
 * if this server speaks it, else the newest it speaks), ping, tools/list and tools/call;
 * notifications (initialized, cancelled) and responses get no answer. Protocol errors are
 * JSON-RPC errors (-32700 parse error, -32600 invalid request, -32601 unknown method, -32602
 * bad params or unknown tool); a tool that fails answers a result with isError: true, so a
 * model sees what went wrong and the session goes on (mcp-tools.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auto/mcp-internal.h"
#include "auto/ocr.h"
#include "lib/xalloc.h"

#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602

const char *const mcp_protocol_versions[] = { "2025-06-18", "2025-03-26", "2024-11-05", NULL };

static char *
dup_or(const char *s, const char *dflt)
{
	return xstrdup(s ? s : dflt);
}

struct mcp *
mcp_new(const struct mcp_config *cfg)
{
	struct mcp *m = xcalloc(1, sizeof(*m));
	m->b = cfg->b;
	m->dir = dup_or(cfg->dir, ".");
	m->ocr_lang = dup_or(cfg->ocr_lang, "eng");
	m->transport = dup_or(cfg->transport, "stdio");
	m->layout = dup_or(cfg->layout, "us");
	m->type_cps = cfg->type_cps;
	m->console = cfg->console;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->ocr_lock, NULL);
	return m;
}

void
mcp_free(struct mcp *m)
{
	if (!m)
		return;
	if (m->ocr)
		auto_ocr_free(m->ocr);
	free(m->dir);
	free(m->ocr_lang);
	free(m->transport);
	free(m->layout);
	free(m->last_jpeg);
	pthread_mutex_destroy(&m->ocr_lock);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

bool
mcp_initialized(struct mcp *m)
{
	pthread_mutex_lock(&m->lock);
	bool r = m->initialized;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- answers ---- */

static cJSON *
response(const cJSON *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "jsonrpc", "2.0");
	cJSON_AddItemToObject(o, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
	return o;
}

static cJSON *
result(const cJSON *id, cJSON *res)
{
	cJSON *o = response(id);
	cJSON_AddItemToObject(o, "result", res);
	return o;
}

static cJSON *
rpc_error(const cJSON *id, int code, const char *msg)
{
	cJSON *o = response(id);
	cJSON *e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddNumberToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	return o;
}

/* ---- methods ---- */

static const char *
pick_version(const char *asked)
{
	for (int i = 0; asked && mcp_protocol_versions[i]; i++)
		if (!strcmp(asked, mcp_protocol_versions[i]))
			return mcp_protocol_versions[i];
	return mcp_protocol_versions[0];
}

static cJSON *
do_initialize(struct mcp *m, const cJSON *id, const cJSON *params)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, "protocolVersion");
	if (!cJSON_IsString(v))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "initialize: params.protocolVersion (a string) is missing");
	const char *ver = pick_version(v->valuestring);
	pthread_mutex_lock(&m->lock);
	m->initialized = true;
	snprintf(m->version, sizeof(m->version), "%s", ver);
	pthread_mutex_unlock(&m->lock);
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "protocolVersion", ver);
	cJSON *caps = cJSON_AddObjectToObject(r, "capabilities");
	cJSON *tools = cJSON_AddObjectToObject(caps, "tools");
	cJSON_AddBoolToObject(tools, "listChanged", false);
	cJSON *info = cJSON_AddObjectToObject(r, "serverInfo");
	cJSON_AddStringToObject(info, "name", "okvm");
	cJSON_AddStringToObject(info, "title", "okvm: Openterface Mini-KVM");
	cJSON_AddStringToObject(info, "version", OKVM_VERSION);
	cJSON_AddStringToObject(
		r, "instructions",
		"Drives a computer through a KVM: its screen (capture_screen, screen_text), its "
		"keyboard and mouse. Pixel coordinates (x, y) are pixels of the full captured "
		"frame; fx, fy are fractions 0..1 of it.");
	return result(id, r);
}

static cJSON *
do_tools_call(struct mcp *m, const cJSON *id, const cJSON *params, const atomic_bool *cancel)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
	if (!cJSON_IsString(name))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "tools/call: params.name (a string) is missing");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
	if (args && !cJSON_IsObject(args) && !cJSON_IsNull(args))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "tools/call: params.arguments must be an object");
	cJSON *r = mcp_tool_call(m, name->valuestring, cJSON_IsObject(args) ? args : NULL, cancel);
	if (!r) {
		char msg[160];
		snprintf(msg, sizeof(msg), "Unknown tool: %.100s (tools/list names them)",
			 name->valuestring);
		return rpc_error(id, RPC_INVALID_PARAMS, msg);
	}
	return result(id, r);
}

/* One message object: its answer, or NULL (a notification or a response). */
static cJSON *
handle_one(struct mcp *m, const cJSON *msg, const atomic_bool *cancel)
{
	if (!cJSON_IsObject(msg))
		return rpc_error(NULL, RPC_INVALID_REQUEST, "a message must be a JSON object");
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
	bool id_ok = !id || cJSON_IsString(id) || cJSON_IsNumber(id);
	if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0") || !id_ok)
		return rpc_error(id_ok ? id : NULL, RPC_INVALID_REQUEST,
				 "not JSON-RPC 2.0: want \"jsonrpc\": \"2.0\" and a string or "
				 "number id");
	if (!method) /* a response to a request of ours: we send none, so nothing to do */
		return cJSON_GetObjectItemCaseSensitive(msg, "result") ||
				       cJSON_GetObjectItemCaseSensitive(msg, "error")
			       ? NULL
			       : rpc_error(id, RPC_INVALID_REQUEST, "a request needs a method");
	if (!cJSON_IsString(method))
		return rpc_error(id, RPC_INVALID_REQUEST, "method must be a string");
	const char *name = method->valuestring;
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
	if (params && !cJSON_IsObject(params))
		return id ? rpc_error(id, RPC_INVALID_PARAMS, "params must be an object") : NULL;
	if (!id)
		return NULL; /* notifications/initialized, notifications/cancelled, ...: no answer */
	if (!strcmp(name, "initialize"))
		return do_initialize(m, id, params);
	if (!strcmp(name, "ping"))
		return result(id, cJSON_CreateObject());
	if (!strcmp(name, "tools/list")) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddItemToObject(r, "tools", mcp_tools_list());
		return result(id, r);
	}
	if (!strcmp(name, "tools/call"))
		return do_tools_call(m, id, params, cancel);
	char txt[160];
	snprintf(txt, sizeof(txt), "Method not found: %.100s", name);
	return rpc_error(id, RPC_METHOD_NOT_FOUND, txt);
}

static char *
print(cJSON *o)
{
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return txt;
}

char *
mcp_handle(struct mcp *m, const char *msg, size_t len, const atomic_bool *cancel)
{
	cJSON *in = cJSON_ParseWithLength(msg, len);
	if (!in)
		return print(rpc_error(NULL, RPC_PARSE_ERROR, "Parse error: not JSON"));
	if (!cJSON_IsArray(in)) {
		cJSON *out = handle_one(m, in, cancel);
		cJSON_Delete(in);
		return out ? print(out) : NULL;
	}
	/* A batch (2025-03-26 and older): the answers as one array, none if all were
	 * notifications. */
	if (!cJSON_GetArraySize(in)) {
		cJSON_Delete(in);
		return print(rpc_error(NULL, RPC_INVALID_REQUEST, "an empty batch"));
	}
	cJSON *outs = cJSON_CreateArray();
	const cJSON *e;
	cJSON_ArrayForEach(e, in)
	{
		cJSON *out = handle_one(m, e, cancel);
		if (out)
			cJSON_AddItemToArray(outs, out);
	}
	cJSON_Delete(in);
	if (!cJSON_GetArraySize(outs)) {
		cJSON_Delete(outs);
		return NULL;
	}
	return print(outs);
}

bool
mcp_is_initialize(const char *msg, size_t len)
{
	cJSON *in = cJSON_ParseWithLength(msg, len);
	const cJSON *o = cJSON_IsArray(in) ? cJSON_GetArrayItem(in, 0) : in;
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(o, "method");
	bool r = cJSON_IsString(method) && !strcmp(method->valuestring, "initialize");
	cJSON_Delete(in);
	return r;
}
