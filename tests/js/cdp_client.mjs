// Attaches Playwright or Puppeteer to a browser-worker session through its CDP passthrough,
// reads the page title and types TEXT into the `#name` field, then detaches (never closes).
//
//   node cdp_client.mjs playwright|puppeteer <cdp_url> [text]
//
// BW_KEY, when set, is sent as `Authorization: Bearer`; otherwise the URL carries `?token=`.
// Prints one JSON line: {"title": "...", "typed": "..."}; exits 1 with the error on failure.
import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";

const [client, url, text = "typed through CDP"] = process.argv.slice(2);
const headers = process.env.BW_KEY ? { Authorization: `Bearer ${process.env.BW_KEY}` } : {};

async function withPlaywright() {
  const browser = await chromium.connectOverCDP(url, { headers, timeout: 20000 });
  try {
    const page = browser.contexts()[0].pages()[0];
    const title = await page.title();
    await page.locator("#name").pressSequentially(text);
    return { title, typed: await page.locator("#name").inputValue() };
  } finally {
    await browser.close(); // connectOverCDP: disconnects, the browser stays
  }
}

async function withPuppeteer() {
  const browser = await puppeteer.connect({ browserWSEndpoint: url, headers, defaultViewport: null, protocolTimeout: 20000 });
  try {
    const pages = await browser.pages();
    const page = pages[0];
    const title = await page.title();
    await page.type("#name", text);
    return { title, typed: await page.$eval("#name", (el) => el.value) };
  } finally {
    await browser.disconnect();
  }
}

try {
  const result = client === "puppeteer" ? await withPuppeteer() : await withPlaywright();
  console.log(JSON.stringify(result));
} catch (error) {
  console.error(String(error && error.message ? error.message : error));
  process.exit(1);
}
