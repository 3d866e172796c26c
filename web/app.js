"use strict";
// okvm web UI: MJPEG video drawn on a <canvas> (an <img> as the fallback), input over the WebSocket
// /api/ws (docs/api.md).
// No framework and no build step: this file is embedded into the okvm binary as it is.

const $ = (id) => document.getElementById(id);
const screenEl = $("screen"), overlay = $("overlay"), banner = $("banner");
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
  "btn-usb", "btn-osk"];
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
    if ($("paste").open) $("paste").close();
    relMode = false;
    $("btn-mouse").textContent = "Mouse: absolute";
    if (document.pointerLockElement) document.exitPointerLock();
  }
}

// ---- messages for the person, not the console ----
let toastTimer = null;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
}

// ---- WebSocket with automatic reconnect ----
function send(msg) {
  if (!wsOpen) return;
  if (msg.type !== "ping" && !canInput()) return;   // a viewer's page sends no input at all
  ws.send(JSON.stringify(msg));
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(proto + "//" + location.host + "/api/ws");
  ws.onopen = () => {
    wsOpen = true;
    retryMs = 500;
    startVideo();
    setTimeout(pumpOsk, 0);
    render();
  };
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    if (m.type === "state") {
      state = m;
      serverLayout();
      if (typeBusy && (typeAcked || typeBusy === "wait") && !m.typing.active) typeDone();
      render();
    } else if (m.type === "error" && m.ref === "type") typeRefused(m.error);
    else if (m.type === "error") toast("okvm: " + m.error);
    else if (m.type === "ok" && m.ref === "type") {
      typeAcked = true;
      if (typeBusy === "dialog") { clearTimeout(pasteTimer); $("paste-status").textContent = "typing…"; }
    }
  };
  ws.onclose = (ev) => {
    wsOpen = false;
    typeBusy = null;
    if (leaving) return;
    render();
    if (ev.code === 1006 && document.cookie === "" && state && state.auth) {
      // The session may have expired: the login page decides.
      fetch("/api/state").then((r) => { if (r.status === 401) location.href = "/login"; });
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

function startVideo() {
  if (vstat.mode === "img") { video.src = "/stream?t=" + Date.now(); return; }
  if (vAbort) vAbort.abort();
  vAbort = new AbortController();
  const gen = ++vGen;
  readStream(gen, vAbort.signal).catch((e) => {
    if (gen !== vGen) return;               // replaced by a newer stream
    if (e && e.fallback) {
      // Not a stream this page can cut (a proxy's doing?): the page reloads into the <img> path.
      console.warn("okvm: video falls back to <img>: " + e.message);
      location.replace(location.pathname + "?video=img" + location.hash);
      return;
    }
    setTimeout(() => { if (gen === vGen) startVideo(); }, 1000);
  });
}
if (vstat.mode === "img") video.addEventListener("error", () => setTimeout(startVideo, 1000));

function findHeadEnd(b) {
  for (let i = 0; i + 3 < b.length; i++)
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  return -1;
}

async function readStream(gen, signal) {
  const r = await fetch("/stream?t=" + Date.now(), { signal, cache: "no-store" });
  if (!r.ok) throw new Error("HTTP " + r.status);
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
    vW = bm.width;
    vH = bm.height;
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
    setPill($("video-info"), v.signal ? `${v.width}×${v.height} ${v.fps} fps` : "no signal",
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
      : ty.active ? `typing ${ty.done}/${ty.total}` : `typed ${ty.done}/${ty.total}`;
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

// The part of the element the picture covers (object-fit: contain): letterboxing is excluded.
function toFrame(clientX, clientY) {
  const r = video.getBoundingClientRect();
  const nw = video.naturalWidth || (state && state.video.width) || 16;
  const nh = video.naturalHeight || (state && state.video.height) || 9;
  const scale = Math.min(r.width / nw, r.height / nh);
  const w = nw * scale, h = nh * scale;
  const x = (clientX - r.left - (r.width - w) / 2) / w;
  const y = (clientY - r.top - (r.height - h) / 2) / h;
  if (x < 0 || x > 1 || y < 0 || y > 1) return null;
  return [x, y];
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

video.addEventListener("pointermove", (e) => {
  if (!canInput()) return;
  if (relMode) {
    if (document.pointerLockElement !== screenEl) return;
    relAcc = relAcc || { dx: 0, dy: 0 };
    relAcc.dx += e.movementX;
    relAcc.dy += e.movementY;
    return;
  }
  if (e.pointerType === "touch") return;
  absEvent(e, false);
});
video.addEventListener("pointerdown", (e) => {
  screenEl.focus();
  if (!canInput()) return;
  if (relMode) {
    if (document.pointerLockElement !== screenEl) { screenEl.requestPointerLock(); return; }
    buttons = e.buttons & 7;
    send({ type: "rel", dx: 0, dy: 0, buttons });
    return;
  }
  if (e.pointerType === "touch") { touchStart = [e.clientX, e.clientY]; return; }
  absEvent(e, true);
});
let touchStart = null;
video.addEventListener("pointerup", (e) => {
  if (!canInput()) return;
  if (relMode) {
    buttons = e.buttons & 7;
    if (document.pointerLockElement === screenEl) send({ type: "rel", dx: 0, dy: 0, buttons });
    return;
  }
  if (e.pointerType === "touch") {
    // Tap to click: move there, press, release.
    if (touchStart && Math.hypot(e.clientX - touchStart[0], e.clientY - touchStart[1]) < 12) {
      const p = toFrame(e.clientX, e.clientY);
      if (p) {
        send({ type: "mouse", x: p[0], y: p[1], buttons: 1 });
        send({ type: "mouse", x: p[0], y: p[1], buttons: 0 });
      }
    }
    touchStart = null;
    return;
  }
  absEvent(e, true);
});
video.addEventListener("contextmenu", (e) => e.preventDefault());
screenEl.addEventListener("wheel", (e) => {
  if (!canInput()) return;
  e.preventDefault();
  // One notch per 100 px or 3 lines, as most desktops scroll.
  const unit = e.deltaMode === 1 ? 1 / 3 : e.deltaMode === 2 ? 1 : 1 / 100;
  wheelAcc += e.deltaY * unit;
  if (Math.abs(wheelAcc) < 1 && e.deltaY) wheelAcc = Math.sign(e.deltaY);
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
const KEEPS_FOCUS = ["btn-paste", "btn-osk", "btn-logout"];
$("bar").addEventListener("mousedown", (e) => {
  const b = e.target.closest("button, .button");
  if (b && !KEEPS_FOCUS.includes(b.id)) e.preventDefault();
});
$("bar").addEventListener("click", (e) => {
  const b = e.target.closest("button, .button");
  if (b && !KEEPS_FOCUS.includes(b.id)) screenEl.focus();
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
$("btn-keys").addEventListener("click", () => { $("keys-menu").hidden = !$("keys-menu").hidden; });
// The menu closes on Esc and on a click outside it; neither reaches the target.
let swallowUp = false;
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || $("keys-menu").hidden) return;
  e.preventDefault();
  e.stopPropagation();
  $("keys-menu").hidden = true;
  screenEl.focus();
}, true);
window.addEventListener("pointerdown", (e) => {
  if ($("keys-menu").hidden || e.target.closest(".menu")) return;
  $("keys-menu").hidden = true;
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
  $("keys-menu").hidden = true;
  screenEl.focus();
});
$("btn-usb").addEventListener("click", () => {
  send({ type: "switch", to: state && state.usb === "target" ? "host" : "target" });
});
$("btn-full").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
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
  typeBusy = null;
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
    $("paste-status").textContent = "a paste is running";
    return;
  }
  if (!wsOpen) {
    $("paste-status").textContent = "not connected to okvm: wait for it to reconnect";
    return;
  }
  pasteOwn = true;
  $("paste-progress").value = 0;
  $("paste-status").textContent = "sending…";
  sendType("dialog", { type: "type", text, layout: $("paste-layout").value, cps: +$("paste-cps").value || 0 });
});
$("paste-cancel").addEventListener("click", () => { $("paste").close(); screenEl.focus(); });

// ---- paste layouts: the server's list (GET /api/layouts) and its --layout first chosen ----
let layoutChosen = false;
function serverLayout() {
  if (layoutChosen || !state || !state.layout) return;
  const sel = $("paste-layout");
  if (![...sel.options].some((o) => o.value === state.layout)) sel.add(new Option(state.layout, state.layout), 0);
  sel.value = state.layout;
  layoutChosen = true;
}
async function loadLayouts() {
  try {
    const r = await fetch("/api/layouts");
    const list = r.ok ? await r.json() : null;
    if (!Array.isArray(list) || !list.length) return;   // an older server: the fixed list stays
    const sel = $("paste-layout"), cur = sel.value;
    sel.replaceChildren(...list.map((l) =>
      new Option(l.description ? `${l.name} (${l.description})` : l.name, l.name)));
    if ([...sel.options].some((o) => o.value === cur)) sel.value = cur;
    else { layoutChosen = false; serverLayout(); }
  } catch { /* the fixed list stays */ }
}
loadLayouts();

// Keep the WebSocket alive through proxies that drop idle connections.
setInterval(() => send({ type: "ping", t: Date.now() }), 20000);

connect();
screenEl.focus();
