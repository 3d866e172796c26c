// okvm's MCP server driven by a client nobody here wrote: the official MCP TypeScript SDK
// (@modelcontextprotocol/sdk), its Client over StdioClientTransport (`okvm mcp -d emu`) and over
// StreamableHTTPClientTransport (`okvm serve -d emu`, /mcp with the [mcp] bearer token). The
// virtual target's --emu-events file is the oracle: typed text arrives exactly, a click lands at
// the chip position of the pixel asked for; the screenshot is a JPEG of the frame's size; OCR
// reads the typed text back; bad arguments are tool errors and the server stays up.
//
// usage: node tests/mcp/mcp.test.mjs BUILDDIR   (npm install in tests/mcp first; scripts/run-e2e
// does both). Exit 0 = pass, 1 = fail.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const build = process.argv[2] || "build";
const okvm = path.resolve(build, "okvm");
const only = process.env.OKVM_E2E_ONLY || "";
const fails = [];

function check(cond, what) {
	console.log((cond ? "ok   " : "FAIL ") + what);
	if (!cond) fails.push(what);
}

function events(file) {
	if (!fs.existsSync(file)) return [];
	return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

const typed = (ev) => ev.filter((e) => e.type === "text").map((e) => e.text).join("");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The events after the first n0 once pred holds (the link sends after a tool answers).
async function settle(file, n0, pred, ms = 3000) {
	const end = Date.now() + ms;
	for (;;) {
		const ev = events(file).slice(n0);
		if (pred(ev) || Date.now() > end) return ev;
		await sleep(50);
	}
}

function jpegSize(buf) {
	for (let i = 2; i + 9 < buf.length;) {
		if (buf[i] !== 0xff) return null;
		const m = buf[i + 1], len = buf.readUInt16BE(i + 2);
		if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc)
			return [buf.readUInt16BE(i + 7), buf.readUInt16BE(i + 5)];
		i += 2 + len;
	}
	return null;
}

const text = (r) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

// The same checks over either transport.
async function session(client, evfile, label) {
	const { tools } = await client.listTools();
	const names = new Set(tools.map((t) => t.name));
	for (const n of ["mouse_move_absolute", "mouse_click", "keyboard_type_text", "capture_screen",
		"screen_text", "wait_for_text", "execute_script", "key_combo", "usb_switch", "system_status"])
		check(names.has(n), `${label}: tools/list has ${n}`);

	let n0 = events(evfile).length;
	const phrase = "MCP says hi 2026";
	let r = await client.callTool({ name: "keyboard_type_text", arguments: { text: phrase } });
	check(!r.isError, `${label}: keyboard_type_text succeeds (${text(r)})`);
	check(typed(events(evfile).slice(n0)) === phrase, `${label}: the target typed exactly '${phrase}'`);

	n0 = events(evfile).length;
	r = await client.callTool({ name: "mouse_click", arguments: { x: 1440, y: 810 } });
	check(!r.isError, `${label}: mouse_click at pixels (1440, 810)`);
	const mouse = (await settle(evfile, n0, (ev) => ev.some((e) => e.type === "mouse" && e.buttons === 1) &&
		ev.at(-1).type === "mouse" && ev.at(-1).buttons === 0)).filter((e) => e.type === "mouse");
	check(mouse.some((e) => e.buttons === 1) && mouse.at(-1)?.buttons === 0 &&
		mouse.every((e) => e.x === 3072 && e.y === 3072),
		`${label}: left press and release at chip (3072, 3072), 3/4 of 1920x1080 ` +
		`(got ${JSON.stringify(mouse.map((e) => [e.x, e.y, e.buttons]))})`);

	r = await client.callTool({ name: "capture_screen", arguments: {} });
	const img = r.content.find((c) => c.type === "image");
	const jpeg = Buffer.from(img?.data || "", "base64");
	check(img?.mimeType === "image/jpeg" && jpeg[0] === 0xff && jpeg[1] === 0xd8 &&
		jpeg.at(-2) === 0xff && jpeg.at(-1) === 0xd9, `${label}: capture_screen is a whole JPEG`);
	check(JSON.stringify(jpegSize(jpeg)) === "[1920,1080]", `${label}: of 1920x1080 (got ${jpegSize(jpeg)})`);
	r = await client.callTool({ name: "capture_screen", arguments: { max_width: 640 } });
	const small = Buffer.from(r.content.find((c) => c.type === "image").data, "base64");
	check(JSON.stringify(jpegSize(small)) === "[640,360]", `${label}: max_width 640 gives 640x360`);

	r = await client.callTool({ name: "screen_text", arguments: {} });
	if (r.isError && /OCR/.test(text(r))) {
		console.log(`skip ${label}: OCR (${text(r)})`);
	} else {
		check(!r.isError && text(r).includes(phrase), `${label}: screen_text reads '${phrase}' back`);
		const words = JSON.parse(r.content[1].text).words;
		check(words.some((w) => w.text === "MCP" && w.w > 0 && w.h > 0), `${label}: with word boxes`);
		r = await client.callTool({ name: "wait_for_text", arguments: { text: "says hi", timeout_s: 10 } });
		check(!r.isError && /Found/.test(text(r)), `${label}: wait_for_text finds text on the screen`);
	}

	// Bad arguments: tool errors, and the server goes on.
	for (const [name, args, want] of [
		["mouse_click", { x: 99999, y: 1 }, "off the screen"],
		["keyboard_type_text", {}, "missing argument 'text'"],
		["key_combo", { combo: "ctrl+bogus" }, "bogus"],
		["mouse_scroll", { direction: 3 }, "must be a string"],
	]) {
		r = await client.callTool({ name, arguments: args });
		check(r.isError === true && text(r).includes(want), `${label}: ${name} ${JSON.stringify(args)}: isError naming '${want}'`);
	}
	let threw = false;
	try {
		await client.callTool({ name: "no_such_tool", arguments: {} });
	} catch (e) {
		threw = /Unknown tool/.test(String(e));
	}
	check(threw, `${label}: an unknown tool is a protocol error`);
	await client.ping();
	r = await client.callTool({ name: "system_status", arguments: {} });
	check(!r.isError && JSON.parse(text(r)).serial.connected, `${label}: still up: system_status answers`);
}

