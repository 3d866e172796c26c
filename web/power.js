// Power buttons (docs/power.md): the state of the target's power LED and the ATX buttons through
// /api/power, each press behind a confirmation. Shown only when the server has power control.
// Lives in the screen page's bar (next to Screenshot) or the console page's #power-slot.
"use strict";
(function () {
  const ACTIONS = [
    ["on", "Power on", "Press the target's power button to turn it on?"],
    ["off", "Shut down", "Press the power button: the target's OS shuts down. Continue?"],
    ["reset", "Reset", "Press the reset button? Unsaved work on the target is lost."],
    ["force-off", "Force off (5 s)", "Hold the power button 5 s? The target loses power at once."],
    ["cycle", "Power cycle", "Force the target off and on again? Unsaved work is lost."],
  ];
  let pill, busy = false;

  function place(el) {
    const slot = document.getElementById("power-slot");
    const shot = document.getElementById("btn-shot");
    if (slot) slot.appendChild(el);
    else if (shot) shot.parentNode.insertBefore(el, shot);
    else document.body.appendChild(el);
  }

  function say(msg) {
    const t = document.getElementById("toast");
    if (!t) return;
    t.textContent = msg;
    t.hidden = false;
    setTimeout(() => { t.hidden = true; }, 4000);
  }

  function show(j) {
    busy = !!j.busy;
    const st = j.busy ? "…" + j.pressing : j.state;
    pill.textContent = "Power: " + st;
    pill.className = "pill" + (j.state === "on" ? " ok" : j.state === "off" ? " bad" : "");
  }

  async function refresh() {
    try {
      const r = await fetch("/api/power");
      if (r.status === 404) return false;
      show(await r.json());
    } catch (e) { /* the server is away: the page's own pills say so */ }
    return true;
  }

  async function press(action, question) {
    if (busy) { say("A press is still running"); return; }
    if (!confirm(question)) return;
    const r = await fetch("/api/power?action=" + action, { method: "POST" });
    const j = await r.json();
    if (!j.ok) say(j.error);
    else if (j.done === false) say(j.message);
    else say(action + ": pressing…");
    refresh();
  }

  async function init() {
    const wrap = document.createElement("span");
    wrap.className = "menu";
    wrap.id = "power";
    pill = document.createElement("button");
    pill.id = "btn-power";
    pill.title = "The target's power (its power LED) and buttons";
    pill.textContent = "Power: ?";
    const list = document.createElement("div");
    list.className = "menu-list";
    list.hidden = true;
    for (const [action, label, question] of ACTIONS) {
      const b = document.createElement("button");
      b.dataset.power = action;
      b.textContent = label;
      b.addEventListener("click", () => { list.hidden = true; press(action, question); });
      list.appendChild(b);
    }
    if (!document.getElementById("power-slot")) {
      const c = document.createElement("a");
      c.className = "button";
      c.href = "/console.html";
      c.target = "_blank";
      c.id = "btn-console";
      c.textContent = "Console";
      c.title = "The target's serial console (a new tab)";
      list.appendChild(c);
    }
    pill.addEventListener("click", () => { list.hidden = !list.hidden; });
    wrap.append(pill, list);
    if (!(await refresh())) return; // no power control: nothing to show
    place(wrap);
    setInterval(refresh, 3000);
  }
  init();
})();
