// Jumps the click target of `selector` into the middle of the viewport.
async ({ selector }) => {
  const el = R(selector); if (!el) return null;
  TARGET(el).scrollIntoView({ block: 'center', inline: 'nearest' });
  return { ...BOX(TARGET(el)), vh: innerHeight };
}
