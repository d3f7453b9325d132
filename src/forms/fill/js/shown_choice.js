// What a combobox displays as chosen.
async ({ selector }) => {
  const el = R(selector); if (!el) return null;
  if (el.tagName === 'BUTTON') return N(el.textContent);
  const box = el.closest('.select__control, [class*="select__control"], .select-shell, .select__container') || (el.parentElement && el.parentElement.parentElement);
  const single = box && box.querySelector('.select__single-value, [class*="singleValue"], [class*="single-value"]');
  if (single) return N(single.textContent);
  return N(el.value) || null;
}
