"use strict";
// okvm web UI: MJPEG video drawn on a <canvas> (an <img> as the fallback), input over the WebSocket
// /api/ws (docs/api.md).
// No framework and no build step: this file is embedded into the okvm binary as it is.

const $ = (id) => document.getElementById(id);
const screenEl = $("screen"), overlay = $("overlay"), banner = $("banner");

// ---- options of this browser (the Options dialog), kept in localStorage ----
const OPT_DEFAULTS = { scale: "fit", hideCursor: false, scrollSpeed: 1, scrollReverse: false,
  jiggle: false, jiggleS: 60 };
function loadOptions() {
  let o = {};
  try { o = JSON.parse(localStorage.getItem("okvm.options") || "{}") || {}; } catch { /* defaults */ }
  const r = { ...OPT_DEFAULTS };
  for (const k of Object.keys(r)) if (typeof o[k] === typeof r[k]) r[k] = o[k];
  if (!["fit", "1:1", "stretch"].includes(r.scale)) r.scale = "fit";
  return r;
}
const opts = loadOptions();
// The video's statistics (read by the tests and bench/web_latency.js) and the canvas path's state.
const vstat = { mode: "img", painted: 0, dropped: 0, ts: null, arrived: 0, drawn: 0 };
let vGen = 0, vAbort = null, vPending = null, vDecoding = false, vCtx = null, vW = 0, vH = 0;
const video = videoElement();   // #video: the canvas the stream is drawn on, or the <img> fallback
let ws = null, wsOpen = false, retryMs = 500, state = null;
let relMode = false, leaving = false;  // leaving: logging out, the WebSocket may go
const pressed = new Set();            // KeyboardEvent.code values this page holds down
let buttons = 0;                      // MouseEvent.buttons as last sent
let pendingMove = null, relAcc = null, wheelAcc = 0;

// ---- who may do what: the state's "role" (viewer: watch only; operator and admin: input) ----
let viewOnly = false;
// Controls that send input: a viewer sees them greyed, with the reason in the tooltip.
const INPUT_CONTROLS = ["led-num", "led-caps", "led-scroll", "btn-paste", "btn-keys", "btn-mouse",
  "btn-usb", "btn-osk", "btn-vkbd", "btn-macros"];
const VIEW_ONLY_TIP = "View only: your role is viewer. Typing, clicking, paste and the USB switch "
  + "need the role operator.";

// Input goes out once the state says whose session this is (an older server sends no role).
function canInput() {
  return !!state && !viewOnly;
}

function applyViewOnly(on) {
  viewOnly = on;
  document.body.classList.toggle("view-only", on);
  for (const id of INPUT_CONTROLS) {
    const el = $(id);
    if (el.dataset.title === undefined) el.dataset.title = el.title;
    el.disabled = on;
    el.title = on ? VIEW_ONLY_TIP : el.dataset.title;
  }
  $("viewonly").hidden = !on;
  $("viewonly").title = VIEW_ONLY_TIP;
  screenEl.setAttribute("aria-label", on ? "target screen (view only)" : "target screen: click to control");
  if (on) {
    pressed.clear();
    buttons = 0;
    pendingMove = relAcc = null;
    wheelAcc = 0;
    $("keys-menu").hidden = true;
    $("macros-menu").hidden = true;
    $("vkbd").hidden = true;
    vkMods.clear();
    vkHeld.clear();
    if ($("paste").open) $("paste").close();
    relMode = false;
    $("btn-mouse").textContent = "Mouse: absolute";
    if (document.pointerLockElement) document.exitPointerLock();
  }
}

// ---- messages for the person, not the console ----
let toastTimer = null;
function toast(text, kind) {
  const t = $("toast");
  t.textContent = text;
  t.className = kind || "";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
}

// A mistake of the page itself is shown too, not only in the console.
window.addEventListener("error", (e) => toast("okvm page error: " + e.message + " (reload the page)"));
window.addEventListener("unhandledrejection", (e) =>
  toast("okvm page error: " + ((e.reason && e.reason.message) || e.reason) + " (reload the page)"));

// ---- WebSocket with automatic reconnect ----
let lastInput = performance.now();   // when this page last sent input (the jiggler waits for idle)
function send(msg) {
  if (!wsOpen) return false;
  const input = msg.type !== "ping" && msg.type !== "video";  // video: asking for H.264
  if (input && !canInput()) return false;   // a viewer's page sends no input at all
  if (input) lastInput = performance.now();
  ws.send(JSON.stringify(msg));
  return true;
}

// A round trip: resolves once the server has handled everything sent before (answers come in order).
const pings = new Map();
let pingSeq = 0;
function roundTrip() {
  return new Promise((resolve, reject) => {
    const t = -++pingSeq;   // negative: apart from the keep-alive's Date.now()
    if (!send({ type: "ping", t })) { reject(new Error("not connected to okvm")); return; }
    pings.set(t, { resolve, reject });
  });
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(proto + "//" + location.host + "/api/ws");
  ws.binaryType = "arraybuffer";   // H.264 access units (h264.js)
  ws.onopen = () => {
    wsOpen = true;
    retryMs = 500;
    startVideo();
    okvmAudio.connected(send);   // audio.js: a listener asks again
    setTimeout(pumpOsk, 0);
    render();
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") {
      const audio = ev.data.byteLength && new Uint8Array(ev.data, 0, 1)[0] === 0x41;   // 'A'
      if (audio) okvmAudio.binary(ev.data); else okvmH264.binary(ev.data);
      return;
    }
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    if (m.type === "video") { okvmH264.text(m); return; }
    if (m.type === "audio") { okvmAudio.text(m); return; }
    if (m.type === "state") {
      state = m;
      serverLayout();
      if (typeBusy && (typeAcked || typeBusy === "wait") && !m.typing.active) typeDone();
      render();
    } else if (m.type === "pong" && pings.has(m.t)) {
      pings.get(m.t).resolve();
      pings.delete(m.t);
    } else if (m.type === "error" && m.ref === "type") typeRefused(m.error);
    else if (m.type === "error" && m.ref === "audio") okvmAudio.refused(m.error);
    else if (m.type === "error") {
      if (macroRun && !macroRun.error) macroRun.error = m.error;
      toast("okvm: " + m.error);
    }
    else if (m.type === "ok" && m.ref === "type") {
      typeAcked = true;
      if (typeBusy === "dialog") { clearTimeout(pasteTimer); $("paste-status").textContent = "typing…"; }
    }
  };
  ws.onclose = (ev) => {
    wsOpen = false;
    if (typeBusy === "macro" && macroType) macroType.reject(new Error("the connection to okvm was lost"));
    typeBusy = null;
    for (const p of pings.values()) p.reject(new Error("the connection to okvm was lost"));
    pings.clear();
    if (leaving) return;
    render();
    if (ev.code === 1006 && document.cookie === "" && state && state.auth) {
      // The session may have expired: the login page decides.
      fetch("/api/state").then((r) => { if (r.status === 401) location.href = "/login"; },
        () => {});   // okvm is down: the reconnect below says so
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 2000);
  };
}

// ---- video ----
// An <img> showing /stream paints a part only once the next one starts (Chromium), a frame late.
// So the page reads the stream itself with fetch(), cuts the parts by their Content-Length and
// draws each JPEG on a <canvas> as soon as it is decoded; the newest frame wins if decoding lags.
// The canvas takes the <img>'s place and id, and answers naturalWidth/naturalHeight as it does,
// so the geometry (object-fit: contain, the letterbox-aware mouse mapping) stays the same.
// Without fetch streaming (or with ?video=img) the <img> stays.

function videoElement() {
  const img = $("video");
  const can = typeof ReadableStream === "function" && typeof createImageBitmap === "function"
    && typeof Response === "function" && "body" in Response.prototype
    && !/(^|[?&])video=img(&|$)/.test(location.search.slice(1));
  if (!can) return img;
  const c = document.createElement("canvas");
  c.id = "video";
  c.width = c.height = 0;
  c.setAttribute("role", "img");
  c.setAttribute("aria-label", img.alt);
  Object.defineProperty(c, "naturalWidth", { get: () => vW });
  Object.defineProperty(c, "naturalHeight", { get: () => vH });
  img.replaceWith(c);
  vstat.mode = "canvas";
  return c;
}

