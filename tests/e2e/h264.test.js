"use strict";
// H.264 in the browser: Debian's chromium decodes the access units okvm serve sends over the
// WebSocket with WebCodecs (web/h264.js) and draws them on the page's canvas. Text typed on the
// virtual target must appear on that canvas as it appears on the virtual screen (GET /snapshot,
// the device's own JPEG), and the options' Video select must switch to MJPEG and back.
// Usage: node h264.test.js BUILD_DIR   (scripts/run-e2e does this)
const assert = require("assert/strict");
const fs = require("fs");
const path = require("path");
const { ART, startServe, metric, launch } = require("./util");

// Mean absolute difference (0-255) of the canvas and the newest /snapshot, over the whole frame
// and over the pixels that changed since `before` (a copy of an earlier canvas), in the page.
async function compare(page, keepAs) {
  return page.evaluate(async (keep) => {
    const v = document.getElementById("video");
    const w = v.width, h = v.height;
    const c = new OffscreenCanvas(w, h).getContext("2d", { willReadFrequently: true });
    c.drawImage(v, 0, 0);
    const now = c.getImageData(0, 0, w, h).data;
    const snap = await createImageBitmap(await (await fetch("/snapshot")).blob());
    const s = new OffscreenCanvas(w, h).getContext("2d", { willReadFrequently: true });
    s.drawImage(snap, 0, 0, w, h);
    const ref = s.getImageData(0, 0, w, h).data;
    const before = window.h264Before;
    let all = 0, changed = 0, nChanged = 0;
    for (let i = 0; i < now.length; i += 4) {
      const d = Math.abs(now[i] - ref[i]) + Math.abs(now[i + 1] - ref[i + 1]) + Math.abs(now[i + 2] - ref[i + 2]);
      all += d / 3;
      if (before && Math.abs(now[i] - before[i]) + Math.abs(now[i + 1] - before[i + 1]) > 96) {
        changed += d / 3;
        nChanged++;
      }
    }
    if (keep) window.h264Before = now;
    return { w, h, all: all / (w * h), changed: nChanged ? changed / nChanged : 0, nChanged };
  }, keepAs);
}

