// Drives `perseus ui` in Debian's Chromium with playwright-core (no browser download).
// Used by tests/integration/test_ui_browser.py:
//   node tests/browser/ui_flow.js BASE_URL TENANTS(comma-separated) OUT_DIR
// Prints one JSON object on stdout: what the pages showed. Exits non-zero (message on stderr) on failure.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");
const { overflowing, pageOverflow } = require("./layout");

const CHROMIUM = process.env.PERSEUS_CHROMIUM || "/usr/bin/chromium";
// Without the background-networking flags Chromium keeps dialling Google on this closed network.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const NUMBER = /^-?\d+(\.\d+)?$/;

async function tableRows(page, selector) {
  // Each row as {column title: cell text}, from a table with a header row.
  return page.$$eval(selector, (tables) => {
    const table = tables[0];
    if (!table) return [];
    const titles = [...table.querySelectorAll("thead th, thead td")].map((c) => c.innerText.trim());
    return [...table.querySelectorAll("tbody tr")].map((tr) => {
      const cells = [...tr.querySelectorAll("td, th")].map((c) => c.innerText.trim());
      return Object.fromEntries(titles.map((t, i) => [t, cells[i]]));
    });
  });
}

function checkRows(rows, tenants, where) {
  for (const tenant of tenants) {
    const row = rows.find((r) => r["Tenant"] === tenant);
    if (!row) throw new Error(`${where}: no row for tenant ${tenant} in ${JSON.stringify(rows)}`);
    for (const column of ["Requests (measured)", "p50 ms", "p99 ms", "SLA attainment %"]) {
      if (!NUMBER.test(row[column] || "")) throw new Error(`${where}: ${tenant} ${column} is not a number: ${JSON.stringify(row)}`);
    }
    if (!(Number(row["Requests (measured)"]) > 0)) throw new Error(`${where}: ${tenant} has no measured requests: ${JSON.stringify(row)}`);
  }
}

async function until(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? ": " + last.message : ""}`);
}

async function main() {
  const [base, tenantList, outDir] = process.argv.slice(2);
  if (!base || !tenantList || !outDir) throw new Error("usage: node ui_flow.js BASE_URL TENANTS OUT_DIR");
  const tenants = tenantList.split(",");
  fs.mkdirSync(outDir, { recursive: true });
  const profile = fs.mkdtempSync(path.join(outDir, "chromium-profile-")); // a new, empty profile
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 900 }, // the width at which nothing may scroll sideways
  });
  const result = { screenshots: {} };
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(30000);

    // 1. Locust's page: one user per tenant (LoadTestShape), so only Start; the user count and ramp-up
    //    fields give way to a line saying why.
    await page.goto(base + "/");
    const fixed = page.locator("#perseus-fixed-users");
    await until("the start form's note with the number of tenants", async () => / in all\)/.test(await fixed.innerText()), 30000);
    result.startForm = {
      note: await fixed.innerText(),
      userCountShown: await page.locator('input[name="userCount"]').isVisible(),
      spawnRateShown: await page.locator('input[name="spawnRate"]').isVisible(),
    };
    await page.getByRole("button", { name: /^start$/i }).click();
    await page.getByRole("button", { name: /^stop$/i }).waitFor();

    // 2. The perseus tab, live, until every tenant has measured requests.
    await page.getByRole("tab", { name: /perseus/i }).click();
    const liveRows = await until(
      "measured requests in the perseus tab",
      async () => {
        const rows = await tableRows(page, "table");
        checkRows(rows, tenants, "perseus tab (running)");
        return rows;
      },
      60000,
    );
    result.liveTab = liveRows;
    // A chart per tenant, drawn while the test runs: latency (p50, p99, the SLA) and throughput (the target).
    result.liveCharts = await until(
      "a chart with points for every tenant in the perseus tab",
      async () => {
        const charts = await page.$$eval("#perseus-charts .perseus-chart", (blocks) =>
          blocks.map((b) => ({
            tenant: b.dataset.tenant,
            points: [...b.querySelectorAll("svg")].map((s) => Number(s.getAttribute("data-points"))),
            references: b.querySelectorAll(".perseus-reference").length,
          })),
        );
        const ready = tenants.every((t) => charts.some((c) => c.tenant === t && c.points.length === 2 && c.points.every((n) => n > 0)));
        return ready && charts;
      },
      60000,
    );
    result.tabOverflow = { tables: await overflowing(page), page: await pageOverflow(page) };
    result.screenshots.live = path.join(outDir, "ui-locust-tab-live.png");
    await page.screenshot({ path: result.screenshots.live, fullPage: true });
    await page.waitForTimeout(Number(process.env.PERSEUS_UI_MEASURE_MS || 3000)); // a few seconds of load

    // 3. Stop from Locust's page; the tab keeps the last figures.
    await page.getByRole("button", { name: /^stop$/i }).click();
    await until("Locust to report STOPPED", async () => /stopped/i.test(await page.locator("header").innerText()), 30000);
    const tabRows = await tableRows(page, "table");
    checkRows(tabRows, tenants, "perseus tab (stopped)");
    result.tab = tabRows;
    result.screenshots.tab = path.join(outDir, "ui-locust-tab.png");
    await page.screenshot({ path: result.screenshots.tab });

    // 4. The perseus page: final figures and, once written, the link to the report.
    await page.goto(base + "/perseus");
    const link = page.locator("#report-link");
    await link.waitFor({ timeout: 90000 });
    const pageRows = await tableRows(page, "#tenants");
    checkRows(pageRows, tenants, "perseus page");
    result.page = pageRows;
    result.phase = await page.locator("#phase").innerText();
    result.screenshots.page = path.join(outDir, "ui.png");
    await page.screenshot({ path: result.screenshots.page, fullPage: true });

    // 5. The report, served from the run folder.
    await link.click();
    await page.waitForLoadState("load");
    result.reportUrl = page.url();
    result.reportText = (await page.locator("body").innerText()).slice(0, 20000);
    for (const tenant of tenants) {
      if (!result.reportText.includes(tenant)) throw new Error(`the report does not name tenant ${tenant}`);
    }
    // At 1,400 px no table of the report scrolls sideways, nor the page.
    result.reportOverflow = { tables: await overflowing(page), page: await pageOverflow(page) };
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e) => {
  process.stderr.write(`ui_flow: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