// H.264 over the WebSocket instead of the MJPEG stream (h264.js says when).
let h264Off = false;   // it failed once: MJPEG until a reload
function h264Painted(w, h, tsUs) {
  if (vW !== w || vH !== h) { vW = w; vH = h; layoutVideo(); }
  vstat.painted++;
  vstat.ts = (tsUs / 1e6).toFixed(6);
  vstat.drawn = performance.now();
  if (vstat.onframe) vstat.onframe(vstat.ts, vstat.drawn, vstat.drawn, vstat.drawn);
}

function startVideo() {
  if (vstat.mode === "img") { video.src = "/stream?" + okvmQuality.query() + "t=" + Date.now(); return; }
  if (!h264Off && wsOpen && okvmH264.wanted()) {
    if (vAbort) { vAbort.abort(); vAbort = null; }
    vGen++;
    vstat.codec = "h264";
    okvmH264.start(send, video, h264Painted, (msg) => {
      toast(msg);
      h264Off = true;
      startVideo();
    });
    return;
  }
  if (okvmH264.active) okvmH264.stop();
  vstat.codec = "mjpeg";
  if (vAbort) vAbort.abort();
  vAbort = new AbortController();
  const gen = ++vGen;
  readStream(gen, vAbort.signal).catch((e) => {
    if (gen !== vGen) return;               // replaced by a newer stream
    if (e && e.fallback) {
      // Not a stream this page can cut (a proxy's doing?): the page reloads into the <img> path.
      sessionStorage.setItem("okvm.videoNote", "The video stream could not be cut into frames ("
        + e.message + "): it is shown as an <img> now, a frame later. Reload without ?video=img to retry.");
      location.replace(location.pathname + "?video=img" + location.hash);
      return;
    }
    if (e && e.status && wsOpen) toast("video: " + e.message + "; retrying every second");
    setTimeout(() => { if (gen === vGen) startVideo(); }, 1000);
  });
}
if (sessionStorage.getItem("okvm.videoNote")) {
  toast(sessionStorage.getItem("okvm.videoNote"), "info");
  sessionStorage.removeItem("okvm.videoNote");
}
if (vstat.mode === "img") video.addEventListener("error", () => setTimeout(startVideo, 1000));

function findHeadEnd(b) {
  for (let i = 0; i + 3 < b.length; i++)
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  return -1;
}

async function readStream(gen, signal) {
  const r = await fetch("/stream?" + okvmQuality.query() + "t=" + Date.now(), { signal, cache: "no-store" });
  if (!r.ok) {
    const j = await r.json().catch(() => ({}));
    throw Object.assign(new Error(j.error || "HTTP " + r.status), { status: r.status });
  }
  const m = /^multipart\/x-mixed-replace\s*;.*boundary="?([^";]+)"?/i.exec(r.headers.get("content-type") || "");
  if (!m || !r.body) throw Object.assign(new Error("not a multipart stream"), { fallback: true });
  const boundary = "--" + m[1];
  const reader = r.body.getReader();
  const latin1 = new TextDecoder("latin1");
  let head = new Uint8Array(0), body = null, off = 0, ts = null, t0 = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error("stream ended");
    if (gen !== vGen) { reader.cancel(); return; }
    let c = value;
    while (c.length) {
      if (body) {
        const n = Math.min(body.length - off, c.length);
        body.set(c.subarray(0, n), off);
        off += n;
        c = c.subarray(n);
        if (off === body.length) { videoFrame(gen, body, ts, t0); body = null; }
        continue;
      }
      if (!head.length) t0 = performance.now();
      const h = new Uint8Array(head.length + c.length);
      h.set(head);
      h.set(c, head.length);
      const e = findHeadEnd(h);
      if (e < 0) {
        if (h.length > 16384) throw Object.assign(new Error("part headers too long"), { fallback: true });
        head = h;
        break;
      }
      // The part's headers: the boundary line (after the previous JPEG's CRLF), then fields.
      const lines = latin1.decode(h.subarray(0, e)).split("\r\n").filter((l) => l);
      if (lines[0] !== boundary) throw Object.assign(new Error("no boundary"), { fallback: true });
      let len = -1;
      ts = null;
      for (const l of lines.slice(1)) {
        const [k, v] = [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()];
        if (k === "content-length" && /^\d+$/.test(v)) len = +v;
        else if (k === "x-timestamp") ts = v;
      }
      if (len < 0) throw Object.assign(new Error("a part without Content-Length"), { fallback: true });
      body = new Uint8Array(len);
      off = 0;
      head = new Uint8Array(0);
      c = h.subarray(e + 4);
      if (!len) body = null;
    }
  }
}

// A complete JPEG: decoded at once unless one is being decoded, then it waits, replacing (and
// dropping) any older one waiting.
function videoFrame(gen, bytes, ts, t0) {
  vstat.arrived++;
  if (vPending) vstat.dropped++;
  vPending = { gen, blob: new Blob([bytes], { type: "image/jpeg" }), ts, t0, t1: performance.now() };
  if (!vDecoding) decodeNext();
}

function decodeNext() {
  const f = vPending;
  vPending = null;
  if (!f) return;
  vDecoding = true;
  createImageBitmap(f.blob).then((bm) => {
    if (f.gen !== vGen) { bm.close(); return; }
    if (bm.width !== video.width || bm.height !== video.height || !vCtx) {
      video.width = bm.width;
      video.height = bm.height;
      vCtx = video.getContext("2d", { alpha: false });
    }
    vCtx.drawImage(bm, 0, 0);
    if (vW !== bm.width || vH !== bm.height) { vW = bm.width; vH = bm.height; layoutVideo(); }
    bm.close();
    vstat.painted++;
    vstat.ts = f.ts;
    vstat.drawn = performance.now();
    if (vstat.onframe) vstat.onframe(f.ts, f.t0, f.t1, vstat.drawn);
  }, () => { vstat.dropped++; })      // a JPEG the browser cannot decode: the next one may
    .finally(() => { vDecoding = false; decodeNext(); });
}

// ---- status rendering ----
function setPill(el, text, cls) {
  el.textContent = text;
  el.className = cls ? "pill " + cls : "pill";
}

function render() {
  setPill($("conn"), wsOpen ? "connected" : "reconnecting…", wsOpen ? "ok" : "bad");
  if (!state) return;
  const t = state.target.connected;
  const v = state.video;
  if (wsOpen) {
    setPill($("target"), state.input ? (t ? "target connected" : "target not connected") : "video only",
      t ? "ok" : "bad");
    // The rate is the server's (the capture's, over a second), not measured here.
    // Before the server has measured a rate (the first frames) it says 0: no figure then.
    setPill($("video-info"), v.signal ? `${v.width}×${v.height}` + (v.fps > 0 ? ` ${v.fps} fps` : "") : "no signal",
      v.signal ? "" : "bad");
  } else {
    // What the server said last may no longer be true: unknown until it speaks again.
    setPill($("target"), "target ?");
    setPill($("video-info"), "video ?");
  }
  for (const [id, on] of [["led-num", state.leds.num], ["led-caps", state.leds.caps], ["led-scroll", state.leds.scroll]])
    $(id).classList.toggle("on", on);
  // Others on the same KVM: their keys and clicks merge with yours, so say so.
  const cl = state.clients || { list: [] };
  const others = cl.list.filter((c) => c.id !== cl.you);
  if (!wsOpen) setPill($("users"), "users ?");
  else setPill($("users"), others.length ? `+${others.length} other${others.length > 1 ? "s" : ""}`
    : "only you", others.length ? "warn" : "");
  $("users").title = others.length
    ? "Also connected (their input is merged with yours): " + others.map((c) => c.addr).join(", ")
    : "No other browser is connected";
  $("btn-usb").textContent = "USB: " + state.usb;
  $("btn-logout").hidden = !state.auth;
  const vo = state.role === "viewer";
  if (vo !== viewOnly) applyViewOnly(vo);
  $("who").hidden = !state.user;
  $("who").textContent = state.user || "";
  $("who").title = state.user ? `logged in as ${state.user} (role ${state.role})` : "";
  let msg = "";
  if (!wsOpen) msg = "Connection lost — reconnecting…";
  else if (!v.available) msg = "No video source";
  else if (!v.signal) msg = "No signal";
  overlay.textContent = msg;
  overlay.hidden = !msg;
  if (opts.scale === "1:1" && video.style.width !== v.width / devicePixelRatio + "px") layoutVideo();
  const bmsg = wsOpen && state.input && !t ? "Target not connected: keyboard and mouse go nowhere" : "";
  banner.textContent = bmsg;
  banner.hidden = !bmsg;
  // The dialog shows the progress of its own paste only, not another browser's.
  const ty = state.typing;
  if (!pasteOwn || (typeBusy === "dialog" && !typeAcked)) return;
  if (ty.total) {
    $("paste-progress").max = ty.total;
    $("paste-progress").value = ty.done;
    $("paste-status").textContent = ty.error ? "stopped: " + ty.error
      : ty.active ? (pasteRefused ? "a paste is running: " : "") + `typing ${ty.done}/${ty.total}`
      : `typed ${ty.done}/${ty.total}`;
    if (!ty.active) pasteRefused = false;
  } else if (!ty.active && $("paste-status").textContent.startsWith("typing")) {
    $("paste-progress").value = $("paste-progress").max;
    $("paste-status").textContent = "done";
  }
}

