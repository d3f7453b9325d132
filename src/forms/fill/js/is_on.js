// Whether a radio, checkbox or toggle button is on.
async ({ selector }) => {
  const el = R(selector); if (!el) return null;
  if ('checked' in el && (el.type === 'radio' || el.type === 'checkbox')) return el.checked;
  return el.getAttribute('aria-pressed') === 'true' || el.getAttribute('aria-checked') === 'true';
}
