"use strict";
// The login page: POST /api/login with user=, password= and, when the server asks for it
// (401 with "totp": true), totp= the 6-digit code. The session cookie comes back HttpOnly.
// An empty user name is the admin (the [serve] password of single-password setups).
const $ = (id) => document.getElementById(id);
const form = $("login"), userEl = $("user"), pwEl = $("password"), codeEl = $("totp");
const codeRow = $("totp-row"), go = $("login-go"), msg = $("login-error");
let busy = false, lockTimer = null;

function say(text, kind) {
  msg.textContent = text;
  msg.className = kind || "error";
}

function askCode(on) {
  codeRow.hidden = !on;
  codeEl.required = on;
  if (!on) codeEl.value = "";
}

// Another user may have no second factor: the code field comes back when the server asks.
userEl.addEventListener("input", () => { if (!codeRow.hidden) { askCode(false); say(""); } });

// Digits only (a pasted "123 456" too); six of them log in without a click.
codeEl.addEventListener("input", () => {
  const d = codeEl.value.replace(/\D/g, "").slice(0, 6);
  if (d !== codeEl.value) codeEl.value = d;
  if (d.length === 6 && !busy) form.requestSubmit();
});

function lockFor(secs) {
  go.disabled = true;
  clearTimeout(lockTimer);
  lockTimer = setTimeout(() => { go.disabled = false; }, Math.min(secs, 3600) * 1000);
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (busy || go.disabled) return;
  if (!pwEl.value) { say("enter the password"); pwEl.focus(); return; }
  const withCode = !codeRow.hidden;
  if (withCode && !/^\d{6}$/.test(codeEl.value)) {
    say("the code has 6 digits");
    codeEl.focus();
    return;
  }
  const body = new URLSearchParams();
  const user = userEl.value.trim();
  if (user) body.set("user", user);
  body.set("password", pwEl.value);
  if (withCode) body.set("totp", codeEl.value);
  busy = true;
  go.textContent = "Logging in…";
  say("", "");
  let r, j = {};
  try {
    r = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
      credentials: "same-origin",
    });
    j = await r.json().catch(() => ({}));
  } catch (e) {
    busy = false;
    go.textContent = "Log in";
    say("cannot reach okvm: " + (e && e.message ? e.message : e));
    return;
  }
  busy = false;
  go.textContent = "Log in";
  if (r.ok) { location.replace("/"); return; }
  const text = j.error || `login failed (HTTP ${r.status} ${r.statusText})`.replace(/ \)$/, ")");
  if (r.status === 401 && j.totp) {
    // The password was right: the code is the second step.
    askCode(true);
    say(text, "info");
    codeEl.focus();
    return;
  }
  say(text);
  if (r.status === 429) {
    lockFor(+(r.headers.get("Retry-After") || 1) || 1);
  } else if (withCode) {
    codeEl.value = "";
    codeEl.focus();
  } else {
    pwEl.select();
    pwEl.focus();
  }
});
