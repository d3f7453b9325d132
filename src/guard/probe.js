// Block-detection probe: one Runtime.evaluate, returns the page's signals by value.
(() => {
  const docTop = (r) => r.top + window.scrollY;
  const docLeft = (r) => r.left + window.scrollX;
  // Visible to a person: laid out, at least 30x30, not parked off-page, not hidden by CSS.
  const visible = (el) => {
    if (!el || !el.isConnected) return false;
    const r = el.getBoundingClientRect();
    if (r.width < 30 || r.height < 30) return false;
    if (docTop(r) + r.height <= 0 || docLeft(r) + r.width <= 0) return false;
    if (el.checkVisibility && !el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.visibility === 'hidden' || style.display === 'none' || Number(style.opacity) === 0) return false;
    }
    return true;
  };
  const kinds = [
    ['recaptcha', /\/recaptcha\/(api2|enterprise)\/|google\.com\/recaptcha|recaptcha\.net/i, /recaptcha/i,
      '.g-recaptcha:not([data-size="invisible"])'],
    ['hcaptcha', /hcaptcha\.com/i, /hcaptcha/i, '.h-captcha:not([data-size="invisible"])'],
    ['turnstile', /challenges\.cloudflare\.com/i, /turnstile|cloudflare security challenge/i, '.cf-turnstile'],
    ['arkose', /arkoselabs\.com|funcaptcha\.com/i, /arkose|funcaptcha/i, '#FunCaptcha, #arkose, #arkoseFrame, [data-arkose]'],
    ['geetest', /geetest\.com/i, /geetest/i,
      '.geetest_panel_box, .geetest_holder, .geetest_widget, .geetest_box, .geetest_captcha, .geetest_radar'],
  ];
  // The invisible reCAPTCHA badge and its hidden response fields are not a CAPTCHA to solve.
  const invisibleRecaptcha = (el) =>
    !!el.closest('.grecaptcha-badge') || /[?&]size=invisible/.test(el.getAttribute('src') || '');
  const widgets = [];
  const frames = Array.from(document.querySelectorAll('iframe'));
  for (const [kind, src, title, containers] of kinds) {
    const framed = frames.some((f) => {
      const s = f.getAttribute('src') || '';
      const t = f.getAttribute('title') || '';
      if (!(src.test(s) || title.test(t))) return false;
      if (kind === 'recaptcha' && invisibleRecaptcha(f)) return false;
      return visible(f);
    });
    const boxed = Array.from(document.querySelectorAll(containers)).some(
      (c) => !(kind === 'recaptcha' && c.closest('.grecaptcha-badge')) && visible(c));
    if (framed || boxed) widgets.push(kind);
  }
  const markers = [];
  if (typeof window._cf_chl_opt !== 'undefined') markers.push('cf_chl_opt');
  const cf = document.querySelector(
    'form[action*="__cf_chl"], #cf-challenge-running, .cf-browser-verification, #cf-please-wait, ' +
    '#challenge-running, script[src*="/cdn-cgi/challenge-platform/h/"]');
  if (cf) markers.push(cf.id ? '#' + cf.id : cf.tagName.toLowerCase() + ' marker');
  // A sign-in or join form standing where the posting or application should be: a visible
  // password box with at most a few other boxes and no upload.
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && (!el.checkVisibility || el.checkVisibility({ checkVisibilityCSS: true }));
  };
  const passwords = Array.from(document.querySelectorAll('input[type=password]')).filter(shown).length;
  const boxes = Array.from(document.querySelectorAll('input, select, textarea')).filter((el) =>
    !/^(hidden|password|submit|button|reset|image|checkbox|radio|file)$/i.test(el.type || '') && shown(el)).length;
  const uploads = document.querySelectorAll('input[type=file]').length;
  const body = document.body;
  return {
    login_form: passwords ? { passwords, boxes, uploads } : null,
    final_url: location.href,
    title: document.title || '',
    text: body ? (body.innerText || '').slice(0, 4000) : '',
    elements: body ? body.getElementsByTagName('*').length : 0,
    widgets,
    markers,
  };
})()
