// Part of the page scanner (see scan.rs: the parts are one async function, in this order).
// The walk: the form in scope, traps, every field in document order with its section, the
// phone pickers, the primary actions, step, errors and confirmation, and the answer.
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
