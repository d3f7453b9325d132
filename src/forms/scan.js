// The page scanner: one Runtime.evaluate returns every control of the page (main frame,
// same-origin iframes, open shadow roots) with its label, kind, options, value, section,
// visibility and trap signals, and a stable selector. It also reports platform signals, the
// primary actions and step hints. Selectors that cross a frame or shadow root are joined
// with " >>> " (the executor resolves them the same way).
(async () => {
  const JOIN = ' >>> ';
  const norm = (s) => (s || '').replace(/\s+/g, ' ').replace(/ ([.,])(?= |$)/g, '$1').trim();
  const stripReq = (s) => parseLabel(s).label;
  const GENERIC_LABEL = /^(attach|upload|upload (a )?file|choose (a )?file|browse|select (a )?file|attach (a )?file|add (a )?file|drop files? here|or drag and drop here|enter manually|no file chosen|file input|file|datei|fichier|datei(en)? (hochladen|auswählen|hinzufügen|anhängen)|hochladen|durchsuchen|keine datei ausgewählt|choisir (un )?fichier|(importer|ajouter|joindre|télécharger) (un )?fichier|parcourir|aucun fichier (choisi|sélectionné))$/i;
  const HONEYPOT_NAME = /(^|[_\-\[])(hp|honeypot|honey_?pot|trap|bot_?field|do_?not_?fill)($|[_\-\]])|^website2$|^email2$|^url2$|^fax_?only$/i;
  const RANDOM_ID = /^(:r[0-9a-z]*:|react-select-|ember\d|mui-\d|headlessui-|radix-|uid-|id-?\d|\d)|^[0-9a-f]{8}-[0-9a-f]{4}-|^[a-z0-9]{20,}$/i;
  const OPTION_PLACEHOLDER = /^(select|choose|please select|pick|--|—|select an option|select one|select\.\.\.)/i;

  const esc = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const isRandomId = (id) => RANDOM_ID.test(id);

  // Label markup (EN/DE/FR). While `labelMode` is on, textOf leaves out widgets inside a label
  // (dial-code pickers, "Choose file" buttons, listboxes) and turns an element that holds only a
  // required/optional marker ("*", "Required", "(erforderlich)", "Requis.", "(Optional)") into a
  // sentinel; parseLabel reads the sentinels and the same markers written as plain text at the
  // start or end of the text, and cuts help text that follows a marker after the question.
  let labelMode = false;
  const asLabel = (f) => { const was = labelMode; labelMode = true; try { return f(); } finally { labelMode = was; } };
  const WIDGET = 'button, [role="button"], [role="combobox"], [role="listbox"], [role="option"], [role="menu"], [role="spinbutton"], [role="slider"]';
  const MARK_WORDS = 'required|requis|obligatoire|pflichtfeld|pflichtangabe|erforderlich|optional|optionnel|facultatif|freiwillig|fakultativ';
  const MARK_ONLY = new RegExp(`^([*✱]+|[(\\[]?\\s*(${MARK_WORDS})\\s*[)\\]]?\\s*[.:]?)$`, 'i');
  const OPTIONAL_MARK = /optional|optionnel|facultatif|freiwillig|fakultativ/i;
  const MARK_R = '\u0001R', MARK_O = '\u0001O';
  const PAREN_MARK = new RegExp(`[(\\[]\\s*(${MARK_WORDS})\\s*[)\\]]`, 'gi');
  // Bare words only as label markup: capitalised (or German) at the start or end, never mid-sentence.
  const BARE_MARK = '(Required|Requis|Obligatoire|Pflichtfeld|Pflichtangabe|Erforderlich|erforderlich|Optional|Optionnel|Facultatif|Freiwillig|Fakultativ)';
  const LEAD_MARK = new RegExp(`^${BARE_MARK}\\s*[.:]\\s+(?=\\S)`);
  const TAIL_MARK = new RegExp(`\\s${BARE_MARK}\\s*[.:]?$`);
  const HELP_AFTER_MARK = new RegExp(`([?:.!])\\s+${BARE_MARK}[.:]?\\s+(?=\\S)`);
  const GENERIC_TAIL = /\s+(choose (a )?file|browse|upload (a )?file|or drag and drop here|datei(en)? (hochladen|auswählen|hinzufügen)|durchsuchen|choisir (un )?fichier|parcourir)$/i;

  // {label, required, optional, help} from the raw text of a label.
  function parseLabel(raw) {
    let required = false, optional = false;
    const parts = norm(raw).split(/\u0001([RO])/);
    let label = '', help = '';
    let cut = false;
    const mark = (w) => { if (OPTIONAL_MARK.test(w)) optional = true; else required = true; };
    const bare = (t) => norm(t.replace(/[*✱]/g, ' ').replace(PAREN_MARK, ' '));
    for (let i = 0; i < parts.length; i++) {
      if (i % 2) {
        if (parts[i] === 'R') required = true; else optional = true;
        if (bare(label)) cut = true;
        continue;
      }
      if (cut) help += ' ' + parts[i]; else label += ' ' + parts[i];
    }
    label = norm(label);
    const m = label.match(HELP_AFTER_MARK);
    if (m) {
      help = label.slice(m.index + m[0].length) + ' ' + help;
      label = label.slice(0, m.index + 1);
      mark(m[2]);
    }
    if (/[*✱]/.test(label)) required = true;
    label = norm(label.replace(/[*✱]/g, ' ').replace(PAREN_MARK, (x, w) => { mark(w); return ' '; }));
    for (let changed = true; changed;) {
      changed = false;
      const lead = label.match(LEAD_MARK);
      if (lead) { mark(lead[1]); label = label.slice(lead[0].length); changed = true; }
      const tail = label.match(TAIL_MARK);
      if (tail && tail.index > 0) { mark(tail[1]); label = label.slice(0, tail.index); changed = true; }
      const widget = label.match(GENERIC_TAIL);
      if (widget && widget.index > 0) { label = label.slice(0, widget.index); changed = true; }
      label = norm(label);
    }
    return { label, required, optional, help: norm(help) };
  }

  // Visible text of a node, skipping form controls, scripts and hidden subtrees.
  function textOf(node, limit = 300) {
    let out = '';
    const walk = (n) => {
      if (out.length > limit) return;
      if (n.nodeType === 3) { out += n.nodeValue + ' '; return; }
      if (n.nodeType !== 1) return;
      const tag = n.tagName;
      if (tag === 'SCRIPT' || tag === 'STYLE' || tag === 'SELECT' || tag === 'TEXTAREA' || tag === 'OPTION' || tag === 'TEMPLATE') return;
      if (n !== node && !n.getClientRects().length) return;
      if (labelMode && n !== node) {
        if (n.matches(WIDGET)) return;
        const own = norm(n.textContent);
        if (own.length < 24 && MARK_ONLY.test(own)) { out += ' ' + (OPTIONAL_MARK.test(own) ? MARK_O : MARK_R) + ' '; return; }
      }
      for (const c of n.childNodes) walk(c);
    };
    walk(node);
    return norm(out).slice(0, limit);
  }

  // "Question Question": labels that carry their text twice (aria-hidden + visually hidden).
  function dedupe(t) {
    const w = t.split(' ');
    if (w.length % 2 === 0 && w.length >= 2) {
      const half = w.length / 2;
      if (w.slice(0, half).join(' ') === w.slice(half).join(' ')) return w.slice(0, half).join(' ');
    }
    return t;
  }

  function byId(root, id) {
    try { return root.getElementById ? root.getElementById(id) : root.querySelector('#' + CSS.escape(id)); } catch (e) { return null; }
  }

  function unique(root, sel, el) {
    try { const all = root.querySelectorAll(sel); return all.length === 1 && all[0] === el; } catch (e) { return false; }
  }

  // A selector that matches exactly `el` within `root`: name, automation attributes,
  // label-based ARIA attributes, a non-random id, then a structural path.
  function selectorIn(el, root) {
    const tag = el.tagName.toLowerCase();
    const name = el.getAttribute('name');
    if (name) {
      let s = `${tag}[name="${esc(name)}"]`;
      if (unique(root, s, el)) return s;
      if (el.type === 'radio' || el.type === 'checkbox') {
        s += `[value="${esc(el.value)}"]`;
        if (unique(root, s, el)) return s;
      }
    }
    for (const attr of ['data-automation-id', 'data-qa', 'data-testid', 'data-test-id']) {
      const v = el.getAttribute(attr);
      if (v) { const s = `${tag}[${attr}="${esc(v)}"]`; if (unique(root, s, el)) return s; }
    }
    for (const attr of ['aria-labelledby', 'aria-label']) {
      const v = el.getAttribute(attr);
      if (v) { const s = `${tag}[${attr}="${esc(v)}"]`; if (unique(root, s, el)) return s; }
    }
    if (el.id && !isRandomId(el.id)) { const s = '#' + CSS.escape(el.id); if (unique(root, s, el)) return s; }
    const parts = [];
    let node = el;
    while (node && node.nodeType === 1) {
      if (node !== el && node.id && !isRandomId(node.id) && unique(root, '#' + CSS.escape(node.id), node)) {
        parts.unshift('#' + CSS.escape(node.id));
        break;
      }
      const parent = node.parentElement;
      let part = node.tagName.toLowerCase();
      if (parent) {
        const same = Array.from(parent.children).filter((c) => c.tagName === node.tagName);
        if (same.length > 1) part += `:nth-of-type(${same.indexOf(node) + 1})`;
      }
      parts.unshift(part);
      if (!parent) break;
      node = parent;
    }
    // A full path from a unique ancestor (or the root) names this element alone.
    return parts.join(' > ');
  }

  // Roots: the document, same-origin iframes and open shadow roots, each with the selector
  // prefix that reaches it.
  const roots = [];
  function collectRoots(root, prefix) {
    roots.push({ root, prefix });
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) collectRoots(el.shadowRoot, prefix.concat([selectorIn(el, root)]));
      if (el.tagName === 'IFRAME' || el.tagName === 'FRAME') {
        let doc = null;
        try { doc = el.contentDocument; } catch (e) { doc = null; }
        if (doc && doc.documentElement) collectRoots(doc, prefix.concat([selectorIn(el, root)]));
      }
    }
  }
  collectRoots(document, []);
  const fullSelector = (prefix, sel) => prefix.concat([sel]).join(JOIN);

  function visibility(el) {
    const win = el.ownerDocument.defaultView || window;
    if (!el.getClientRects().length) return 'display_none';
    const cs = win.getComputedStyle(el);
    if (cs.visibility === 'hidden' || cs.visibility === 'collapse') return 'visibility_hidden';
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) return 'zero_size';
    if (cs.clip === 'rect(0px, 0px, 0px, 0px)' || /inset\(50%\)/.test(cs.clipPath || '')) return 'clipped';
    let n = el;
    for (let i = 0; n && i < 4; i++, n = n.parentElement) {
      if (parseFloat(win.getComputedStyle(n).opacity) === 0) return 'transparent';
    }
    const doc = el.ownerDocument.documentElement;
    const sx = win.scrollX, sy = win.scrollY;
    if (r.right + sx <= 0 || r.bottom + sy <= 0 || r.left + sx >= Math.max(doc.scrollWidth, win.innerWidth) + 100) return 'off_screen';
    return 'visible';
  }

  // The question text of a control and whether that text marks it required.
  function questionContainerLabel(el) {
    const lever = el.closest('.application-question, li.application-question');
    if (lever) {
      const t = lever.querySelector('.application-label .text') || lever.querySelector('.application-label');
      if (t) return textOf(t);
    }
    const li = el.closest('[data-test-form-element], .jobs-easy-apply-form-element, .fb-dash-form-element');
    if (li) {
      const t = li.querySelector('label, legend, .fb-dash-form-element__label, [data-test-form-builder-radio-button-form-component__title]');
      if (t) return textOf(t);
    }
    const wd = el.closest('[data-automation-id^="formField"]');
    if (wd) {
      const t = wd.querySelector('label, legend');
      if (t) return textOf(t);
    }
    return '';
  }

  // The title of the labelled group around a control: aria-labelledby, aria-label, legend.
  function labelledGroup(el) {
    const group = el.closest('[role="group"][aria-labelledby], [role="radiogroup"][aria-labelledby]');
    if (group) {
      const root = el.getRootNode();
      const text = group.getAttribute('aria-labelledby').split(/\s+/).map((id) => byId(root, id)).filter(Boolean).map((n) => textOf(n)).join(' ');
      if (norm(text)) return text;
    }
    const labelled = el.closest('[role="group"][aria-label], [role="radiogroup"][aria-label]');
    if (labelled && norm(labelled.getAttribute('aria-label'))) return labelled.getAttribute('aria-label');
    const fs = el.closest('fieldset');
    if (fs) { const lg = fs.querySelector('legend'); if (lg && norm(textOf(lg))) return textOf(lg); }
    return '';
  }

  function groupTitle(el, kind) {
    return labelledGroup(el) || questionContainerLabel(el) || containerLabel(el, kind) || nearbyText(el);
  }

  const FIELD_CONTROLS = 'input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]):not([type=image]), select, textarea, [role="combobox"]:not(input), button[aria-haspopup="listbox"]';

  // The question of the smallest container that holds this control (or this group) and no
  // other: its legend, or a label or heading that names no other control. A description
  // between the question and the control is passed over (Ashby-style fieldsets without a
  // legend, labels whose `for` names no element, a title above a yes/no checkbox).
  function containerLabel(el, kind) {
    const root = el.getRootNode();
    const name = el.getAttribute('name');
    const grouped = kind === 'radio_group' || kind === 'checkbox_group';
    const mine = (c) => c === el || c.contains(el) || el.contains(c) || (grouped && name && c.getAttribute('name') === name);
    let node = el.parentElement;
    for (let depth = 0; node && depth < 6; depth++, node = node.parentElement) {
      if (node.matches('form, body')) break;
      if (Array.from(node.querySelectorAll(FIELD_CONTROLS)).some((c) => !mine(c))) break;
      for (const cand of node.querySelectorAll('legend, label, h1, h2, h3, h4, h5, h6, [role="heading"]')) {
        if (cand.querySelector(FIELD_CONTROLS) || cand.closest(WIDGET)) continue;
        const owner = cand.closest('label');
        const target = owner && owner.htmlFor ? byId(root, owner.htmlFor) : null;
        if (target) continue;
        const t = textOf(cand);
        if (t && stripReq(t) && !GENERIC_LABEL.test(stripReq(t))) return t;
      }
    }
    return '';
  }

  function nearbyText(el) {
    let node = el;
    for (let depth = 0; node && depth < 4; depth++, node = node.parentElement) {
      let sib = node.previousElementSibling;
      for (let i = 0; sib && i < 3; i++, sib = sib.previousElementSibling) {
        if (sib.matches('input, select, textarea, button')) break;
        if (sib.querySelector('input, select, textarea')) break;
        const t = textOf(sib, 200);
        if (t) return t;
      }
    }
    return '';
  }

  // A select or combobox beside a text input in the same question: a dial code, a currency or
  // a pay period ("Phone" + "+41", "Salary" + "CHF" + "per year").
  const DIAL_OPTION = /^\+\d{1,4}\b|\(\+\d{1,4}\)|\s\+\d{1,4}$/;
  const CURRENCY_OPTION = /^([€$£¥₣]|(CHF|EUR|USD|GBP|JPY|CAD|AUD|SEK|NOK|DKK|PLN|CZK|HUF|INR|CNY|SGD|HKD|NZD|ZAR|BRL|MXN|Fr\.)\b)/;
  const PERIOD_OPTION = /^((per|pro|par|a|an|by|the|le|la|l')\s+)?(year|yearly|annual|annually|annum|month|monthly|week|weekly|day|daily|hour|hourly|jahr|jährlich|monat|monatlich|woche|wöchentlich|tag|täglich|stunde|stündlich|an|année|annuel|annuelle|mois|mensuel|mensuelle|semaine|hebdomadaire|jour|journalier|heure|horaire)$/i;
  function companionRole(el) {
    if (el.tagName !== 'SELECT' && el.getAttribute('role') !== 'combobox' && el.tagName !== 'BUTTON') return null;
    const attrs = [el.name, el.id, el.getAttribute('aria-label'), el.className && String(el.className)].join(' ');
    const texts = el.tagName === 'SELECT' ? selectOptions(el).map((o) => o.label) : [textOf(el, 60)].filter(Boolean);
    const most = (re) => texts.length > 0 && texts.filter((t) => re.test(t)).length * 2 >= texts.length;
    if (/dial|country.?code|phone.?code|calling.?code|vorwahl|indicatif|iti__|prefix/i.test(attrs) || el.closest('.iti, [class*="dial" i], [class*="country-code" i]') || most(DIAL_OPTION)) return 'country code';
    if (/currenc|währung|waehrung|devise/i.test(attrs) || most(CURRENCY_OPTION)) return 'currency';
    if (/period|frequency|interval|zeitraum|turnus|période|periodicit/i.test(attrs) || most(PERIOD_OPTION)) return 'period';
    return null;
  }

  // The text input a companion control belongs to: the nearest one in its question.
  function companionPartner(el) {
    let node = el.parentElement;
    for (let depth = 0; node && depth < 4; depth++, node = node.parentElement) {
      if (node.matches('form, body')) break;
      const inputs = Array.from(node.querySelectorAll('input:not([type]), input[type=text], input[type=tel], input[type=number]')).filter((c) => c !== el && !el.contains(c));
      if (inputs.length === 1) return inputs[0];
      if (inputs.length > 1) return null;
    }
    return null;
  }

  // Text of the labels, wrapping label and aria-labelledby elements that name this control
  // itself (not a "Choose file" button label, not a label that wraps a companion's partner).
  function visibleOwnLabel(el) {
    const root = el.getRootNode();
    const cands = [];
    if (el.id) {
      try { cands.push(...root.querySelectorAll(`label[for="${esc(el.id)}"]`)); } catch (e) { /* invalid id */ }
    }
    const wrap = el.closest('label');
    const companion = labelMode && companionRole(el);
    if (wrap && !cands.includes(wrap) && !(companion && companionPartner(el) && wrap.contains(companionPartner(el)))) cands.push(wrap);
    for (const l of cands) {
      if (l.matches(WIDGET)) continue;
      const t = textOf(l);
      if (t && !(labelMode && GENERIC_LABEL.test(stripReq(t)))) return t;
    }
    const lb = el.getAttribute('aria-labelledby');
    if (lb) {
      const refs = lb.split(/\s+/).map((id) => byId(root, id)).filter(Boolean);
      const named = labelMode ? refs.filter((n) => !n.matches(WIDGET) && !GENERIC_LABEL.test(stripReq(textOf(n)))) : refs;
      const t = named.map((n) => textOf(n)).join(' ');
      if (norm(t)) return norm(t);
    }
    return '';
  }

  function ownLabel(el) {
    const t = visibleOwnLabel(el);
    if (t) return t;
    const al = el.getAttribute('aria-label');
    if (al && norm(al)) return norm(al);
    return '';
  }

  // A single checkbox whose own label is only an agreement word takes its question's text.
  const AGREE_LABEL = /^(yes|i agree|agree|i accept|accept|ok|ja|ich stimme zu|zustimmen|einverstanden|ich akzeptiere|akzeptieren|oui|j'accepte|j’accepte|accepter|d'accord|d’accord)[.!]?$/i;
  const weak = (t) => !t || !stripReq(t) || GENERIC_LABEL.test(stripReq(t));

  function labelFor(el, kind, section) {
    return asLabel(() => {
      let text = '';
      if (kind === 'radio_group' || kind === 'checkbox_group') return groupTitle(el, kind);
      const companion = companionRole(el);
      if (companion) {
        const partner = companionPartner(el);
        if (partner) {
          const question = stripReq(labelFor(partner, controlKind(partner), section));
          const own = stripReq(ownLabel(el));
          if (question && (weak(own) || own === question || DIAL_OPTION.test(own) || own === comboDisplay(el))) return `${question} (${companion})`;
        }
      }
      if (kind !== 'checkbox') text = questionContainerLabel(el);
      if (!text) text = kind === 'file' ? visibleOwnLabel(el) : ownLabel(el);
      if (kind === 'checkbox' && AGREE_LABEL.test(stripReq(text))) text = '';
      if (weak(text)) {
        const q = questionContainerLabel(el) || containerLabel(el, kind) || labelledGroup(el) || (kind === 'file' ? nearbyText(el) : groupTitle(el, kind));
        if (q && !weak(q)) text = q;
      }
      if (weak(text) && kind === 'file') text = ownLabel(el) || text;
      if (weak(text)) text = [el.getAttribute('placeholder'), el.getAttribute('title'), text].find((t) => !weak(t)) || text || '';
      if (!text) text = nearbyText(el);
      if (weak(text) && kind === 'file' && section) text = section;
      return text;
    });
  }

  function requiredMarker(el) {
    const c = el.closest('.application-question, [data-test-form-element], [data-automation-id^="formField"], [class*="field-entry"], [class*="fieldEntry"], fieldset, .field');
    if (c && (c.classList.contains('required') || c.querySelector('.required, [class*="required" i], abbr[title="required"]'))) return true;
    // A small labelled group whose title is marked ("Name *" over first and last name).
    const g = el.closest('[role="group"], [role="radiogroup"], fieldset');
    if (g && g.querySelectorAll(FIELD_CONTROLS).length <= 4) {
      const t = asLabel(() => labelledGroup(el));
      if (t && parseLabel(t).required) return true;
    }
    return false;
  }

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

  // Scope: the Easy Apply modal, else the best-scoring form; controls outside it are decoys.
  function visibleControls(container) {
    return Array.from(container.querySelectorAll('input:not([type=hidden]), select, textarea')).filter((c) => visibility(c) === 'visible' || (c.type === 'file'));
  }
  function scoreForm(form) {
    const controls = visibleControls(form);
    let score = controls.length;
    if (form.querySelector('input[type=file]')) score += 5;
    if (form.querySelector('input[type=email], input[name*=email i]')) score += 3;
    const text = textOf(form, 400).toLowerCase();
    if (/submit application|apply/.test(text)) score += 2;
    if (controls.length <= 2 && /newsletter|subscribe|job alert|sign up for|search/.test(text)) score -= 20;
    return score;
  }
  let scope = null;
  for (const { root } of roots) {
    const modal = root.querySelector('.jobs-easy-apply-modal, .jobs-easy-apply-content, [role="dialog"][aria-modal="true"]');
    if (modal && visibility(modal) === 'visible' && visibleControls(modal).length) { scope = modal; break; }
  }
  if (!scope) {
    let best = null, bestScore = 2;
    for (const { root } of roots) for (const f of root.querySelectorAll('form')) {
      const s = scoreForm(f);
      if (s > bestScore) { best = f; bestScore = s; }
    }
    scope = best;
  }
  const inScope = (control) => {
    // A control in a shadow root is where its host is.
    let el = control;
    while (el.getRootNode() instanceof ShadowRoot && el !== scope && !(scope && scope.getRootNode() === el.getRootNode())) el = el.getRootNode().host;
    if (!scope) {
      const form = el.form || el.closest('form');
      return !(form && scoreForm(form) < 0);
    }
    if (scope.tagName === 'FORM' && el.form === scope) return true;
    return scope.contains(el);
  };

  function trapReason(el, kind, vis, label) {
    if (!inScope(el)) return 'outside_form';
    const name = el.getAttribute('name') || el.id || '';
    if (HONEYPOT_NAME.test(name)) return 'honeypot_name';
    if (kind === 'file') return null;
    if (el.closest('[aria-hidden="true"]') && el.getAttribute('role') !== 'combobox' && !((kind === 'radio' || kind === 'checkbox') && labelDriven(el))) return 'aria_hidden';
    if (vis !== 'visible') {
      if ((kind === 'radio' || kind === 'checkbox') && labelDriven(el)) return null;
      if (kind === 'select' && drivers.has(el)) return null;
      return vis;
    }
    if (el.getAttribute('tabindex') === '-1' && kind !== 'radio' && kind !== 'checkbox' && kind !== 'combobox') return 'tabindex_-1';
    return null;
  }

  // Walk every root in document order, tracking section headings.
  const CONTROLS = 'input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]):not([type=image]), select, textarea, [role="combobox"]:not(input), button[aria-haspopup="listbox"], [aria-pressed]';
  const HEADINGS = 'h2, h3, h4, h5, [role="heading"]';
  const fields = [];
  const seenGroups = new Map();
  const usedIds = new Set();
  const probes = [];
  // Hidden selects and the visible widgets that drive them; the widgets' own inputs are not fields.
  const drivers = new Map();
  for (const { root } of roots) for (const sel of root.querySelectorAll('select')) {
    if (visibility(sel) === 'visible') continue;
    const d = selectDriver(sel);
    if (d) drivers.set(sel, d);
  }
  const driverEls = Array.from(drivers.values());
  for (const { root, prefix } of roots) {
    let section = null;
    for (const el of root.querySelectorAll(CONTROLS + ', ' + HEADINGS)) {
      if (el.matches(HEADINGS) && !el.matches(CONTROLS)) {
        // Only headings a person can see name a section (not a hidden "Thank you" block).
        const t = el.getClientRects().length ? textOf(el, 120) : '';
        if (t) section = t;
        continue;
      }
      if (el.tagName === 'INPUT' && el.closest('[role="combobox"]:not(input)')) continue;
      if (el.tagName !== 'SELECT' && driverEls.some((d) => d.contains(el))) continue;
      let kind = controlKind(el);
      if (el.hasAttribute('aria-pressed')) {
        if (el.tagName !== 'BUTTON') continue;
        kind = 'button';
      }
      const vis = visibility(el);
      const name = el.getAttribute('name');
      // Group radios (by name), checkboxes sharing a name, and aria-pressed button pairs.
      let groupKey = null;
      if (kind === 'radio') groupKey = 'r:' + (name || (el.closest('fieldset, [role=radiogroup]') ? selectorIn(el.closest('fieldset, [role=radiogroup]'), root) : selectorIn(el, root)));
      else if (kind === 'checkbox' && name && root.querySelectorAll(`input[type=checkbox][name="${esc(name)}"]`).length > 1) groupKey = 'c:' + name;
      else if (kind === 'button') groupKey = 'b:' + selectorIn(el.parentElement, root);
      const optLabel = (kind === 'button') ? textOf(el) : (kind === 'radio' || kind === 'checkbox') ? (ownLabel(el) || norm(el.value)) : null;
      if (groupKey && seenGroups.has(prefix.join() + groupKey)) {
        const f = seenGroups.get(prefix.join() + groupKey);
        f.options.push({ value: kind === 'button' ? optLabel : el.value, label: optLabel, selector: fullSelector(prefix, selectorIn(el, root)) });
        if (kind === 'checkbox' && el.checked) f.value.push(optLabel);
        if ((kind === 'radio' && el.checked) || (kind === 'button' && el.getAttribute('aria-pressed') === 'true')) f.value = optLabel;
        if (el.required || el.getAttribute('aria-required') === 'true') f.required = true;
        if (f.trap && !trapReason(el, kind, vis, optLabel)) { f.trap = false; f.trap_reason = null; }
        continue;
      }
      const fieldKind = kind === 'radio' || kind === 'button' ? 'radio_group' : kind === 'checkbox' && groupKey ? 'checkbox_group' : kind;
      const parsed = parseLabel(dedupe(norm(labelFor(el, fieldKind, section))));
      const label = parsed.label;
      const reason = trapReason(el, kind, vis, label);
      const sel = selectorIn(el, root);
      let value = null;
      let options = [];
      let widget = 'native';
      if (fieldKind === 'radio_group') {
        options = [{ value: kind === 'button' ? optLabel : el.value, label: optLabel, selector: fullSelector(prefix, sel) }];
        value = (el.checked || el.getAttribute('aria-pressed') === 'true') ? optLabel : null;
        if (kind === 'button') widget = 'button_group';
      } else if (fieldKind === 'checkbox_group') {
        options = [{ value: el.value, label: optLabel, selector: fullSelector(prefix, sel) }];
        value = el.checked ? [optLabel] : [];
      } else if (fieldKind === 'checkbox') {
        value = el.checked;
      } else if (fieldKind === 'select') {
        options = selectOptions(el);
        const o = el.selectedOptions && el.selectedOptions[0];
        value = o && el.value !== '' && !OPTION_PLACEHOLDER.test(norm(o.text)) ? norm(o.text) : null;
      } else if (fieldKind === 'combobox') {
        widget = el.classList.contains('select__input') || el.closest('[class*="select__control"]') ? 'react_select' : el.tagName === 'BUTTON' ? 'listbox_button' : 'aria_combobox';
        value = comboDisplay(el);
      } else if (fieldKind === 'file') {
        value = el.files && el.files.length ? el.files[0].name : null;
      } else {
        value = el.value === '' ? null : el.value;
        if (el.getAttribute('aria-autocomplete') === 'list' || el.closest('.location-input, [data-qa="location-input"]') || el.classList.contains('location-input')) widget = 'typeahead';
      }
      let fieldId = (el.id && !isRandomId(el.id) && el.id) || name || el.getAttribute('data-automation-id') || el.getAttribute('data-qa') || sel;
      if (fieldKind === 'radio_group' && kind === 'radio' && name) fieldId = name;
      if (prefix.length) fieldId = prefix.join(JOIN) + JOIN + fieldId;
      let unique_id = fieldId;
      for (let n = 2; usedIds.has(unique_id); n++) unique_id = `${fieldId}~${n}`;
      usedIds.add(unique_id);
      const field = {
        field_id: unique_id,
        selector: fullSelector(prefix, sel),
        html_id: el.id || null,
        name: name || null,
        label,
        kind: fieldKind,
        required: !!(el.required || el.getAttribute('aria-required') === 'true' || parsed.required || (!parsed.optional && requiredMarker(el))),
        options,
        value,
        section,
        trap: !!reason,
        trap_reason: reason,
        visible: vis === 'visible' || drivers.has(el),
        widget: drivers.has(el) ? 'styled_select' : widget,
        autocomplete: el.getAttribute('autocomplete') || null,
        input_type: el.getAttribute('type') || null,
        placeholder: el.getAttribute('placeholder') || null,
        own_label: fieldKind === 'checkbox' ? stripReq(asLabel(() => ownLabel(el))) : null,
        accept: el.getAttribute('accept') || null,
        max_length: el.maxLength > 0 ? el.maxLength : null,
        driver: drivers.has(el) ? fullSelector(prefix, selectorIn(drivers.get(el), root)) : null,
        file_role: fieldKind === 'file' ? fileRole(label, section, el.getAttribute('accept')) : null,
      };
      Object.defineProperty(field, '__el', { value: el, enumerable: false, configurable: true });
      if (fieldKind === 'combobox' && !reason) probes.push([field, el]);
      if (groupKey) seenGroups.set(prefix.join() + groupKey, field);
      fields.push(field);
    }
  }
  for (const [field, el] of probes) field.options = await probeOptions(el);

  // A phone box and the dial-code picker beside it: the number's field names its picker.
  for (const f of fields) {
    if (f.trap || !f.__el || companionRole(f.__el) !== 'country code') continue;
    const partner = companionPartner(f.__el);
    const number = partner && fields.find((n) => n.__el === partner && !n.trap);
    if (number) number.dial_picker = f.selector;
  }

  // Dates asked in parts: day, month and year as selects or boxes alone in one container
  // become one `date` field (the first part's selector; every part in `date_parts`).
  const PART_TOKENS = {
    day: ['day', 'dd', 'd', 'tag', 'tt', 'jour', 'jj'],
    month: ['month', 'mm', 'm', 'monat', 'mois'],
    year: ['year', 'yyyy', 'yy', 'y', 'jahr', 'jjjj', 'annee', 'année', 'aaaa'],
  };
  const MONTH_NAME = /^(jan|feb|fév|fev|mar|mär|apr|avr|may|mai|jun|juin|jul|juil|aug|aoû|aou|sep|oct|okt|nov|dec|déc|dez)/i;
  function datePart(f) {
    const el = f.__el;
    if (f.kind === 'select') {
      const labels = f.options.map((o) => o.label);
      const nums = labels.map((l) => (/^\d{1,4}$/.test(l) ? +l : null));
      if (!labels.length || nums.some((n) => n === null)) {
        return labels.length === 12 && labels.every((l) => MONTH_NAME.test(l)) ? 'month' : null;
      }
      if (nums.every((n) => n >= 1000)) return 'year';
      if (labels.length >= 28 && labels.length <= 31 && Math.max(...nums) === labels.length) return 'day';
      if (labels.length === 12 && Math.max(...nums) === 12) return 'month';
      return null;
    }
    if (f.kind !== 'text' && f.kind !== 'number' && f.kind !== 'tel') return null;
    const words = [el.getAttribute('placeholder'), el.getAttribute('aria-label'), el.name, el.id, el.getAttribute('autocomplete')]
      .filter(Boolean).join(' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-zà-ÿ]+/);
    const auto = (el.getAttribute('autocomplete') || '').match(/bday-(day|month|year)/);
    if (auto) return auto[1];
    const hits = Object.keys(PART_TOKENS).filter((p) => PART_TOKENS[p].some((t) => words.includes(t)));
    return hits.length === 1 ? hits[0] : null;
  }
  const PART_ONLY = /^(day|month|year|tag|monat|jahr|jour|mois|ann[ée]e|dd|mm|yyyy|tt|jjjj|jj|aaaa)$/i;
  function partsQuestion(first, box) {
    const own = asLabel(() => labelledGroup(first) || visibleOwnLabel(first));
    if (own && !PART_ONLY.test(stripReq(own))) return own;
    let node = box;
    for (let depth = 0; node && depth < 3; depth++, node = node.parentElement) {
      if (node.matches('form, body')) break;
      for (const cand of node.querySelectorAll('legend, label, h3, h4, h5, h6, [role="heading"], span, p')) {
        if (cand.querySelector(FIELD_CONTROLS) || box.contains(cand) && cand.closest('label') && cand.closest('label').htmlFor && cand.closest('label').htmlFor !== first.id) continue;
        const t = asLabel(() => textOf(cand));
        if (t && stripReq(t) && !PART_ONLY.test(stripReq(t))) return t;
      }
    }
    return own;
  }
  const merged = new Set();
  for (const f of fields) {
    if (f.trap || !f.__el || merged.has(f) || !datePart(f)) continue;
    let box = f.__el.parentElement;
    for (let depth = 0; box && depth < 3; depth++, box = box.parentElement) {
      if (box.matches('form, body')) { box = null; break; }
      const controls = Array.from(box.querySelectorAll(FIELD_CONTROLS));
      if (controls.length > 3) { box = null; break; }
      if (controls.length === 3) break;
    }
    if (!box) continue;
    const members = Array.from(box.querySelectorAll(FIELD_CONTROLS)).map((c) => fields.find((x) => x.__el === c));
    if (members.some((m) => !m || m.trap)) continue;
    const parts = members.map(datePart);
    if (new Set(parts).size !== 3 || parts.includes(null)) continue;
    const first = members[0];
    const parsed = parseLabel(dedupe(norm(partsQuestion(first.__el, box))));
    first.label = parsed.label || first.label;
    first.required = members.some((m) => m.required) || parsed.required;
    first.date_parts = members.map((m, i) => ({ part: parts[i], selector: m.selector, options: m.kind === 'select' ? m.options : [], placeholder: m.__el.getAttribute('placeholder') || null }));
    first.kind = 'date';
    first.widget = 'date_parts';
    first.value = null;
    first.options = [];
    for (const m of members.slice(1)) merged.add(m);
  }
  if (merged.size) for (let i = fields.length - 1; i >= 0; i--) if (merged.has(fields[i])) fields.splice(i, 1);

  // Primary actions.
  const CLICKABLE = 'button, input[type=submit], input[type=button], a[href], a[role=button], [role=button]';
  const actionRules = {
    submit: (t, el) => /^(submit( your)? application|submit|send application|send|finish|complete application)$/i.test(t) || el.matches('#submit_app, [data-qa=btn-submit], #btn-submit, [aria-label="Submit application"], [data-automation-id=bottom-navigation-submit-button]'),
    review: (t, el) => /^review( your application)?$/i.test(t) || el.matches('[aria-label="Review your application"]'),
    next: (t, el) => /^(next( step)?|continue|save and continue|save & continue|next page)$/i.test(t) || el.matches('[aria-label="Continue to next step"], [data-automation-id=bottom-navigation-next-button], [data-automation-id=pageFooterNextButton]'),
    apply: (t, el) => /^(easy apply|apply|apply now|apply for this (job|position|role)|apply manually|i'?m interested|start application)$/i.test(t) || el.matches('[data-automation-id=adventureButton], [data-automation-id=applyManually], .jobs-apply-button, a[href*="/apply"]:not([href*="apply_with"])'),
  };
  // Controls in an open dialog come first: a dialog over a page is what a person acts on.
  const DIALOG = '[role="dialog"], [aria-modal="true"], .artdeco-modal';
  const clickables = [];
  for (const { root, prefix } of roots) {
    for (const el of root.querySelectorAll(CLICKABLE)) {
      if (visibility(el) !== 'visible' || el.disabled || el.getAttribute('aria-disabled') === 'true') continue;
      clickables.push({ el, root, prefix, inDialog: !!el.closest(DIALOG) });
    }
  }
  clickables.sort((a, b) => (b.inDialog ? 1 : 0) - (a.inDialog ? 1 : 0));
  const actions = {};
  for (const { el, root, prefix } of clickables) {
    const own = textOf(el);
    const t = norm(el.getAttribute('aria-label') && !own ? el.getAttribute('aria-label') : (own || el.value || ''));
    for (const [kind, rule] of Object.entries(actionRules)) {
      if (actions[kind]) continue;
      if (kind !== 'apply' && scope && !scope.contains(el) && !(el.form && el.form === scope)) continue;
      if (rule(t, el)) { actions[kind] = { selector: fullSelector(prefix, selectorIn(el, root)), text: t }; break; }
    }
  }

  // Visible error messages: per field (aria-invalid, inline feedback in its question) and for the form.
  const ERROR = '.artdeco-inline-feedback--error, [data-automation-id="errorMessage"], [role="alert"], .error, .field-error, .error-message, .invalid-feedback, [class*="error-text"], [id$="-error"], [id$="_error"]';
  const QUESTION = '.application-question, [data-test-form-element], [data-automation-id^="formField"], [class*="field-entry"], [class*="fieldEntry"], .field, fieldset, .form-group, p, li';
  const errorTexts = new Set();
  for (const f of fields) {
    const el = f.__el;
    if (!el || f.trap) continue;
    const box = el.closest(QUESTION);
    let message = null;
    const described = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean).map((id) => byId(el.getRootNode(), id)).filter((n) => n && n.matches(ERROR) && visibility(n) === 'visible');
    const inline = box ? Array.from(box.querySelectorAll(ERROR)).filter((n) => visibility(n) === 'visible' && textOf(n)) : [];
    const source = described[0] || inline[0];
    if (source) { message = textOf(source, 200); errorTexts.add(message); }
    if (!message && el.getAttribute('aria-invalid') === 'true') message = 'marked invalid';
    if (message) f.error = message;
  }
  const formErrors = [];
  for (const { root } of roots) {
    for (const n of root.querySelectorAll(ERROR + ', [data-automation-id="errorBanner"], .error-summary, #error_explanation')) {
      if (scope && !scope.contains(n)) continue;
      const t = textOf(n, 200);
      if (t && visibility(n) === 'visible' && !errorTexts.has(t) && !formErrors.includes(t)) formErrors.push(t);
    }
  }
  for (const f of fields) delete f.__el;

  // Confirmation wording on visible headings first, then any visible text block.
  const CONFIRM = /thank you for applying|thanks for applying|application (has been )?(submitted|received|sent)|we('|’)ve received your application|we have received your application|your application (was|has been) (sent|submitted|received)/i;
  let confirmation = null;
  for (const sel of ['h1, h2, h3, h4, [role="heading"]', 'p, div, span']) {
    for (const n of document.querySelectorAll(sel)) {
      const t = textOf(n, 300);
      if (t && t.length < 200 && CONFIRM.test(t) && visibility(n) === 'visible') { confirmation = t; break; }
    }
    if (confirmation) break;
  }

  // Platform and page-kind signals.
  const count = (sel) => roots.reduce((n, { root }) => { try { return n + root.querySelectorAll(sel).length; } catch (e) { return n; } }, 0);
  const bodyText = norm((document.body || document.documentElement).innerText).slice(0, 4000);
  const stepMatch = bodyText.match(/step (\d+) (?:of|\/) (\d+)/i);
  let step = stepMatch ? { index: +stepMatch[1], total: +stepMatch[2] } : null;
  const bar = document.querySelector('[data-automation-id="progressBar"]');
  if (bar) {
    const items = Array.from(bar.querySelectorAll('li'));
    const active = items.findIndex((li) => li.matches('[data-automation-id="progressBarActiveStep"]') || li.querySelector('[data-automation-id="progressBarActiveStep"]'));
    if (items.length && active >= 0) step = { index: active + 1, total: items.length };
  }
  const idMatch = bodyText.match(/(?:application|confirmation|reference|submission)\s*(?:id|number|no\.?|#|code)\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{3,})/i);
  const signals = {
    greenhouse_legacy: count('form#application_form, input[name^="job_application["], #submit_app, #resume_fieldset'),
    greenhouse: count('.select__input, label[id$="-label"][for], #grnhse_app, [class*="greenhouse"], meta[content*="greenhouse" i], script[src*="greenhouse"]') + (/powered by greenhouse/i.test(bodyText) ? 5 : 0),
    lever: count('form#application-form, li.application-question, .application-label, [data-qa=btn-submit], input[name*="baseTemplate"]') + (/powered by lever/i.test(bodyText) ? 5 : 0),
    ashby: count('[name^="_systemfield_"], [id^="_systemfield_"], [class*="ashby"]') + (/powered by ashby/i.test(bodyText) ? 5 : 0),
    workday: count('[data-automation-id]') + count('[data-uxi-widget-type]'),
    linkedin: count('.jobs-easy-apply-modal, .jobs-easy-apply-content, [data-test-form-element], .artdeco-button, .jobs-apply-button'),
    password_fields: count('input[type=password]'),
  };
  return {
    url: location.href,
    title: document.title,
    fields: fields.filter((f) => !(f.widget === 'button_group' && f.options.length < 2)),
    actions,
    signals,
    scope: scope ? (scope.tagName === 'FORM' ? 'form' : 'modal') : null,
    body_sample: bodyText.slice(0, 2000),
    step,
    heading: (() => {
      const first = fields.find((f) => !f.trap && (f.visible || f.kind === 'file') && f.section);
      if (first) return first.section;
      const h = (scope && scope.querySelector('h1, h2, h3')) || document.querySelector('h1, h2');
      return h ? textOf(h, 120) : null;
    })(),
    form_errors: formErrors,
    confirmation: confirmation ? { message: confirmation, confirmation_id: idMatch ? idMatch[1] : null } : null,
  };
})()
