"use strict";
// Browser tests of okvm serve: Debian's chromium driven by playwright-core.
// Usage: node serve.test.js BUILD_DIR   (scripts/run-e2e does this)
// The server is okvm-rec (tests/recorder/okvm-rec.c: the product's code plus a log of every
// backend call the unit accepted, the oracle here) on the virtual unit, with the fixture JPEGs
// as its video: `-d emu --video frames:DIR@15`. OKVM_E2E_BACKEND_ARGS (space-separated) swaps
// the unit's arguments; a test's own `backend` does too.
const { chromium } = require("playwright-core");
const { spawn } = require("child_process");
const crypto = require("crypto");
const assert = require("assert/strict");
const fs = require("fs");
const os = require("os");
const path = require("path");
const net = require("net");

const BUILD = path.resolve(process.argv[2] || "build");
const SRC = path.resolve(__dirname, "..", "..");
const OKVM = path.join(BUILD, "okvm");
const OKVM_REC = path.join(BUILD, "tests", "recorder", "okvm-rec");
const FRAMES = path.join(SRC, "tests", "fixtures", "serve-frames");
const ART = path.join(BUILD, "e2e-artifacts");
fs.mkdirSync(ART, { recursive: true });

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitFor(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

class Server {
  static async start(extra = [], env = {}, backendArgs = null) {
    const s = new Server();
    s.tmp = fs.mkdtempSync(path.join(os.tmpdir(), "okvm-e2e-"));
    s.log = path.join(s.tmp, "backend.jsonl");
    s.port = await freePort();
    const backend = backendArgs || (process.env.OKVM_E2E_BACKEND_ARGS
      ? process.env.OKVM_E2E_BACKEND_ARGS.split(/\s+/).filter(Boolean)
      : ["-d", "emu", "--video", `frames:${FRAMES}@15`]);
    s.proc = spawn(OKVM_REC, ["serve", "--listen", `127.0.0.1:${s.port}`, ...backend, ...extra], {
      env: { ...process.env, HOME: s.tmp, XDG_CONFIG_HOME: path.join(s.tmp, "xdg"),
        OKVM_REC_LOG: s.log, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    s.stderr = "";
    s.proc.stderr.on("data", (d) => { s.stderr += d; });
    await new Promise((resolve, reject) => {
      let out = "";
      s.proc.stdout.on("data", (d) => { out += d; if (out.includes("serving on")) resolve(); });
      s.proc.on("exit", (c) => reject(new Error("okvm serve exited " + c + ": " + s.stderr)));
    });
    s.url = `http://127.0.0.1:${s.port}`;
    return s;
  }
  calls(op) {
    if (!fs.existsSync(this.log)) return [];
    return fs.readFileSync(this.log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
      .filter((c) => !op || c.op === op);
  }
  async metric(name) {
    const r = await fetch(this.url + "/metrics");
    const line = (await r.text()).split("\n").find((l) => l.startsWith(name + " "));
    return line ? Number(line.split(" ")[1]) : NaN;
  }
  async stop() {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    const done = new Promise((r) => this.proc.on("exit", (c) => r(c)));
    this.proc.kill("SIGTERM");
    return done;
  }
}

// okvm passwd / okvm totp: stdout, or a thrown error.
function okvmRun(args, input = null) {
  return new Promise((resolve, reject) => {
    const p = spawn(OKVM, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d) => { out += d; });
    p.stderr.on("data", (d) => { err += d; });
    p.stdin.on("error", () => {});   // okvm totp does not read it
    p.stdin.end(input === null ? "" : input + "\n");
    p.on("exit", (c) => (c === 0 ? resolve(out) : reject(new Error(`okvm ${args[0]} ${c}: ${err}`))));
  });
}

// RFC 6238 (HMAC-SHA1, 6 digits, 30 s steps) from a base32 secret, computed here, not by okvm.
function totp(secret, step = Math.floor(Date.now() / 30000)) {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "")) bits += abc.indexOf(ch).toString(2).padStart(5, "0");
  const key = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) key.push(parseInt(bits.slice(i, i + 8), 2));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac("sha1", Buffer.from(key)).update(msg).digest();
  const off = mac[19] & 15;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, "0");
}
// RFC 6238 appendix B: the SHA-1 key "12345678901234567890" at T = 59 s gives 94287082.
assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1), "287082");

