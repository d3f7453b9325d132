// The first file a file input holds: name and size.
async ({ selector }) => {
  const el = R(selector); if (!el || !el.files || !el.files.length) return null;
  return { name: el.files[0].name, size: el.files[0].size };
}
