"use strict";
// Browser tests of the virtual media upload (web/media.js, docs/power.md "Virtual media"):
// okvm serve on the virtual unit with a 64 MiB sparse file as the USB stick in its switchable
// port (-d emu --emu-media FILE), Debian's chromium driven by playwright-core. The page's disk
// dialog picks an image (setInputFiles), asks before it writes (naming the stick and the size),
// uploads it, shows the phases on its progress bar and the SHA-256 the server verified. The
// oracles are the stick FILE itself (byte for byte) and the unit's --emu-events (the port's
// switch events, the power events of the boot box).
// Usage: node media.test.js BUILD_DIR   (scripts/run-e2e does this)
const assert = require("assert/strict");
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { ART, sleep, waitFor, startServe, launch, runCase } = require("./util");

const MiB = 1024 * 1024;
const STICK = 64 * MiB;

const sha = (b) => crypto.createHash("sha256").update(b).digest("hex");
const mb = (n) => (n / 1e6).toFixed(1) + " MB"; // the page's fmtBytes below 1 GB

// The server with a fresh sparse stick, a spool folder ([media] spool_dir) and the events file. opts:
// delay (OKVM_MEDIA_DELAY_MS: a slow stick), power (a virtual ATX adapter, power on).
async function startServer(opts = {}) {
  const s = await startServe((tmp) => {
    fs.writeFileSync(path.join(tmp, "stick"), "");
    fs.truncateSync(path.join(tmp, "stick"), STICK);
    fs.mkdirSync(path.join(tmp, "spool"));
    const args = ["-d", "emu", "--emu-media", path.join(tmp, "stick"), "--emu-events",
      path.join(tmp, "ev.jsonl"), "--emu-video", "640x360@10"];
    const conf = path.join(tmp, "okvm.conf");
    fs.writeFileSync(conf, `[media]\nspool_dir = ${path.join(tmp, "spool")}\n` +
      (opts.power ? "[power]\ncycle_off_ms = 200\n" : ""), { mode: 0o600 });
    args.push("--config", conf);
    if (opts.power) args.push("--emu-pins", "usb-serial", "--emu-power", "on");
    return args;
  }, { prefix: "media-", env: { OKVM_MEDIA_DELAY_MS: String(opts.delay || 0) } });
  s.stick = path.join(s.tmp, "stick");
  s.stickBytes = (n) => {
    const fd = fs.openSync(s.stick, "r");
    const b = Buffer.alloc(n === undefined ? STICK : n);
    fs.readSync(fd, b, 0, b.length, 0);
    fs.closeSync(fd);
    return b;
  };
  s.untouched = () => s.stickBytes().equals(Buffer.alloc(STICK));
  s.switches = () => s.events().filter((e) => e.type === "switch").map((e) => e.to);
  s.spoolFiles = () => fs.readdirSync(path.join(s.tmp, "spool")).filter((n) => n.startsWith("okvm-media-"));
  s.media = async () => (await fetch(s.url + "/api/media")).json();
  return s;
}

// An image file in the server's folder (setInputFiles takes paths: nothing goes through CDP).
function image(server, name, data) {
  const p = path.join(server.tmp, name);
  fs.writeFileSync(p, data);
  return p;
}

