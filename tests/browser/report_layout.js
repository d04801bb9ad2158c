// Opens a report.html at a given window width in Debian's Chromium and prints, as JSON, the tables that
// overflow sideways and how far the page itself scrolls sideways (tests/integration/test_ui_browser.py).
//   node tests/browser/report_layout.js REPORT_HTML WIDTH
"use strict";

const { chromium } = require("playwright-core");
const { overflowing, pageOverflow } = require("./layout");

const CHROMIUM = process.env.PERSEUS_CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"];

async function main() {
  const [file, width] = process.argv.slice(2);
  if (!file || !width) throw new Error("usage: node report_layout.js REPORT_HTML WIDTH");
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width: Number(width), height: 900 } });
    await page.goto("file://" + file);
    const tables = await page.$$eval("table", (t) => t.length);
    const result = { tables, overflowing: await overflowing(page), pageOverflow: await pageOverflow(page) };
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  process.stderr.write(`report_layout: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
