"use strict";
// okvm web UI: H.264 over the WebSocket, decoded by WebCodecs' VideoDecoder and drawn on the
// page's canvas (docs/api.md, the "video" message; docs/serve.md, "H.264").
//
// app.js asks okvmH264.wanted() when it starts the video. With ?video=h264, the option "H.264" in
// the mouse/video options, or by default ("auto") whenever the browser decodes H.264 with
// WebCodecs (a secure context: loopback or TLS), the page sends {"type":"video","codec":"h264"}
// and draws the binary access units instead of fetching the MJPEG stream. Loopback is no proof
// of a fast link (an ssh -L tunnel is loopback too), so auto does not look at the address;
// ?video=mjpeg or the option "MJPEG" (remembered) keeps the device's JPEGs.
// Any decoder error switches the page back to MJPEG with a message.
const okvmH264 = (() => {
  let dec = null, cfg = null, sendFn = null, canvas = null, ctx = null, onPaint = null;
  let needKey = true, active = false, onFail = null;

  function supported() {
    return typeof VideoDecoder === "function" && typeof EncodedVideoChunk === "function"
      && window.isSecureContext;
  }

  function param() {
    const m = /(?:^|[?&])video=(h264|mjpeg|img)(?:&|$)/.exec(location.search.slice(1));
    return m ? m[1] : null;
  }

  // The codec the user chose: "h264", "mjpeg" or "auto" (localStorage okvm.codec).
  function choice() {
    const p = param();
    if (p) return p === "h264" ? "h264" : "mjpeg";
    const c = localStorage.getItem("okvm.codec");
    return c === "h264" || c === "mjpeg" ? c : "auto";
  }

  function wanted() {
    const c = choice();
    if (!supported()) return false;
    return c === "h264" || c === "auto";
  }

  function fail(why) {
    stop();
    if (onFail) onFail("H.264: " + why + "; showing MJPEG instead");
  }

  function configure(m) {
    if (dec && cfg === m.codec) return;
    if (dec) { try { dec.close(); } catch (e) { /* closed already */ } }
    cfg = m.codec;
    dec = new VideoDecoder({
      output: (frame) => {
        if (!active) { frame.close(); return; }
        if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight || !ctx) {
          canvas.width = frame.displayWidth;
          canvas.height = frame.displayHeight;
          ctx = canvas.getContext("2d", { alpha: false });
        }
        ctx.drawImage(frame, 0, 0);
        const ts = frame.timestamp;
        frame.close();
        if (onPaint) onPaint(canvas.width, canvas.height, ts);
      },
      error: (e) => fail(e.message || String(e)),
    });
    dec.configure({ codec: m.codec, optimizeForLatency: true });
    needKey = true;
  }

  // One binary message: the 16-byte header (docs/api.md), then an Annex-B access unit.
  function binary(buf) {
    if (!active || !dec || !(buf instanceof ArrayBuffer) || buf.byteLength < 17) return;
    const v = new DataView(buf);
    if (v.getUint8(0) !== 0x48) return;
    const key = (v.getUint8(1) & 1) === 1;
    if (needKey && !key) return;
    if (!key && dec.decodeQueueSize > 2) {
      // The decoder lags: skip to the next IDR, and ask for one now.
      needKey = true;
      sendFn({ type: "video", codec: "h264" });
      return;
    }
    needKey = false;
    const ts = Number(v.getBigUint64(6));
    try {
      dec.decode(new EncodedVideoChunk({ type: key ? "key" : "delta", timestamp: ts,
        data: new Uint8Array(buf, 16) }));
    } catch (e) { fail(e.message); }
  }

  function text(m) {
    if (!active) return;
    if (m.codec) {
      VideoDecoder.isConfigSupported({ codec: m.codec, optimizeForLatency: true }).then((r) => {
        if (!r.supported) fail("this browser does not decode " + m.codec);
        else if (active) configure(m);
      }, (e) => fail(e.message));
    }
  }

  // send: the page's WebSocket sender; c: the canvas; paint(w, h, tsUs) after each picture;
  // failed(message) when the page should go back to MJPEG.
  function start(send, c, paint, failed) {
    sendFn = send;
    canvas = c;
    onPaint = paint;
    onFail = failed;
    active = true;
    needKey = true;
    return send({ type: "video", codec: "h264" });
  }

  function stop() {
    if (active && sendFn) sendFn({ type: "video", codec: "none" });
    active = false;
    if (dec) { try { dec.close(); } catch (e) { /* closed already */ } }
    dec = null;
    cfg = null;
  }

  // The options dialog's "Video" select (index.html): stored, applied at once.
  const sel = document.getElementById("opt-codec");
  if (sel) {
    sel.value = choice();
    if (!supported()) {
      sel.options[1].disabled = true;
      sel.options[1].textContent += ": needs WebCodecs in a secure context (loopback or HTTPS)";
    }
    sel.addEventListener("change", () => {
      try { localStorage.setItem("okvm.codec", sel.value); } catch (e) { /* this page only */ }
      if (param()) {   // the choice here wins over the address's ?video=
        const q = location.search.slice(1).split("&").filter((x) => !/^video=/.test(x)).join("&");
        history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
      }
      h264Off = false;   // app.js: a fresh try
      startVideo();      // app.js
    });
  }

  return { supported, wanted, choice, start, stop, binary, text, get active() { return active; } };
})();
