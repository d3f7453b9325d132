// The control's value, optionally blurring it afterwards (to run the page's on-blur formatting).
async ({ selector, blur }) => {
  const el = R(selector); if (!el) return null; const v = el.value;
  if (blur) el.blur();
  return v;
}
