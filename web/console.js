// The target's serial console (docs/power.md, docs/api.md "Serial console"): the WebSocket at
// /api/console sends what the target prints as binary frames (the scrollback first) and its state
// as JSON text; keys go back as {"type":"in","data":...} while this page is the writer (one at a
// time: "Take control" makes it so). xterm.js draws it; without it (an offline build), plain text.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const hasXterm = typeof window.Terminal === "function";
  let ws = null, writer = false, retry = 500;
  let term = null;
  const plain = $("con-plain"), decoder = new TextDecoder();

  if (hasXterm) {
    term = new window.Terminal({ convertEol: false, cursorBlink: true, scrollback: 10000,
                                 fontFamily: "monospace", fontSize: 14 });
    term.open($("con-term"));
    fit();
    window.addEventListener("resize", fit);
    term.onData((d) => send({ type: "in", data: d }));
    window.okvmConsole = { term }; // tests read the buffer
  } else {
    $("con-term").hidden = true;
    plain.hidden = false;
    $("con-line").hidden = false;
    $("con-line").addEventListener("submit", (e) => {
      e.preventDefault();
      send({ type: "in", data: $("con-input").value + "\r" });
      $("con-input").value = "";
    });
  }

  function fit() {
    // 9 x 17 px cells at 14 px monospace: enough for a console, no addon needed
    const el = $("con-term");
    const cols = Math.max(20, Math.floor(el.clientWidth / 9));
    const rows = Math.max(5, Math.floor(el.clientHeight / 17));
    term.resize(cols, rows);
  }

  function toast(msg) {
    const t = $("toast");
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function send(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (obj.type === "in" && !writer) {
      toast("You are watching: press Take control to type");
      return;
    }
    ws.send(JSON.stringify(obj));
  }

  function pill(id, text, cls) {
    const p = $(id);
    p.textContent = text;
    p.className = "pill" + (cls ? " " + cls : "");
  }

  function onState(m) {
    if (m.type === "error") { toast(m.error); return; }
    if (m.type !== "console") return;
    writer = m.writer;
    pill("con-link", m.connected ? m.tty + " · " + m.baud : "adapter not connected",
         m.connected ? "ok" : "bad");
    pill("con-role", writer ? "you type" : "watching", writer ? "ok" : "warn");
    pill("con-viewers", m.viewers + (m.viewers === 1 ? " viewer" : " viewers"));
    $("con-take").hidden = writer;
    if (m.lost) toast(m.lost + " bytes were missed while this page was not reading");
    if (term && writer) term.focus();
  }

  function output(buf) {
    const bytes = new Uint8Array(buf);
    if (term) {
      term.write(bytes);
    } else {
      plain.textContent += decoder.decode(bytes, { stream: true }).replace(/\r/g, "");
      if (plain.textContent.length > 200000) plain.textContent = plain.textContent.slice(-100000);
      plain.scrollTop = plain.scrollHeight;
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/api/console");
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { retry = 500; if (term) term.reset(); else plain.textContent = ""; };
    ws.onmessage = (e) => {
      if (typeof e.data === "string") onState(JSON.parse(e.data));
      else output(e.data);
    };
    ws.onclose = () => {
      pill("con-link", "disconnected", "bad");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 2000);
    };
  }

  $("con-take").addEventListener("click", () => ws && ws.send(JSON.stringify({ type: "take" })));
  $("con-break").addEventListener("click", () => {
    if (confirm("Send a break to the target's console?")) send({ type: "break" });
  });
  connect();
})();
