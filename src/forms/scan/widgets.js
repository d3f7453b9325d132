// Part of the page scanner (see scan.rs: the parts are one async function, in this order).
// What kind of control it is: widgets (comboboxes, listboxes, styled selects over hidden
// ones, label-driven hidden inputs), file roles and option probing.
  function controlKind(el) {
    const tag = el.tagName;
    if (tag === 'SELECT') return 'select';
    if (tag === 'TEXTAREA') return 'textarea';
    if (tag === 'BUTTON') return 'combobox';
    if (tag !== 'INPUT') return el.getAttribute('role') === 'combobox' ? 'combobox' : 'text';
    const type = (el.getAttribute('type') || 'text').toLowerCase();
    if (el.getAttribute('role') === 'combobox') return 'combobox';
    switch (type) {
      case 'email': return 'email';
      case 'tel': return 'tel';
      case 'url': return 'url';
      case 'number': return 'number';
      case 'date': case 'datetime-local': case 'month': return 'date';
      case 'file': return 'file';
      case 'radio': return 'radio';
      case 'checkbox': return 'checkbox';
      default: return 'text';
    }
  }

  function comboContainer(el) {
    return el.closest('.select__container, .select-shell, [class*="select__control"], [data-uxi-widget-type], [role="group"], .field, div') || el.parentElement;
  }

  function comboDisplay(el) {
    if (el.tagName === 'BUTTON') {
      const t = textOf(el);
      return t && !OPTION_PLACEHOLDER.test(t) ? t : null;
    }
    const box = el.closest('.select__control, [class*="select__control"], .select-shell, .select__container') || el.parentElement && el.parentElement.parentElement;
    const single = box && box.querySelector('.select__single-value, [class*="singleValue"], [class*="single-value"]');
    if (single) return norm(single.textContent) || null;
    return el.value ? norm(el.value) : null;
  }

  // A hidden native select is the field when a visible widget drives it: an element naming
  // it (aria-controls, data attributes), a styled-dropdown sibling or wrapper (select2, chosen,
  // bootstrap-select, "custom-select", "ui dropdown"), or the one visible combobox of its field
  // container. Returns that widget, or null (then the hidden select is a trap).
  const WIDGET_CLASS = /(^|[\s_-])(select2|chosen|selectize|selectpicker|bootstrap-select|custom-select|nice-select|choices|dropdown|selectmenu|combobox|multiselect)/i;
  const classOf = (n) => (typeof n.className === 'string' ? n.className : '');
  function selectDriver(el) {
    const root = el.getRootNode();
    const own = (d) => visibility(d) === 'visible' && d.querySelectorAll('select').length <= (d.contains(el) ? 1 : 0)
      && d.querySelectorAll('input:not([type=hidden]), textarea').length <= 2;
    if (el.id) {
      const id = esc(el.id);
      try {
        const ref = root.querySelector(`[aria-controls="${id}"], [aria-owns="${id}"], [data-select="${id}"], [data-for="${id}"], [data-target="#${id}"]`);
        if (ref && ref !== el && own(ref)) return ref;
      } catch (e) { /* invalid id */ }
    }
    for (let p = el.parentElement, i = 0; p && i < 2; p = p.parentElement, i++) if (WIDGET_CLASS.test(classOf(p)) && own(p)) return p;
    // A sibling widget, not a decoration inside one (a "dropdown icon").
    const widget = (n) => n && WIDGET_CLASS.test(classOf(n)) && !/^(I|SVG|IMG)$/i.test(n.tagName) && !/(^|\s)icon(\s|$)/.test(classOf(n)) && n.getBoundingClientRect().width >= 24 && own(n);
    for (const sib of [el.previousElementSibling, el.nextElementSibling]) if (widget(sib)) return sib;
    const box = el.parentElement && el.parentElement.closest('.form-group, .field, [class*="field" i], [class*="form-row" i], li');
    if (box && box.querySelectorAll('select').length === 1) {
      const combos = Array.from(box.querySelectorAll('[role="combobox"], input[aria-autocomplete], button[aria-haspopup="listbox"]')).filter((c) => visibility(c) === 'visible');
      if (combos.length === 1) return combos[0];
    }
    return null;
  }

  // A visually hidden (or aria-hidden) radio or checkbox is the field when a visible label drives it.
  function labelDriven(el) {
    const labels = Array.from(el.labels || []);
    const wrap = el.closest('label');
    if (wrap) labels.push(wrap);
    return labels.some((l) => visibility(l) === 'visible');
  }

  // What a file input is for, from its label, its section heading and its accept attribute.
  const FILE_ROLES = [
    ['resume', /\b(resume|résumé|cv|curriculum vitae|curriculum|lebenslauf)\b/i],
    ['cover_letter', /cover ?letter|anschreiben|motivationsschreiben|begleitschreiben|bewerbungsschreiben|lettre de motivation|motivation letter|letter of motivation/i],
    ['photo', /\b(photo|foto|picture|bild|bewerbungsfoto|portrait|headshot)\b/i],
    ['other', /zeugnis|diplom|diploma|certificat|certificate|transcript|attestation|referenz|reference letter|portfolio|arbeitsprobe|\b(other|additional|further|weitere|sonstige|autres?|additionnels?) (documents?|dokumente|unterlagen|files?|pièces?)\b|\bdocuments? (supplémentaires|additionnels)\b/i],
  ];
  function fileRole(label, section, accept) {
    // "Autofill from resume" and parse/import helpers are not the application's document slots.
    if (/auto-?fill|\bparse|\bimport|apply with/i.test(label)) return null;
    for (const text of [label, section || '']) {
      const hit = FILE_ROLES.find(([, re]) => re.test(text));
      if (hit) return hit[0];
    }
    if (/^\s*image\//i.test(accept || '') && !/pdf|doc/i.test(accept || '')) return 'photo';
    return null;
  }

  function listboxOf(el) {
    const root = el.getRootNode();
    for (const attr of ['aria-controls', 'aria-owns']) {
      const id = el.getAttribute(attr);
      if (id) { const lb = byId(root, id); if (lb) return lb; }
    }
    const box = el.closest('.select__container, .select-shell, [data-uxi-widget-type]') || (el.parentElement && el.parentElement.parentElement);
    return box ? box.querySelector('[role="listbox"], .select__menu') : null;
  }

  // The open popup listbox anywhere in the document (Workday renders it at the end of <body>).
  function openListbox(doc) {
    const boxes = Array.from(doc.querySelectorAll('[role="listbox"]')).filter((b) => visibility(b) === 'visible');
    return boxes.length ? boxes[boxes.length - 1] : null;
  }

  function optionsIn(listbox) {
    if (!listbox) return [];
    return Array.from(listbox.querySelectorAll('[role="option"], .select__option'))
      .map((o) => ({ value: o.getAttribute('data-value') || norm(o.textContent), label: norm(o.textContent) }))
      .filter((o) => o.label && !OPTION_PLACEHOLDER.test(o.label));
  }

  const tick = () => new Promise((r) => setTimeout(r, 0));
  const key = (el, k) => el.dispatchEvent(new KeyboardEvent('keydown', { key: k, code: k, bubbles: true, cancelable: true }));

  // Opens a closed combobox just long enough to read its options, then closes it again.
  async function probeOptions(el) {
    const read = () => {
      let o = optionsIn(listboxOf(el));
      if (!o.length && el.getAttribute('aria-expanded') === 'true') o = optionsIn(openListbox(el.ownerDocument));
      return o;
    };
    let opts = read();
    if (opts.length || el.getAttribute('aria-expanded') === 'true') return opts;
    const before = el.ownerDocument.activeElement;
    try {
      el.focus({ preventScroll: true });
      key(el, 'ArrowDown');
      await tick();
      opts = read();
      if (!opts.length && el.getAttribute('aria-expanded') !== 'true') {
        const target = el.tagName === 'BUTTON' ? el : (el.closest('.select__control, [class*="select__control"]') || el);
        for (const type of ['mousedown', 'mouseup', 'click']) target.dispatchEvent(new MouseEvent(type, { bubbles: true, cancelable: true, view: window }));
        await tick();
        opts = read();
      }
    } finally {
      if (el.getAttribute('aria-expanded') === 'true' || optionsIn(listboxOf(el)).length) {
        key(el, 'Escape');
        await tick();
        if (el.getAttribute('aria-expanded') === 'true' && el.tagName === 'BUTTON') el.click();
      }
      if (el.ownerDocument.activeElement === el) el.blur();
      if (before && before !== el && before.focus) before.focus({ preventScroll: true });
    }
    return opts;
  }

  function selectOptions(el) {
    return Array.from(el.options)
      .filter((o, i) => !(i === 0 && (o.value === '' || OPTION_PLACEHOLDER.test(norm(o.text)))) && !o.disabled)
      .map((o) => ({ value: o.value, label: norm(o.text) }));
  }
