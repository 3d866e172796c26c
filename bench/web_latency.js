"use strict";
// Frame captured -> painted in Chromium, for the page's two video paths side by side: the <img>
// showing /stream (the fallback, forced with /?video=img), the canvas the page draws each JPEG on
// as it arrives (fetch() stream, createImageBitmap; /?video=mjpeg), and the same canvas fed by
// H.264 over the WebSocket and WebCodecs (/?video=h264). Prints figures, asserts nothing.
// Usage: node bench/web_latency.js [BUILD_DIR] [SECONDS_PER_RUN] [WIDTHxHEIGHT] [FPS,...]
//   (defaults: 8 s, 640x360, 30,10; `bench/web_latency.js build 8 1920x1080 30` is the 1080p30)
// Needs tests/e2e/node_modules (scripts/run-e2e installs it) and Chromium (/usr/bin/chromium, or
// OKVM_CHROMIUM).
//
// What the figure is. okvm serve -d frames:DIR@FPS serves 64 solid-colour JPEGs made here, each
// colour its own index. Every part of /stream carries X-Timestamp, the frame's capture time on
// CLOCK_MONOTONIC. This script reads /stream itself (a second client) to learn, per JPEG (by its
// bytes), when each copy was captured. In the page, a requestAnimationFrame loop reads the centre
// pixel of #video (img or canvas) every animation frame; the first animation frame whose pixel
// shows a new colour is that frame's "painted" time (the rAF timestamp, performance.now() clock).
// The page's clock is mapped onto CLOCK_MONOTONIC (node's process.hrtime is CLOCK_MONOTONIC on
// Linux) by the round trip of page.evaluate(performance.now) with the smallest delay, to within
// half of it (printed, typically < 1 ms). captured -> painted = painted - X-Timestamp: it includes
// the server's fan-out, loopback, the browser's network stack, decoding, and the wait for the
// next animation frame (up to 16.7 ms at 60 Hz); not the display's own scan-out.
// Also printed: captured -> received by this script's own stream client, the server's
// okvm_serve_frame_write_seconds (frame ready -> completely written), and for the canvas path the
// page's own last byte -> drawn (from the page's video statistics).
const path = require("path");
const fs = require("fs");
const os = require("os");
const net = require("net");
const http = require("http");
const crypto = require("crypto");
const { spawn } = require("child_process");
const { chromium } = require(path.join(__dirname, "..", "tests", "e2e", "node_modules", "playwright-core"));

const BUILD = path.resolve(process.argv[2] || "build");
const SECONDS = Number(process.argv[3] || 8);
const [W, H] = (process.argv[4] || "640x360").split("x").map(Number);
const RATES = (process.argv[5] || "30,10").split(",").map(Number);
const OKVM = path.join(BUILD, "okvm");
const N = 64;   // frames; colour k: each of R, G, B one of 4 levels
const level = (v) => Math.round(v / 85);
const colourOf = (k) => [(k & 3) * 85, ((k >> 2) & 3) * 85, ((k >> 4) & 3) * 85];
const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function pct(a, q) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
}
const fmt = (a) => a.length ? `p50 ${pct(a, 0.5).toFixed(1).padStart(6)} ms  p99 ${pct(a, 0.99).toFixed(1).padStart(6)} ms  (n=${a.length})`
  : "no samples";

async function makeFrames(browser, dir) {
  const page = await browser.newPage();
  const urls = await page.evaluate(({ n, w, h }) => {
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    const g = c.getContext("2d");
    const out = [];
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
    for (let k = 0; k < n; k++) {
      g.fillStyle = `rgb(${(k & 3) * 85},${((k >> 2) & 3) * 85},${((k >> 4) & 3) * 85})`;
      g.fillRect(0, 0, w, h);
      // Detail that changes from frame to frame (lines of "text" in the top and bottom thirds),
      // so the encoders have real work; the centre, where the colour is read, stays plain.
      g.font = `${Math.round(h / 40)}px monospace`;
      for (let y = h / 40; y < h; y += h / 30) {
        if (y > h / 3 && y < (2 * h) / 3) continue;
        g.fillStyle = rnd() < 0.5 ? "#f0f0f0" : "#202020";
        g.fillText(Array.from({ length: 60 }, () => String.fromCharCode(33 + Math.floor(rnd() * 90))).join(""), 10, y);
      }
      out.push(c.toDataURL("image/jpeg", 0.9));
    }
    return out;
  }, { n: N, w: W, h: H });
  await page.close();
  const byHash = new Map();
  urls.forEach((u, k) => {
    const buf = Buffer.from(u.slice(u.indexOf(",") + 1), "base64");
    fs.writeFileSync(path.join(dir, `frame-${String(k + 1).padStart(4, "0")}.jpg`), buf);
    byHash.set(crypto.createHash("sha1").update(buf).digest("hex"), k);
  });
  return byHash;
}

