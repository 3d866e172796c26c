"use strict";
// Browser tests of okvm serve: Debian's chromium driven by playwright-core.
// Usage: node serve.test.js BUILD_DIR   (scripts/run-e2e does this)
// The server is okvm-rec (tests/recorder/okvm-rec.c: the product's code plus a log of every
// backend call the unit accepted, the oracle here) on the virtual unit, with the fixture JPEGs
// as its video: `-d emu --video frames:DIR@15`. OKVM_E2E_BACKEND_ARGS (space-separated) swaps
// the unit's arguments; a test's own `backend` does too.
const { spawn } = require("child_process");
const crypto = require("crypto");
const assert = require("assert/strict");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { OKVM, FRAMES, ART, sleep, waitFor, startServe, launch } = require("./util");

class Server {
  static async start(extra = [], env = {}, backendArgs = null) {
    const backend = backendArgs || (process.env.OKVM_E2E_BACKEND_ARGS
      ? process.env.OKVM_E2E_BACKEND_ARGS.split(/\s+/).filter(Boolean)
      : ["-d", "emu", "--video", `frames:${FRAMES}@15`]);
    return Object.assign(new Server(), await startServe([...backend, ...extra], { env, rec: true }));
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
      if (m.type !== "ping" && m.type !== "video") sent.push(m); // video: the codec request, not input
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
    console.log(server.stderr().slice(-2000));
  } finally {
    await page.screenshot({ path: path.join(ART, name.replace(/\W+/g, "-") + ".png") }).catch(() => {});
    await context.close();
    const rc = await server.stop();
    if (rc !== 0) {
      results.push([name + " (clean exit)", false]);
      console.log(`FAIL: ${name}: okvm serve exited ${rc}: ${server.stderr().slice(-2000)}`);
    }
  }
}