// The page with the dialog open; its confirm() questions are kept in page.asked and answered
// by page.answer (true: accept). Every change of the phase line is kept in window.seen, with
// the bar's value (null: no value, a moving bar) and max.
async function openDialog(context, server) {
  const page = await context.newPage();
  page.errors = [];
  page.asked = [];
  page.answer = true;
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("dialog", (d) => { page.asked.push(d.message()); page.answer ? d.accept() : d.dismiss(); });
  await page.goto(server.url + "/");
  await page.waitForSelector("#btn-media", { timeout: 10000 });
  assert.equal(await page.getAttribute("#btn-media", "aria-label"), "Virtual media");
  assert.equal(await page.locator("#btn-media svg.icon").count(), 1, "a drawn icon, no emoji");
  await page.click("#btn-media");
  await page.waitForSelector("#media-dlg[open]");
  await waitFor("the stick line", async () => /^USB stick /.test(await page.textContent("#media-stick")));
  await page.evaluate(() => {
    window.seen = [];
    const ph = document.getElementById("media-phase"), bar = document.getElementById("media-bar");
    const note = () => {
      const last = window.seen[window.seen.length - 1];
      const now = { phase: ph.dataset.phase || "", value: bar.hasAttribute("value") ? bar.value : null, max: bar.max, text: ph.textContent };
      if (!last || last.text !== now.text || last.phase !== now.phase) window.seen.push(now);
    };
    new MutationObserver(note).observe(ph, { childList: true, characterData: true, subtree: true, attributes: true });
  });
  return page;
}

// Picks the file, clicks Write, waits for the job to end in the page (or a refusal before it);
// returns the result line.
async function write(page, file, { boot = false, end = true } = {}) {
  await page.setInputFiles("#media-file", file);
  if (boot) await page.check("#media-boot");
  await page.click("#media-write");
  if (!end) return null;
  await waitFor("the job's end in the page", async () =>
    ["done", "failed"].includes(await page.getAttribute("#media-phase", "data-phase")) ||
    ((await page.getAttribute("#media-result", "class")) === "bad" && (await page.isEnabled("#media-write"))), 60000);
  return page.textContent("#media-result");
}

let browser;
const results = [];

async function test(name, fn, opts = {}) {
  if (process.env.OKVM_E2E_ONLY && !name.includes(process.env.OKVM_E2E_ONLY)) return;
  await runCase(browser, results, "media", name, await startServer(opts), fn, async (context) => {
    for (const p of context.pages()) assert.deepEqual(p.errors || [], [], "no page errors");
  });
}

