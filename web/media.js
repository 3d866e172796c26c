// Virtual media (docs/power.md, "Virtual media"): an image from this computer written to the USB
// stick in the unit's switchable port, as `okvm media write` does: POST /api/media with the
// image as the body (upload progress from XMLHttpRequest), then GET /api/media for the check,
// write and verify phases, each with bytes, MB/s and ETA; cancel; the verified SHA-256 or the
// error. Shown only when the server has a unit to write to (GET /api/media is not 404).
"use strict";
(function () {
  let dlg, els = {}, xhr = null, polling = null, power = false, lastStick = null;

  function fmtBytes(b) {
    if (b >= 1e9) return (b / 1e9).toFixed(2) + " GB";
    return (b / 1e6).toFixed(1) + " MB";
  }
  function fmtEta(s) {
    s = Math.round(s);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  const ICON_DISK = '<svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path d="M4 3h12.5L20 6.5V21H4z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M7.5 3.5h7.5v5H7.5z" fill="currentColor"/><path d="M7.5 13.5h9v6h-9z" fill="none" stroke="currentColor" stroke-width="1.5"/></svg>';

  function el(tag, attrs = {}, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function build() {
    dlg = el("dialog", { id: "media-dlg", "aria-label": "virtual media" });
    const h = el("h3", {}, "Virtual media");
    els.stick = el("p", { id: "media-stick" }, "…");
    els.file = el("input", { id: "media-file", type: "file", accept: ".img,.iso,.raw,.gz,.xz,.zst" });
    const fl = el("label", {}, "Image (.img, .iso; .gz, .xz, .zst are unpacked on the way) ");
    fl.appendChild(els.file);
    els.boot = el("input", { id: "media-boot", type: "checkbox" });
    const bl = el("label", { title: "power-cycle the target once the image is written and verified" });
    bl.append(els.boot, " then boot the target from it (power cycle)");
    els.bar = el("progress", { id: "media-bar", max: "1", value: "0" });
    els.phase = el("p", { id: "media-phase", "aria-live": "polite" }, "");
    els.result = el("p", { id: "media-result", role: "status" }, "");
    const menu = el("menu");
    els.write = el("button", { id: "media-write", type: "button" }, "Write");
    els.cancel = el("button", { id: "media-cancel", type: "button", disabled: "" }, "Cancel");
    els.close = el("button", { id: "media-close", type: "button" }, "Close");
    menu.append(els.write, els.cancel, els.close);
    dlg.append(h, els.stick, fl, bl, els.bar, els.phase, els.result, menu);
    document.body.appendChild(dlg);
    els.write.addEventListener("click", start);
    els.cancel.addEventListener("click", cancel);
    els.close.addEventListener("click", () => dlg.close());
  }

  function showStick(st) {
    lastStick = st;
    if (!st.present) {
      els.stick.textContent = "No USB stick: " + (st.hint || st.unit);
      return;
    }
    els.stick.textContent = "USB stick " + st.device + (st.size !== undefined ? " (" + fmtBytes(st.size) + ")" : "") +
      ", port at the " + st.usb + (st.mounted ? ", mounted: " + st.mounted : "");
  }

  function running(on) {
    els.write.disabled = on;
    els.file.disabled = on;
    els.cancel.disabled = !on;
  }

  // One line of progress: phase, bytes of total, percent, MB/s, ETA.
  // A phase without a byte count (check, switch, boot) shows a moving bar, not an empty one.
  function progress(phase, done, total, rate, eta) {
    if (total) {
      els.bar.max = total;
      els.bar.value = Math.min(done, total);
    } else els.bar.removeAttribute("value");
    let t = phase;
    if (total) {
      t += ": " + fmtBytes(done) + " of " + fmtBytes(total) + " (" + Math.floor(100 * done / total) + " %)";
      t += ", " + rate.toFixed(1) + " MB/s";
      if (eta !== undefined) t += ", ETA " + fmtEta(eta);
    } else if (phase === "switch") t += ": moving the USB port";
    else if (phase === "boot") t += ": power-cycling the target";
    else if (phase === "check") t += ": checking the image";
    els.phase.textContent = t;
    els.phase.dataset.phase = phase;
  }

  function showJob(j) {
    if (!j) return;
    if (j.phase === "done" || j.phase === "failed") {
      stopPolling();
      running(false);
      els.phase.dataset.phase = j.phase;
      if (!els.bar.hasAttribute("value")) els.bar.value = 0; // no longer moving
      if (j.phase === "done") {
        els.bar.value = els.bar.max;
        els.phase.textContent = "done: " + j.name;
        els.result.textContent = j.result || ("verified: sha256 " + j.sha256);
        els.result.className = "ok";
      } else {
        els.phase.textContent = "failed: " + j.name;
        els.result.textContent = j.error;
        els.result.className = "bad";
      }
      return;
    }
    running(true);
    progress(j.phase, j.done, j.total, j.mb_s || 0, j.eta_s);
  }

  async function poll() {
    try {
      const j = await (await fetch("/api/media")).json();
      showStick(j.stick);
      showJob(j.job);
      return j;
    } catch (e) { return null; }
  }
  function startPolling() {
    if (!polling) polling = setInterval(poll, 300);
  }
  function stopPolling() {
    if (polling) clearInterval(polling);
    polling = null;
  }

  async function start() {
    const f = els.file.files[0];
    if (!f) { els.result.textContent = "Pick an image file first"; els.result.className = "bad"; return; }
    els.result.textContent = "";
    els.result.className = "";
    els.phase.textContent = ""; // the last job's end is not this one's
    delete els.phase.dataset.phase;
    els.bar.value = 0;
    const q = "name=" + encodeURIComponent(f.name) + "&size=" + f.size;
    const chk = await fetch("/api/media?action=check&" + q, { method: "POST" });
    const cj = await chk.json();
    if (!cj.ok) { els.result.textContent = cj.error; els.result.className = "bad"; return; }
    const st = cj.stick || lastStick || {};
    const where = st.present ? st.device + (st.size !== undefined ? " (" + fmtBytes(st.size) + ")" : "") : "the USB stick in the switchable port";
    if (!confirm("Write " + f.name + " (" + fmtBytes(f.size) + ") to " + where +
      "? Everything on it is lost." + (els.boot.checked ? " Then the target is power-cycled." : ""))) return;
    running(true);
    const t0 = performance.now();
    xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/media?name=" + encodeURIComponent(f.name) + (els.boot.checked ? "&boot=1" : ""));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => {
      const secs = (performance.now() - t0) / 1000;
      const rate = secs > 0 ? e.loaded / 1e6 / secs : 0;
      progress("upload", e.loaded, e.total || f.size, rate, rate > 0 ? (f.size - e.loaded) / 1e6 / rate : undefined);
    };
    xhr.onload = () => {
      let j = {};
      const status = xhr.status;
      try { j = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      xhr = null;
      if (!j.ok) {
        running(false);
        els.result.textContent = j.error || ("upload refused: HTTP " + status);
        els.result.className = "bad";
        return;
      }
      startPolling();
    };
    xhr.onerror = xhr.onabort = () => { xhr = null; poll().then(() => running(false)); };
    xhr.send(f);
  }

  async function cancel() {
    const r = await fetch("/api/media?action=cancel", { method: "POST" });
    const j = await r.json();
    if (xhr) xhr.abort();
    if (!j.ok) els.result.textContent = j.error;
    startPolling();
  }

  async function init() {
    let j;
    try {
      const r = await fetch("/api/media");
      if (r.status === 404) return;
      j = await r.json();
    } catch (e) { return; }
    try { power = (await fetch("/api/power")).status !== 404; } catch (e) { power = false; }
    build();
    els.boot.disabled = !power;
    if (!power) els.boot.parentNode.title = "no power control (docs/power.md)";
    // an icon keeps the toolbar short; drawn, not an emoji (no emoji font on many Linux
    // machines: a box)
    const b = el("button", { id: "btn-media", "aria-label": "Virtual media",
      title: "Virtual media: write an image to the USB stick in the switchable port" });
    b.innerHTML = ICON_DISK;
    b.addEventListener("click", async () => {
      dlg.showModal();
      const got = await poll();
      if (got && got.busy) startPolling();
    });
    const shot = document.getElementById("btn-shot");
    if (shot) shot.parentNode.insertBefore(b, shot);
    else document.body.appendChild(b);
    showStick(j.stick);
  }
  init();
})();
