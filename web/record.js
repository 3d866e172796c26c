// Recording (docs/recording.md "From the web UI"): the toolbar's ● button starts and stops a
// recording on the server (POST /api/record?action=start|stop: the device's MJPEG frames and
// the unit's sound into Matroska, nothing re-encoded); while one runs the button is red and a
// badge in the picture's corner shows ● REC and the running time. Every open page polls GET /api/record once a second, so all of them show the same
// state whoever pressed the button. The files are listed in Options, "Recordings", to download
// (GET /api/recordings/NAME) or delete.
"use strict";
(function () {
  const btn = document.getElementById("btn-record");
  const list = document.getElementById("rec-list");
  if (!btn) return;
  let state = { recording: false }, base = 0, baseAt = 0, busy = false;

  function say(msg) {
    const t = document.getElementById("toast");
    if (!t) return;
    t.textContent = msg;
    t.hidden = false;
    setTimeout(() => { t.hidden = true; }, 5000);
  }

  const clock = (s) => {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${x}` : `${m}:${x}`;
  };
  const size = (b) => b >= 1 << 30 ? (b / (1 << 30)).toFixed(2) + " GiB"
    : b >= 1 << 20 ? (b / (1 << 20)).toFixed(1) + " MiB" : Math.ceil(b / 1024) + " KiB";

  // The running time: a badge in the picture's corner (the desktop toolbar has no room left).
  const badge = document.createElement("div");
  badge.id = "rec-badge";
  badge.hidden = true;
  badge.setAttribute("role", "status");
  (document.getElementById("screen") || document.body).appendChild(badge);

  function render() {
    const on = !!state.recording;
    const secs = on ? base + (performance.now() - baseAt) / 1000 : 0;
    btn.classList.toggle("rec-on", on);
    badge.hidden = !on;
    badge.textContent = on ? "● REC " + clock(secs) : "";
    btn.setAttribute("aria-pressed", on ? "true" : "false");
    btn.title = on ? `Recording ${state.name} (${size(state.bytes || 0)}): click to stop`
      : "Record the target's screen and sound on the server (Options lists the files)";
  }

  function take(j) {
    const was = !!state.recording;
    state = j;
    base = j.seconds || 0;
    baseAt = performance.now();
    render();
    if (was && !j.recording) {
      if (j.error && j.end !== "stopped") say("Recording ended: " + j.error);
      refreshList();
    }
  }

  async function poll() {
    try {
      const r = await fetch("/api/record", { cache: "no-store" });
      if (r.ok) take(await r.json());
    } catch (e) { /* the server is away: the page's own pills say so */ }
  }

  async function toggle() {
    if (busy) return;
    busy = true;
    btn.disabled = true;
    try {
      const action = state.recording ? "stop" : "start";
      const r = await fetch("/api/record?action=" + action, { method: "POST" });
      const j = await r.json();
      if (!r.ok || !j.ok) say(j.error || "Recording: " + r.status);
      if (typeof j.recording === "boolean") take(j);
      if (action === "stop") refreshList();
    } catch (e) {
      say("Recording: the server did not answer");
    } finally {
      busy = false;
      btn.disabled = false;
    }
  }

  async function refreshList() {
    if (!list) return;
    let j;
    try {
      const r = await fetch("/api/recordings", { cache: "no-store" });
      if (!r.ok) return;
      j = await r.json();
    } catch (e) { return; }
    list.textContent = "";
    if (!j.recordings.length) {
      const li = document.createElement("li");
      li.className = "hint";
      li.textContent = "none yet (the ● button in the toolbar records)";
      list.appendChild(li);
    }
    for (const f of j.recordings) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.textContent = f.name;
      a.href = "/api/recordings/" + encodeURIComponent(f.name);
      a.download = f.name;
      const info = document.createElement("span");
      info.className = "hint";
      info.textContent = " " + size(f.bytes) + " · " + new Date(f.mtime * 1000).toLocaleString() +
        (f.recording ? " · recording" : "");
      li.append(a, info);
      if (!f.recording) {
        const del = document.createElement("button");
        del.type = "button";
        del.textContent = "Delete";
        del.title = "Delete " + f.name + " on the server";
        del.addEventListener("click", async () => {
          if (!confirm("Delete the recording " + f.name + "?")) return;
          const r = await fetch(a.href, { method: "DELETE" });
          if (!r.ok) say((await r.json()).error);
          refreshList();
        });
        li.append(" ", del);
      } else {
        a.removeAttribute("href");
      }
      list.appendChild(li);
    }
  }

  btn.addEventListener("click", toggle);
  const opt = document.getElementById("btn-options");
  if (opt) opt.addEventListener("click", refreshList);
  setInterval(() => { if (state.recording) render(); }, 250);
  setInterval(() => { if (!document.hidden) poll(); }, 1000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  window.okvmRecord = { poll, refreshList, get state() { return state; } };
  poll();
  refreshList();
})();
