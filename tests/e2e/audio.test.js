"use strict";
// Sound in the browser: Debian's chromium plays the virtual unit's sound that okvm serve sends
// over the WebSocket (web/audio.js, docs/audio.md). The toolbar's Sound button asks for audio
// (Opus, decoded by WebCodecs' AudioDecoder); the decoded samples must hold the virtual unit's
// 440 Hz test tone at -40 dBFS, a key typed on the page must add one 100 ms burst of 1 kHz, the
// volume slider must scale what the AnalyserNode after it sees, and muting must stop the
// playback and the server's capture. Then the same with PCM: the page falls back to it when
// AudioDecoder is missing, so the test hides AudioDecoder from a second page.
// Usage: node audio.test.js BUILD_DIR   (scripts/run-e2e does this)
const assert = require("assert/strict");
const fs = require("fs");
const { startServe, sleep, launch } = require("./util");
const RATE = 48000;

// Amplitude of frequency f in x (a sine of amplitude A gives A).
function amp(x, f) {
  let c = 0, s = 0;
  for (let i = 0; i < x.length; i++) {
    c += x[i] * Math.cos(2 * Math.PI * f * i / RATE);
    s += x[i] * Math.sin(2 * Math.PI * f * i / RATE);
  }
  return 2 * Math.hypot(c, s) / x.length;
}

// The 10 ms blocks of x where 1 kHz is loud.
function loudBlocks(x) {
  const out = [];
  for (let i = 0; i + 480 <= x.length; i += 480)
    if (amp(x.slice(i, i + 480), 1000) > 0.1) out.push(i / 480);
  return out;
}

