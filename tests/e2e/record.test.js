"use strict";
// Recording from the web UI (web/record.js, docs/recording.md): in Debian's chromium, one page
// clicks the toolbar's ● button; a second open page shows the same recording running (● and the
// running time) without a click of its own; after a few seconds the second page stops it; the
// recording then appears in Options, Recordings, and its link downloads the very file the
// server wrote (byte for byte), a Matroska file that ffprobe reads as MJPEG with the unit's
// sound; Delete removes it from the list and the folder.
// Usage: node record.test.js BUILD_DIR   (scripts/run-e2e does this)
const assert = require("assert/strict");
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { startServe, sleep, launch, waitFor, FRAMES } = require("./util");

async function main() {
  let recdir;
  const server = await startServe((tmp) => {
    recdir = path.join(tmp, "recordings");
    const conf = path.join(tmp, "okvm.conf");
    fs.writeFileSync(conf, `[record]\ndir = ${recdir}\n`, { mode: 0o600 });
    return ["-d", "emu", "--video", `frames:${FRAMES}@20`, "--config", conf];
  }, { prefix: "record-" });
  const browser = await launch();
  let failed = 0;
  const step = async (name, fn) => {
    try { await fn(); console.log("ok: " + name); } catch (e) { failed++; console.log("FAIL: " + name + ": " + (e.stack || e)); }
  };
  const errors = [];
  const open = async () => {
    const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1440, height: 900 } });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => d.accept());
    await page.goto(server.url + "/");
    await page.waitForFunction(() => typeof wsOpen !== "undefined" && wsOpen, null, { timeout: 20000 });
    return page;
  };
  try {
    const a = await open(), b = await open();
    let name;
    await step("the ● button records; every open page shows it running (red button, ● REC and the time)", async () => {
      assert.equal((await a.textContent("#btn-record")).trim(), "●");
      assert.ok(await a.locator("#rec-badge").isHidden(), "no badge before");
      await a.click("#btn-record");
      await a.waitForFunction(() => document.getElementById("btn-record").classList.contains("rec-on"));
      name = await a.evaluate(() => okvmRecord.state.name);
      assert.match(name, /^okvm-\d{8}-\d{6}(-\d+)?\.mkv$/);
      await b.waitForFunction(() => /^● REC \d+:\d\d$/.test(document.getElementById("rec-badge").textContent),
        null, { timeout: 5000 });
      assert.ok(await b.evaluate(() => document.getElementById("btn-record").classList.contains("rec-on")),
        "the other page's button is red too");
      await sleep(2500);
      const t = (await b.textContent("#rec-badge")).trim();
      const [m, s] = t.slice(6).split(":").map(Number);
      assert.ok(m * 60 + s >= 2 && m * 60 + s <= 5, `the other page counts the time (${t})`);
      assert.equal(await b.getAttribute("#btn-record", "aria-pressed"), "true");
      const bar = await a.locator("#bar").boundingBox();
      assert.ok(bar.height < 50, `the desktop toolbar stays one row while recording (${bar.height} px)`);
    });
    await step("the other page stops it; neither shows it running any more", async () => {
      await b.click("#btn-record");
      await b.waitForFunction(() => document.getElementById("rec-badge").hidden);
      await a.waitForFunction(() => document.getElementById("rec-badge").hidden &&
        !document.getElementById("btn-record").classList.contains("rec-on"), null, { timeout: 5000 });
      assert.equal(await a.getAttribute("#btn-record", "aria-pressed"), "false");
    });
    await step("Options lists the recording; its link downloads the server's file", async () => {
      await a.click("#btn-options");
      const link = a.locator("#rec-list a", { hasText: name });
      await link.waitFor({ timeout: 5000 });
      const info = await a.locator("#rec-list li", { hasText: name }).textContent();
      assert.match(info, /\d+(\.\d)? MiB|KiB/, `its size is shown (${info})`);
      const [dl] = await Promise.all([a.waitForEvent("download"), link.click()]);
      assert.equal(dl.suggestedFilename(), name);
      const got = fs.readFileSync(await dl.path());
      const want = fs.readFileSync(path.join(recdir, name));
      assert.ok(got.equals(want), `the download is the file, byte for byte (${got.length} of ${want.length} bytes)`);
      assert.deepEqual([...got.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], "an EBML (Matroska) file");
      let probe = null;
      try {
        probe = JSON.parse(execFileSync("ffprobe", ["-v", "error", "-show_streams", "-of", "json",
          path.join(recdir, name)], { encoding: "utf8" }));
      } catch (e) { console.log("# no ffprobe: the tracks are not checked"); }
      if (probe) {
        const kinds = probe.streams.map((s) => s.codec_type + ":" + s.codec_name).sort();
        assert.deepEqual(kinds, ["audio:pcm_s16le", "video:mjpeg"], "MJPEG video and the unit's sound");
      }
    });
    await step("Delete removes it from the list and the folder", async () => {
      await a.locator("#rec-list li", { hasText: name }).locator("button", { hasText: "Delete" }).click();
      await waitFor("the list without it", async () => (await a.locator("#rec-list a", { hasText: name }).count()) === 0, 5000);
      assert.ok(!fs.existsSync(path.join(recdir, name)), "the file is gone");
    });
    await step("no page errors", async () => assert.deepEqual(errors, []));
  } finally {
    await browser.close();
    const rc = await server.stop();
    if (rc !== 0) { failed++; console.log("FAIL: okvm serve exited " + rc + ": " + server.stderr().slice(-2000)); }
  }
  console.log(failed ? `${failed} FAILED` : "PASS");
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log("FAIL: " + (e.stack || e)); process.exit(1); });