// ---- keyboard: captured while the screen has focus ----
function releaseAll() {
  for (const code of pressed) send({ type: "key", code, down: false });
  pressed.clear();
  if (buttons) { buttons = 0; send({ type: "mouse", x: lastX, y: lastY, buttons: 0 }); }
}

screenEl.addEventListener("keydown", (e) => {
  if (!canInput()) return;              // not captured: the browser's own shortcuts work
  if (e.target === $("osk-input")) return;   // its own handlers send what it types, once
  if (!e.code) return;
  e.preventDefault();
  if (pressed.has(e.code)) return;      // autorepeat: the target repeats by itself
  pressed.add(e.code);
  send({ type: "key", code: e.code, down: true });
});
screenEl.addEventListener("keyup", (e) => {
  if (!e.code || !pressed.has(e.code)) return;
  e.preventDefault();
  pressed.delete(e.code);
  send({ type: "key", code: e.code, down: false });
});
screenEl.addEventListener("blur", releaseAll);
window.addEventListener("blur", releaseAll);

// ---- mouse ----
let lastX = 0.5, lastY = 0.5;

// The part of the element the picture covers: with "fit" (object-fit: contain) the letterbox is
// excluded; "stretch" and "1:1" fill the element. A pinch zoom's transform is part of the rectangle.
function toFrame(clientX, clientY) {
  const [x, y] = frameCoords(clientX, clientY);
  if (x < 0 || x > 1 || y < 0 || y > 1) return null;
  return [x, y];
}
// The same fractions, outside 0..1 beyond the picture.
function frameCoords(clientX, clientY) {
  const r = video.getBoundingClientRect();
  const nw = video.naturalWidth || (state && state.video.width) || 16;
  const nh = video.naturalHeight || (state && state.video.height) || 9;
  let w = r.width, h = r.height;
  if (opts.scale === "fit") {
    const scale = Math.min(r.width / nw, r.height / nh);
    w = nw * scale;
    h = nh * scale;
  }
  return [(clientX - r.left - (r.width - w) / 2) / w, (clientY - r.top - (r.height - h) / 2) / h];
}

function flushMove() {
  if (pendingMove) { send(pendingMove); pendingMove = null; }
  if (relAcc) {
    send({ type: "rel", dx: Math.round(relAcc.dx), dy: Math.round(relAcc.dy), buttons });
    relAcc = null;
  }
  if (wheelAcc) {
    const n = Math.trunc(wheelAcc);
    if (n) { send({ type: "wheel", dy: Math.max(-127, Math.min(127, n)) }); wheelAcc -= n; }
  }
  requestAnimationFrame(flushMove);
}
requestAnimationFrame(flushMove);

function absEvent(e, now) {
  const p = toFrame(e.clientX, e.clientY);
  if (!p) return;
  [lastX, lastY] = p;
  const msg = { type: "mouse", x: +p[0].toFixed(5), y: +p[1].toFixed(5), buttons: e.buttons & 7 };
  if (now || msg.buttons !== buttons) { pendingMove = null; send(msg); }
  else pendingMove = msg;            // moves are coalesced to one per animation frame
  buttons = msg.buttons;
}

// Newer browsers answer requestPointerLock() with a promise: a refusal is said in the page.
function lockPointer() {
  const p = screenEl.requestPointerLock();
  if (p && typeof p.catch === "function")
    p.catch((e) => toast("relative mouse: the browser refused to capture the pointer (" + e.message
      + "); click the picture again"));
}
video.addEventListener("pointermove", (e) => {
  if (!canInput() || e.pointerType === "touch") return;   // touch: the gestures below
  if (relMode) {
    if (document.pointerLockElement !== screenEl) return;
    relAcc = relAcc || { dx: 0, dy: 0 };
    relAcc.dx += e.movementX;
    relAcc.dy += e.movementY;
    return;
  }
  absEvent(e, false);
});
video.addEventListener("pointerdown", (e) => {
  screenEl.focus();
  if (!canInput() || e.pointerType === "touch") return;
  if (relMode) {
    if (document.pointerLockElement !== screenEl) { lockPointer(); return; }
    buttons = e.buttons & 7;
    send({ type: "rel", dx: 0, dy: 0, buttons });
    return;
  }
  absEvent(e, true);
});
video.addEventListener("pointerup", (e) => {
  if (!canInput() || e.pointerType === "touch") return;
  if (relMode) {
    buttons = e.buttons & 7;
    if (document.pointerLockElement === screenEl) send({ type: "rel", dx: 0, dy: 0, buttons });
    return;
  }
  absEvent(e, true);
});

// ---- touch: tap = click, long press = right click, drag = drag with the button held,
// two fingers: spread or pinch = zoom the picture here (and pan it), move together = wheel ----
const LONG_PRESS_MS = 500, SLOP_PX = 10, SCROLL_PX = 40;
const fingers = new Map();   // pointerId -> [clientX, clientY]
let gesture = null;          // {kind: "pending" | "drag" | "long" | "two" | "pinch" | "scroll" | "done", ...}

