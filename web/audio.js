"use strict";
// okvm web UI: the target's sound over the WebSocket (docs/api.md, the "audio" message;
// docs/audio.md, "In the browser"), played with WebAudio.
//
// Nothing is asked for until the user turns sound on with the toolbar's Sound button (browsers
// only start an AudioContext after a click anyway): then the page sends
// {"type":"audio","codec":"opus"} when WebCodecs' AudioDecoder decodes Opus here, else
// {"type":"audio","codec":"pcm"}, and plays each binary message (tag 'A', 20 ms) in order on
// the AudioContext's clock, 30 ms ahead of it (more after an underrun: play(), below; the
// figures in docs/audio.md). Turning sound off again (mute) sends {"type":"audio","codec":
// "none"}, so the server captures nothing while no one listens. The volume slider sets a gain,
// kept in localStorage okvm.volume.
// For the tests: okvmAudio.stats (messages, frames decoded), okvmAudio.tap(n) (the last n
// decoded samples of the left channel) and okvmAudio.level() (RMS after the volume, from an
// AnalyserNode: what the speakers get).
const okvmAudio = (() => {
  // The button's icons: drawn, not emoji (many Linux machines have no emoji font: a box).
  const ICON_MUTED = '<svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path d="M3 9h4l5-4v14l-5-4H3z" fill="currentColor"/><path d="M15.5 9.5l5 5M20.5 9.5l-5 5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';
  const ICON_ON = '<svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path d="M3 9h4l5-4v14l-5-4H3z" fill="currentColor"/><path d="M15.5 8.5a5 5 0 0 1 0 7M18 6a8.5 8.5 0 0 1 0 12" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';
  // The jitter buffer: blocks are scheduled lead seconds ahead of the context's clock; lead
  // starts at LEAD_MIN, grows by 10 ms at each underrun (a block that came too late, up to
  // LEAD_MAX) and shrinks by 5 ms after 10 s without one. A block that finds more than lead +
  // SLACK queued (a burst after a stall) is skipped, so the delay does not stay high.
  const RATE = 48000, LEAD_MIN = 0.03, LEAD_MAX = 0.12, SLACK = 0.03;
  let ctx = null, gain = null, analyser = null, dec = null, sendFn = null;
  let on = false, codec = null, playAt = 0, lead = LEAD_MIN, calmSince = 0;
  const ring = new Float32Array(RATE), stats = { messages: 0, frames: 0, codec: null, underruns: 0, skipped: 0, lead: LEAD_MIN };
  let ringPos = 0;
  const btn = document.getElementById("btn-audio");
  const vol = document.getElementById("audio-vol");

  function opusSupported() {
    if (typeof AudioDecoder !== "function" || typeof EncodedAudioChunk !== "function")
      return Promise.resolve(false);
    return AudioDecoder.isConfigSupported({ codec: "opus", sampleRate: RATE, numberOfChannels: 2 })
      .then((r) => !!r.supported, () => false);
  }

  function volume() {
    const v = Number(vol ? vol.value : 100);
    return Number.isFinite(v) ? Math.min(Math.max(v, 0), 100) / 100 : 1;
  }

  // Planar left and right channels of frames samples: into the tap and onto the clock.
  function play(l, r, frames, ts) {
    if (!on || !ctx) return;
    for (let i = 0; i < frames; i++) { ring[ringPos] = l[i]; ringPos = (ringPos + 1) % ring.length; }
    stats.frames += frames;
    const b = ctx.createBuffer(2, frames, RATE);
    b.copyToChannel(l, 0);
    b.copyToChannel(r, 1);
    const now = ctx.currentTime;
    if (playAt < now + 0.005) {   // the first block, or an underrun
      if (playAt) { stats.underruns++; lead = Math.min(lead + 0.01, LEAD_MAX); }
      playAt = now + lead;
      calmSince = now;
    } else if (playAt > now + lead + SLACK) {   // too much queued: skip this block to catch up
      stats.skipped++;
      return;
    } else if (now - calmSince > 10 && lead > LEAD_MIN) {
      lead = Math.max(lead - 0.005, LEAD_MIN);
      calmSince = now;
    }
    stats.lead = lead;
    const src = ctx.createBufferSource();
    src.buffer = b;
    src.connect(gain);
    src.start(playAt);
    if (api.onplay) api.onplay(l, ts, playAt, ctx);   // bench/web_audio_latency.js
    playAt += frames / RATE;
  }

  function makeDecoder() {
    dec = new AudioDecoder({
      output: (d) => {
        const n = d.numberOfFrames, l = new Float32Array(n), r = new Float32Array(n);
        d.copyTo(l, { planeIndex: 0, format: "f32-planar" });
        d.copyTo(r, { planeIndex: d.numberOfChannels > 1 ? 1 : 0, format: "f32-planar" });
        const ts = d.timestamp;
        d.close();
        play(l, r, n, ts);
      },
      error: () => { dec = null; if (on) request("pcm"); },   // fall back to PCM
    });
    dec.configure({ codec: "opus", sampleRate: RATE, numberOfChannels: 2 });
  }

  function request(c) {
    codec = c;
    stats.codec = c;
    if (c === "opus" && !dec) makeDecoder();
    return sendFn && sendFn({ type: "audio", codec: c });
  }

  // One binary message: the 16-byte header (docs/api.md), then Opus or S16_LE stereo.
  function binary(buf) {
    if (!on || !(buf instanceof ArrayBuffer) || buf.byteLength < 17) return;
    const v = new DataView(buf);
    if (v.getUint8(0) !== 0x41) return;
    stats.messages++;
    const frames = v.getUint16(2), ts = Number(v.getBigUint64(8));
    if (v.getUint8(1) === 1) {
      if (!dec) return;
      try {
        dec.decode(new EncodedAudioChunk({ type: "key", timestamp: ts, data: new Uint8Array(buf, 16) }));
      } catch (e) { /* a bad packet: skipped */ }
      return;
    }
    const n = Math.min(frames, (buf.byteLength - 16) >> 2), s = new Int16Array(buf, 16, n * 2);
    const l = new Float32Array(n), r = new Float32Array(n);
    for (let i = 0; i < n; i++) { l[i] = s[2 * i] / 32768; r[i] = s[2 * i + 1] / 32768; }
    play(l, r, n, ts);
  }

  function text(m) { if (m.codec) stats.codec = m.codec; }

  // The server said no (a unit without sound): sound off, the reason on the button.
  let why = null;
  function refused(msg) {
    stop();
    why = msg;
    render();
  }

  function render() {
    if (!btn) return;
    // An icon alone keeps the toolbar short; drawn, not an emoji (no emoji font on many
    // Linux machines: a box)
    btn.innerHTML = on ? ICON_ON : ICON_MUTED;
    btn.setAttribute("aria-pressed", on ? "true" : "false");
    if (vol) vol.hidden = !on;   // the slider only while there is sound: the toolbar stays one row
    btn.title = on ? "Sound on (" + (codec || "…") + "): click to mute"
      : why ? "No sound: " + why : "Play the target's sound";
  }

  async function start() {
    if (on) return;
    on = true;
    why = null;
    render();
    if (!ctx) {
      ctx = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
      gain = ctx.createGain();
      analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      gain.connect(analyser);
      analyser.connect(ctx.destination);
    }
    gain.gain.value = volume();
    await ctx.resume();
    const c = (await opusSupported()) ? "opus" : "pcm";
    if (on) request(c);
    render();
  }

  function stop() {
    if (!on) return;
    on = false;
    if (sendFn) sendFn({ type: "audio", codec: "none" });
    if (gain) gain.gain.value = 0;
    if (dec) { try { dec.close(); } catch (e) { /* closed already */ } }
    dec = null;
    playAt = 0;
    lead = LEAD_MIN;
    render();
  }

  // app.js: the WebSocket is (again) open; a listener asks again.
  function connected(send) {
    sendFn = send;
    if (on && codec) request(codec);
  }

  function tap(n) {
    const out = new Array(Math.min(n, ring.length));
    for (let i = 0; i < out.length; i++) out[i] = ring[(ringPos - out.length + i + ring.length) % ring.length];
    return out;
  }

  function level() {
    if (!analyser) return 0;
    const a = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(a);
    let s = 0;
    for (const x of a) s += x * x;
    return Math.sqrt(s / a.length);
  }

  if (btn) btn.addEventListener("click", () => (on ? stop() : start()));
  if (vol) {
    const saved = Number(localStorage.getItem("okvm.volume"));
    if (localStorage.getItem("okvm.volume") !== null && Number.isFinite(saved)) vol.value = String(saved);
    vol.addEventListener("input", () => {
      if (gain && on) gain.gain.value = volume();
      try { localStorage.setItem("okvm.volume", vol.value); } catch (e) { /* this page only */ }
    });
    // Set: the keys go to the target again, not to the slider.
    vol.addEventListener("change", () => { const s = document.getElementById("screen"); if (s) s.focus(); });
  }
  render();

  const api = { start, stop, binary, text, refused, connected, tap, level, stats, onplay: null,
    get on() { return on; } };
  return api;
})();
