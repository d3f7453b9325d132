// Writes a value through the native setter (so React-style trackers see it), with input and
// change events; returns what the control holds afterwards.
async ({ selector, value }) => {
  const el = R(selector); if (!el) return null; el.focus();
  const proto = el.tagName === 'SELECT' ? HTMLSelectElement.prototype : el.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);
  FIRE(el, 'input', 'change'); el.blur();
  return el.value;
}