async function stdio() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "okvm-mcp-"));
	const ev = path.join(dir, "events.jsonl");
	const transport = new StdioClientTransport({ command: okvm, args: ["mcp", "-d", "emu", "--emu-events", ev], stderr: "pipe" });
	const client = new Client({ name: "okvm-test", version: "1.0.0" });
	await client.connect(transport);
	check(client.getServerVersion()?.name === "okvm", "stdio: connected to okvm");
	await session(client, ev, "stdio");
	await client.close();
	check(!events(ev).some((e) => e.type === "key" && e.down) ||
		events(ev).filter((e) => e.type === "key").at(-1).down === false, "stdio: no key left down");
}

function freePort() {
	return new Promise((res) => {
		const s = net.createServer();
		s.listen(0, "127.0.0.1", () => {
			const p = s.address().port;
			s.close(() => res(p));
		});
	});
}

async function http() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "okvm-mcp-"));
	const ev = path.join(dir, "events.jsonl");
	const conf = path.join(dir, "okvm.conf");
	const token = "test-token-0123456789abcdef";
	fs.writeFileSync(conf, `[mcp]\ntoken = ${token}\n`, { mode: 0o600 });
	// A password, so that /mcp needs the login or the token.
	const pw = spawnSync(okvm, ["passwd", "--config", conf], { input: "a-password-for-the-test\n" });
	check(pw.status === 0, `http: okvm passwd sets a password (${pw.stderr})`);
	const port = await freePort();
	const srv = spawn(okvm, ["serve", "-d", "emu", "--emu-events", ev, "--config", conf,
		"--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
	let errText = "";
	srv.stderr.on("data", (d) => (errText += d));
	await new Promise((res, rej) => {
		srv.stdout.on("data", (d) => String(d).includes("serving on") && res());
		srv.on("exit", (c) => rej(new Error(`okvm serve exited ${c}: ${errText}`)));
	});
	const url = new URL(`http://127.0.0.1:${port}/mcp`);
	try {
		let r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
			body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } }) });
		check(r.status === 401, `http: no login, no token: 401 (got ${r.status})`);
		r = await fetch(url, { method: "POST", headers: { Authorization: "Bearer wrong-token-0123456789", "Content-Type": "application/json" }, body: "{}" });
		check(r.status === 401, `http: a wrong token: 401 (got ${r.status})`);
		r = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
		check(r.status === 405, `http: GET /mcp: 405, no server stream (got ${r.status})`);

		r = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${token}`, "MCP-Protocol-Version": "1999-01-01", "Content-Type": "application/json" },
			body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } }) });
		check(r.status === 400, `http: an MCP-Protocol-Version it does not speak: 400 (got ${r.status})`);
		r = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
			body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }) });
		check(r.status === 400, `http: no session id and no initialize: 400 (got ${r.status})`);

		const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
		const client = new Client({ name: "okvm-test", version: "1.0.0" });
		await client.connect(transport);
		check(client.getServerVersion()?.name === "okvm" && !!transport.sessionId, "http: connected with a session id");
		await session(client, ev, "http");

		// A browser's login opens /mcp too; MCP's frames do not stop a watching stream's.
		r = await fetch(new URL("/api/login", url), { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
			body: "password=a-password-for-the-test" });
		const cookie = (r.headers.get("set-cookie") || "").split(";")[0];
		check(r.status === 200 && cookie.startsWith("okvm_session="), "http: a login for the stream");
		r = await fetch(url, { method: "POST", headers: { Cookie: cookie, "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
			body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } }) });
		check(r.status === 200 && !!r.headers.get("mcp-session-id"), `http: the login cookie opens /mcp (got ${r.status})`);
		const ac2 = new AbortController();
		const stream = await fetch(new URL("/stream", url), { headers: { Cookie: cookie }, signal: ac2.signal });
		const reader = stream.body.getReader();
		let streamed = 0;
		const pump = (async () => {
			try {
				for (;;) {
					const { done, value } = await reader.read();
					if (done) break;
					streamed += value.length;
				}
			} catch {}
		})();
		await sleep(500);
		await client.callTool({ name: "capture_screen", arguments: { max_width: 320 } });
		const before = streamed;
		await sleep(1500);
		check(streamed > before + 10000, `http: the stream goes on after an MCP screenshot (${streamed - before} bytes in 1.5 s)`);
		ac2.abort();
		await pump;

		// A client that leaves mid-wait costs nothing: the server answers others at once.
		const ac = new AbortController();
		const waiting = client.callTool({ name: "wait_for_screen_change", arguments: { timeout_s: 600, still_ms: 600000 } },
			undefined, { signal: ac.signal, timeout: 700000 }).catch(() => "aborted");
		await sleep(300);
		ac.abort();
		check((await waiting) === "aborted", "http: the long wait was abandoned by the client");
		const t0 = Date.now();
		await client.ping();
		const rr = await client.callTool({ name: "system_status", arguments: {} });
		check(!rr.isError && Date.now() - t0 < 5000, "http: the server answers at once after the abandoned wait");
		// notifications/cancelled for a running request of the session stops it.
		const sid0 = transport.sessionId;
		const hdrs = { Authorization: `Bearer ${token}`, "Mcp-Session-Id": sid0, "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
		const long = fetch(url, { method: "POST", headers: hdrs, body: JSON.stringify({ jsonrpc: "2.0", id: "long-1", method: "tools/call",
			params: { name: "wait_for_screen_change", arguments: { timeout_s: 600, still_ms: 600000 } } }) });
		await sleep(300);
		r = await fetch(url, { method: "POST", headers: hdrs, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: "long-1" } }) });
		check(r.status === 202, `http: notifications/cancelled: 202 (got ${r.status})`);
		const lr = await Promise.race([long.then((x) => x.json()), sleep(10000).then(() => null)]);
		check(lr?.id === "long-1" && lr.result?.isError && /cancelled/.test(lr.result.content[0].text),
			`http: the cancelled request answers at once with a tool error (${JSON.stringify(lr)})`);
		const sid = transport.sessionId;
		await transport.terminateSession();
		r = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Mcp-Session-Id": sid, "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
			body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "ping" }) });
		check(r.status === 404, `http: after DELETE the session is gone: 404 (got ${r.status})`);
		await client.close();
	} finally {
		srv.kill("SIGTERM");
		await new Promise((res) => srv.on("exit", res));
	}
	check(/audit: mcp tool=keyboard_type_text via=token user=\S+ from=127\.0\.0\.1/.test(errText),
		"http: each tools/call is in the audit log, with how the agent got in");
	check(srv.exitCode === 0, `http: okvm serve exits 0 (got ${srv.exitCode} ${srv.signalCode}; ${errText.trim().slice(-300)})`);
}

try {
	if (!only || "stdio".includes(only)) await stdio();
	if (!only || "http".includes(only)) await http();
} catch (e) {
	check(false, `the session broke: ${e?.stack || e}`);
}
if (fails.length) {
	console.log(`${fails.length} failed`);
	process.exit(1);
}
console.log("all passed");