// This script's own /stream client: per frame index, the X-Timestamps (ms) of its copies.
function watchStream(url, byHash, captures, received) {
  const req = http.get(url + "/stream", (res) => {
    let buf = Buffer.alloc(0);
    res.on("data", (d) => {
      const now = monoMs();
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const e = buf.indexOf("\r\n\r\n");
        if (e < 0) return;
        const head = buf.subarray(0, e).toString("latin1");
        const len = Number((/content-length:\s*(\d+)/i.exec(head) || [])[1]);
        const ts = Number((/x-timestamp:\s*([\d.]+)/i.exec(head) || [])[1]) * 1000;
        if (buf.length < e + 4 + len) return;
        const jpeg = buf.subarray(e + 4, e + 4 + len);
        const k = byHash.get(crypto.createHash("sha1").update(jpeg).digest("hex"));
        if (k !== undefined) { (captures[k] = captures[k] || []).push(ts); received.push(now - ts); }
        buf = buf.subarray(e + 4 + len);
      }
    });
  });
  req.on("error", () => {});
  return req;
}

async function metric(url, name) {
  const t = await (await fetch(url + "/metrics")).text();
  const l = t.split("\n").find((x) => x.startsWith(name + " "));
  return l ? Number(l.split(" ").pop()) * 1000 : NaN;
}

async function runMode(browser, url, mode, captures) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url + (mode === "img" ? "/?video=img" : mode === "h264" ? "/?video=h264" : "/?video=mjpeg"));
  await page.waitForFunction(() => document.getElementById("video").naturalWidth > 0, null, { timeout: 15000 });
  const got = await page.evaluate(() => document.getElementById("video").tagName.toLowerCase()
    + (typeof vstat !== "undefined" && vstat.codec === "h264" ? "/h264" : ""));
  const want = { img: "img", canvas: "canvas", h264: "canvas/h264" }[mode];
  if (got !== want) throw new Error(`asked for the ${mode} path, the page shows ${got}`);
  // The page's performance.now() on CLOCK_MONOTONIC: the tightest of 40 round trips.
  let best = { rtt: Infinity, off: 0 };
  for (let i = 0; i < 40; i++) {
    const a = monoMs();
    const p = await page.evaluate(() => performance.now());
    const b = monoMs();
    if (b - a < best.rtt) best = { rtt: b - a, off: (a + b) / 2 - p };
  }
  await page.evaluate(() => {
    window.benchPaints = [];
    window.benchDraw = [];
    const v = document.getElementById("video");
    const probe = document.createElement("canvas");
    probe.width = probe.height = 1;
    const g = probe.getContext("2d", { willReadFrequently: true });
    let last = -1;
    if (typeof vstat !== "undefined") vstat.onframe = (ts, t0, t1, drawn) => benchDraw.push(drawn - t1);
    const tick = (t) => {
      const w = v.naturalWidth, h = v.naturalHeight;
      if (w) {
        g.drawImage(v, w / 2, h / 2, 1, 1, 0, 0, 1, 1);
        const [r, gg, b] = g.getImageData(0, 0, 1, 1).data;
        const k = Math.round(r / 85) + 4 * Math.round(gg / 85) + 16 * Math.round(b / 85);
        if (k !== last) { last = k; benchPaints.push([k, t]); }
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const { paints, draw } = await page.evaluate(() => ({ paints: benchPaints, draw: benchDraw }));
  await page.close();
  const lat = [];
  for (const [k, t] of paints.slice(2)) {
    const mono = t + best.off;
    const c = (captures[k] || []).filter((ts) => ts <= mono + 1).pop();   // its latest copy
    if (c !== undefined && mono - c < 1000) lat.push(mono - c);
  }
  return { lat, draw, rtt: best.rtt };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.OKVM_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "okvm-web-latency-"));
  const byHash = await makeFrames(browser, dir);
  console.log(`web latency: Chromium ${browser.version()}, ${SECONDS} s per run, ${W}x${H} JPEGs, loopback`);
  for (const fps of RATES) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const srv = spawn(OKVM, ["serve", "--listen", `127.0.0.1:${port}`, "-d", `frames:${dir}@${fps}`],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: dir } });
    await new Promise((resolve, reject) => {
      let out = "";
      srv.stdout.on("data", (d) => { out += d; if (out.includes("serving on")) resolve(); });
      srv.on("exit", (c) => reject(new Error("okvm serve exited " + c)));
    });
    const captures = [], received = [];
    const req = watchStream(url, byHash, captures, received);
    const res = {};
    for (const mode of ["img", "canvas", "h264"]) res[mode] = await runMode(browser, url, mode, captures);
    const w50 = await metric(url, 'okvm_serve_frame_write_seconds{quantile="0.5"}');
    const w99 = await metric(url, 'okvm_serve_frame_write_seconds{quantile="0.99"}');
    req.destroy();
    srv.kill("SIGTERM");
    await new Promise((r) => srv.on("exit", r));
    console.log(`\n${fps} fps: captured -> painted (first animation frame showing it)`);
    for (const mode of ["img", "canvas", "h264"])
      console.log(`  ${mode.padEnd(6)} ${fmt(res[mode].lat)}  clock map +-${(res[mode].rtt / 2).toFixed(2)} ms`);
    console.log(`  canvas last byte -> drawn      ${fmt(res.canvas.draw)}`);
    console.log(`  captured -> received (script)  ${fmt(received.slice(fps))}`);
    console.log(`  server ready -> written        p50 ${w50.toFixed(2)} ms  p99 ${w99.toFixed(2)} ms (/metrics)`);
  }
  await browser.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
