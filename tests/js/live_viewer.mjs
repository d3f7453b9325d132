// Opens a browser-worker live viewer page in a browser of its own and clicks a point of the
// session's page through it, as a person would with a mouse; given a text, it then selects all
// (Control+A) and types the text on the viewer's keyboard, as a person correcting a field would.
//
//   node live_viewer.mjs <viewer_url> <x> <y> [text]
//
// x and y are CSS pixels of the session's viewport. CHROMIUM names the browser to launch.
// Prints one JSON line: {"mode": "control|view", "viewport": "WxH", "clicked": [x, y],
// "typed": text|null}; exits 1 with the error on failure.
import { chromium } from "playwright-core";

const [url, x, y, text] = process.argv.slice(2);

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  await page.goto(url);
  await page.waitForFunction(
    () => document.body.dataset.state === "streaming" && document.body.dataset.viewport,
    null,
    { timeout: 20000 },
  );
  const { mode, viewport, left, top } = await page.evaluate(([x, y]) => {
    const [width, height] = document.body.dataset.viewport.split("x").map(Number);
    const rect = document.getElementById("screen").getBoundingClientRect();
    // The frame is drawn centred and scaled to fit (`draw()` in the viewer).
    const scale = Math.min(rect.width / width, rect.height / height);
    const left = rect.left + (rect.width - width * scale) / 2 + x * scale;
    const top = rect.top + (rect.height - height * scale) / 2 + y * scale;
    return { mode: document.body.dataset.mode, viewport: document.body.dataset.viewport, left, top };
  }, [Number(x), Number(y)]);
  await page.mouse.click(left, top);
  if (text !== undefined) {
    // Key events reach the viewer's canvas (it took the focus on the click) and leave as `key`
    // messages: Control+A selects all, each character replaces the selection.
    await page.keyboard.press("Control+a");
    await page.keyboard.type(text, { delay: 20 });
  }
  // The input leaves as messages on the socket; give them a moment to be sent.
  await page.waitForTimeout(300);
  console.log(JSON.stringify({ mode, viewport, clicked: [Number(x), Number(y)], typed: text ?? null }));
} catch (error) {
  console.error(String(error && error.stack || error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