function touchMouse(x, y, b) {
  const p = toFrame(x, y);
  if (!p) return false;
  [lastX, lastY] = p;
  pendingMove = null;
  buttons = b;
  send({ type: "mouse", x: +p[0].toFixed(5), y: +p[1].toFixed(5), buttons: b });
  return true;
}
function twoFingers() {
  const [a, b] = [...fingers.values()];
  return { d: Math.hypot(a[0] - b[0], a[1] - b[1]), m: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
}
screenEl.addEventListener("pointerdown", (e) => {
  if (e.pointerType !== "touch" || !canInput()) return;
  e.preventDefault();
  fingers.set(e.pointerId, [e.clientX, e.clientY]);
  if (fingers.size === 1) {
    const g = { kind: "pending", x0: e.clientX, y0: e.clientY };
    g.timer = setTimeout(() => {
      if (gesture !== g || g.kind !== "pending") return;
      g.kind = "long";   // right click where the finger rests
      if (touchMouse(g.x0, g.y0, 2)) touchMouse(g.x0, g.y0, 0);
    }, LONG_PRESS_MS);
    gesture = g;
  } else if (fingers.size === 2 && gesture && (gesture.kind === "pending" || gesture.kind === "drag")) {
    clearTimeout(gesture.timer);
    if (gesture.kind === "drag") touchMouse(gesture.x, gesture.y, 0);
    const t = twoFingers();
    gesture = { kind: "two", d0: t.d, m0: t.m, last: t.m, z0: zoom.z, anchor: zoomAnchor(t.m) };
  }
});
screenEl.addEventListener("pointermove", (e) => {
  if (e.pointerType !== "touch" || !fingers.has(e.pointerId)) return;
  fingers.set(e.pointerId, [e.clientX, e.clientY]);
  const g = gesture;
  if (!g) return;
  if (fingers.size === 1 && (g.kind === "pending" || g.kind === "drag")) {
    if (g.kind === "pending") {
      if (Math.hypot(e.clientX - g.x0, e.clientY - g.y0) < SLOP_PX) return;
      clearTimeout(g.timer);
      if (!touchMouse(g.x0, g.y0, 1)) { g.kind = "done"; return; }   // started in the letterbox
      g.kind = "drag";
    }
    g.x = e.clientX;
    g.y = e.clientY;
    const p = toFrame(e.clientX, e.clientY);
    if (p) {
      [lastX, lastY] = p;
      pendingMove = { type: "mouse", x: +p[0].toFixed(5), y: +p[1].toFixed(5), buttons: 1 };
    }
  } else if (fingers.size === 2 && (g.kind === "two" || g.kind === "pinch" || g.kind === "scroll")) {
    const t = twoFingers();
    if (g.kind === "two") {
      if (Math.abs(t.d - g.d0) > 24) g.kind = "pinch";
      else if (Math.hypot(t.m[0] - g.m0[0], t.m[1] - g.m0[1]) > 16) g.kind = "scroll";
    }
    if (g.kind === "pinch") zoomTo(g.z0 * t.d / g.d0, t.m, g.anchor);
    else if (g.kind === "scroll") {
      // The content follows the fingers: moving them up scrolls down, as on a phone.
      wheelAcc += -(t.m[1] - g.last[1]) / SCROLL_PX * wheelFactor();
      g.last = t.m;
    }
  }
});
function touchEnd(e) {
  if (e.pointerType !== "touch" || !fingers.has(e.pointerId)) return;
  fingers.delete(e.pointerId);
  const g = gesture;
  if (g && g.kind === "pending" && !fingers.size) {
    clearTimeout(g.timer);
    if (e.type === "pointerup" && touchMouse(g.x0, g.y0, 1)) touchMouse(g.x0, g.y0, 0);   // a tap: click
  } else if (g && g.kind === "drag") {
    if (pendingMove) { send(pendingMove); pendingMove = null; }
    touchMouse(g.x, g.y, 0);
  }
  if (!fingers.size) gesture = null;
  else if (g) { clearTimeout(g.timer); g.kind = "done"; }   // the other finger ends nothing more
}
screenEl.addEventListener("pointerup", touchEnd);
screenEl.addEventListener("pointercancel", touchEnd);

// ---- pinch zoom: a transform of the picture (scale about its top left corner, then a shift) ----
const zoom = { z: 1, tx: 0, ty: 0 };
function applyZoom() {
  video.style.transform = zoom.z === 1 ? "" : `translate(${zoom.tx}px, ${zoom.ty}px) scale(${zoom.z})`;
  $("zoom-pill").hidden = zoom.z === 1;
  $("zoom-pill").textContent = zoom.z.toFixed(1) + "× ✕";
}
// The point of the unzoomed picture under a client point.
function zoomAnchor(m) {
  const r = screenEl.getBoundingClientRect();
  return [(m[0] - r.left - zoom.tx) / zoom.z, (m[1] - r.top - zoom.ty) / zoom.z];
}
// Zoom to z with the anchor under the client point m, the picture still covering the screen.
function zoomTo(z, m, anchor) {
  if (opts.scale === "1:1") return;
  const r = screenEl.getBoundingClientRect();
  zoom.z = Math.max(1, Math.min(8, z));
  if (zoom.z < 1.02) zoom.z = 1;
  zoom.tx = Math.min(0, Math.max(r.width - r.width * zoom.z, m[0] - r.left - anchor[0] * zoom.z));
  zoom.ty = Math.min(0, Math.max(r.height - r.height * zoom.z, m[1] - r.top - anchor[1] * zoom.z));
  if (zoom.z === 1) zoom.tx = zoom.ty = 0;
  applyZoom();
}
$("zoom-pill").addEventListener("click", () => { zoom.z = 1; zoom.tx = zoom.ty = 0; applyZoom(); });

video.addEventListener("contextmenu", (e) => e.preventDefault());
screenEl.addEventListener("wheel", (e) => {
  if (!canInput()) return;
  e.preventDefault();
  // One notch per 100 px or 3 lines, as most desktops scroll, times the speed of the options.
  const unit = e.deltaMode === 1 ? 1 / 3 : e.deltaMode === 2 ? 1 : 1 / 100;
  const f = wheelFactor();
  wheelAcc += e.deltaY * unit * f;
  if (Math.abs(wheelAcc) < 1 && e.deltaY) wheelAcc = Math.sign(e.deltaY * f);
}, { passive: false });

$("btn-mouse").addEventListener("click", () => {
  relMode = !relMode;
  $("btn-mouse").textContent = relMode ? "Mouse: relative (Esc leaves)" : "Mouse: absolute";
  if (!relMode && document.pointerLockElement) document.exitPointerLock();
});

// ---- toolbar ----
// Its buttons never keep the keyboard: a click leaves the focus on (or gives it back to) the
// screen, so the next keys reach the target and Space or Enter do not press the button again.
// The buttons that open a text field of their own keep it.
const KEEPS_FOCUS = ["btn-paste", "btn-osk", "btn-logout", "btn-macro-edit", "btn-options"];
$("bar").addEventListener("mousedown", (e) => {
  const b = e.target.closest("button, .button");
  if (b && !KEEPS_FOCUS.includes(b.id)) e.preventDefault();
});
$("bar").addEventListener("click", (e) => {
  const b = e.target.closest("button, .button");
  if (b && !KEEPS_FOCUS.includes(b.id)) screenEl.focus();
  // On a phone the controls behind ☰ close once one was used (not the menus they open).
  if (b && $("tools").contains(b) && b.id !== "btn-keys" && b.id !== "btn-macros") setTools(false);
});
for (const b of document.querySelectorAll(".led"))
  b.addEventListener("click", () => {
    send({ type: "key", code: b.dataset.key, down: true });
    send({ type: "key", code: b.dataset.key, down: false });
  });

function keyButton(list, combo, text, title) {
  const b = document.createElement("button");
  b.dataset.combo = combo;
  b.textContent = text;
  if (title) b.title = title;
  list.appendChild(b);
}
for (const [combo, text] of [["esc", "Esc"], ["up", "↑"], ["tab", "Tab"], ["left", "←"], ["down", "↓"],
  ["right", "→"]])
  keyButton($("navkeys"), combo, text, combo === "esc" || combo === "tab" ? "" : "arrow " + combo);
for (let i = 1; i <= 12; i++) keyButton($("plainfkeys"), "f" + i, "F" + i);
for (let i = 1; i <= 12; i++) keyButton($("fkeys"), "ctrl+alt+f" + i, "C+A+F" + i, "Ctrl+Alt+F" + i);

// The menus (Keys, Macros, and on a phone the ☰ panel) close on Esc and on a click outside them;
// neither reaches the target.
const MENUS = ["keys-menu", "macros-menu"];
function setTools(open) {
  $("tools").classList.toggle("open", open);
  $("btn-more").setAttribute("aria-expanded", String(open));
}
function menusOpen() {
  return MENUS.some((id) => !$(id).hidden) || $("tools").classList.contains("open");
}
function closeMenus() {
  for (const id of MENUS) $(id).hidden = true;
  setTools(false);
}
function toggleMenu(id) {
  const open = $(id).hidden;
  for (const m of MENUS) $(m).hidden = true;
  $(id).hidden = !open;
}
$("btn-keys").addEventListener("click", () => toggleMenu("keys-menu"));
$("btn-macros").addEventListener("click", () => { renderMacros(); toggleMenu("macros-menu"); });
$("btn-more").addEventListener("click", () => {
  const open = !$("tools").classList.contains("open");
  closeMenus();
  setTools(open);
});
let swallowUp = false;
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || !menusOpen()) return;
  e.preventDefault();
  e.stopPropagation();
  closeMenus();
  screenEl.focus();
}, true);
window.addEventListener("pointerdown", (e) => {
  if (!menusOpen()) return;
  if (e.target.closest("#bar")) {
    // In the toolbar: the menus the click is not in close; the buttons do the rest.
    for (const id of MENUS) if (!$(id).parentNode.contains(e.target)) $(id).hidden = true;
    return;
  }
  closeMenus();
  if (!screenEl.contains(e.target)) return;
  e.preventDefault();
  e.stopPropagation();
  swallowUp = true;
  screenEl.focus();
}, true);
window.addEventListener("pointerup", (e) => {
  if (!swallowUp) return;
  swallowUp = false;
  e.stopPropagation();
}, true);
$("keys-menu").addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.dataset.combo) send({ type: "combo", combo: b.dataset.combo });
  if (b.id === "btn-release") { pressed.clear(); send({ type: "release_all" }); }
  closeMenus();
  screenEl.focus();
});
$("btn-usb").addEventListener("click", () => {
  send({ type: "switch", to: state && state.usb === "target" ? "host" : "target" });
});
$("btn-full").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen()
    .catch((e) => toast("fullscreen: the browser refused (" + e.message + ")"));
});
// In fullscreen the keys a browser keeps for itself (Esc, Ctrl+W, Alt+Tab, Win) go to the target
// too, by the Keyboard Lock API; holding Esc leaves fullscreen.
const LOCK_KEYS_TIP = "Esc, Ctrl+W, Alt+Tab and Win";
document.addEventListener("fullscreenchange", () => {
  const kb = navigator.keyboard;
  if (!document.fullscreenElement) {
    if (kb && kb.unlock) kb.unlock();
    return;
  }
  screenEl.focus();
  if (!kb || typeof kb.lock !== "function") {
    toast(`This browser cannot capture ${LOCK_KEYS_TIP} (no Keyboard Lock API): it keeps them; `
      + "send them from the Keys menu. Esc leaves fullscreen.", "info");
    return;
  }
  kb.lock().then(() => toast(`Fullscreen: ${LOCK_KEYS_TIP} go to the target; hold Esc to leave.`, "info"),
    (e) => toast(`fullscreen: the browser would not capture ${LOCK_KEYS_TIP} (${e.message}); `
      + "send them from the Keys menu"));
});
$("btn-logout").addEventListener("click", async () => {
  leaving = true;   // the server ends this page's WebSocket: no reconnect, no second redirect
  try {
    const r = await fetch("/api/logout", { method: "POST" });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error || "HTTP " + r.status);
    }
  } catch (e) {
    leaving = false;
    toast("log out failed: " + (e.message === "Failed to fetch" ? "cannot reach okvm" : e.message));
    if (!wsOpen) connect();
    return;
  }
  location.href = "/login";
});

