// Part of the page scanner (see scan.rs: the parts are one async function, in this order).
// The question of each control: its container, group, own label, companions (dial code,
// currency, period) and required markers.
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
