// The options a combobox shows now (waiting up to 2 s for them), with their boxes.
async ({ selector }) => {
  const el = R(selector); if (!el) return null; const doc = el.ownerDocument;
  const near = el.closest('.select__container, .select-shell, [data-uxi-widget-type], .application-question, .field, form') || doc;
  const vis = (o) => { const r = o.getBoundingClientRect(); return r.width > 1 && r.height > 1 && getComputedStyle(o).visibility !== 'hidden'; };
  const find = () => {
    const ids = [el.getAttribute('aria-controls'), el.getAttribute('aria-owns')].filter(Boolean);
    const lists = ids.map((id) => doc.getElementById(id)).filter(Boolean);
    let opts = lists.flatMap((l) => Array.from(l.querySelectorAll('[role=option], .select__option')));
    if (!opts.length) opts = Array.from(near.querySelectorAll('[role=option], .select__option, .dropdown-location, .dropdown-results > *'));
    if (!opts.length) opts = Array.from(doc.querySelectorAll('[role=listbox] [role=option], [role=option]'));
    return opts.filter(vis);
  };
  const deadline = performance.now() + 2000; let opts = find();
  while (!opts.length && performance.now() < deadline) { await new Promise((r) => setTimeout(r, 50)); opts = find(); }
  await new Promise((r) => setTimeout(r, 0)); opts = find();
  return opts.map((o) => ({ label: N(o.textContent), box: BOX(o) })).filter((o) => o.label);
}