// ---- pastes: one at a time, as the server refuses a second one while one runs ----
let typeBusy = null;    // the paste this page waits for: "osk", "dialog", or "wait" (someone else's)
let typeAcked = false;  // its {"type":"ok"} came: the next state without typing.active ends it
let pasteOwn = false;   // the paste dialog's paste: render shows its progress
let pasteRefused = false; // Paste was pressed again while it ran: the progress keeps saying so
let pasteTimer = null;  // no answer to the dialog's paste
let oskQueue = [], oskSent = "";  // on-screen keyboard text and keys waiting; the text of its paste

function sendType(from, msg) {
  typeBusy = from;
  typeAcked = false;
  send(msg);
  if (from !== "dialog") return;
  clearTimeout(pasteTimer);
  pasteTimer = setTimeout(() => {
    if (typeBusy !== "dialog" || typeAcked) return;
    typeBusy = null;
    $("paste-status").textContent = "no answer from okvm: try again";
  }, 5000);
}

function typeDone() {
  const from = typeBusy;
  typeBusy = null;
  if (from === "macro" && macroType) macroType.resolve();
  pumpOsk();
}

function typeRefused(error) {
  const from = typeBusy;
  typeBusy = null;
  if (from === "osk" && state && state.typing.active) {
    // Another browser's paste runs: keep the characters, send them when it has ended.
    oskQueue.unshift(oskSent);
    typeBusy = "wait";
    setTimeout(() => { if (typeBusy === "wait") typeDone(); }, 1000);
    return;
  }
  if (from === "macro" && macroType) { macroType.reject(new Error(error)); pumpOsk(); return; }
  toast("okvm: " + error);
  if (from === "dialog") {
    clearTimeout(pasteTimer);
    pasteOwn = false;
    $("paste-status").textContent = error;
  }
  pumpOsk();
}

// Characters typed while a paste runs go together as the next one; Enter and Backspace (key
// codes in the queue) wait for the characters before them.
function pumpOsk() {
  if (!wsOpen || !canInput()) return;
  while (typeof oskQueue[0] === "object" && typeBusy !== "osk") {
    const { code } = oskQueue.shift();
    send({ type: "key", code, down: true });
    send({ type: "key", code, down: false });
  }
  if (typeBusy || !oskQueue.length) return;
  let n = 0;
  while (typeof oskQueue[n] === "string") n++;
  oskSent = oskQueue.splice(0, n).join("");
  sendType("osk", { type: "type", text: oskSent });
}

// ---- on-screen keyboard (phones): a hidden input that brings the system keyboard up ----
const osk = $("osk-input");
$("btn-osk").addEventListener("click", () => { osk.value = ""; osk.focus(); });
osk.addEventListener("input", (e) => {
  if (e.data && canInput()) { oskQueue.push(e.data); pumpOsk(); }
  osk.value = "";
});
osk.addEventListener("keydown", (e) => {
  const code = e.key === "Backspace" ? "Backspace" : e.key === "Enter" ? "Enter" : null;
  if (!code) return;
  e.preventDefault();
  if (canInput()) { oskQueue.push({ code }); pumpOsk(); }
});

// ---- paste dialog ----
$("btn-paste").addEventListener("click", () => {
  if (!canInput()) return;
  releaseAll();
  if (!typeBusy) {
    // Whatever the dialog showed last (or another browser's paste) is not news.
    pasteOwn = false;
    $("paste-progress").value = 0;
    $("paste-status").textContent = "";
  }
  $("paste").showModal();
  $("paste-text").focus();
});
$("paste-go").addEventListener("click", (e) => {
  e.preventDefault();
  const text = $("paste-text").value;
  if (!text) return;
  if (typeBusy || (state && state.typing.active)) {
    // Kept in front of the progress (render) until the running paste ends.
    pasteRefused = pasteOwn;
    $("paste-status").textContent = "a paste is running";
    return;
  }
  if (!$("paste-layout").value) {
    $("paste-status").textContent = "no layout matches the search: change it and choose one";
    return;
  }
  if (!wsOpen) { pasteHttp(text); return; }
  pasteOwn = true;
  $("paste-progress").value = 0;
  $("paste-status").textContent = "sending…";
  sendType("dialog", { type: "type", text, layout: $("paste-layout").value, cps: +$("paste-cps").value || 0 });
});
// Without the WebSocket the paste goes by POST /api/type; its progress shows once the page reconnects.
async function pasteHttp(text) {
  const st = $("paste-status");
  st.textContent = "sending over HTTP (the WebSocket is down)…";
  const q = new URLSearchParams({ layout: $("paste-layout").value, cps: String(+$("paste-cps").value || 0) });
  try {
    const r = await fetch("/api/type?" + q, { method: "POST", body: text,
      headers: { "Content-Type": "text/plain; charset=utf-8" } });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || "HTTP " + r.status);
    st.textContent = "sent over HTTP: the target is typing it (progress shows once the page reconnects)";
  } catch (e) {
    st.textContent = e.message === "Failed to fetch" ? "cannot reach okvm: try again when it is back" : e.message;
  }
}
$("paste-cancel").addEventListener("click", () => { $("paste").close(); screenEl.focus(); });

