"use strict";
// okvm web UI: the MJPEG stream's quality for thin links (docs/api.md, /stream?fps=&q=&width=).
// The options' "MJPEG stream" select picks one of a few settings; the server encodes each once
// for all its viewers, the device's own frames stay the default. While the MJPEG canvas path
// runs, the page watches what it manages to show: when, over two 5 s windows in a row, it paints
// less than 60% of what the unit captures (frames back up on the link, the page skips them), it
// says so once and names the next lighter setting. app.js asks okvmQuality.query() for the
// stream's address.
const okvmQuality = (() => {
  const SETTINGS = {
    full: "",                                  // the device's frames, untouched
    medium: "width=1280&q=70",
    low: "width=960&q=50&fps=15",
    tiny: "width=640&q=40&fps=10",
  };
  const ORDER = ["full", "medium", "low", "tiny"];

  function choice() {
    let c = null;
    try { c = localStorage.getItem("okvm.mjpeg"); } catch (e) { /* none stored */ }
    return Object.prototype.hasOwnProperty.call(SETTINGS, c) ? c : "full";
  }

  function query() {
    const q = SETTINGS[choice()];
    return q ? q + "&" : "";
  }

  // The decision, apart from the page so a test can feed it numbers: shown and source are
  // frames per second over one window; returns the setting to suggest, or null.
  let slowWindows = 0, suggested = false;
  function judge(shown, source, current) {
    if (!(source > 2) || suggested) return null;
    slowWindows = shown < 0.6 * source ? slowWindows + 1 : 0;
    if (slowWindows < 2) return null;
    const next = ORDER[ORDER.indexOf(current) + 1];
    if (!next) return null;
    suggested = true;
    return next;
  }

  let last = null;
  // Called by a timer every 5 s with the page's counters (vstat) and the server's capture rate.
  function watch(vstat, sourceFps) {
    const now = performance.now();
    if (vstat.codec !== "mjpeg" || vstat.mode !== "canvas") { last = null; return null; }
    if (!last) { last = { t: now, painted: vstat.painted }; return null; }
    const shown = (vstat.painted - last.painted) * 1000 / (now - last.t);
    last = { t: now, painted: vstat.painted };
    return judge(shown, sourceFps, choice());
  }

  const sel = document.getElementById("opt-mjpeg");
  if (sel) {
    sel.value = choice();
    sel.addEventListener("change", () => {
      try { localStorage.setItem("okvm.mjpeg", sel.value); } catch (e) { /* this page only */ }
      suggested = false;
      slowWindows = 0;
      startVideo();   // app.js
    });
  }

  return { choice, query, judge, watch, SETTINGS,
    reset() { suggested = false; slowWindows = 0; last = null; } };
})();
