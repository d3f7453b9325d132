// Times N CDP round trips (page.evaluate) of Playwright attached over CDP at <url>.
//
//   node cdp_roundtrips.mjs <ws_url> <n>
//
// BW_KEY, when set, is sent as `Authorization: Bearer`. Prints {"ms": <total>, "n": <n>}.
import { chromium } from "playwright-core";

const [url, n = "200"] = process.argv.slice(2);
const headers = process.env.BW_KEY ? { Authorization: `Bearer ${process.env.BW_KEY}` } : {};
const browser = await chromium.connectOverCDP(url, { headers, timeout: 20000 });
try {
  const page = browser.contexts()[0].pages()[0];
  for (let i = 0; i < 20; i++) await page.evaluate((x) => x + 1, i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < Number(n); i++) await page.evaluate((x) => x + 1, i);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(JSON.stringify({ ms, n: Number(n) }));
} finally {
  await browser.close();
}