// Screenshots at a desktop and a phone size, for a person to look at.
async function shots(page, name) {
  for (const [w, h] of [[1440, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.screenshot({ path: path.join(ART, `${name}-${w}x${h}.png`) });
  }
}

// The input messages (not pings) a page sends over its WebSockets.
function inputFrames(page) {
  const sent = [];
  page.on("websocket", (ws) => ws.on("framesent", (f) => {
    try {
      const m = JSON.parse(f.payload);
      if (m.type !== "ping") sent.push(m);
    } catch { sent.push(f.payload); }
  }));
  return sent;
}

let browser;
const results = [];

async function test(name, fn, { extra = [], env = {}, backend = null, context: ctxOpts = {} } = {}) {
  if (process.env.OKVM_E2E_ONLY && !name.includes(process.env.OKVM_E2E_ONLY)) return; // one test
  const server = await Server.start(extra, env, backend);
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, ...ctxOpts });
  const page = await context.newPage();
  const t0 = Date.now();
  try {
    await fn(page, server);
    results.push([name, true]);
    console.log(`ok: ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL: ${name}: ${e.stack || e}`);
    console.log(server.stderr.slice(-2000));
  } finally {
    await page.screenshot({ path: path.join(ART, name.replace(/\W+/g, "-") + ".png") }).catch(() => {});
    await context.close();
    const rc = await server.stop();
    if (rc !== 0) {
      results.push([name + " (clean exit)", false]);
      console.log(`FAIL: ${name}: okvm serve exited ${rc}: ${server.stderr.slice(-2000)}`);
    }
  }
}

async function openUi(page, server, width = 640) {
  await page.goto(server.url + "/");
  await waitFor("connected", async () => (await page.textContent("#conn")) === "connected");
  await waitFor("video", () => page.evaluate((w) => document.getElementById("video").naturalWidth === w, width));
}

