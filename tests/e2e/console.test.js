"use strict";
// Browser tests of the serial console page and the power buttons (docs/power.md): okvm serve on
// the virtual unit with a USB-serial adapter on its extension pins (-d emu --emu-pins
// usb-serial), Debian's chromium driven by playwright-core. The oracle is the unit's
// --emu-events file (power, atx and console events).
// Usage: node console.test.js BUILD_DIR   (scripts/run-e2e does this)
const assert = require("assert/strict");
const path = require("path");
const { waitFor, startServe, launch, runCase } = require("./util");

function startServer(power) {
  return startServe((tmp) => ["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", power,
    "--emu-events", path.join(tmp, "ev.jsonl"), "--emu-video", "640x360@10"], { prefix: "console-" });
}

// The text xterm.js shows, line by line (its buffer, not pixels).
function screenText(page) {
  return page.evaluate(() => {
    const b = window.okvmConsole.term.buffer.active;
    const lines = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
    return lines.join("\n");
  });
}

let browser;
const results = [];

async function test(name, fn, power = "off") {
  if (process.env.OKVM_E2E_ONLY && !name.includes(process.env.OKVM_E2E_ONLY)) return;
  await runCase(browser, results, "console", name, await startServer(power), fn);
}

async function main() {
  browser = await launch();

  await test("power on from the console page: boot log, login prompt, typing echoes", async (context, server) => {
    const page = await context.newPage();
    page.on("dialog", (d) => d.accept());
    await page.goto(server.url + "/console.html");
    assert.equal(await page.evaluate(() => typeof window.Terminal), "function", "xterm.js is served");
    await waitFor("connected", async () => /115200/.test(await page.textContent("#con-link")));
    assert.equal(await page.textContent("#con-role"), "you type");
    await waitFor("power pill", async () => (await page.textContent("#btn-power").catch(() => "")) === "Power: off");
    await page.click("#btn-power");
    await page.click('[data-power="on"]');
    await waitFor("login prompt", async () => (await screenText(page)).includes("okvm-target login: "));
    assert.match(await screenText(page), /Linux version 6\.1\.0-okvm/);
    await waitFor("power pill on", async () => (await page.textContent("#btn-power")) === "Power: on");
    await page.locator("#con-term").click();
    await page.keyboard.type("root");
    await page.keyboard.press("Enter");
    await waitFor("password prompt", async () => (await screenText(page)).includes("okvm-target login: root\nPassword:"));
    const typed = server.events().filter((e) => e.type === "console" && e.dir === "in").map((e) => e.text).join("");
    assert.equal(typed, "root\r");
    const atx = server.events().filter((e) => e.type === "atx").map((e) => [e.switch, e.closed]);
    assert.deepEqual(atx, [["power", true], ["power", false]], "one press, released");

    // a second viewer gets the scrollback, watches, and may take over
    const page2 = await context.newPage();
    await page2.goto(server.url + "/console.html");
    await waitFor("scrollback", async () => (await screenText(page2)).includes("okvm-target login: root"));
    assert.equal(await page2.textContent("#con-role"), "watching");
    assert.match(await page2.textContent("#con-viewers"), /^2 viewers$/);
    await page2.click("#con-take");
    await waitFor("writer moved", async () => (await page2.textContent("#con-role")) === "you type");
    await waitFor("first is a viewer", async () => (await page.textContent("#con-role")) === "watching");
    await page2.locator("#con-term").click();
    await page2.keyboard.press("Enter");
    await waitFor("login incorrect on both", async () =>
      (await screenText(page)).includes("Login incorrect") && (await screenText(page2)).includes("Login incorrect"));
  });

  await test("the screen page's power menu asks first and shows the state", async (context, server) => {
    const page = await context.newPage();
    let asked = 0;
    page.on("dialog", (d) => { asked++; if (asked === 1) d.dismiss(); else d.accept(); });
    await page.goto(server.url + "/");
    await waitFor("power pill", async () => (await page.textContent("#btn-power").catch(() => "")) === "Power: on");
    await page.click("#btn-power");
    assert.equal(await page.isVisible("#btn-console"), true, "the menu links the console");
    await page.click('[data-power="reset"]');   // dismissed: nothing pressed
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(server.events().filter((e) => e.type === "atx").length, 0, "a dismissed press pressed");
    await page.click("#btn-power");
    await page.click('[data-power="reset"]');   // accepted
    await waitFor("reset", () => server.events().some((e) => e.type === "power" && e.cause === "reset"));
    assert.equal(asked, 2);
  }, "on");

  await browser.close();
  const failed = results.filter((r) => !r[1]).length;
  console.log(`e2e console: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log("FAIL: " + (e.stack || e)); process.exit(1); });
