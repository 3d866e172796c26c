"use strict";
// The login page: POST /api/login with the password; the session cookie comes back HttpOnly.
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("login-error");
  err.textContent = "";
  const pw = document.getElementById("password").value;
  try {
    const r = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "password=" + encodeURIComponent(pw),
    });
    const j = await r.json().catch(() => ({}));
    if (r.ok) { location.href = "/"; return; }
    err.textContent = j.error || ("login failed (" + r.status + ")");
  } catch (e) {
    err.textContent = "cannot reach okvm: " + e;
  }
});