// ---- paste layouts: the server's list (GET /api/layouts) and its --layout first chosen; the
// search box above the list keeps the layouts whose name or description has every word typed ----
let layoutChosen = false;
let allLayouts = null;   // [[name, text]] from the server, null: the fixed list of the page
function serverLayout() {
  if (layoutChosen || !state || !state.layout) return;
  const sel = $("paste-layout");
  if (![...sel.options].some((o) => o.value === state.layout)) sel.add(new Option(state.layout, state.layout), 0);
  sel.value = state.layout;
  layoutPick = state.layout;
  layoutChosen = true;
}
// The layout chosen last (in the list, or the server's): it comes back when a search lets it.
let layoutPick = null;
$("paste-layout").addEventListener("change", () => { layoutPick = $("paste-layout").value; });
function filterLayouts() {
  if (!allLayouts) allLayouts = [...$("paste-layout").options].map((o) => [o.value, o.textContent]);
  const words = $("layout-search").value.toLowerCase().split(/\s+/).filter(Boolean);
  const sel = $("paste-layout");
  if (layoutPick === null) layoutPick = sel.value;
  const list = allLayouts.filter(([, text]) => words.every((w) => text.toLowerCase().includes(w)));
  sel.replaceChildren(...list.map(([name, text]) => new Option(text, name)));
  if (list.some(([name]) => name === layoutPick)) sel.value = layoutPick;
  $("layout-search").setCustomValidity(list.length ? "" : "no layout matches");
  $("layout-search").title = list.length ? `${list.length} layouts` : "no layout matches: fewer words?";
}
$("layout-search").addEventListener("input", filterLayouts);
$("layout-search").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); $("paste-layout").focus(); }
});
async function loadLayouts() {
  try {
    const r = await fetch("/api/layouts");
    const list = r.ok ? await r.json() : null;
    if (!Array.isArray(list) || !list.length) return;   // an older server: the fixed list stays
    const sel = $("paste-layout"), cur = sel.value;
    allLayouts = list.map((l) => [l.name, l.description ? `${l.name} (${l.description})` : l.name]);
    sel.replaceChildren(...allLayouts.map(([name, text]) => new Option(text, name)));
    if ([...sel.options].some((o) => o.value === cur)) sel.value = cur;
    else { layoutChosen = false; serverLayout(); }
    if ($("layout-search").value) filterLayouts();
  } catch { /* the fixed list stays */ }
}
loadLayouts();

// ---- options: scaling, the local cursor, scroll speed and direction, the jiggler ----
function saveOptions() {
  try { localStorage.setItem("okvm.options", JSON.stringify(opts)); }
  catch (e) { toast("options: this browser would not store them (" + e.message + "); they last until a reload"); }
}
// Notches per wheel step (or per two-finger step), signed by the direction option.
function wheelFactor() {
  return opts.scrollSpeed * (opts.scrollReverse ? -1 : 1);
}
// 1:1 gives the element the frame's size in device pixels; fit and stretch fill the screen.
function layoutVideo() {
  screenEl.classList.toggle("scale-stretch", opts.scale === "stretch");
  screenEl.classList.toggle("scale-1", opts.scale === "1:1");
  screenEl.classList.toggle("no-cursor", opts.hideCursor);
  const nw = video.naturalWidth || (state && state.video.width) || 0;
  const nh = video.naturalHeight || (state && state.video.height) || 0;
  const one = opts.scale === "1:1" && nw && nh;
  video.style.width = one ? nw / devicePixelRatio + "px" : "";
  video.style.height = one ? nh / devicePixelRatio + "px" : "";
}
function applyOptions() {
  if (opts.scale === "1:1" && zoom.z !== 1) { zoom.z = 1; zoom.tx = zoom.ty = 0; applyZoom(); }
  layoutVideo();
  $("jiggle-pill").hidden = !opts.jiggle;
  $("jiggle-pill").textContent = `jiggler ${opts.jiggleS} s`;
}
const OPT_FIELDS = [["opt-scale", "scale", "value"], ["opt-cursor", "hideCursor", "checked"],
  ["opt-scroll-speed", "scrollSpeed", "valueAsNumber"], ["opt-scroll-reverse", "scrollReverse", "checked"],
  ["opt-jiggle", "jiggle", "checked"], ["opt-jiggle-s", "jiggleS", "valueAsNumber"]];
for (const [id, key, prop] of OPT_FIELDS)
  $(id).addEventListener("change", () => {
    const el = $(id);
    let v = el[prop];
    if (prop === "valueAsNumber") {
      if (!Number.isFinite(v) || v < +el.min || v > +el.max) {
        toast(`${el.labels[0].textContent.trim().split(/\s+/)[0]}: a number from ${el.min} to ${el.max}`);
        el.value = opts[key];
        return;
      }
    }
    opts[key] = v;
    saveOptions();
    applyOptions();
  });
$("btn-options").addEventListener("click", () => {
  for (const [id, key, prop] of OPT_FIELDS) {
    if (prop === "valueAsNumber") $(id).value = opts[key];
    else $(id)[prop] = opts[key];
  }
  $("options").showModal();
});
$("options").addEventListener("close", () => screenEl.focus());
window.addEventListener("resize", layoutVideo);
applyOptions();

// The jiggler: when this page sent no input for jiggleS seconds, one pixel right and back, so the
// target does not lock its screen or go to sleep. Off by default.
setInterval(() => {
  if (!opts.jiggle || !wsOpen || !canInput() || macroRun) return;
  if (performance.now() - lastInput < opts.jiggleS * 1000) return;
  send({ type: "rel", dx: 1, dy: 0, buttons });
  send({ type: "rel", dx: -1, dy: 0, buttons });
}, 250);

// ---- on-screen keys (phones and tablets): every key a person may miss on a touch keyboard ----
// Each key is sent as a physical key would be, by its KeyboardEvent.code: down when touched, up
// when let go. The labels are the US positions; the target's layout decides the character.
// Modifiers are sticky: one tap holds them for the next key, a second tap locks them, a third
// lets them go.
const VKBD_ROWS = [
  [["Escape", "Esc"], ...[...Array(12)].map((_, i) => ["F" + (i + 1), "F" + (i + 1)])],
  [["Backquote", "`"], ..."1234567890".split("").map((d) => ["Digit" + d, d]), ["Minus", "-"], ["Equal", "="],
    ["Backspace", "⌫", "wide"]],
  [["Tab", "Tab", "wide"], ..."qwertyuiop".split("").map((c) => ["Key" + c.toUpperCase(), c]),
    ["BracketLeft", "["], ["BracketRight", "]"], ["Backslash", "\\"]],
  [["CapsLock", "Caps", "wide"], ..."asdfghjkl".split("").map((c) => ["Key" + c.toUpperCase(), c]),
    ["Semicolon", ";"], ["Quote", "'"], ["Enter", "Enter", "wide"]],
  [["ShiftLeft", "Shift", "wide mod"], ..."zxcvbnm".split("").map((c) => ["Key" + c.toUpperCase(), c]),
    ["Comma", ","], ["Period", "."], ["Slash", "/"], ["ArrowUp", "↑"], ["ShiftRight", "Shift", "mod"]],
  [["ControlLeft", "Ctrl", "wide mod"], ["MetaLeft", "Win", "mod"], ["AltLeft", "Alt", "mod"],
    ["Space", "Space", "space"], ["AltRight", "AltGr", "mod"], ["ArrowLeft", "←"], ["ArrowDown", "↓"],
    ["ArrowRight", "→"]],
  [["Insert", "Ins"], ["Delete", "Del"], ["Home", "Home"], ["End", "End"], ["PageUp", "PgUp"],
    ["PageDown", "PgDn"], ["PrintScreen", "PrtSc"], ["ContextMenu", "Menu"]],
];
const vkMods = new Map();   // code -> "armed" | "locked" (both held down on the target)
const vkHeld = new Map();   // pointerId -> the code of the key that finger holds
for (const row of VKBD_ROWS) {
  const div = document.createElement("div");
  div.className = "row";
  for (const [code, label, cls] of row) {
    const b = document.createElement("button");
    b.type = "button";
    b.tabIndex = -1;
    b.dataset.code = code;
    b.textContent = label;
    if (cls) b.className = cls;
    div.appendChild(b);
  }
  $("vkbd").appendChild(div);
}
function vkPaint() {
  for (const b of $("vkbd").querySelectorAll("button.mod")) {
    const st = vkMods.get(b.dataset.code);
    b.classList.toggle("armed", st === "armed");
    b.classList.toggle("locked", st === "locked");
    b.setAttribute("aria-pressed", String(!!st));
  }
}
function vkKey(code, down) {
  send({ type: "key", code, down });
}
// Every modifier of the on-screen keys up (locked ones too).
function vkReleaseAll() {
  for (const [pid, code] of vkHeld) { vkKey(code, false); vkHeld.delete(pid); }
  for (const code of vkMods.keys()) vkKey(code, false);
  vkMods.clear();
  for (const b of $("vkbd").querySelectorAll("button.down")) b.classList.remove("down");
  vkPaint();
}
$("vkbd").addEventListener("pointerdown", (e) => {
  e.preventDefault();   // the screen keeps the keyboard focus
  const b = e.target.closest("button");
  if (!b || !canInput()) return;
  const code = b.dataset.code;
  if (b.classList.contains("mod")) {
    const st = vkMods.get(code);
    if (!st) { vkMods.set(code, "armed"); vkKey(code, true); }
    else if (st === "armed") vkMods.set(code, "locked");
    else { vkMods.delete(code); vkKey(code, false); }
    vkPaint();
    return;
  }
  if ([...vkHeld.values()].includes(code)) return;
  vkHeld.set(e.pointerId, code);
  b.classList.add("down");
  vkKey(code, true);
});
$("vkbd").addEventListener("mousedown", (e) => e.preventDefault());
function vkUp(e) {
  const code = vkHeld.get(e.pointerId);
  if (code === undefined) return;
  vkHeld.delete(e.pointerId);
  const b = $("vkbd").querySelector(`button[data-code="${code}"]`);
  if (b) b.classList.remove("down");
  vkKey(code, false);
  if (vkHeld.size) return;
  // The key the armed modifiers waited for is done: they go up, the locked ones stay.
  for (const [m, st] of [...vkMods]) if (st === "armed") { vkMods.delete(m); vkKey(m, false); }
  vkPaint();
}
window.addEventListener("pointerup", vkUp);
window.addEventListener("pointercancel", vkUp);
window.addEventListener("blur", vkReleaseAll);
$("btn-vkbd").addEventListener("click", () => {
  const open = $("vkbd").hidden;
  if (!open) vkReleaseAll();
  $("vkbd").hidden = !open;
  $("btn-vkbd").setAttribute("aria-pressed", String(open));
  layoutVideo();
});