async function main() {
  const server = await startServe(["-d", "emu"], { prefix: "h264-" });
  const { url, proc: srv } = server;
  const browser = await launch();
  let failed = 0;
  const step = async (name, fn) => {
    try { await fn(); console.log("ok: " + name); } catch (e) { failed++; console.log("FAIL: " + name + ": " + (e.stack || e)); }
  };
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await step("?video=h264 decodes H.264 from the WebSocket onto the canvas", async () => {
    await page.goto(url + "/?video=h264");
    await page.waitForFunction(() => typeof vstat !== "undefined" && vstat.codec === "h264"
      && vstat.painted > 5, null, { timeout: 20000 });
    assert.equal(await metric(url, "okvm_serve_stream_variants"), 1, "one H.264 encoder runs");
    assert.ok(await metric(url, "okvm_serve_video_units_total") > 5, "units went out over the WebSocket");
    const r = await compare(page, true);
    assert.deepEqual([r.w, r.h], [1920, 1080], "the canvas has the virtual screen's size");
    assert.ok(r.all < 6, `the canvas matches the virtual screen (mean difference ${r.all.toFixed(2)})`);
  });
  await step("text typed on the target appears on the H.264 canvas as on the screen", async () => {
    const res = await fetch(url + "/api/type", { method: "POST", body: "WebCodecs draws this: H.264 0123456789\n" });
    assert.equal(res.status, 202, "the paste was accepted");
    for (let i = 0; i < 200 && (await metric(url, "okvm_typing_queue")) > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    const r = await compare(page, false);
    await page.screenshot({ path: path.join(ART, "h264-typed.png") });
    assert.ok(r.nChanged > 500, `the typed text changed the canvas (${r.nChanged} pixels)`);
    assert.ok(r.changed < 40, `and where it changed, the canvas agrees with the screen (mean ${r.changed.toFixed(1)})`);
    assert.ok(r.all < 6, `the whole canvas still matches (mean ${r.all.toFixed(2)})`);
  });
  await step("the options' Video select switches to MJPEG and back", async () => {
    await page.evaluate(() => {
      const s = document.getElementById("opt-codec");
      s.value = "mjpeg";
      s.dispatchEvent(new Event("change"));
    });
    await page.waitForFunction(() => vstat.codec === "mjpeg", null, { timeout: 10000 });
    const p0 = await page.evaluate(() => vstat.painted);
    await page.evaluate(() => fetch("/api/type", { method: "POST", body: "mjpeg again\n" }));
    await page.waitForFunction((p) => vstat.painted > p + 2, p0, { timeout: 10000 });
    for (let i = 0; i < 50 && (await metric(url, "okvm_serve_stream_variants")) > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(await metric(url, "okvm_serve_stream_variants"), 0, "the encoder stopped with MJPEG");
    await page.evaluate(() => {
      const s = document.getElementById("opt-codec");
      s.value = "h264";
      s.dispatchEvent(new Event("change"));
    });
    await page.waitForFunction(() => vstat.codec === "h264", null, { timeout: 10000 });
    const p1 = await page.evaluate(() => vstat.painted);
    await page.evaluate(() => fetch("/api/type", { method: "POST", body: "h264 again\n" }));
    await page.waitForFunction((p) => vstat.painted > p + 2, p1, { timeout: 10000 });
    assert.equal(await page.evaluate(() => localStorage.getItem("okvm.codec")), "h264", "the choice is kept");
  });
  await step("the MJPEG stream's quality: a lighter setting is asked for, shared, and shown", async () => {
    const asked = [];
    page.on("request", (r) => { if (r.url().includes("/stream?")) asked.push(r.url()); });
    await page.evaluate(() => {
      const c = document.getElementById("opt-codec");
      c.value = "mjpeg";
      c.dispatchEvent(new Event("change"));
      const s = document.getElementById("opt-mjpeg");
      s.value = "low";
      s.dispatchEvent(new Event("change"));
    });
    await page.waitForFunction(() => vstat.codec === "mjpeg" && document.getElementById("video").naturalWidth === 960,
      null, { timeout: 15000 });
    assert.ok(asked.some((u) => /[?&]width=960&q=50&fps=15&/.test(u)), `the page asked for the low setting: ${asked}`);
    assert.equal(await metric(url, "okvm_serve_stream_variants"), 1, "the server encodes it (one variant)");
    const p0 = await page.evaluate(() => vstat.painted);
    await page.evaluate(() => fetch("/api/type", { method: "POST", body: "low quality\n" }));
    await page.waitForFunction((p) => vstat.painted > p + 2, p0, { timeout: 10000 });
    assert.equal(await page.evaluate(() => localStorage.getItem("okvm.mjpeg")), "low", "the choice is kept");
    // The suggestion: two slow windows in a row name the next lighter setting, once.
    const verdicts = await page.evaluate(() => {
      okvmQuality.reset();
      const v = [okvmQuality.judge(30, 30, "full"), okvmQuality.judge(10, 30, "full"),
        okvmQuality.judge(10, 30, "full"), okvmQuality.judge(5, 30, "full")];
      okvmQuality.reset();
      v.push(okvmQuality.judge(10, 30, "tiny"), okvmQuality.judge(10, 30, "tiny"));
      okvmQuality.reset();
      v.push(okvmQuality.judge(10, 30, "medium"), okvmQuality.judge(25, 30, "medium"), okvmQuality.judge(10, 30, "medium"));
      return v;
    });
    assert.deepEqual(verdicts, [null, null, "medium", null, null, null, null, null, null],
      "a lighter setting is suggested after two slow windows in a row, once, and never past tiny");
    await page.evaluate(() => {
      const s = document.getElementById("opt-mjpeg");
      s.value = "full";
      s.dispatchEvent(new Event("change"));
    });
    await page.waitForFunction(() => document.getElementById("video").naturalWidth === 1920, null, { timeout: 15000 });
  });
  await step("auto (no choice made) picks H.264 on loopback, and MJPEG where WebCodecs is missing", async () => {
    // A fresh context has no remembered choice. Loopback is no proof of a fast link (an ssh -L
    // tunnel is loopback too), so auto only asks whether the browser can decode H.264.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const auto = await ctx.newPage();
    auto.on("pageerror", (e) => errors.push(e.message));
    await auto.goto(url + "/");
    await auto.waitForFunction(() => typeof vstat !== "undefined" && vstat.codec === "h264" && vstat.painted > 2,
      null, { timeout: 20000 });
    assert.equal(await auto.evaluate(() => document.getElementById("opt-codec").value), "auto");
    await ctx.close();
    // Without VideoDecoder (plain HTTP from another machine, or a browser without WebCodecs).
    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx2.addInitScript(() => { delete window.VideoDecoder; });
    const plain = await ctx2.newPage();
    plain.on("pageerror", (e) => errors.push(e.message));
    const sent = [];
    plain.on("websocket", (ws) => ws.on("framesent", (f) => {
      try { if (JSON.parse(f.payload).type === "video") sent.push(f.payload); } catch { /* binary */ }
    }));
    await plain.goto(url + "/");
    await plain.waitForFunction(() => typeof vstat !== "undefined" && vstat.codec === "mjpeg" && vstat.painted > 2
      && document.getElementById("video").naturalWidth === 1920, null, { timeout: 20000 });
    assert.deepEqual(sent, [], "the page without WebCodecs never asks for H.264");
    await ctx2.close();
  });
  await step("no page errors", async () => assert.deepEqual(errors, []));
  await browser.close();
  const code = await server.stop();
  if (code !== 0) { failed++; console.log("FAIL: okvm serve exited " + code + ": " + server.stderr().slice(-2000)); }
  fs.rmSync(server.tmp, { recursive: true, force: true });
  console.log(failed ? `h264: ${failed} failed` : "h264: all passed");
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
