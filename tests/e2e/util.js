"use strict";
// What every browser test file needs: the build's paths, a free port, a wait, `okvm serve` (or
// okvm-rec) started on the virtual unit until it says "serving on", and Debian's chromium.
// Usage: const u = require("./util"); const s = await u.startServe(["-d", "emu"]);
const { chromium } = require("playwright-core");
const { spawn } = require("child_process");
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
    await sleep(50);
  }
}

// `okvm serve --listen 127.0.0.1:PORT ARGS...` with HOME and XDG_CONFIG_HOME in a fresh
// directory (no user's config leaks in); `args` may be a function of that directory. opts: env (added), rec (run okvm-rec, its backend log
// in tmp/backend.jsonl), port, prefix (a name for the directory).
async function startServe(args, opts = {}) {
  const s = {};
  s.tmp = fs.mkdtempSync(path.join(os.tmpdir(), "okvm-e2e-" + (opts.prefix || "")));
  s.log = path.join(s.tmp, "backend.jsonl");
  s.port = opts.port || (await freePort());
  s.url = `http://127.0.0.1:${s.port}`;
  const env = { ...process.env, HOME: s.tmp, XDG_CONFIG_HOME: path.join(s.tmp, "xdg"), ...(opts.env || {}) };
  if (opts.rec) env.OKVM_REC_LOG = s.log;
  const argv = typeof args === "function" ? args(s.tmp) : args;
  s.proc = spawn(opts.rec ? OKVM_REC : OKVM, ["serve", "--listen", `127.0.0.1:${s.port}`, ...argv],
    { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  s.proc.stderr.on("data", (d) => { stderr += d; });
  s.stderr = () => stderr;
  await new Promise((resolve, reject) => {
    let out = "";
    s.proc.stdout.on("data", (d) => { out += d; if (out.includes("serving on")) resolve(); });
    s.proc.on("exit", (c) => reject(new Error("okvm serve exited " + c + ": " + stderr)));
  });
  // The virtual unit's --emu-events FILE as objects.
  s.events = (file = path.join(s.tmp, "ev.jsonl")) => (fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  // The exit code, after SIGTERM if it still runs.
  s.stop = () => {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) return Promise.resolve(s.proc.exitCode);
    const done = new Promise((r) => s.proc.on("exit", (c) => r(c)));
    s.proc.kill("SIGTERM");
    return done;
  };
  return s;
}

// A line of /metrics as a number (NaN when absent).
async function metric(url, name) {
  const t = await (await fetch(url + "/metrics")).text();
  const l = t.split("\n").find((x) => x.startsWith(name + " "));
  return l ? Number(l.split(" ").pop()) : NaN;
}

// Debian's chromium, headless; `args` are added to the usual ones.
function launch(args = []) {
  return chromium.launch({
    executablePath: process.env.OKVM_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", ...args],
  });
}

// One browser test on a server of its own: a fresh context (1200x800) for fn(context, server),
// then check(context) if given; "ok:"/"FAIL:" and a [name, passed] row in results; screenshots of
// its pages to ART/PREFIX-NAME.png; the server stopped, and its non-zero exit is a failure too.
async function runCase(browser, results, prefix, name, server, fn, check = null) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const t0 = Date.now();
  try {
    await fn(context, server);
    if (check) await check(context);
    results.push([name, true]);
    console.log(`ok: ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL: ${name}: ${e.stack || e}`);
    console.log(server.stderr().slice(-2000));
  } finally {
    for (const p of context.pages())
      await p.screenshot({ path: path.join(ART, prefix + "-" + name.replace(/\W+/g, "-") + ".png") }).catch(() => {});
    await context.close();
    const rc = await server.stop();
    if (rc !== 0) {
      results.push([name + " (clean exit)", false]);
      console.log(`FAIL: ${name}: okvm serve exited ${rc}: ${server.stderr().slice(-2000)}`);
    }
  }
}

module.exports = { BUILD, SRC, OKVM, OKVM_REC, FRAMES, ART, sleep, freePort, waitFor, startServe, metric, launch,
  runCase };