// ---- macros: named sequences of combos, text and waits, kept in this browser (localStorage) ----
// A step is {"combo":"ctrl+alt+delete"}, {"text":"..."} (typed on the paste layout) or {"wait":ms}.
// The file of Export and Import is {"okvm_macros":1,"macros":[{"name":...,"steps":[...]}]}.
let macros = [];
let macroRun = null;    // {name, cancelled, error, wake}: the macro running
let macroType = null;   // {resolve, reject}: the paste of its text step
try { macros = checkMacros(JSON.parse(localStorage.getItem("okvm.macros") || "[]")); }
catch (e) { setTimeout(() => toast("macros: the stored ones are unreadable (" + e.message + "); none loaded"), 0); }

function checkStep(st, where) {
  if (!st || typeof st !== "object") throw new Error(where + ": not a step");
  const keys = Object.keys(st);
  if (keys.length !== 1) throw new Error(where + ": a step is one of combo, text or wait");
  const [k] = keys, v = st[k];
  if (k === "combo" && typeof v === "string" && /^\S+$/.test(v)) return { combo: v };
  if (k === "text" && typeof v === "string" && v) return { text: v };
  if (k === "wait" && Number.isInteger(v) && v >= 0 && v <= 600000) return { wait: v };
  if (k === "wait") throw new Error(where + ": wait takes milliseconds, 0 to 600000");
  if (k === "combo" || k === "text") throw new Error(where + `: ${k} needs a ${k === "combo" ? "key name" : "text"}`);
  throw new Error(where + `: unknown step '${k}' (use combo, text or wait)`);
}
function checkMacros(list) {
  if (!Array.isArray(list)) throw new Error("not a list of macros");
  return list.map((m, i) => {
    if (!m || typeof m.name !== "string" || !m.name.trim()) throw new Error(`macro ${i + 1}: no name`);
    if (!Array.isArray(m.steps) || !m.steps.length) throw new Error(`macro '${m.name}': no steps`);
    return { name: m.name.trim(), steps: m.steps.map((st, j) => checkStep(st, `macro '${m.name}' step ${j + 1}`)) };
  });
}
// The editor's text: one step a line, "combo KEYS", "text TEXT" (\n for Enter, \\ for \), "wait MS".
function parseSteps(src) {
  const steps = [];
  src.split("\n").forEach((line, i) => {
    const l = line.replace(/\s+$/, "");
    if (!l.trim()) return;
    const m = /^\s*(\S+)(?: (.*))?$/.exec(l);
    const [kind, arg = ""] = [m[1].toLowerCase(), m[2]];
    const where = "line " + (i + 1);
    if (kind === "combo") {
      if (!/^\S+$/.test(arg.trim())) throw new Error(where + ": combo needs key names joined by + (ctrl+alt+f2)");
      steps.push({ combo: arg.trim() });
    } else if (kind === "text") {
      if (!arg) throw new Error(where + ": text needs the text to type");
      steps.push({ text: arg.replace(/\\(n|\\)/g, (_, c) => (c === "n" ? "\n" : "\\")) });
    } else if (kind === "wait") {
      const ms = Number(arg.trim());
      if (!/^\d+$/.test(arg.trim()) || ms > 600000) throw new Error(where + ": wait takes milliseconds, 0 to 600000");
      steps.push({ wait: ms });
    } else throw new Error(where + `: unknown step '${m[1]}' (use combo, text or wait)`);
  });
  if (!steps.length) throw new Error("no steps: one a line, combo, text or wait");
  return steps;
}
function stepsText(steps) {
  return steps.map((st) => "combo" in st ? "combo " + st.combo
    : "wait" in st ? "wait " + st.wait : "text " + st.text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")).join("\n");
}
function storeMacros() {
  try { localStorage.setItem("okvm.macros", JSON.stringify(macros)); return true; }
  catch (e) { $("macro-status").textContent = "not stored: " + e.message; return false; }
}
function renderMacros() {
  const list = $("macro-list");
  list.replaceChildren(...macros.map((m, i) => {
    const b = document.createElement("button");
    b.dataset.macro = String(i);
    b.textContent = "▶ " + m.name;
    b.title = stepsText(m.steps).split("\n").join(" · ");
    return b;
  }));
  if (!macros.length) {
    const p = document.createElement("span");
    p.className = "hint";
    p.textContent = "no macros yet";
    list.appendChild(p);
  }
}
$("macro-list").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-macro]");
  if (!b) return;
  closeMenus();
  screenEl.focus();
  runMacro(macros[+b.dataset.macro]);
});

function macroSleep(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    macroRun.wake = () => { clearTimeout(t); resolve(); };
  });
}
function macroText(text) {
  return new Promise((resolve, reject) => {
    if (!wsOpen) { reject(new Error("not connected to okvm")); return; }
    if (typeBusy || (state && state.typing.active)) { reject(new Error("a paste is running; wait for it")); return; }
    macroType = { resolve, reject };
    sendType("macro", { type: "type", text, layout: $("paste-layout").value });
  }).finally(() => { macroType = null; });
}
async function runMacro(m) {
  if (!m) return;
  if (macroRun) { toast(`macro '${macroRun.name}' is running: stop it first`); return; }
  if (!wsOpen) { toast(`macro '${m.name}': not connected to okvm; wait for it to reconnect`); return; }
  if (!canInput()) return;
  const run = macroRun = { name: m.name, cancelled: false, error: null, wake: null };
  $("btn-macro-stop").hidden = false;
  $("btn-macro-stop").textContent = `■ Stop '${m.name}'`;
  let i = 0;
  try {
    for (; i < m.steps.length && !run.cancelled; i++) {
      const st = m.steps[i];
      if ("combo" in st) {
        send({ type: "combo", combo: st.combo });
        await roundTrip();
      } else if ("text" in st) await macroText(st.text);
      else await macroSleep(st.wait);
      if (run.error) throw new Error(run.error);
    }
  } catch (e) {
    if (!run.cancelled) toast(`macro '${m.name}' stopped at step ${i + 1}: ${e.message}`);
  } finally {
    macroRun = null;
    $("btn-macro-stop").hidden = true;
  }
}
// Stop: no further step, the running paste ends, every key and button on the target goes up.
function stopMacro() {
  if (!macroRun) return;
  macroRun.cancelled = true;
  if (macroRun.wake) macroRun.wake();
  if (macroType) macroType.reject(new Error("stopped"));
  typeBusy = null;
  vkReleaseAll();
  pressed.clear();
  send({ type: "release_all" });
  toast(`macro '${macroRun.name}' stopped; every key released`, "info");
}
$("btn-macro-stop").addEventListener("click", stopMacro);