// The okvm-audio thread's voluntary context switches (it sleeps once per 20 ms while capturing).
function audioWakeups(pid) {
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      if (fs.readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim() !== "okvm-audio") continue;
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/task/${t}/status`, "utf8"));
      return Number(m[1]);
    } catch (e) { /* gone */ }
  }
  return null;
}

async function main() {
  const server = await startServe(["-d", "emu"], { prefix: "audio-" });
  const { url, proc: srv } = server;
  const browser = await launch(["--autoplay-policy=no-user-gesture-required"]);
  let failed = 0;
  const step = async (name, fn) => {
    try { await fn(); console.log("ok: " + name); } catch (e) { failed++; console.log("FAIL: " + name + ": " + (e.stack || e)); }
  };
  const errors = [];

  async function listen(page, codec, first) {
    await page.waitForFunction(() => typeof wsOpen !== "undefined" && wsOpen, null, { timeout: 20000 });
    if (first) assert.equal(audioWakeups(srv.pid), null, "no audio thread before the page asks");
    await page.click("#btn-audio");
    await page.waitForFunction(() => okvmAudio.stats.frames >= 48000, null, { timeout: 20000 });
    const st = await page.evaluate(() => ({ ...okvmAudio.stats }));
    assert.equal(st.codec, codec, "the codec asked for");
    assert.ok(st.messages >= 50, `binary audio messages arrived (${st.messages})`);
    const x = await page.evaluate(() => okvmAudio.tap(24000));
    const a440 = amp(x, 440), a1k = amp(x, 1000);
    const want = 328 / 32768;
    assert.ok(Math.abs(a440 - want) < want * 0.15,
      `the decoded samples hold the 440 Hz tone at -40 dBFS (${a440.toFixed(5)}, want ${want.toFixed(5)})`);
    assert.ok(a1k < want / 4, `and no 1 kHz before a key (${a1k.toFixed(5)})`);
    console.log(`# ${codec}: 440 Hz amplitude ${a440.toFixed(5)} (want ${want.toFixed(5)})`);
  }

  async function keyBurst(page) {
    await page.focus("#screen");
    await page.keyboard.press("KeyA");
    await sleep(500);
    const blocks = loudBlocks(await page.evaluate(() => okvmAudio.tap(48000)));
    assert.ok(blocks.length >= 9 && blocks.length <= 12 &&
      blocks[blocks.length - 1] - blocks[0] === blocks.length - 1,
      `one 100 ms burst of 1 kHz after the key (loud 10 ms blocks: ${blocks})`);
  }

  async function mute(page) {
    const lvl = await page.evaluate(() => okvmAudio.level());
    assert.ok(lvl > 0.001, `something plays before mute (RMS ${lvl.toFixed(5)})`);
    await page.click("#btn-audio");
    await sleep(400);
    const f0 = await page.evaluate(() => okvmAudio.stats.frames);
    const w0 = audioWakeups(srv.pid);
    await sleep(1000);
    const f1 = await page.evaluate(() => okvmAudio.stats.frames);
    const w1 = audioWakeups(srv.pid);
    assert.equal(await page.evaluate(() => okvmAudio.on), false, "the button turned sound off");
    assert.equal(f1, f0, "no more sound decoded after mute");
    const after = await page.evaluate(() => okvmAudio.level());
    assert.ok(after < 1e-4, `silence after the volume (RMS ${after.toFixed(6)})`);
    assert.equal(w1, w0, `the server's audio thread sleeps (${w0} -> ${w1} wakeups)`);
    assert.equal(await page.evaluate(() => document.getElementById("btn-audio").getAttribute("aria-pressed")), "false");
  }

  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  await step("the Sound button asks for Opus and the decoded samples hold the 440 Hz tone", async () => {
    // MJPEG: the sound is under test, and an H.264 encoder of the 1080p virtual screen (the
    // page's auto choice) would take a core of the two a CI machine may have.
    await page.goto(url + "/?video=mjpeg");
    await listen(page, "opus", true);
  });
  await step("a key typed on the page adds a 1 kHz burst (Opus)", async () => keyBurst(page));
  await step("the volume slider scales what is played", async () => {
    await sleep(300);
    const full = await page.evaluate(() => okvmAudio.level());
    await page.evaluate(() => {
      const v = document.getElementById("audio-vol");
      v.focus();
      v.value = "25";
      v.dispatchEvent(new Event("input"));
      v.dispatchEvent(new Event("change"));
    });
    assert.equal(await page.evaluate(() => document.activeElement.id), "screen",
      "once set, the keys go to the screen again");
    await sleep(300);
    const quarter = await page.evaluate(() => okvmAudio.level());
    assert.ok(quarter > full * 0.15 && quarter < full * 0.35,
      `a quarter of the volume (RMS ${full.toFixed(5)} -> ${quarter.toFixed(5)})`);
    assert.equal(await page.evaluate(() => localStorage.getItem("okvm.volume")), "25", "kept");
  });
  await step("mute stops the playback and the capture (Opus)", async () => mute(page));
  await page.close();

  const pcm = await browser.newPage();
  pcm.on("pageerror", (e) => errors.push(e.message));
  await pcm.addInitScript(() => { delete window.AudioDecoder; });
  await step("without AudioDecoder the page asks for PCM and plays the 440 Hz tone", async () => {
    await sleep(300);
    await pcm.goto(url + "/?video=mjpeg");
    await listen(pcm, "pcm");
  });
  await step("a key typed on the page adds a 1 kHz burst (PCM)", async () => keyBurst(pcm));
  await step("mute stops the playback and the capture (PCM)", async () => mute(pcm));
  await step("a refusal of the server turns sound off and says why on the button", async () => {
    await pcm.click("#btn-audio");
    await pcm.waitForFunction(() => okvmAudio.on && okvmAudio.stats.messages > 0, null, { timeout: 10000 });
    await pcm.evaluate(() => send({ type: "audio", codec: "mp3" }));
    await pcm.waitForFunction(() => !okvmAudio.on, null, { timeout: 10000 });
    assert.match(await pcm.getAttribute("#btn-audio", "title"), /^No sound: audio needs "codec"/);
    assert.equal(await pcm.getAttribute("#btn-audio", "aria-pressed"), "false");
  });
  await step("no page errors", async () => assert.deepEqual(errors, []));
  await browser.close();
  const code = await server.stop();
  if (code !== 0) { failed++; console.log("FAIL: okvm serve exited " + code + ": " + server.stderr().slice(-2000)); }
  fs.rmSync(server.tmp, { recursive: true, force: true });
  console.log(failed ? `audio: ${failed} failed` : "audio: all passed");
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
