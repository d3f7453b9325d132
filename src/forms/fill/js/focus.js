// Focuses the control and selects its text (so typing replaces it).
async ({ selector }) => {
  const el = R(selector); if (!el) return false; el.focus();
  if (el.select) try { el.select(); } catch (e) { /* not selectable */ }
  return true;
}
