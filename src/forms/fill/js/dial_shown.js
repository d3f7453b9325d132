// What a dial-code picker shows: a select's chosen option (text and value), else the widget's
// text, title, aria-label and value (a flag button says "+41" or "Switzerland: +41" there).
async ({ selector }) => {
  const el = R(selector); if (!el) return null;
  if (el.tagName === 'SELECT') { const o = el.selectedOptions[0]; return o ? N(o.text + ' ' + o.value) : ''; }
  return N([el.textContent, el.getAttribute('title'), el.getAttribute('aria-label'), el.value].filter(Boolean).join(' '));
}
