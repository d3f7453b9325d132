// The box to click for `selector` (its label when the control itself is hidden) and the
// viewport height; with `settle`, waits until smooth scrolling has stopped moving it.
async ({ selector, settle }) => {
  const el = R(selector); if (!el) return null; const t = TARGET(el);
  if (settle) { let last = NaN, same = 0;
    for (let i = 0; i < 60 && same < 2; i++) { await new Promise((r) => setTimeout(r, 25));
      const top = t.getBoundingClientRect().top; if (top === last) same++; else { same = 0; last = top; } } }
  return { ...BOX(t), vh: innerHeight };
}
