// Helpers shared by every executor function (prepended to each; no page data in here).
// R resolves `A >>> B` selectors across frames and shadow roots; BOX measures an element in
// top-level viewport coordinates; TARGET is what to click for a visually hidden control (its
// label); N collapses whitespace.
const R = (sel) => { let root = document, el = null; const parts = sel.split(' >>> ');
  for (let i = 0; i < parts.length; i++) { el = root.querySelector(parts[i]); if (!el) return null;
    if (i < parts.length - 1) { root = el.shadowRoot || el.contentDocument; if (!root) return null; } } return el; };
const BOX = (el) => { const r = el.getBoundingClientRect(); let x = r.left, y = r.top; let w = el.ownerDocument.defaultView;
  while (w && w.frameElement) { const f = w.frameElement.getBoundingClientRect(); x += f.left + w.frameElement.clientLeft; y += f.top + w.frameElement.clientTop; w = w.parent; }
  return { x, y, w: r.width, h: r.height }; };
const SHOWN = (el) => { const r = el.getBoundingClientRect(); return r.width >= 2 && r.height >= 2; };
const TARGET = (el) => { if (SHOWN(el)) return el;
  const labels = Array.from(el.labels || []).concat(el.closest('label') ? [el.closest('label')] : []);
  return labels.find(SHOWN) || labels[0] || el; };
const N = (s) => (s || '').replace(/\s+/g, ' ').trim();
const FIRE = (el, ...types) => { for (const t of types) el.dispatchEvent(new Event(t, { bubbles: true })); };
