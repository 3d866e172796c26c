"use strict";
// The target's sound, captured -> played in Chromium (issue 15's budget: under 100 ms), for the
// page's two paths: Opus (WebCodecs' AudioDecoder) and PCM. Prints figures, asserts nothing.
// Usage: node bench/web_audio_latency.js [BUILD_DIR] [KEYS_PER_CODEC]
// Needs tests/e2e/node_modules (scripts/run-e2e installs it) and Chromium (/usr/bin/chromium, or
// OKVM_CHROMIUM).
//
// What the figure is. `okvm serve -d emu` sends the virtual unit's sound: a quiet 440 Hz tone
// (-40 dBFS) and, from each key the virtual target receives, 100 ms of 1 kHz at -12 dBFS
// (src/emu/audio.c). Every audio message carries the capture time of its first sample on
// CLOCK_MONOTONIC (docs/api.md). This script presses a key in the page, and web/audio.js's
// okvmAudio.onplay hook sees each decoded 20 ms block as it is scheduled: the first sample louder
// than -26 dBFS is the burst's onset. Its capture time is the block's timestamp plus the onset's
// offset; its "played" time is when the AudioContext will output it: the block's start time on the
// context clock plus the offset, minus currentTime, plus outputLatency (baseLatency is part of
// it in Chromium; both are printed), read at the same moment as performance.now(). The page's
// clock is mapped onto CLOCK_MONOTONIC (node's process.hrtime) by the tightest of 40 round trips
// of page.evaluate(performance.now), to within half of it (printed). So captured -> played is on
// one clock: the server's 20 ms packet, the WebSocket on loopback, decoding, the page's jitter
// buffer and the output's own latency as Chromium reports it (headless Chromium reports its
// audio sink's; a desktop's sound server adds what it adds).
// Also printed: key sent (node, before the press) -> played, which adds the key's way to the
// virtual target and the sound source's 20 ms reads, and the mapping through getOutputTimestamp().
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "tests", "e2e", "node_modules", "playwright-core"));
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const net = require("net");

const BUILD = path.resolve(process.argv[2] || "build");
const KEYS = Number(process.argv[3] || 20);
const OKVM = path.join(BUILD, "okvm");
const monoMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function pct(a, q) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
}
const fmt = (a) => a.length ? `p50 ${pct(a, 0.5).toFixed(1).padStart(6)} ms  p95 ${pct(a, 0.95).toFixed(1).padStart(6)} ms  max ${Math.max(...a).toFixed(1).padStart(6)} ms  (n=${a.length})`
  : "no samples";

async function run(browser, url, codec) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  if (codec === "pcm") await page.addInitScript(() => { delete window.AudioDecoder; });
  await page.goto(url + "/");
  await page.waitForFunction(() => typeof wsOpen !== "undefined" && wsOpen, null, { timeout: 20000 });
  await page.evaluate(() => {
    window.benchOnsets = [];
    let inBurst = false;
    okvmAudio.onplay = (l, ts, at, ac) => {
      let i = 0;
      while (i < l.length && Math.abs(l[i]) < 0.05) i++;   // -26 dBFS: the 440 Hz tone peaks at 0.01
      if (i === l.length) { inBurst = false; return; }
      if (inBurst) return;
      inBurst = true;
      const perf = performance.now(), now = ac.currentTime, o = ac.getOutputTimestamp();
      const t = at + i / 48000;
      benchOnsets.push({
        captured: ts / 1000 + i / 48,   // ms, CLOCK_MONOTONIC
        played: perf + (t - now + (ac.outputLatency || 0)) * 1000,
        viaOutput: o.performanceTime + (t - o.contextTime) * 1000,
        ahead: (at - now) * 1000,
        outputLatency: (ac.outputLatency || 0) * 1000, baseLatency: (ac.baseLatency || 0) * 1000,
      });
    };
  });
  await page.click("#btn-audio");
  await page.waitForFunction(() => okvmAudio.stats.frames >= 48000, null, { timeout: 20000 });
  const got = await page.evaluate(() => okvmAudio.stats.codec);
  if (got !== codec) throw new Error(`asked for ${codec}, the page plays ${got}`);
  let best = { rtt: Infinity, off: 0 };
  for (let i = 0; i < 40; i++) {
    const a = monoMs();
    const p = await page.evaluate(() => performance.now());
    const b = monoMs();
    if (b - a < best.rtt) best = { rtt: b - a, off: (a + b) / 2 - p };
  }
  await page.focus("#screen");
  const sent = [];
  for (let k = 0; k < KEYS; k++) {
    sent.push(monoMs());
    await page.keyboard.press(k % 2 ? "KeyB" : "KeyA");
    await sleep(400 + Math.random() * 100);   // the burst is 100 ms; spread over the 20 ms blocks
  }
  await sleep(500);
  const onsets = await page.evaluate(() => benchOnsets);
  await ctx.close();
  const lat = [], viaOut = [], keyLat = [], ahead = [];
  let outLat = 0, baseLat = 0;
  for (const o of onsets) {
    const played = o.played + best.off;
    lat.push(played - o.captured);
    viaOut.push(o.viaOutput + best.off - o.captured);
    ahead.push(o.ahead);
    const s = sent.filter((x) => x <= o.captured + 1).pop();
    if (s !== undefined) keyLat.push(played - s);
    outLat = o.outputLatency;
    baseLat = o.baseLatency;
  }
  return { lat, viaOut, keyLat, ahead, outLat, baseLat, rtt: best.rtt, n: onsets.length };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.OKVM_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
      "--autoplay-policy=no-user-gesture-required"],
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "okvm-web-audio-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const srv = spawn(OKVM, ["serve", "--listen", `127.0.0.1:${port}`, "-d", "emu"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: dir } });
  await new Promise((resolve, reject) => {
    let out = "";
    srv.stdout.on("data", (d) => { out += d; if (out.includes("serving on")) resolve(); });
    srv.on("exit", (c) => reject(new Error("okvm serve exited " + c)));
  });
  console.log(`web audio latency: Chromium ${browser.version()}, ${KEYS} keys per codec, loopback, ` +
    `load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  try {
    for (const codec of ["opus", "pcm"]) {
      const r = await run(browser, url, codec);
      console.log(`${codec}: ${r.n} bursts; clock mapping within ±${(r.rtt / 2).toFixed(2)} ms; ` +
        `outputLatency ${r.outLat.toFixed(1)} ms, baseLatency ${r.baseLat.toFixed(1)} ms`);
      console.log(`  captured -> played            ${fmt(r.lat)}`);
      console.log(`  (by getOutputTimestamp)       ${fmt(r.viaOut)}`);
      console.log(`  scheduled ahead of currentTime ${fmt(r.ahead)}`);
      console.log(`  key sent -> played            ${fmt(r.keyLat)}`);
    }
  } finally {
    await browser.close();
    srv.kill("SIGTERM");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