async function main() {
  browser = await launch();

  await test("write a raw and a .gz image: asked first, phases on the bar, verified sha256, the stick holds it", async (context, server) => {
    const page = await openDialog(context, server);
    const dev = fs.realpathSync(server.stick);
    assert.equal(await page.textContent("#media-stick"), `USB stick ${dev} (67.1 MB), port at the target`);
    assert.ok(await page.isDisabled("#media-boot"), "no power control: the boot box is off");

    // dismissed: nothing uploaded, nothing written
    const data = crypto.randomBytes(6 * MiB + 12345);
    const raw = image(server, "disk.img", data);
    page.answer = false;
    await write(page, raw, { end: false });
    await waitFor("the question", async () => page.asked.length === 1);
    assert.equal(page.asked[0], `Write disk.img (${mb(data.length)}) to ${dev} (67.1 MB)? Everything on it is lost.`);
    await sleep(300);
    assert.equal((await server.media()).job, null, "a dismissed question starts no job");
    assert.ok(server.untouched(), "a dismissed question writes nothing");

    // accepted
    page.answer = true;
    const res = await write(page, raw);
    assert.equal(page.asked.length, 2);
    assert.equal(await page.getAttribute("#media-phase", "data-phase"), "done", await page.textContent("#media-phase"));
    assert.match(res, new RegExp(`^written ${data.length} bytes in [0-9.]+ s \\([0-9.]+ MB/s\\), verified: sha256 ${sha(data)}$`));
    assert.equal(await page.getAttribute("#media-result", "class"), "ok");
    const seen = await page.evaluate(() => window.seen);
    const phases = seen.map((x) => x.phase).filter((p, i, a) => p && p !== a[i - 1]);
    const order = ["upload", "check", "switch", "write", "verify", "switch", "done"];
    const it = order[Symbol.iterator]();
    assert.ok(phases.every((p) => { for (const o of it) if (o === p) return true; return false; }),
      `the phases in order: ${phases}`);
    assert.ok(phases.includes("write") && phases.at(-1) === "done", `write and done shown: ${phases}`);
    const mid = seen.filter((x) => x.phase === "write" && x.value > 0 && x.value < x.max);
    assert.ok(mid.length >= 1, `the bar moves during the write: ${JSON.stringify(seen)}`);
    assert.equal(mid[0].max, data.length, "the bar's end is the image's size");
    assert.match(mid[0].text, /^write: [0-9.]+ MB of 6\.3 MB \(\d+ %\), [0-9.]+ MB\/s/, "bytes, percent and MB/s");
    assert.ok(seen.filter((x) => ["check", "switch"].includes(x.phase)).every((x) => x.value === null),
      `a moving bar (no value) while it checks and moves the port: ${JSON.stringify(seen)}`);
    assert.ok(await page.evaluate(() => { const b = document.getElementById("media-bar");
      return b.hasAttribute("value") && b.value === b.max; }), "the bar full at the end");
    assert.ok(server.stickBytes(data.length).equals(data), "the stick's first bytes are the image");
    assert.ok(server.stickBytes().subarray(data.length).equals(Buffer.alloc(STICK - data.length)), "the rest unchanged");
    assert.deepEqual(server.switches(), ["host", "target"], "the port went to the host, then back to the target");
    assert.deepEqual(server.spoolFiles(), [], "the spool file is gone");
    await page.screenshot({ path: path.join(ART, "media-done.png") });

    // a .gz one: unpacked on the way; the question names the packed size
    const data2 = Buffer.concat([crypto.randomBytes(2 * MiB), Buffer.alloc(2 * MiB), crypto.randomBytes(77)]);
    const packed = zlib.gzipSync(data2, { level: 1 });
    const gz = image(server, "other.img.gz", packed);
    const res2 = await write(page, gz);
    assert.equal(page.asked[2], `Write other.img.gz (${mb(packed.length)}) to ${dev} (67.1 MB)? Everything on it is lost.`);
    assert.match(res2, new RegExp(`^written ${data2.length} bytes .*verified: sha256 ${sha(data2)}$`));
    assert.equal(await page.textContent("#media-phase"), "done: other.img.gz");
    assert.ok(server.stickBytes(data2.length).equals(data2), "the stick holds the unpacked .gz image");
    assert.ok(server.stickBytes(data.length).subarray(data2.length).equals(data.subarray(data2.length)),
      "past the .gz image, the first image's bytes");
    assert.deepEqual(server.switches(), ["host", "target", "host", "target"]);
    await waitFor("the stick line at the target", async () => /port at the target$/.test(await page.textContent("#media-stick")));
  }, { delay: 120 });

  await test("cancel during the write: the page says the medium is not bootable, the port stays at the host", async (context, server) => {
    const page = await openDialog(context, server);
    const data = crypto.randomBytes(16 * MiB);
    await write(page, image(server, "slow.img", data), { end: false });
    await waitFor("the write under way", async () => (await page.getAttribute("#media-phase", "data-phase")) === "write" &&
      (await page.evaluate(() => document.getElementById("media-bar").value)) > 0, 20000);
    assert.ok(await page.isEnabled("#media-cancel"), "Cancel is offered while it writes");
    assert.ok(await page.isDisabled("#media-write"), "Write is not, while it writes");
    await page.screenshot({ path: path.join(ART, "media-writing.png") });
    await page.click("#media-cancel");
    await waitFor("failed", async () => (await page.getAttribute("#media-phase", "data-phase")) === "failed", 20000);
    const res = await page.textContent("#media-result");
    assert.match(res, /^media: cancelled after \d+ of 16777216 bytes .*: the medium is not bootable; the port stays at the host$/);
    assert.equal(await page.getAttribute("#media-result", "class"), "bad");
    assert.equal(await page.textContent("#media-phase"), "failed: slow.img");
    await waitFor("the stick line at the host", async () => /port at the host$/.test(await page.textContent("#media-stick")));
    assert.ok(await page.isEnabled("#media-write"), "Write is offered again");
    assert.ok(await page.isDisabled("#media-cancel"));
    assert.deepEqual(server.switches(), ["host"], "the port stays at the host");
    const got = server.stickBytes(data.length);
    assert.ok(got.subarray(0, MiB).equals(data.subarray(0, MiB)) && !got.equals(data), "part of the image, not all");
    const j = await server.media();
    assert.equal(j.stick.usb, "host");
    assert.equal(j.job.cancelled, true);
  }, { delay: 150 });

  await test("an image larger than the stick is refused in the page with the server's message, nothing written", async (context, server) => {
    const page = await openDialog(context, server);
    // raw: the check before the upload refuses it (413): no question, no upload
    const big = path.join(server.tmp, "big.img");
    fs.writeFileSync(big, "");
    fs.truncateSync(big, STICK + 1);
    await write(page, big, { end: false });
    await waitFor("the refusal", async () => (await page.textContent("#media-result")) !== "");
    const dev = fs.realpathSync(server.stick);
    assert.equal(await page.textContent("#media-result"),
      `media: big.img (67.1 MB, ${STICK + 1} bytes) does not fit on ${dev} (67.1 MB, ${STICK} bytes): refused`);
    assert.equal(await page.getAttribute("#media-result", "class"), "bad");
    assert.deepEqual(page.asked, [], "refused before the question");
    const st = await fetch(server.url + `/api/media?action=check&name=big.img&size=${STICK + 1}`, { method: "POST" });
    assert.equal(st.status, 413, "the server's answer is 413");
    assert.equal((await st.json()).error, await page.textContent("#media-result"), "the page shows the server's message");
    assert.equal((await server.media()).job, null, "no job");
    assert.ok(await page.isEnabled("#media-write"));
    await page.screenshot({ path: path.join(ART, "media-too-large.png") });
    // .gz: small packed, too large once unpacked: the server's check after the upload
    fs.writeFileSync(path.join(server.tmp, "zeros.img.gz"), zlib.gzipSync(Buffer.alloc(STICK + MiB)));
    const res = await write(page, path.join(server.tmp, "zeros.img.gz"));
    assert.equal(page.asked.length, 1, "asked once for the .gz");
    assert.match(res, new RegExp(`^media: zeros\\.img\\.gz \\(68\\.2 MB, ${STICK + MiB} bytes\\) does not fit on ${fs.realpathSync(server.stick)} \\(67\\.1 MB, ${STICK} bytes\\): refused`));
    assert.equal(await page.textContent("#media-phase"), "failed: zeros.img.gz");
    assert.ok(server.untouched(), "the stick still all zeros");
    assert.deepEqual(server.switches(), ["host", "target"], "the port back at the target");
    assert.deepEqual(server.spoolFiles(), [], "no spool file left");
  });

  await test("the boot box power-cycles the target after the write", async (context, server) => {
    const page = await openDialog(context, server);
    assert.ok(await page.isEnabled("#media-boot"), "power control: the boot box is offered");
    const data = crypto.randomBytes(3 * MiB + 1);
    const res = await write(page, image(server, "boot.img", data), { boot: true });
    assert.match(page.asked[0], /\? Everything on it is lost\. Then the target is power-cycled\.$/);
    assert.match(res, new RegExp(`verified: sha256 ${sha(data)}; power cycle: `), res);
    assert.ok(server.stickBytes(data.length).equals(data));
    const ev = server.events().filter((e) => e.type === "switch" || e.type === "power")
      .map((e) => e.type + ":" + (e.to || e.state));
    assert.deepEqual(ev.filter((x) => ["switch:host", "switch:target", "power:off", "power:on"].includes(x)).slice(-4),
      ["switch:host", "switch:target", "power:off", "power:on"], `written, back at the target, then off and on: ${ev}`);
  }, { power: true });

  await browser.close();
  const failed = results.filter((r) => !r[1]).length;
  console.log(`e2e media: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log("FAIL: " + (e.stack || e)); process.exit(1); });