// The editor.
let macroEditing = -1;   // the index shown, -1: a new one
function editMacro(i) {
  macroEditing = i;
  const sel = $("macro-pick");
  sel.replaceChildren(...macros.map((m, j) => new Option(m.name, String(j))), new Option("(new macro)", "-1"));
  sel.value = String(i);
  const m = macros[i];
  $("macro-name").value = m ? m.name : "";
  $("macro-steps").value = m ? stepsText(m.steps) : "";
  $("macro-del").disabled = !m;
}
$("btn-macro-edit").addEventListener("click", () => {
  closeMenus();
  $("macro-status").textContent = "";
  editMacro(macros.length ? 0 : -1);
  $("macros").showModal();
  $("macro-name").focus();
});
$("macro-pick").addEventListener("change", () => { $("macro-status").textContent = ""; editMacro(+$("macro-pick").value); });
$("macro-new").addEventListener("click", () => { $("macro-status").textContent = ""; editMacro(-1); $("macro-name").focus(); });
$("macro-save").addEventListener("click", () => {
  const name = $("macro-name").value.trim();
  const st = $("macro-status");
  if (!name) { st.textContent = "give the macro a name"; return; }
  let steps;
  try { steps = parseSteps($("macro-steps").value); } catch (e) { st.textContent = e.message; return; }
  const other = macros.findIndex((m, j) => m.name === name && j !== macroEditing);
  if (other >= 0) { st.textContent = `a macro named '${name}' exists: choose another name`; return; }
  if (macroEditing >= 0) macros[macroEditing] = { name, steps };
  else { macros.push({ name, steps }); macroEditing = macros.length - 1; }
  if (storeMacros()) st.textContent = `saved '${name}' (${steps.length} step${steps.length > 1 ? "s" : ""})`;
  editMacro(macroEditing);
  renderMacros();
});
$("macro-del").addEventListener("click", () => {
  if (macroEditing < 0) return;
  const [m] = macros.splice(macroEditing, 1);
  storeMacros();
  $("macro-status").textContent = `deleted '${m.name}'`;
  editMacro(macros.length ? 0 : -1);
  renderMacros();
});
$("macro-export").addEventListener("click", () => {
  const blob = new Blob([JSON.stringify({ okvm_macros: 1, macros }, null, 2) + "\n"], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "okvm-macros.json";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  $("macro-status").textContent = `exported ${macros.length} macro${macros.length === 1 ? "" : "s"}`;
});
$("macro-import").addEventListener("click", () => $("macro-file").click());
$("macro-file").addEventListener("change", async () => {
  const f = $("macro-file").files[0];
  $("macro-file").value = "";
  if (!f) return;
  const st = $("macro-status");
  try {
    let j;
    try { j = JSON.parse(await f.text()); } catch (e) { throw new Error("not JSON (" + e.message + ")"); }
    const list = checkMacros(Array.isArray(j) ? j : j && j.macros);
    for (const m of list) {
      const k = macros.findIndex((o) => o.name === m.name);
      if (k >= 0) macros[k] = m; else macros.push(m);
    }
    if (!storeMacros()) return;
    st.textContent = `imported ${list.length} macro${list.length === 1 ? "" : "s"} from ${f.name}`;
    editMacro(macros.length ? 0 : -1);
    renderMacros();
  } catch (e) {
    st.textContent = `${f.name}: ${e.message}; nothing imported`;
  }
});
$("macros").addEventListener("close", () => screenEl.focus());
renderMacros();

// ---- copy text from a region: drag a box on the picture, GET /api/ocr reads it, the text goes
// to the clipboard (or into a box to copy by hand where the browser keeps the clipboard closed) ----
let ocrPick = null;   // null, or {x0, y0} once the drag began (client coordinates)
function ocrCancel(msg) {
  ocrPick = null;
  screenEl.classList.remove("picking");
  $("ocr-box").hidden = true;
  if (msg) toast(msg, "info");
}
$("btn-ocr").addEventListener("click", () => {
  ocrPick = {};
  screenEl.classList.add("picking");
  toast("Drag a box around the text to copy (Esc cancels)", "info");
});
function ocrBoxAt(x1, y1) {
  const r = screenEl.getBoundingClientRect(), b = $("ocr-box").style;
  b.left = Math.min(ocrPick.x0, x1) - r.left + screenEl.scrollLeft + "px";
  b.top = Math.min(ocrPick.y0, y1) - r.top + screenEl.scrollTop + "px";
  b.width = Math.abs(x1 - ocrPick.x0) + "px";
  b.height = Math.abs(y1 - ocrPick.y0) + "px";
}
// While picking, the pointer draws the box and nothing reaches the target.
screenEl.addEventListener("pointerdown", (e) => {
  if (!ocrPick) return;
  e.preventDefault();
  e.stopPropagation();
  screenEl.setPointerCapture(e.pointerId);
  ocrPick = { x0: e.clientX, y0: e.clientY, id: e.pointerId };
  ocrBoxAt(e.clientX, e.clientY);
  $("ocr-box").hidden = false;
}, true);
screenEl.addEventListener("pointermove", (e) => {
  if (!ocrPick) return;
  e.stopPropagation();
  if (ocrPick.id === e.pointerId) ocrBoxAt(e.clientX, e.clientY);
}, true);
screenEl.addEventListener("pointerup", (e) => {
  if (!ocrPick) return;
  e.stopPropagation();
  if (ocrPick.id !== e.pointerId) return;
  const a = frameCoords(ocrPick.x0, ocrPick.y0), b = frameCoords(e.clientX, e.clientY);
  ocrCancel();
  const nw = video.naturalWidth || (state && state.video.width) || 0;
  const nh = video.naturalHeight || (state && state.video.height) || 0;
  const cl = (v) => Math.max(0, Math.min(1, v));
  const x0 = Math.round(cl(Math.min(a[0], b[0])) * nw), x1 = Math.round(cl(Math.max(a[0], b[0])) * nw);
  const y0 = Math.round(cl(Math.min(a[1], b[1])) * nh), y1 = Math.round(cl(Math.max(a[1], b[1])) * nh);
  if (x1 - x0 < 4 || y1 - y0 < 4) { toast("copy text: drag a larger box over the picture"); return; }
  ocrRead(x0, y0, x1 - x0, y1 - y0);
}, true);
screenEl.addEventListener("pointercancel", () => { if (ocrPick) ocrCancel(); }, true);
document.addEventListener("keydown", (e) => {
  if (!ocrPick || e.key !== "Escape") return;
  e.preventDefault();
  e.stopPropagation();
  ocrCancel("copy text: cancelled");
}, true);
async function ocrRead(x, y, w, h) {
  toast("reading the text…", "info");
  let text;
  try {
    const r = await fetch(`/api/ocr?x=${x}&y=${y}&w=${w}&h=${h}`);
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || "HTTP " + r.status);
    text = typeof j.text === "string" ? j.text.replace(/\s+$/, "") : "";
  } catch (e) {
    toast("copy text: " + (e.message === "Failed to fetch" ? "cannot reach okvm" : e.message));
    return;
  }
  if (!text) { toast("copy text: no text found in the box", "info"); return; }
  try {
    if (!navigator.clipboard || !navigator.clipboard.writeText) throw new Error("no clipboard API");
    await navigator.clipboard.writeText(text);
    toast(`copied ${[...text].length} characters: ${text.length > 60 ? text.slice(0, 60) + "…" : text}`, "info");
  } catch (e) {
    // Over plain http from another machine the browser keeps the clipboard closed.
    $("ocr-text").value = text;
    $("ocr-result").showModal();
    $("ocr-text").select();
  }
}
$("ocr-close").addEventListener("click", () => { $("ocr-result").close(); screenEl.focus(); });

// Keep the WebSocket alive through proxies that drop idle connections.
setInterval(() => send({ type: "ping", t: Date.now() }), 20000);
// Thin links: when frames back up, say so once and name a lighter stream (quality.js).
setInterval(() => {
  const next = okvmQuality.watch(vstat, state && state.video ? state.video.fps : 0);
  if (next)
    toast(`The link is too slow for this stream: frames back up and are skipped. Options, `
      + `MJPEG stream: try "${next}" (or Video: H.264).`, "info");
}, 5000);

connect();
screenEl.focus();
