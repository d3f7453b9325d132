// Page readiness: one Runtime.evaluate (awaited). Waits until the document is interactive
// (DOMContentLoaded), then until its DOM has stopped changing for QUIET_MS (bounded by
// SETTLE_MS), and answers where the page is. `load` is never waited for: a page that keeps
// a request open is usable all the same.
(async () => {
  const QUIET_MS = 200;
  const SETTLE_MS = 2000;
  if (document.readyState === 'loading') {
    await new Promise((resolve) => document.addEventListener('DOMContentLoaded', resolve, { once: true }));
  }
  await new Promise((resolve) => {
    let quiet = null;
    const observer = new MutationObserver(() => {
      clearTimeout(quiet);
      quiet = setTimeout(done, QUIET_MS);
    });
    const cap = setTimeout(done, SETTLE_MS);
    function done() {
      observer.disconnect();
      clearTimeout(quiet);
      clearTimeout(cap);
      resolve();
    }
    observer.observe(document, { childList: true, subtree: true });
    quiet = setTimeout(done, QUIET_MS);
  });
  return { ready_state: document.readyState, url: location.href, title: document.title };
})()
