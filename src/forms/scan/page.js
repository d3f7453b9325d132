// Part of the page scanner (see scan.rs: the parts are one async function, in this order).
// Constants, label markup (required/optional markers in EN/DE/FR), visible text, stable
// selectors, the roots (frames, shadow roots) and visibility.
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
