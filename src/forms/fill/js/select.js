// Native selects, including a hidden select driven by a visible styled widget (select2,
// chosen, bootstrap-select, a custom dropdown): writes the select through the native setter
// with input and change events, tells the library where it has an API, and reads back both
// the select and what the visible widget shows. When the widget ignores the change, its own
// option is clicked. Returns {selected, shown, driven}.
async ({ selector, value, label, driver: driverSelector }) => {
  const el = R(selector); if (!el) return null;
  const doc = el.ownerDocument, win = doc.defaultView || window;
  const seen = (n) => { const r = n.getBoundingClientRect(); return r.width > 1 && r.height > 1 && win.getComputedStyle(n).visibility !== 'hidden'; };
  const driver = driverSelector ? R(driverSelector) : null;
  const shownText = () => {
    if (!driver) return null;
    if (driver.tagName === 'INPUT') return N(driver.value);
    const inner = driver.querySelector('.select2-chosen, .select2-selection__rendered, .chosen-single span, .filter-option-inner-inner, .filter-option, .text, [class*="single-value"], [class*="selected-value"], [data-selected]');
    return N((inner || driver).textContent);
  };
  const selected = () => { const o = el.selectedOptions[0]; return o ? N(o.text) : null; };
  el.focus();
  Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set.call(el, value);
  FIRE(el, 'input', 'change');
  const $ = win.jQuery;
  if ($ && $.fn) {
    try { $(el).trigger('chosen:updated'); } catch (e) { /* no chosen */ }
    try { if ($.fn.selectpicker && $(el).data('selectpicker')) $(el).selectpicker('refresh'); } catch (e) { /* no bootstrap-select */ }
  }
  el.blur();
  // A styled widget may redraw on the next tick; a plain select is read back at once.
  if (driver) await new Promise((r) => setTimeout(r, 30));
  const matches = () => { const s = shownText(); return s !== null && N(s).toLowerCase().includes(N(label).toLowerCase()); };
  if (driver && !matches()) {
    // The widget did not follow the select: open it and click its own option.
    for (const t of ['mousedown', 'mouseup', 'click']) driver.dispatchEvent(new MouseEvent(t, { bubbles: true, cancelable: true, view: win }));
    await new Promise((r) => setTimeout(r, 30));
    const same = (o) => seen(o) && N(o.textContent).toLowerCase() === N(label).toLowerCase() && !o.querySelector('[role=option], .item, li');
    const ITEM = '[role=option], .item, li, .select2-result-label, .dropdown-item';
    const own = [driver, ...['aria-controls', 'aria-owns'].map((a) => driver.getAttribute(a) && doc.getElementById(driver.getAttribute(a)))].filter(Boolean);
    let items = own.flatMap((n) => Array.from(n.querySelectorAll(ITEM))).filter(same);
    // Libraries that render their menu at the end of <body>: only an open popup's items.
    if (!items.length) items = Array.from(doc.querySelectorAll('[role=listbox] [role=option], .select2-drop li, .select2-results li, .chosen-results li, .dropdown-menu li, .dropdown-menu .dropdown-item')).filter(same);
    if (items.length) {
      const item = items[0];
      for (const t of ['mousedown', 'mouseup', 'click']) item.dispatchEvent(new MouseEvent(t, { bubbles: true, cancelable: true, view: win }));
      await new Promise((r) => setTimeout(r, 30));
    }
  }
  return { selected: selected(), shown: shownText(), driven: !!driver };
}
