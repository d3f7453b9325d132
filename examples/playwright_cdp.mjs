// Attaches Playwright to a browser-worker session over the worker's CDP passthrough: opens a
// session on URL, connects, prints the page title, saves a screenshot, detaches and closes the
// session. Uses tests/js's playwright-core (no browser download; `scripts/install-deps.sh`).
//
//   BW_URL=http://127.0.0.1:8080 BW_KEY=$(cat data/api-key) node examples/playwright_cdp.mjs [url] [out.png]
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/js/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url = "https://example.com/", out = "playwright.png"] = process.argv.slice(2);
const api = process.env.BW_URL ?? "http://127.0.0.1:8080";
const key = process.env.BW_KEY;
if (!key) {
  console.error("set BW_KEY to the worker's API key (and BW_URL to its address)");
  process.exit(2);
}
const headers = { Authorization: `Bearer ${key}` };

async function worker(method, path, body) {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { ...headers, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.error)}`);
  return json;
}

const session = await worker("POST", "/api/v2/sessions", { url });
console.log(`session ${session.session_id}, cdp_url ${session.cdp_url}`);
try {
  // The key goes as a header; a CDP token (POST …/cdp-token) in the URL works as well.
  const browser = await chromium.connectOverCDP(session.cdp_url, { headers, timeout: 20_000 });
  try {
    const page = browser.contexts()[0].pages()[0];
    console.log(`title: ${await page.title()}`);
    await page.screenshot({ path: out });
    console.log(`screenshot: ${out}`);
  } finally {
    await browser.close(); // over CDP this only disconnects; the session keeps its browser
  }
} finally {
  const closed = await worker("DELETE", `/api/v2/sessions/${session.session_id}`);
  console.log(`session ${closed.state}`);
}
