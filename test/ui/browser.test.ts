/**
 * The console in a real browser (Debian's chromium driven by playwright-core): login, live update of the
 * machines table while a machine boots, single and bulk assign, the machine page (timeline, masked
 * Ignition, reinstall, forget), profiles and assets. A screenshot of each page goes to test-artifacts/ui/.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MASK } from "../../src/http/ui/mask.ts";
import { report, TEST_TOKEN } from "../helpers/kindling.ts";
import { ipxeUntil, startWithRelease, VERSION } from "../helpers/release.ts";

const SHOTS = resolve(import.meta.dirname, "../../test-artifacts/ui");
const INSTALLED = "52:54:00:cc:00:01";

let env: Awaited<ReturnType<typeof startWithRelease>>;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  env = await startWithRelease();
  // One machine that has been through an install, with a secret in its metadata.
  await env.k.api("/machines", {
    method: "POST",
    json: {
      mac: INSTALLED,
      profile: "flatcar-install",
      hostname: "db-1",
      metadata: { api_secret: "hunter2-very-secret" },
    },
  });
  await ipxeUntil(env.k, `mac=${INSTALLED}`, VERSION);
  await report(env.k, INSTALLED, "install-started");
  await report(env.k, INSTALLED, "install-done");
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15_000);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await env?.stop();
});

const shot = (name: string, p: Page = page) => p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const flash = () => page.locator(".flash").textContent();
const machine = async (mac: string) => (await env.k.api(`/machines/${mac}`)).json();

describe("console in chromium", () => {
  it("refuses a wrong token, then logs in with the right one", async () => {
    await page.goto(`${env.k.url}/ui/machines`);
    expect(new URL(page.url()).pathname).toBe("/ui/login");
    await shot("login");
    await page.fill('input[name="token"]', "wrong");
    await page.click('button[type="submit"]');
    expect(await flash()).toContain("not the API token");
    await page.fill('input[name="token"]', TEST_TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForURL("**/ui/machines");
    await page.locator(`tr[data-mac="${INSTALLED}"]`).waitFor();
    expect(await page.locator(`tr[data-mac="${INSTALLED}"] .state`).textContent()).toBe("installed");
  });

  it("shows a machine that boots while the page is open, without a reload", async () => {
    await page.goto(`${env.k.url}/ui/machines`);
    // A marker that a navigation would wipe.
    await page.evaluate("window.stillHere = true");
    for (const mac of ["52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:aa:00:03"]) {
      expect((await fetch(`${env.k.url}/ipxe?mac=${mac}&arch=x86_64`)).status).toBe(200);
    }
    const row = page.locator('tr[data-mac="52:54:00:aa:00:03"]');
    await row.waitFor();
    expect(await row.locator(".state").textContent()).toBe("discovered");
    expect(await page.evaluate("window.stillHere")).toBe(true);
    await shot("machines");

    // Search narrows the table to one machine.
    await page.fill('input[name="q"]', "aa:00:02");
    await page.click('form[role="search"] button');
    await page.waitForURL("**/ui/machines?q=*");
    expect(await page.locator("tbody tr").count()).toBe(1);
    expect(await page.locator("tbody tr").getAttribute("data-mac")).toBe("52:54:00:aa:00:02");
  });

  it("assigns one discovered machine a profile and hostname in one step", async () => {
    await page.goto(`${env.k.url}/ui/discovered`);
    // Newest first.
    expect(await page.locator("tbody tr").first().getAttribute("data-mac")).toBe("52:54:00:aa:00:03");
    await shot("discovered");
    const form = page.locator('form[aria-label="assign 52:54:00:aa:00:01"]');
    await form.locator('select[name="profile"]').selectOption("flatcar-install");
    await form.locator('input[name="hostname"]').fill("rack1-n1");
    await form.locator("button").click();
    expect(await flash()).toContain("52:54:00:aa:00:01 now boots profile flatcar-install");
    expect(await machine("52:54:00:aa:00:01")).toMatchObject({
      profile: "flatcar-install",
      hostname: "rack1-n1",
      state: "ready",
    });
    expect(await page.locator('tr[data-mac="52:54:00:aa:00:01"]').count()).toBe(0);
  });

  it("says what is wrong with a bad hostname, and changes nothing", async () => {
    const form = page.locator('form[aria-label="assign 52:54:00:aa:00:02"]');
    await form.locator('select[name="profile"]').selectOption("flatcar-install");
    await form.locator('input[name="hostname"]').fill("not a hostname!");
    await form.locator("button").click();
    expect(await page.locator(".flash-error").textContent()).toContain("hostname");
    expect(await machine("52:54:00:aa:00:02")).toMatchObject({ profile: null, state: "discovered" });
  });

  it("bulk-assigns the ticked machines", async () => {
    await page.check('input[aria-label="select 52:54:00:aa:00:02"]');
    await page.check('input[aria-label="select 52:54:00:aa:00:03"]');
    await page.locator('#bulk select[name="profile"]').selectOption("flatcar-live");
    await page.click('#bulk button[type="submit"]');
    expect(await flash()).toContain("Assigned profile flatcar-live to 2 machines");
    for (const mac of ["52:54:00:aa:00:02", "52:54:00:aa:00:03"])
      expect(await machine(mac)).toMatchObject({ profile: "flatcar-live", state: "ready" });
    expect(await page.locator("tbody tr").count()).toBe(0);
  });

  it("shows a machine's boot story and masked Ignition, and reinstalls it", async () => {
    await page.goto(`${env.k.url}/ui/machines/${INSTALLED}`);
    const story = await page.locator("ol.timeline").textContent();
    expect(story).toContain("ipxe.request");
    expect(story).toContain("Operator");
    const boot = await page.locator('pre[data-stage="boot"]').textContent();
    expect(boot).toContain("flatcar-install");
    expect(boot).toContain(MASK);
    expect(boot).not.toMatch(/sig=[0-9a-zA-Z_-]{8,}/);
    const final = await page.locator('pre[data-stage="final"]').textContent();
    expect(final).toContain('"version"');
    expect(await page.content()).not.toContain("hunter2-very-secret");
    await shot("machine");

    await page.click('form[action$="/reinstall"] button');
    expect(await flash()).toContain("will install again");
    expect((await machine(INSTALLED)).state).toBe("ready");
    expect(await page.locator("dd .state").textContent()).toBe("ready");
  });

  it("forgets a machine", async () => {
    await page.goto(`${env.k.url}/ui/machines/52:54:00:aa:00:03`);
    await page.click("details summary");
    await page.click('form[action$="/forget"] button');
    await page.waitForURL("**/ui/machines");
    expect(await flash()).toContain("Forgot 52:54:00:aa:00:03");
    expect((await env.k.api("/machines/52:54:00:aa:00:03")).status).toBe(404);
  });

  it("lists profiles with what they resolve to, and the mirror", async () => {
    await page.goto(`${env.k.url}/ui/profiles`);
    expect(await page.locator('tr[data-profile="flatcar-install"]').textContent()).toContain(
      `stable / current → ${VERSION}`,
    );
    await shot("profiles");
    await page.goto(`${env.k.url}/ui/assets`);
    expect(await page.locator("#mirror table").textContent()).toContain(`${VERSION} (current)`);
    await shot("assets");
  });

  it("starts a sync from the assets page and reports its failure", async () => {
    await page.fill('input[name="channel"]', "beta");
    await page.click('form[action="/ui/assets/sync"] button');
    expect(await flash()).toContain("Syncing Flatcar beta current");
    // The loopback origin has no beta channel: the failure shows up on the page (polled while syncing).
    await page.goto(`${env.k.url}/ui/assets`);
    await page.locator("#mirror li.flash-error").filter({ hasText: "beta" }).waitFor();
  });

  it("sends an open machines page to the login when its session ends elsewhere", async () => {
    await page.goto(`${env.k.url}/ui/machines`);
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
    const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
    const out = await fetch(`${env.k.url}/ui/logout`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(out.status).toBe(303);
    // The next poll of the open page gets 401 and the page reloads into the login form.
    await page.waitForURL("**/ui/login", { timeout: 10_000 });
    await page.fill('input[name="token"]', TEST_TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForURL("**/ui/machines");
  });

  it("fits a phone-sized screen", async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    await phone.context().addCookies(await page.context().cookies());
    await phone.goto(`${env.k.url}/ui/machines`);
    const width = await phone.evaluate<number>("document.documentElement.scrollWidth");
    expect(width).toBeLessThanOrEqual(390);
    // Every row's state is on screen without scrolling sideways.
    for (const badge of await phone.locator("tbody .state").all()) {
      const box = (await badge.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    await shot("machines-phone", phone);
    await phone.close();
  });
});