// Client coordinates of a point of the video frame, with the letterbox of object-fit: contain.
async function framePoint(page, fx, fy) {
  const box = await page.locator("#video").boundingBox();
  const scale = Math.min(box.width / 640, box.height / 360);
  const w = 640 * scale, h = 360 * scale;
  return [box.x + (box.width - w) / 2 + fx * w, box.y + (box.height - h) / 2 + fy * h, box];
}

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.OKVM_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });

  await test("page loads and frames arrive", async (page, server) => {
    await openUi(page, server);
    const before = await server.metric("okvm_serve_frames_total");
    await waitFor("more frames", async () => (await server.metric("okvm_serve_frames_total")) >= before + 10);
    assert.match(await page.textContent("#video-info"), /640×360/);
    assert.equal(await page.textContent("#target"), "target connected");
    assert.equal(await page.isHidden("#overlay"), true);
  });

  await test("frames are drawn on the canvas as they arrive; ?video=img keeps the <img>", async (page, server) => {
    await openUi(page, server);
    assert.equal(await page.evaluate(() => document.getElementById("video").tagName), "CANVAS");
    // The page's own counter advances at the stream's rate (15 fps): about 8 frames in 0.6 s.
    const p0 = await page.evaluate(() => vstat.painted);
    await new Promise((r) => setTimeout(r, 600));
    const p1 = await page.evaluate(() => vstat.painted);
    assert.ok(p1 - p0 >= 5, `painted ${p1 - p0} frames in 0.6 s`);
    // What the canvas shows is one of the fixture frames, pixel for pixel (same decoder).
    const fixtures = fs.readdirSync(FRAMES).sort().map((f) => fs.readFileSync(path.join(FRAMES, f)).toString("base64"));
    const shown = () => page.evaluate(async (jpegs) => {
      const v = document.getElementById("video");
      const grid = (g) => { const a = []; for (let i = 1; i < 10; i++) for (let j = 1; j < 10; j++)
        a.push(...g.getImageData(Math.floor(i * v.width / 10), Math.floor(j * v.height / 10), 1, 1).data.slice(0, 3)); return a; };
      const now = grid(v.getContext("2d"));
      const ts = vstat.ts;
      const diffs = [];
      for (const b64 of jpegs) {
        const bm = await createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]));
        const c = document.createElement("canvas");
        c.width = bm.width; c.height = bm.height;
        const g = c.getContext("2d");
        g.drawImage(bm, 0, 0);
        diffs.push(Math.max(...grid(g).map((x, i) => Math.abs(x - now[i]))));
      }
      return { ts, best: diffs.indexOf(Math.min(...diffs)), diff: Math.min(...diffs), w: v.width, h: v.height };
    }, fixtures);
    const a = await shown();
    assert.deepEqual([a.w, a.h], [640, 360]);
    assert.ok(a.diff <= 2, `the canvas shows fixture ${a.best} (largest difference ${a.diff})`);
    await waitFor("the next frame", async () => (await page.evaluate(() => vstat.ts)) !== a.ts);
    const b = await shown();
    assert.ok(b.diff <= 2 && b.best !== a.best, JSON.stringify([a, b]));
    // The fallback: an <img> showing /stream, with the same geometry.
    await page.goto(server.url + "/?video=img");
    await waitFor("img video", () => page.evaluate(() => document.getElementById("video").naturalWidth === 640));
    assert.equal(await page.evaluate(() => document.getElementById("video").tagName), "IMG");
  });

  await test("typing into the page reaches the backend", async (page, server) => {
    await openUi(page, server);
    await page.click("#screen", { position: { x: 5, y: 5 } });
    await page.keyboard.type("hi");
    await page.keyboard.press("Shift+KeyA");
    await waitFor("key events", () => server.calls("key").length >= 8);
    const keys = server.calls("key").map((c) => `${c.code}${c.down ? "+" : "-"}`);
    assert.deepEqual(keys, ["KeyH+", "KeyH-", "KeyI+", "KeyI-", "ShiftLeft+", "KeyA+", "KeyA-", "ShiftLeft-"]);
  });

  await test("a click lands at the matching point of the video", async (page, server) => {
    await openUi(page, server);
    const [x, y, box] = await framePoint(page, 0.25, 0.6);
    await page.mouse.move(x, y);
    await page.mouse.down();
    await page.mouse.up();
    await waitFor("click", () => server.calls("mouse").some((c) => c.buttons === 1));
    const down = server.calls("mouse").find((c) => c.buttons === 1);
    assert.ok(Math.abs(down.x - 0.25) < 0.005 && Math.abs(down.y - 0.6) < 0.005, JSON.stringify(down));
    await waitFor("release", () => server.calls("mouse").slice(-1)[0].buttons === 0);
    // The letterbox (the video is 16:9 in a wider box here) is not part of the target screen.
    const n = server.calls("mouse").length;
    const [, top] = await framePoint(page, 0.5, 0);
    assert.ok(top - box.y > 20, "the page shows a letterbox above the picture");
    await page.mouse.click(x, box.y + 5);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await fetch(server.url + "/api/state");    // a round trip after the click
    assert.equal(server.calls("mouse").length, n, "a click in the letterbox sends nothing");
  });

  await test("phone: a tap clicks there", async (page, server) => {
    await openUi(page, server);
    const [x, y] = await framePoint(page, 0.5, 0.25);
    await page.touchscreen.tap(x, y);
    await waitFor("tap", () => server.calls("mouse").length >= 2);
    const m = server.calls("mouse");
    assert.deepEqual(m.map((c) => c.buttons), [1, 0]);
    assert.ok(Math.abs(m[0].x - 0.5) < 0.01 && Math.abs(m[0].y - 0.25) < 0.01, JSON.stringify(m[0]));
    assert.ok(await page.isVisible("#btn-osk"), "the on-screen keyboard button is there");
  }, { context: { viewport: { width: 412, height: 800 }, hasTouch: true, isMobile: true } });

  // A round trip over the page's own WebSocket: anything it sent before has been handled.
  const roundTrip = (page) => page.evaluate(() => new Promise((r) => {
    ws.addEventListener("message", function f(ev) {
      if (JSON.parse(ev.data).type === "pong") { ws.removeEventListener("message", f); r(); }
    });
    send({ type: "ping", t: 1 });
  }));
  const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true };

  await test("phone: Enter and Backspace of the on-screen keyboard are sent once", async (page, server) => {
    await openUi(page, server);
    await page.tap("#btn-osk");
    assert.equal(await page.evaluate(() => document.activeElement.id), "osk-input");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Backspace");
    await roundTrip(page);
    const keys = server.calls("key").map((c) => `${c.code}${c.down ? "+" : "-"}`);
    assert.deepEqual(keys, ["Enter+", "Enter-", "Backspace+", "Backspace-"]);
  }, { context: phone });

  await test("phone: fast typing on the on-screen keyboard arrives whole", async (page, server) => {
    await openUi(page, server);
    await page.tap("#btn-osk");
    await page.keyboard.type("phone typing");
    const typed = () => server.calls("typed").map((c) => c.text).join("");
    await waitFor("all typed", () => typed() === "phone typing", 8000).catch((e) => {
      throw new Error(e.message + ": " + JSON.stringify(typed()));
    });
    // After the queue ran dry the next characters go too, and Enter keeps its place among them.
    await page.keyboard.type(" ab");
    await page.keyboard.press("Enter");
    await page.keyboard.type("cd");
    await waitFor("more typed", () => typed() === "phone typing abcd", 8000);
    const seq = server.calls().filter((c) => c.op === "typed" || c.op === "key")
      .map((c) => c.op === "typed" ? c.text : `${c.code}${c.down ? "+" : "-"}`);
    assert.deepEqual(seq.slice(-6), ["a", "b", "Enter+", "Enter-", "c", "d"]);
    assert.equal(await page.isHidden("#toast"), true, "no error shown");
  }, { context: phone });

  await test("a second browser shows as another viewer", async (page, server) => {
    await openUi(page, server);
    assert.equal(await page.textContent("#users"), "only you");
    const other = await browser.newContext({ viewport: { width: 800, height: 600 } });
    const page2 = await other.newPage();
    await openUi(page2, server);
    await waitFor("+1 other", async () => (await page.textContent("#users")) === "+1 other");
    assert.match(await page.getAttribute("#users", "title"), /merged with yours\): 127\.0\.0\.1/);
    assert.equal(await page2.textContent("#users"), "+1 other");
    await other.close();
    await waitFor("only you again", async () => (await page.textContent("#users")) === "only you");
  });

  await test("wheel scrolls", async (page, server) => {
    await openUi(page, server);
    const [x, y] = await framePoint(page, 0.5, 0.5);
    await page.mouse.move(x, y);
    await page.mouse.wheel(0, 300);
    await waitFor("wheel", () => server.calls("wheel").reduce((a, c) => a + c.dy, 0) === 3);
  });

  const paragraph = "The quick brown fox jumps over the lazy dog.\nÄrger über Öl: 5 € & 10 % — done!";
  await test("paste a paragraph with layout and progress", async (page, server) => {
    await openUi(page, server);
    await page.click("#btn-paste");
    await page.fill("#paste-text", paragraph);
    await page.selectOption("#paste-layout", "de");
    await page.fill("#paste-cps", "400");
    await page.click("#paste-go");
    const n = [...paragraph].length;
    await waitFor("typed all", async () => (await page.textContent("#paste-status")) === `typed ${n}/${n}`, 30000);
    assert.equal(server.calls("typed").map((c) => c.text).join(""), paragraph);
    const t = server.calls("type")[0];
    assert.equal(t.layout, "de");
    assert.equal(t.cps, 400);
  });

  await test("the paste layout is the server's --layout, from its list", async (page, server) => {
    await openUi(page, server);
    await page.click("#btn-paste");
    await waitFor("de chosen", async () => (await page.inputValue("#paste-layout")) === "de");
    const n = await page.evaluate(() => $("paste-layout").options.length);
    assert.ok(n > 50, `the server's layouts are offered (${n})`);
    await page.fill("#paste-text", "äö");
    await page.click("#paste-go");
    await waitFor("typed", () => server.calls("typed").length === 2);
    assert.equal(server.calls("type")[0].layout, "de");
  }, { extra: ["--layout", "de"] });

  await test("the paste dialog shows the server's refusals", async (page, server) => {
    // Another browser's finished paste is not this dialog's progress.
    const other = await browser.newContext();
    const page2 = await other.newPage();
    await openUi(page2, server);
    await page2.evaluate(() => send({ type: "type", text: "xyz" }));
    await waitFor("other's paste", () => server.calls("typed").length === 3);
    await openUi(page, server);
    await page.click("#btn-paste");
    assert.equal(await page.textContent("#paste-status"), "", "no stale progress");
    assert.equal(await page.evaluate(() => $("paste-progress").value), 0);
    // A character the layout lacks: the server's reason, not "sending..." for ever.
    await page.fill("#paste-text", "grüße");
    await page.selectOption("#paste-layout", "us");
    await page.click("#paste-go");
    await waitFor("the reason", async () => /ü/.test(await page.textContent("#paste-status")), 5000)
      .catch(async (e) => { throw new Error(e.message + ": " + await page.textContent("#paste-status")); });
    // A second paste while one runs.
    await page.fill("#paste-text", "a slow paste of some length");
    await page.fill("#paste-cps", "20");
    await page.click("#paste-go");
    await waitFor("typing", async () => /^typing/.test(await page.textContent("#paste-status")));
    await page.click("#paste-go");
    assert.equal(await page.textContent("#paste-status"), "a paste is running");
    await page2.evaluate(() => send({ type: "release_all" }));
    await waitFor("stopped", async () => /^stopped/.test(await page.textContent("#paste-status")));
    assert.equal(server.calls("type").length, 2, "the second paste was not sent");
    await other.close();
  });

  await test("caps lock toggles and its indicator follows", async (page, server) => {
    await openUi(page, server);
    assert.equal(await page.getAttribute("#led-caps", "class"), "led");
    await page.click("#led-caps");
    await waitFor("caps on", async () => (await page.getAttribute("#led-caps", "class")) === "led on");
    await page.click("#led-caps");
    await waitFor("caps off", async () => (await page.getAttribute("#led-caps", "class")) === "led");
    assert.equal(server.calls("key").filter((c) => c.code === "CapsLock").length, 4);
  });

  await test("special keys menu and USB switch", async (page, server) => {
    await openUi(page, server);
    await page.click("#btn-keys");
    await page.click("text=Ctrl+Alt+Del");
    await page.click("#btn-keys");
    await page.click("[data-combo='ctrl+alt+f2']");
    await waitFor("combos", () => server.calls("combo").length === 2);
    assert.deepEqual(server.calls("combo").map((c) => c.combo), ["ctrl+alt+delete", "ctrl+alt+f2"]);
    await page.click("#btn-usb");
    await waitFor("usb host", async () => (await page.textContent("#btn-usb")) === "USB: host");
  });

  await test("after a toolbar click the keys go to the screen, Space presses no button", async (page, server) => {
    await openUi(page, server);
    const usb0 = await page.textContent("#btn-usb");
    await page.click("#btn-usb");
    await waitFor("usb switched", async () => (await page.textContent("#btn-usb")) !== usb0);
    const usb1 = await page.textContent("#btn-usb");
    await page.keyboard.press("Space");
    await page.keyboard.press("Space");
    await page.click("#led-caps");
    await page.keyboard.press("Enter");
    await page.click("#btn-mouse");
    await page.keyboard.press("Space");
    await roundTrip(page);
    assert.equal(await page.evaluate(() => document.activeElement.id), "screen");
    assert.equal(server.calls("switch").length, 1, "the USB port flipped once");
    assert.equal(await page.textContent("#btn-usb"), usb1);
    assert.match(await page.textContent("#btn-mouse"), /relative/);
    const keys = server.calls("key").map((c) => `${c.code}${c.down ? "+" : "-"}`);
    assert.deepEqual(keys, ["Space+", "Space-", "Space+", "Space-", "CapsLock+", "CapsLock-",
      "Enter+", "Enter-", "Space+", "Space-"]);
  });

  await test("the keys menu closes on Esc and an outside click, which is not sent", async (page, server) => {
    await openUi(page, server);
    await page.click("#btn-keys");
    await page.keyboard.press("Escape");
    assert.equal(await page.isHidden("#keys-menu"), true, "Esc closes it");
    await page.click("#btn-keys");
    const [x, y] = await framePoint(page, 0.1, 0.9);   // left of the menu, which is on the right
    await page.mouse.click(x, y);
    assert.equal(await page.isHidden("#keys-menu"), true, "an outside click closes it");
    await roundTrip(page);
    assert.deepEqual(server.calls("key"), [], "the Esc did not reach the target");
    assert.deepEqual(server.calls("mouse").filter((c) => c.buttons), [], "nor did the click");
    await page.click("#btn-keys");
    for (const c of ["f1", "f12", "esc", "tab", "up", "down", "left", "right"]) {
      assert.equal(await page.isVisible(`[data-combo='${c}']`), true, c + " is in the menu");
    }
    await page.click("[data-combo='f5']");
    await waitFor("F5", () => server.calls("combo").length === 1);
    assert.equal(server.calls("combo")[0].combo, "f5");
  });

  await test("leaving the page releases held keys", async (page, server) => {
    await openUi(page, server);
    await page.click("#screen", { position: { x: 5, y: 5 } });
    await page.keyboard.down("ShiftLeft");
    await waitFor("shift down", () => server.calls("key").some((c) => c.code === "ShiftLeft" && c.down));
    await page.click("#btn-full", { trial: true });
    await page.focus("#btn-paste");
    await waitFor("shift up", () => server.calls("key").some((c) => c.code === "ShiftLeft" && !c.down));
    await page.keyboard.up("ShiftLeft");
  });

  await test("target not connected and no signal are shown", async (page, server) => {
    await openUi(page, server, 1920);
    server.proc.kill("SIGUSR1");
    await waitFor("banner", async () => (await page.textContent("#target")) === "target not connected");
    assert.match(await page.textContent("#banner"), /Target not connected/);
    server.proc.kill("SIGUSR2");
    await waitFor("no signal", async () => (await page.textContent("#overlay")) === "No signal");
    server.proc.kill("SIGUSR1");
    server.proc.kill("SIGUSR2");
    await waitFor("back", async () => await page.isHidden("#overlay") && await page.isHidden("#banner"));
  }, { backend: ["-d", "emu"] }); // okvm-rec: SIGUSR1 unplugs the virtual target, SIGUSR2 its HDMI

  await test("reconnects after the connection drops", async (page, server) => {
    await openUi(page, server);
    // Drop the WebSocket from the page side by closing it the way a network error would.
    await page.evaluate(() => { ws.close(); });
    await waitFor("reconnecting", async () => (await page.textContent("#conn")) !== "connected", 5000);
    await waitFor("reconnected", async () => (await page.textContent("#conn")) === "connected");
  });

  await test("while disconnected the status pills are unknown, and retries come every 2 s at most", async (page, server) => {
    await openUi(page, server);
    assert.equal(await page.getAttribute("#target", "class"), "pill ok");
    await server.stop();
    await waitFor("disconnected", async () => (await page.textContent("#conn")) !== "connected", 5000);
    for (const [id, text] of [["#target", "target ?"], ["#video-info", "video ?"], ["#users", "users ?"]]) {
      assert.equal(await page.textContent(id), text);
      assert.equal(await page.getAttribute(id, "class"), "pill", id + " is grey");
    }
    await new Promise((r) => setTimeout(r, 4500));   // 0.5 + 1 + 2 s of retries, and more
    assert.ok(await page.evaluate(() => retryMs) <= 2000, "the back-off stops at 2 s");
  });

  // The virtual unit end to end: its --emu-events file is the oracle.
  const evfile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "okvm-e2e-emu-")), "events.jsonl");
  const emuEvents = () => fs.existsSync(evfile)
    ? fs.readFileSync(evfile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
  await test("virtual unit: typed keys become text, a click lands on the target", async (page, server) => {
    await openUi(page, server, 1920);
    await page.click("#screen", { position: { x: 5, y: 5 } });
    // keyboard.type() sends no Shift for capitals; a person's Shift is a key like any other.
    await page.keyboard.press("Shift+KeyH");
    await page.keyboard.type("i there");
    const typed = () => emuEvents().filter((e) => e.type === "text").map((e) => e.text).join("");
    await waitFor("text on the target", () => typed() === "Hi there").catch((e) => {
      throw new Error(e.message + `: ${JSON.stringify(typed())} ${JSON.stringify(emuEvents().slice(-6))}`);
    });
    const box = await page.locator("#video").boundingBox();
    const scale = Math.min(box.width / 1920, box.height / 1080);
    const w = 1920 * scale, h = 1080 * scale;
    await page.mouse.click(box.x + (box.width - w) / 2 + 0.75 * w, box.y + (box.height - h) / 2 + 0.5 * h);
    await waitFor("click on the target", () => emuEvents().some((e) => e.type === "mouse" && e.buttons === 1));
    const click = emuEvents().find((e) => e.type === "mouse" && e.buttons === 1);
    assert.ok(Math.abs(click.x - 3072) <= 8 && Math.abs(click.y - 2048) <= 8, JSON.stringify(click));
  }, { backend: ["-d", "emu", "--emu-events", evfile] });

  const conf = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "okvm-e2e-conf-")), "okvm.conf");
  const pw = "e2e password 1";
  await new Promise((resolve, reject) => {
    const p = spawn(OKVM, ["passwd", "--config", conf], { stdio: ["pipe", "ignore", "inherit"] });
    p.stdin.end(pw + "\n");
    p.on("exit", (c) => (c === 0 ? resolve() : reject(new Error("okvm passwd " + c))));
  });
  await test("log in and out", async (page, server) => {
    await page.goto(server.url + "/");
    await page.waitForURL(/\/login$/);
    await page.fill("#password", "not it");
    await page.click("#login-go");
    assert.equal(await page.getAttribute("#user", "placeholder"), "admin");
    await waitFor("error", async () =>
      (await page.textContent("#login-error")) === "wrong user name, password or code");
    // A single-password setup: the user name stays empty, the password is the admin's.
    await page.fill("#password", pw);
    await page.click("#login-go");
    await page.waitForURL(server.url + "/");
    await waitFor("connected", async () => (await page.textContent("#conn")) === "connected");
    await waitFor("logout shown", () => page.isVisible("#btn-logout"));
    const cookies = await page.context().cookies();
    const c = cookies.find((k) => k.name === "okvm_session");
    assert.ok(c && c.httpOnly && c.sameSite === "Strict" && c.expires > Date.now() / 1000);
    assert.equal(await page.textContent("#who"), "admin");
    assert.equal(await page.isHidden("#viewonly"), true);
    await page.click("#btn-logout");
    await page.waitForURL(/\/login$/);
    const st = await page.evaluate(() => fetch("/api/state").then((r) => r.status));
    assert.equal(st, 401);
  }, { extra: ["--config", conf] });

  // Users: olga (operator, TOTP) and vic (viewer), beside the admin password above.
  const opw = "olga's password", vpw = "vic's password";
  await okvmRun(["passwd", "--config", conf, "--user", "olga", "--role", "operator"], opw);
  await okvmRun(["passwd", "--config", conf, "--user", "vic", "--role", "viewer"], vpw);
  await okvmRun(["totp", "--config", conf, "--user", "olga"]);
  const uri = (await okvmRun(["totp", "--config", conf, "--user", "olga", "--show"]))
    .match(/otpauth:\/\/totp\/okvm:olga\?secret=([A-Z2-7]+)&/);
  assert.ok(uri, "okvm totp --show prints the otpauth URI");
  const secret = uri[1];

  await test("log in with a user name and a TOTP code", async (page, server) => {
    const sent = inputFrames(page);
    await page.goto(server.url + "/");
    await page.waitForURL(/\/login$/);
    assert.equal(await page.isHidden("#totp-row"), true, "no code field before the server asks");
    await page.fill("#user", "olga");
    await page.fill("#password", opw);
    await page.click("#login-go");
    await waitFor("code field", () => page.isVisible("#totp"));
    assert.equal(await page.evaluate(() => document.activeElement.id), "totp", "the code field has the focus");
    assert.equal(await page.getAttribute("#totp", "inputmode"), "numeric");
    assert.equal(await page.getAttribute("#totp", "autocomplete"), "one-time-code");
    assert.equal(await page.textContent("#login-error"), "enter the 6-digit code of your authenticator app");
    await shots(page, "login-totp");
    // A wrong code: six digits send it by themselves; the server's answer is shown.
    const right = totp(secret);
    const wrong = String((Number(right) + 500000) % 1000000).padStart(6, "0");
    await page.keyboard.type(wrong);
    await waitFor("wrong code", async () =>
      (await page.textContent("#login-error")) === "wrong user name, password or code");
    assert.equal(await page.inputValue("#totp"), "", "the wrong code is cleared");
    assert.equal(await page.isVisible("#totp"), true);
    await page.keyboard.type(right);
    await page.waitForURL(server.url + "/");
    await waitFor("connected", async () => (await page.textContent("#conn")) === "connected");
    await waitFor("user shown", async () => (await page.textContent("#who")) === "olga");
    assert.equal(await page.isHidden("#viewonly"), true);
    assert.equal(await page.isEnabled("#btn-paste"), true);
    await waitFor("video", () => page.evaluate(() => document.getElementById("video").naturalWidth === 640));
    await page.click("#screen", { position: { x: 5, y: 5 } });
    await page.keyboard.press("KeyK");
    await waitFor("key", () => server.calls("key").length === 2);
    assert.deepEqual(server.calls("key").map((c) => `${c.code}${c.down ? "+" : "-"}`), ["KeyK+", "KeyK-"]);
    assert.ok(sent.some((m) => m.type === "key"));
    await shots(page, "operator");
  }, { extra: ["--config", conf] });

  await test("a viewer sees view only and sends nothing", async (page, server) => {
    const sent = inputFrames(page);
    await page.goto(server.url + "/login");
    await page.fill("#user", "vic");
    await page.fill("#password", vpw);
    await page.press("#password", "Enter");
    await page.waitForURL(server.url + "/");
    await waitFor("connected", async () => (await page.textContent("#conn")) === "connected");
    await waitFor("view only", () => page.isVisible("#viewonly"));
    assert.equal(await page.textContent("#viewonly"), "view only");
    assert.equal(await page.textContent("#who"), "vic");
    for (const id of ["#btn-paste", "#btn-usb", "#btn-keys", "#btn-osk", "#led-caps", "#btn-mouse"]) {
      assert.equal(await page.isDisabled(id), true, id + " is greyed out");
      assert.match(await page.getAttribute(id, "title"), /role is viewer/, id + " says why");
    }
    assert.equal(await page.isEnabled("#btn-logout"), true);
    await waitFor("video", () => page.evaluate(() => document.getElementById("video").naturalWidth === 640));
    await page.click("#screen", { position: { x: 5, y: 5 } });
    await page.keyboard.press("KeyA");
    await page.keyboard.type("hello");
    const [x, y] = await framePoint(page, 0.5, 0.5);
    await page.mouse.click(x, y);
    await page.mouse.wheel(0, 300);
    await page.click("#btn-paste", { force: true }).catch(() => {});
    assert.equal(await page.evaluate(() => document.getElementById("paste").open), false, "no paste dialog");
    // A round trip over the page's own WebSocket: anything it sent before has been handled.
    await page.evaluate(() => new Promise((r) => {
      ws.addEventListener("message", function f(ev) {
        if (JSON.parse(ev.data).type === "pong") { ws.removeEventListener("message", f); r(); }
      });
      send({ type: "ping", t: 1 });
    }));
    assert.deepEqual(server.calls(), [], "nothing reached the target");
    assert.deepEqual(sent, [], "the page sent no input at all");
    await shots(page, "viewer");
    await page.setViewportSize({ width: 1200, height: 800 });
    await page.click("#btn-logout");
    await page.waitForURL(/\/login$/);
    assert.equal(await page.evaluate(() => fetch("/api/state").then((r) => r.status)), 401);
  }, { extra: ["--config", conf] });

  const lockConf = path.join(path.dirname(conf), "lock.conf");
  fs.writeFileSync(lockConf, fs.readFileSync(conf, "utf8").replace("[serve]\n", "[serve]\nlogin_max_failures = 1\n"),
    { mode: 0o600 });
  await test("the login page shows the server's refusals", async (page, server) => {
    await page.goto(server.url + "/login");
    await page.click("#login-go");
    assert.equal(await page.textContent("#login-error"), "enter the password");
    await page.fill("#user", "vic");
    await page.fill("#password", "a guess");
    await page.click("#login-go");
    await waitFor("403", async () => (await page.textContent("#login-error")) === "wrong user name, password or code");
    await page.fill("#password", vpw);
    await page.click("#login-go");
    await waitFor("429", async () => /^too many attempts; retry in \d+ s$/.test(await page.textContent("#login-error")));
    assert.equal(await page.isDisabled("#login-go"), true, "the button waits out the lockout");
    await shots(page, "login-locked");
    await page.evaluate(() => { document.getElementById("login-go").disabled = false; });
    await server.stop();
    await page.click("#login-go");
    await waitFor("unreachable", async () => /^cannot reach okvm/.test(await page.textContent("#login-error")));
  }, { extra: ["--config", lockConf] });

  await browser.close();
  const failed = results.filter((r) => !r[1]).length;
  console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log("FAIL: " + (e.stack || e)); process.exit(1); });