// The tests of this file count and compare the device's JPEGs, so they ask for MJPEG: the page's
// auto choice is H.264 wherever WebCodecs decodes it, loopback included (tests/e2e/h264.test.js).
async function openUi(page, server, width = 640) {
  await page.goto(server.url + "/?video=mjpeg");
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

// The same for a frame of any size.
async function framePointN(page, fx, fy, fw, fh) {
  const box = await page.locator("#video").boundingBox();
  const scale = Math.min(box.width / fw, box.height / fh);
  const w = fw * scale, h = fh * scale;
  return [box.x + (box.width - w) / 2 + fx * w, box.y + (box.height - h) / 2 + fy * h, box];
}

async function main() {
  browser = await launch();

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
    await page.fill("#paste-text", "a slow paste of some length, long enough to run for four seconds at twenty a second");
    await page.fill("#paste-cps", "20");
    await page.click("#paste-go");
    await waitFor("typing", async () => /^typing/.test(await page.textContent("#paste-status")));
    await page.click("#paste-go");
    // The refusal stays in front of the progress events that follow (20 a second here).
    await sleep(200);
    assert.match(await page.textContent("#paste-status"), /^a paste is running(: typing \d+\/83)?$/);
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

  // ---- issue 13: phones, on-screen keys, fullscreen, layouts, macros, options, fallbacks ----
  // Touch by the DevTools protocol: several fingers at once, each [x, y] (playwright has tap only).
  const cdps = new WeakMap();
  async function touch(page, type, points) {
    if (!cdps.has(page)) cdps.set(page, await page.context().newCDPSession(page));
    await cdps.get(page).send("Input.dispatchTouchEvent", {
      type, touchPoints: points.map(([x, y], i) => ({ x, y, id: i, radiusX: 1, radiusY: 1, force: 1 })) });
  }
  const near = (a, b, eps) => Math.abs(a - b) <= eps;
  // Console errors and warnings, and uncaught page errors: a person never sees those.
  function consoleProblems(page) {
    const out = [];
    // (Not Chromium's own "Failed to load resource" line for an HTTP error, which the page shows.)
    page.on("console", (m) => {
      if ((m.type() === "error" || m.type() === "warning") && !/^Failed to load resource: the server responded/.test(m.text()))
        out.push(m.type() + ": " + m.text());
    });
    page.on("pageerror", (e) => out.push("pageerror: " + e.message));
    return out;
  }
  const mouseSeq = (server) => server.calls("mouse").map((c) => c.buttons);

  await test("phone: a toolbar of two rows at most, the picture as wide as the screen, the rest behind ☰", async (page, server) => {
    const problems = consoleProblems(page);
    await openUi(page, server);
    const bar = await page.locator("#bar").boundingBox();
    assert.ok(bar.height <= 2 * 38 + 12, `the toolbar is ${bar.height} px tall`);
    const scr = await page.locator("#screen").boundingBox();
    assert.ok(near(scr.height, 844 - bar.height, 1), `the screen takes the rest: ${scr.height} px`);
    const [x0, y0] = await framePoint(page, 0, 0);
    const [x1, y1] = await framePoint(page, 1, 1);
    assert.ok(near(x0, 0, 0.5) && near(x1 - x0, 390, 0.5), `the picture is ${x1 - x0} px wide`);
    assert.ok(near(y1 - y0, 390 * 9 / 16, 0.5));
    for (const id of ["#btn-osk", "#btn-vkbd", "#btn-more", "#conn", "#target", "#led-caps"])
      assert.equal(await page.isVisible(id), true, id + " is in the bar");
    for (const id of ["#btn-paste", "#btn-keys", "#btn-usb", "#btn-options"])
      assert.equal(await page.isVisible(id), false, id + " is behind ☰");
    await page.screenshot({ path: path.join(ART, "phone-390x844.png") });
    await page.tap("#btn-more");
    for (const id of ["#btn-paste", "#btn-keys", "#btn-macros", "#btn-mouse", "#btn-usb", "#btn-shot", "#btn-full", "#btn-options"])
      assert.equal(await page.isVisible(id), true, id + " is in the ☰ panel");
    await page.tap("#btn-keys");
    assert.equal(await page.isVisible("[data-combo='ctrl+alt+delete']"), true);
    await page.screenshot({ path: path.join(ART, "phone-menu-390x844.png") });
    await page.tap("[data-combo='ctrl+alt+delete']");
    await waitFor("combo", () => server.calls("combo").length === 1);
    assert.equal(await page.isVisible("#btn-paste"), false, "the panel closed after use");
    await page.tap("#btn-more");
    await page.tap("#btn-paste");
    assert.equal(await page.evaluate(() => $("paste").open), true, "Paste opens from the panel");
    await page.tap("#paste-cancel");
    await page.tap("#btn-vkbd");
    await waitFor("keys shown", () => page.isVisible("#vkbd"));
    const kb = await page.locator("#vkbd").boundingBox();
    const bar2 = await page.locator("#bar").boundingBox();
    const scr2 = await page.locator("#screen").boundingBox();
    assert.ok(near(bar2.height + scr2.height + kb.height, 844, 1), "the keys sit below the picture");
    const [, yk] = await framePoint(page, 1, 1);
    assert.ok(yk <= kb.y + 0.5, "the keys cover none of the picture");
    await page.screenshot({ path: path.join(ART, "phone-keys-390x844.png") });
    // Turned sideways: one row of toolbar, the picture as tall as the rest.
    await page.tap("#btn-vkbd");
    await page.setViewportSize({ width: 844, height: 390 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const bar3 = await page.locator("#bar").boundingBox();
    assert.ok(bar3.height <= 38 + 8, `sideways the toolbar is ${bar3.height} px tall`);
    const [, ty0] = await framePoint(page, 0, 0);
    const [, ty1] = await framePoint(page, 1, 1);
    assert.ok(near(ty1 - ty0, 390 - bar3.height, 0.5), `the picture is ${ty1 - ty0} px tall`);
    await page.screenshot({ path: path.join(ART, "phone-844x390.png") });
    assert.deepEqual(problems, []);
  }, { context: phone });

  await test("phone: long press right-clicks, a drag holds the button, two fingers scroll", async (page, server) => {
    await openUi(page, server);
    const [x, y] = await framePoint(page, 0.3, 0.4);
    await touch(page, "touchStart", [[x, y]]);
    await sleep(750);
    await touch(page, "touchEnd", []);
    await waitFor("right click", () => server.calls("mouse").length >= 2);
    let m = server.calls("mouse");
    assert.deepEqual(m.map((c) => c.buttons), [2, 0], "a right click, no left one");
    assert.ok(near(m[0].x, 0.3, 0.003) && near(m[0].y, 0.4, 0.003), JSON.stringify(m[0]));
    // A drag from (0.2, 0.5) to (0.6, 0.7): pressed at the start, held, let go at the end.
    const [ax, ay] = await framePoint(page, 0.2, 0.5);
    const [bx, by] = await framePoint(page, 0.6, 0.7);
    await touch(page, "touchStart", [[ax, ay]]);
    for (let i = 1; i <= 10; i++) {
      await touch(page, "touchMove", [[ax + (bx - ax) * i / 10, ay + (by - ay) * i / 10]]);
      await sleep(20);
    }
    await touch(page, "touchEnd", []);
    await waitFor("drag released", () => server.calls("mouse").slice(-1)[0].buttons === 0 && server.calls("mouse").length > 4);
    m = server.calls("mouse").slice(2);
    assert.equal(m[0].buttons, 1);
    assert.ok(near(m[0].x, 0.2, 0.003) && near(m[0].y, 0.5, 0.003), "pressed where the finger went down " + JSON.stringify(m[0]));
    assert.ok(m.slice(0, -1).every((c) => c.buttons === 1), "held all the way: " + JSON.stringify(m));
    const end = m[m.length - 1];
    assert.ok(near(end.x, 0.6, 0.003) && near(end.y, 0.7, 0.003), "let go at the end " + JSON.stringify(end));
    assert.ok(m.length >= 4, "moves in between");
    // Two fingers moving up 160 px together: the content follows them, 4 notches down.
    const [cx, cy] = await framePoint(page, 0.5, 0.8);
    await touch(page, "touchStart", [[cx - 40, cy], [cx + 40, cy]]);
    for (let i = 1; i <= 8; i++) {
      await touch(page, "touchMove", [[cx - 40, cy - 20 * i], [cx + 40, cy - 20 * i]]);
      await sleep(20);
    }
    await touch(page, "touchEnd", []);
    await waitFor("wheel", () => server.calls("wheel").reduce((a, c) => a + c.dy, 0) === 4, 3000).catch((e) => {
      throw new Error(e.message + ": " + JSON.stringify(server.calls("wheel")));
    });
    assert.equal(server.calls("mouse").length, m.length + 2, "the fingers clicked nothing");
    assert.equal(await page.isHidden("#zoom-pill"), true, "nor zoomed");
  }, { context: phone });

  await test("phone: pinch zooms the picture where the fingers are, taps still land exactly", async (page, server) => {
    await openUi(page, server);
    const [cx, cy] = await framePoint(page, 0.6, 0.5);
    // Fingers 40 px apart spread to 120 px about the same middle: 3x, the point under it stays.
    await touch(page, "touchStart", [[cx - 20, cy], [cx + 20, cy]]);
    for (let i = 1; i <= 10; i++) {
      await touch(page, "touchMove", [[cx - 20 - 4 * i, cy], [cx + 20 + 4 * i, cy]]);
      await sleep(20);
    }
    await touch(page, "touchEnd", []);
    await waitFor("zoomed", () => page.isVisible("#zoom-pill"));
    assert.equal(await page.textContent("#zoom-pill"), "3.0× ✕");
    await roundTrip(page);
    assert.deepEqual(server.calls(), [], "pinching sends nothing");
    const w = 390 * 3;   // the picture's width now, in CSS px
    await page.touchscreen.tap(cx, cy);
    await page.touchscreen.tap(cx + 39, cy - 26);
    await waitFor("taps", () => server.calls("mouse").length === 4);
    const m = server.calls("mouse");
    assert.ok(near(m[0].x, 0.6, 0.002) && near(m[0].y, 0.5, 0.002), "the pinch's middle stayed put " + JSON.stringify(m[0]));
    assert.ok(near(m[2].x, 0.6 + 39 / w, 0.002) && near(m[2].y, 0.5 - 26 / (w * 9 / 16), 0.002),
      "3x finer than before " + JSON.stringify(m[2]));
    await page.tap("#zoom-pill");
    assert.equal(await page.isHidden("#zoom-pill"), true);
    await page.touchscreen.tap(cx, cy);
    await waitFor("tap", () => server.calls("mouse").length === 6);
    assert.ok(near(server.calls("mouse")[4].x, 0.6, 0.003), "back to the whole picture");
  }, { context: phone });

  await test("on-screen keys: sticky modifiers and every special key reach the virtual target as physical keys", async (page, server) => {
    await openUi(page, server, 1920);
    assert.equal(await page.isHidden("#vkbd"), true, "hidden until asked for");
    await page.tap("#btn-vkbd");
    const k = (code) => page.tap(`#vkbd [data-code='${code}']`);
    await k("ControlLeft"); await k("KeyC");                     // once: for the next key
    await k("ShiftLeft"); await k("ShiftLeft");                   // twice: locked
    await k("KeyA"); await k("KeyB"); await k("ShiftLeft");       // a third time: let go
    await k("AltRight"); await k("KeyQ");
    await k("KeyX");                                              // no modifier left
    await k("AltLeft"); await k("MetaLeft"); await k("Tab");      // two armed at once
    assert.equal(await page.getAttribute("#vkbd [data-code='ControlLeft']", "class"), "wide mod");
    for (const c of ["Escape", "Tab", ...[...Array(12)].map((_, i) => "F" + (i + 1)), "Home", "End", "PageUp",
      "PageDown", "Delete", "Insert", "Enter", "Backspace", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]) await k(c);
    const E0 = 0xE0, E1 = 0xE1, E2 = 0xE2, E3 = 0xE3, E6 = 0xE6;
    const tapK = (u) => [[u, true], [u, false]];
    const want = [[E0, true], ...tapK(0x06), [E0, false],
      [E1, true], ...tapK(0x04), ...tapK(0x05), [E1, false],
      [E6, true], ...tapK(0x14), [E6, false], ...tapK(0x1B),
      [E2, true], [E3, true], ...tapK(0x2B), [E2, false], [E3, false],
      ...[0x29, 0x2B, ...[...Array(12)].map((_, i) => 0x3A + i), 0x4A, 0x4D, 0x4B, 0x4E, 0x4C, 0x49, 0x28, 0x2A,
        0x52, 0x51, 0x50, 0x4F].flatMap(tapK)];
    const got = () => emuEvents().filter((e) => e.type === "key").map((e) => [e.usage, e.down]);
    await waitFor("all keys on the target", () => got().length >= want.length, 15000).catch((e) => {
      throw new Error(e.message + ": " + JSON.stringify(got()));
    });
    assert.deepEqual(got(), want);
    assert.equal(emuEvents().filter((e) => e.type === "text").map((e) => e.text).join("").slice(0, 3), "ABx",
      "Shift gave capitals, x none");
    // A locked modifier shows as such and goes up when the keys are hidden.
    await k("ControlLeft"); await k("ControlLeft");
    assert.match(await page.getAttribute("#vkbd [data-code='ControlLeft']", "class"), /locked/);
    await page.tap("#btn-vkbd");
    await waitFor("ctrl up", () => got().length === want.length + 2);
    assert.deepEqual(got().slice(-2), [[E0, true], [E0, false]]);
  }, { backend: ["-d", "emu", "--emu-events", evfile], context: phone });

  await test("fullscreen locks the keyboard, Esc and Ctrl+W reach the target; without the API the page says so", async (page, server) => {
    await page.addInitScript(() => {
      window.lockCalls = [];
      if (!navigator.keyboard) return;
      const lock = navigator.keyboard.lock.bind(navigator.keyboard), unlock = navigator.keyboard.unlock.bind(navigator.keyboard);
      navigator.keyboard.lock = (k) => { window.lockCalls.push(["lock", k === undefined ? null : k]); return lock(k); };
      navigator.keyboard.unlock = () => { window.lockCalls.push(["unlock"]); return unlock(); };
    });
    await openUi(page, server);
    assert.equal(await page.evaluate(() => typeof navigator.keyboard.lock), "function", "Chromium has the API");
    await page.click("#btn-full");
    await waitFor("fullscreen", () => page.evaluate(() => !!document.fullscreenElement));
    await waitFor("lock", () => page.evaluate(() => window.lockCalls.length === 1));
    // lock() without a list: every key, the ones the browser keeps for itself among them.
    assert.deepEqual(await page.evaluate(() => window.lockCalls), [["lock", null]]);
    assert.equal(await page.evaluate(() => document.activeElement.id), "screen", "the screen has the keys");
    await waitFor("info", async () => /Esc, Ctrl\+W, Alt\+Tab and Win go to the target/.test(await page.textContent("#toast")));
    await page.keyboard.press("Control+KeyW");
    await page.keyboard.press("Escape");
    await roundTrip(page);
    assert.deepEqual(server.calls("key").map((c) => `${c.code}${c.down ? "+" : "-"}`),
      ["ControlLeft+", "KeyW+", "KeyW-", "ControlLeft-", "Escape+", "Escape-"]);
    await page.evaluate(() => document.exitFullscreen());
    await waitFor("unlock", () => page.evaluate(() => window.lockCalls.some((c) => c[0] === "unlock")));
    // A browser without navigator.keyboard: the person is told which keys stay the browser's.
    const ctx = await browser.newContext();
    const p2 = await ctx.newPage();
    await p2.addInitScript(() => { Object.defineProperty(Navigator.prototype, "keyboard", { get: () => undefined }); });
    await openUi(p2, server);
    await p2.click("#btn-full");
    await waitFor("fallback message", async () => /cannot capture Esc, Ctrl\+W, Alt\+Tab and Win/.test(await p2.textContent("#toast")));
    assert.equal(await p2.isVisible("#toast"), true);
    await ctx.close();
  });

  await test("layout picker: the server's layout first, a search narrows the list", async (page, server) => {
    await openUi(page, server);
    await page.click("#btn-paste");
    await waitFor("fr chosen", async () => (await page.inputValue("#paste-layout")) === "fr");
    const all = await page.evaluate(() => $("paste-layout").options.length);
    await page.fill("#layout-search", "german");
    const opts = await page.evaluate(() => [...$("paste-layout").options].map((o) => [o.value, o.textContent]));
    assert.ok(opts.length >= 3 && opts.length < all / 4, `${opts.length} of ${all}`);
    assert.ok(opts.every(([, t]) => /german/i.test(t)), JSON.stringify(opts));
    assert.ok(opts.some(([v]) => v === "de"));
    await page.fill("#layout-search", "german no dead");
    const two = await page.evaluate(() => [...$("paste-layout").options].map((o) => o.value));
    assert.ok(two.includes("de:nodeadkeys"), JSON.stringify(two));
    await page.selectOption("#paste-layout", "de:nodeadkeys");
    await page.fill("#layout-search", "");
    assert.equal(await page.evaluate(() => $("paste-layout").options.length), all, "the whole list again");
    assert.equal(await page.inputValue("#paste-layout"), "de:nodeadkeys", "the choice stays");
    await page.fill("#layout-search", "no such language");
    assert.equal(await page.evaluate(() => $("paste-layout").options.length), 0);
    assert.match(await page.getAttribute("#layout-search", "title"), /no layout matches/);
    await page.fill("#layout-search", "");
    await page.fill("#paste-text", "ä");
    await page.click("#paste-go");
    await waitFor("typed", () => server.calls("typed").length === 1);
    assert.equal(server.calls("type")[0].layout, "de:nodeadkeys");
  }, { extra: ["--layout", "fr"] });

  const macroSteps = "combo ctrl+alt+delete\nwait 200\ntext ab\\n\ncombo f5";
  await test("macros: written in the editor, run over the WebSocket, kept, exported and imported", async (page, server) => {
    const problems = consoleProblems(page);
    await openUi(page, server);
    await page.click("#btn-macros");
    assert.match(await page.textContent("#macro-list"), /no macros yet/);
    await page.click("#btn-macro-edit");
    await page.fill("#macro-name", "unlock");
    await page.fill("#macro-steps", "combo ctrl+alt+delete\nsleep 5");
    await page.click("#macro-save");
    assert.equal(await page.textContent("#macro-status"), "line 2: unknown step 'sleep' (use combo, text or wait)");
    await page.fill("#macro-steps", macroSteps);
    await page.click("#macro-save");
    assert.equal(await page.textContent("#macro-status"), "saved 'unlock' (4 steps)");
    await page.click("#macro-close");
    await page.click("#btn-macros");
    await page.click("text=▶ unlock");
    await waitFor("the macro ran", () => server.calls("combo").length === 2, 8000);
    const seq = server.calls().filter((c) => c.op === "combo" || c.op === "typed")
      .map((c) => c.op === "combo" ? c.combo : c.text);
    assert.deepEqual(seq, ["ctrl+alt+delete", "a", "b", "\n", "f5"]);
    assert.equal(server.calls("type")[0].text, "ab\n");
    await waitFor("stop hidden", () => page.isHidden("#btn-macro-stop"));
    // Kept in the browser: there after a reload.
    await page.reload();
    await waitFor("connected", async () => (await page.textContent("#conn")) === "connected");
    await page.click("#btn-macros");
    assert.match(await page.textContent("#macro-list"), /▶ unlock/);
    await page.click("#btn-macro-edit");
    assert.equal(await page.inputValue("#macro-steps"), macroSteps);
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#macro-export")]);
    assert.equal(dl.suggestedFilename(), "okvm-macros.json");
    const file = path.join(server.tmp, "macros.json");
    await dl.saveAs(file);
    const j = JSON.parse(fs.readFileSync(file, "utf8"));
    assert.deepEqual(j, { okvm_macros: 1, macros: [{ name: "unlock", steps: [{ combo: "ctrl+alt+delete" },
      { wait: 200 }, { text: "ab\n" }, { combo: "f5" }] }] });
    // Another browser imports it; a broken file is refused with its reason.
    const ctx = await browser.newContext();
    const p2 = await ctx.newPage();
    await openUi(p2, server);
    await p2.click("#btn-macros");
    await p2.click("#btn-macro-edit");
    const bad = path.join(server.tmp, "bad.json");
    fs.writeFileSync(bad, JSON.stringify({ macros: [{ name: "x", steps: [{ wait: -1 }] }] }));
    await p2.setInputFiles("#macro-file", bad);
    await waitFor("refused", async () => /bad\.json: macro 'x' step 1: wait takes milliseconds/.test(await p2.textContent("#macro-status")));
    await p2.setInputFiles("#macro-file", file);
    await waitFor("imported", async () => (await p2.textContent("#macro-status")) === "imported 1 macro from macros.json");
    assert.equal(await p2.inputValue("#macro-name"), "unlock");
    assert.equal(await p2.evaluate(() => localStorage.getItem("okvm.macros")), JSON.stringify(j.macros));
    await ctx.close();
    assert.deepEqual(problems, []);
  });

  await test("a running macro can be stopped: no further step, everything released", async (page, server) => {
    await page.addInitScript(() => localStorage.setItem("okvm.macros", JSON.stringify([
      { name: "slow", steps: [{ text: "hi" }, { wait: 30000 }, { combo: "f1" }] },
      { name: "typo", steps: [{ combo: "ctrl+nosuch" }, { combo: "f2" }] }])));
    await openUi(page, server);
    await page.click("#btn-macros");
    await page.click("text=▶ slow");
    await waitFor("typed", () => server.calls("typed").length === 2);
    assert.equal(await page.isVisible("#btn-macro-stop"), true);
    assert.equal(await page.textContent("#btn-macro-stop"), "■ Stop 'slow'");
    await page.click("#btn-macro-stop");
    await waitFor("released", () => server.calls("release_all").length === 1);
    await waitFor("stop hidden", () => page.isHidden("#btn-macro-stop"));
    await sleep(300);
    await roundTrip(page);
    assert.deepEqual(server.calls("combo"), [], "the step after the wait never ran");
    // A step the server refuses stops the macro with its reason, in the page.
    await page.click("#btn-macros");
    await page.click("text=▶ typo");
    await waitFor("reason", async () => /macro 'typo' stopped at step 1: combo: unknown key 'nosuch'/.test(await page.textContent("#toast")));
    await roundTrip(page);
    assert.deepEqual(server.calls("combo"), [], "f2 was not sent");
  });

  await test("options: stretch and 1:1 map clicks exactly, the cursor hides, scroll speed and direction, the jiggler", async (page, server) => {
    const problems = consoleProblems(page);
    await openUi(page, server);
    assert.equal(await page.isHidden("#jiggle-pill"), true, "the jiggler is off by default");
    await page.click("#btn-options");
    await page.selectOption("#opt-scale", "stretch");
    await page.check("#opt-cursor");
    await page.fill("#opt-scroll-speed", "2");
    await page.dispatchEvent("#opt-scroll-speed", "change");
    await page.check("#opt-scroll-reverse");
    await page.click("#opt-close");
    const sb = await page.locator("#screen").boundingBox();
    await page.mouse.click(sb.x + sb.width * 0.25, sb.y + sb.height * 0.1);
    await waitFor("click", () => server.calls("mouse").some((c) => c.buttons === 1));
    let c = server.calls("mouse").find((m) => m.buttons === 1);
    assert.ok(near(c.x, 0.25, 0.003) && near(c.y, 0.1, 0.003), "stretch: the whole box is the screen " + JSON.stringify(c));
    assert.equal(await page.evaluate(() => getComputedStyle($("video")).cursor), "none");
    await page.mouse.wheel(0, 300);
    await waitFor("wheel", () => server.calls("wheel").reduce((a, w) => a + w.dy, 0) === -6);
    // 1:1: the frame's 640x360 pixels, centred (device pixel ratio 1 here).
    await page.click("#btn-options");
    await page.selectOption("#opt-scale", "1:1");
    await page.click("#opt-close");
    const vb = await page.locator("#video").boundingBox();
    assert.deepEqual([vb.width, vb.height], [640, 360]);
    assert.ok(near(vb.x - sb.x, (sb.width - 640) / 2, 1) && near(vb.y - sb.y, (sb.height - 360) / 2, 1), JSON.stringify([vb, sb]));
    const n = server.calls("mouse").length;
    await page.mouse.click(vb.x + 160, vb.y + 90);
    await waitFor("click", () => server.calls("mouse").slice(n).some((m) => m.buttons === 1));
    c = server.calls("mouse").slice(n).find((m) => m.buttons === 1);
    assert.ok(near(c.x, 0.25, 0.002) && near(c.y, 0.25, 0.002), "1:1 " + JSON.stringify(c));
    // Kept for the next visit.
    await page.reload();
    await waitFor("connected", async () => (await page.textContent("#conn")) === "connected");
    assert.equal(await page.evaluate(() => opts.scale), "1:1");
    // The jiggler: one pixel right and back when the page was idle for N s, and shown.
    await page.click("#btn-options");
    await page.fill("#opt-jiggle-s", "1");
    await page.dispatchEvent("#opt-jiggle-s", "change");
    await page.check("#opt-jiggle");
    await page.click("#opt-close");
    assert.equal(await page.textContent("#jiggle-pill"), "jiggler 1 s");
    await waitFor("nudges", () => server.calls("rel").length >= 4, 5000);
    const r = server.calls("rel").slice(0, 4).map((m) => [m.dx, m.dy]);
    assert.deepEqual(r, [[1, 0], [-1, 0], [1, 0], [-1, 0]]);
    await page.click("#btn-options");
    await page.fill("#opt-jiggle-s", "0");
    await page.dispatchEvent("#opt-jiggle-s", "change");
    await waitFor("refused", async () => /a number from 1 to 3600/.test(await page.textContent("#toast")));
    await page.uncheck("#opt-jiggle");
    await page.click("#opt-close");
    assert.equal(await page.isHidden("#jiggle-pill"), true);
    const k = server.calls("rel").length;
    await sleep(1500);
    assert.equal(server.calls("rel").length, k, "off: no more nudges");
    assert.deepEqual(problems, []);
  });

  await test("the paste dialog types over HTTP while the WebSocket is down", async (page, server) => {
    await openUi(page, server);
    // The WebSocket goes and cannot come back (the page's constructor now opens nothing).
    await page.evaluate(() => {
      window.WebSocket = function () { return { send() {}, close() {} }; };
      ws.close();
    });
    await waitFor("down", async () => (await page.textContent("#conn")) !== "connected");
    await page.click("#btn-paste");
    await page.fill("#paste-text", "über");
    await page.selectOption("#paste-layout", "de");
    await page.click("#paste-go");
    await waitFor("sent", async () => /^sent over HTTP/.test(await page.textContent("#paste-status")));
    await waitFor("typed", () => server.calls("typed").length === 4);
    assert.equal(server.calls("typed").map((c) => c.text).join(""), "über");
    assert.equal(server.calls("type")[0].layout, "de");
    // The server's refusal is shown as it is.
    await page.selectOption("#paste-layout", "us");
    await page.click("#paste-go");
    await waitFor("refused", async () => /U\+00FC 'ü' at 0: not on layout 'us'/.test(await page.textContent("#paste-status")));
  });

  await test("a stream the page cannot cut reloads into ?video=img and says so; clicks still land", async (page, server) => {
    let first = true;
    await page.route(/\/stream/, (route) => {
      if (!first) return route.continue();
      first = false;
      return route.fulfill({ status: 200, contentType: "image/jpeg", body: "not a multipart stream" });
    });
    const problems = consoleProblems(page);
    await page.goto(server.url + "/?video=mjpeg");
    await page.waitForURL(/\?video=img$/);
    await waitFor("img video", () => page.evaluate(() => document.getElementById("video").naturalWidth === 640));
    assert.equal(await page.evaluate(() => document.getElementById("video").tagName), "IMG");
    assert.match(await page.textContent("#toast"), /could not be cut into frames \(not a multipart stream\)/);
    await waitFor("connected", async () => (await page.textContent("#conn")) === "connected");
    const [x, y] = await framePoint(page, 0.75, 0.2);
    await page.mouse.click(x, y);
    await waitFor("click", () => server.calls("mouse").some((c) => c.buttons === 1));
    const c = server.calls("mouse").find((m) => m.buttons === 1);
    assert.ok(near(c.x, 0.75, 0.003) && near(c.y, 0.2, 0.003), JSON.stringify(c));
    // A reload stays in the <img> path.
    await page.reload();
    await waitFor("img video", () => page.evaluate(() => document.getElementById("video").naturalWidth === 640));
    assert.equal(await page.evaluate(() => document.getElementById("video").tagName), "IMG");
    assert.deepEqual(problems, []);
  });

  await test("copy text: a box dragged on the picture asks GET /api/ocr for its frame pixels, the text goes to the clipboard", async (page, server) => {
    const problems = consoleProblems(page);
    // The server's answers stand in for it here, in the page (a playwright route would hold back
    // the streaming fetch of the video).
    await page.addInitScript(() => {
      const real = window.fetch;
      window.ocrAsked = [];
      window.ocrAnswer = { status: 200, body: { text: "hello world\n", words: [] } };
      window.fetch = (url, o) => {
        if (!String(url).startsWith("/api/ocr?")) return real(url, o);
        window.ocrAsked.push(String(url));
        return Promise.resolve(new Response(JSON.stringify(window.ocrAnswer.body),
          { status: window.ocrAnswer.status, headers: { "Content-Type": "application/json" } }));
      };
    });
    await openUi(page, server);
    await page.click("#btn-ocr");
    const [ax, ay] = await framePoint(page, 0.25, 0.25);
    const [bx, by] = await framePoint(page, 0.75, 0.5);
    await page.mouse.move(ax, ay);
    await page.mouse.down();
    await page.mouse.move((ax + bx) / 2, (ay + by) / 2);
    assert.equal(await page.isVisible("#ocr-box"), true, "the box is drawn");
    await page.mouse.move(bx, by);
    await page.mouse.up();
    await waitFor("copied", async () => /^copied 11 characters: hello world$/.test(await page.textContent("#toast")));
    assert.deepEqual(await page.evaluate(() => window.ocrAsked), ["/api/ocr?x=160&y=90&w=320&h=90"]);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "hello world");
    assert.equal(await page.isHidden("#ocr-box"), true);
    await roundTrip(page);
    assert.deepEqual(server.calls(), [], "the drag reached nothing on the target");
    // The next drag is a drag on the target again; the server's refusal is shown.
    await page.mouse.click(ax, ay);
    await waitFor("click", () => server.calls("mouse").some((c) => c.buttons === 1));
    await page.evaluate(() => { window.ocrAnswer = { status: 503, body: { ok: false, error: "ocr: no video signal" } }; });
    await page.click("#btn-ocr");
    await page.mouse.move(ax, ay);
    await page.mouse.down();
    await page.mouse.move(bx, by);
    await page.mouse.up();
    await waitFor("refusal", async () => (await page.textContent("#toast")) === "copy text: ocr: no video signal");
    await page.click("#btn-ocr");
    await page.keyboard.press("Escape");
    assert.equal(await page.textContent("#toast"), "copy text: cancelled");
    assert.deepEqual(server.calls("key"), [], "Esc only ended the picking");
    assert.deepEqual(problems, []);
  }, { context: { permissions: ["clipboard-read", "clipboard-write"] } });

  await test("copy text: a box over the virtual screen's text puts that text on the clipboard (the real GET /api/ocr)", async (page, server) => {
    const problems = consoleProblems(page);
    await openUi(page, server, 1920);
    const r = await fetch(server.url + "/api/type", { method: "POST", body: "copy me please\nnot this line\n" });
    assert.equal(r.status, 202);
    await waitFor("typed", () => server.calls("typed").length === 29, 10000);
    // The virtual screen's terminal: text from (44, 82), cells of 10x20 frame pixels.
    const f = (x, y) => framePointN(page, x / 1920, y / 1080, 1920, 1080);
    const [ax, ay] = await f(40, 80);
    const [bx, by] = await f(44 + 20 * 10, 82 + 20 + 1);
    await page.click("#btn-ocr");
    await page.mouse.move(ax, ay);
    await page.mouse.down();
    await page.mouse.move(bx, by, { steps: 4 });
    await page.mouse.up();
    await waitFor("copied", async () => /^copied 14 characters/.test(await page.textContent("#toast")), 30000)
      .catch(async (e) => { throw new Error(e.message + ": " + await page.textContent("#toast")); });
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "copy me please");
    assert.equal(server.calls("mouse").length, 0, "no click on the target");
    assert.deepEqual(problems, []);
  }, { backend: ["-d", "emu"], context: { permissions: ["clipboard-read", "clipboard-write"] } });

  await test("relative mouse: the pointer lock is taken, or its refusal is said in the page", async (page, server) => {
    const problems = consoleProblems(page);
    await openUi(page, server);
    await page.click("#btn-mouse");
    const [x, y] = await framePoint(page, 0.5, 0.5);
    await page.mouse.click(x, y);
    await waitFor("locked or refused", () => page.evaluate(() => document.pointerLockElement === screenEl
      || /^relative mouse: the browser refused/.test($("toast").textContent)));
    assert.doesNotMatch(await page.textContent("#toast"), /page error/);
    assert.deepEqual(problems, []);
  });

  await test("screenshots of the desktop and the phone", async (page, server) => {
    await page.addInitScript(() => {
      localStorage.setItem("okvm.macros", JSON.stringify([{ name: "log in", steps: [{ combo: "ctrl+alt+delete" }] }]));
      localStorage.setItem("okvm.options", JSON.stringify({ jiggle: true, jiggleS: 60 }));
    });
    await page.setViewportSize({ width: 1440, height: 900 });
    await openUi(page, server);
    assert.doesNotMatch(await page.textContent("#video-info"), / 0 fps/, "no rate before one was measured");
    await page.screenshot({ path: path.join(ART, "desktop-1440x900.png") });
    await page.click("#btn-keys");
    await page.screenshot({ path: path.join(ART, "desktop-keys-1440x900.png") });
    await page.click("#btn-macros");
    await page.screenshot({ path: path.join(ART, "desktop-macros-1440x900.png") });
    const bar = await page.locator("#bar").boundingBox();
    const widths = await page.evaluate(() => [...document.querySelectorAll("#bar > *, #tools > *")]
      .filter((e) => e.id !== "tools" && e.offsetWidth).map((e) => (e.id || e.className) + ":" + e.offsetWidth));
    assert.ok(bar.height < 50, "one row on a desktop: " + widths.join(" "));
    for (const f of ["desktop-1440x900.png", "desktop-keys-1440x900.png"])
      assert.ok(fs.statSync(path.join(ART, f)).size > 10000, f);
  });

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
    for (const id of ["#btn-paste", "#btn-usb", "#btn-keys", "#btn-osk", "#led-caps", "#btn-mouse", "#btn-vkbd", "#btn-macros"]) {
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
