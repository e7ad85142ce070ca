// Ladle's pages: the cart, checkout, the order status page and the staff
// board. Plain JavaScript, no build step. Each page marks what it needs with
// data- attributes; this file wires up whatever it finds.
//
// State kept in the browser:
//   localStorage   ladle.cart.<slug>            the cart: [{item_id, quantity, modifier_ids}]
//   sessionStorage ladle.checkout-key.<slug>    the Idempotency-Key of the current checkout attempt
//   sessionStorage ladle.checkout-draft.<slug>  what the guest typed at checkout
//   localStorage   ladle.last-order.<slug>      the status link of the last order placed here
//                                               (the duplicate dialog offers it: the server never
//                                               names the similar order, which may be someone else's)
// The key lives in sessionStorage so a reload of the checkout page (or a
// second submit after one) continues the same attempt instead of starting a
// new order; the status page forgets it once the order is placed.
(function () {
  'use strict';

  var cartKey = function (slug) { return 'ladle.cart.' + slug; };
  var attemptKey = function (slug) { return 'ladle.checkout-key.' + slug; };
  var draftKey = function (slug) { return 'ladle.checkout-draft.' + slug; };
  var lastOrderKey = function (slug) { return 'ladle.last-order.' + slug; };

  // Storage that still works (in memory) when the browser refuses it.
  function storage(name) {
    try {
      var s = window[name];
      s.setItem('ladle.probe', '1');
      s.removeItem('ladle.probe');
      return s;
    } catch (e) {
      var m = {};
      return {
        getItem: function (k) { return Object.prototype.hasOwnProperty.call(m, k) ? m[k] : null; },
        setItem: function (k, v) { m[k] = String(v); },
        removeItem: function (k) { delete m[k]; }
      };
    }
  }
  var local = storage('localStorage');
  var session = storage('sessionStorage');

  function readJSON(store, key, fallback) {
    try {
      var v = store.getItem(key);
      return v ? JSON.parse(v) : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function menuData() {
    var el = document.getElementById('menu-data');
    return el ? JSON.parse(el.textContent) : null;
  }

  // formatMoney writes minor units the way the server does (web/money.go).
  function formatMoney(amount, cur) {
    var neg = amount < 0;
    var v = Math.abs(Math.round(amount));
    var div = Math.pow(10, cur.digits);
    var whole = String(Math.floor(v / div)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    var s = cur.symbol + whole;
    if (cur.digits > 0) s += '.' + String(v % div).padStart(cur.digits, '0');
    return (neg ? '-' : '') + s;
  }

  // parseMoney reads "2", "2.5", "$2.50" into minor units; NaN if invalid.
  function parseMoney(text, cur) {
    var s = String(text).trim().replace(cur.symbol.trim(), '').replace(/,/g, '').trim();
    if (s === '') return 0;
    var re = cur.digits > 0 ? new RegExp('^\\d{0,12}(\\.\\d{0,' + cur.digits + '})?$') : /^\d{0,12}$/;
    if (!re.test(s) || s === '.') return NaN;
    var parts = s.split('.');
    var frac = (parts[1] || '').padEnd(cur.digits, '0');
    return Number(parts[0] || '0') * Math.pow(10, cur.digits) + Number(frac || '0');
  }

  function newAttemptKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return x.toString(16).padStart(2, '0'); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // ---- cart ----------------------------------------------------------------

  function loadCart(slug) {
    var c = readJSON(local, cartKey(slug), []);
    if (!Array.isArray(c)) return [];
    return c.filter(function (l) {
      return l && Number.isInteger(l.item_id) && Number.isInteger(l.quantity) && l.quantity >= 1 && Array.isArray(l.modifier_ids);
    });
  }

  function saveCart(slug, cart) {
    if (cart.length) local.setItem(cartKey(slug), JSON.stringify(cart));
    else local.removeItem(cartKey(slug));
  }

  // resolve prices a cart line from the menu on the page; null when the
  // item or one of its modifiers is no longer on the menu.
  function resolve(menu, line) {
    var item = menu.items[String(line.item_id)];
    if (!item) return null;
    var unit = item.price, mods = [], found = 0;
    item.groups.forEach(function (g) {
      g.modifiers.forEach(function (m) {
        if (line.modifier_ids.indexOf(m.id) >= 0) {
          unit += m.price;
          mods.push(m.name);
          found++;
        }
      });
    });
    if (found !== line.modifier_ids.length) return null;
    return { name: item.name, mods: mods, unit: unit, total: unit * line.quantity, available: item.available };
  }

  function sameLine(a, b) {
    return a.item_id === b.item_id && a.modifier_ids.join(',') === b.modifier_ids.join(',');
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // renderCart fills a cart box (the menu's aside or checkout's summary) and
  // returns the subtotal. editable adds quantity buttons.
  function renderCart(box, menu, cart, editable, onChange) {
    var list = box.querySelector('[data-cart-lines]');
    var empty = box.querySelector('[data-cart-empty]');
    var totals = box.querySelector('[data-cart-totals]');
    list.textContent = '';
    var subtotal = 0;
    cart.forEach(function (line, i) {
      var r = resolve(menu, line);
      if (!r) return;
      // A sold-out item stays in the cart, flagged, out of the subtotal
      // (checkout takes it out).
      if (r.available) subtotal += r.total;
      var li = el('li', r.available ? 'cart-line' : 'cart-line sold-out');
      li.appendChild(el('span', 'qty', line.quantity + '×'));
      var main = el('span', 'line-main');
      main.appendChild(el('span', 'line-name', r.name));
      if (r.mods.length) main.appendChild(el('span', 'mods', r.mods.join(', ')));
      if (!r.available) main.appendChild(el('span', 'badge sold-out-flag', 'Sold out: not counted'));
      li.appendChild(main);
      li.appendChild(el('span', 'amount', r.available ? formatMoney(r.total, menu.currency) : '—'));
      if (editable) {
        var ctl = el('span', 'line-controls');
        var minus = el('button', 'chip', '−');
        minus.type = 'button';
        minus.setAttribute('aria-label', 'One less ' + r.name);
        minus.addEventListener('click', function () { onChange(i, line.quantity - 1); });
        var plus = el('button', 'chip', '+');
        plus.type = 'button';
        plus.setAttribute('aria-label', 'One more ' + r.name);
        plus.disabled = line.quantity >= 99;
        plus.addEventListener('click', function () { onChange(i, line.quantity + 1); });
        var rm = el('button', 'chip link', 'Remove');
        rm.type = 'button';
        rm.setAttribute('aria-label', 'Remove ' + r.name);
        rm.addEventListener('click', function () { onChange(i, 0); });
        ctl.appendChild(minus);
        ctl.appendChild(plus);
        ctl.appendChild(rm);
        li.appendChild(ctl);
      }
      list.appendChild(li);
    });
    var has = list.children.length > 0;
    if (empty) empty.hidden = has;
    if (totals) totals.hidden = !has;
    box.querySelectorAll('[data-cart-subtotal]').forEach(function (e) { e.textContent = formatMoney(subtotal, menu.currency); });
    return subtotal;
  }

  function cartCount(cart) {
    return cart.reduce(function (n, l) { return n + l.quantity; }, 0);
  }

  // ---- open / closed ---------------------------------------------------------

  // showOpenStatus fills the storefront's open/closed line from the
  // pickup-slots API (the page itself is cached by menu version, so it
  // cannot say what time it is).
  function showOpenStatus(slug) {
    var box = document.querySelector('[data-open-status]');
    if (!box || !window.fetch) return;
    fetch('/api/v1/restaurants/' + encodeURIComponent(slug) + '/pickup-slots').then(function (res) {
      return res.ok ? res.json() : null;
    }).then(function (d) {
      if (!d) return;
      if (d.now.open) {
        box.textContent = 'Open now · taking orders';
        box.className = 'open-status open';
      } else {
        var msg = d.now.reason === 'paused' ? 'Online ordering is paused' : 'Closed now';
        if (d.now.next_open) {
          var when = new Date(d.now.next_open).toLocaleString('en-US', { timeZone: d.time_zone, weekday: 'short', hour: 'numeric', minute: '2-digit' });
          msg += ' · opens ' + when + '. You can order ahead for later.';
        }
        box.textContent = msg;
        box.className = 'open-status closed';
      }
      box.hidden = false;
    }).catch(function () {});
  }

  // ---- menu page -------------------------------------------------------------

  function initMenu(root) {
    var slug = root.dataset.slug;
    showOpenStatus(slug);
    var menu = menuData();
    var box = document.querySelector('[data-cart]');
    var bar = document.querySelector('[data-cart-bar]');
    var checkout = box.querySelector('[data-checkout-link]');

    function refresh() {
      var cart = loadCart(slug).filter(function (l) { return resolve(menu, l); });
      var subtotal = renderCart(box, menu, cart, true, function (i, qty) {
        var c = loadCart(slug).filter(function (l) { return resolve(menu, l); });
        if (qty <= 0) c.splice(i, 1);
        else c[i].quantity = Math.min(qty, 99);
        saveCart(slug, c);
        refresh();
      });
      var n = cartCount(cart);
      document.querySelectorAll('[data-cart-count]').forEach(function (e) { e.textContent = String(n); });
      document.querySelectorAll('[data-cart-items]').forEach(function (e) { e.textContent = n + (n === 1 ? ' item' : ' items'); });
      document.querySelectorAll('[data-cart-subtotal]').forEach(function (e) { e.textContent = formatMoney(subtotal, menu.currency); });
      if (bar) bar.hidden = n === 0;
      checkout.setAttribute('aria-disabled', n === 0 ? 'true' : 'false');
    }

    checkout.addEventListener('click', function (ev) {
      if (checkout.getAttribute('aria-disabled') === 'true') ev.preventDefault();
    });

    document.querySelectorAll('form.add-form').forEach(function (form) {
      var error = form.querySelector('.form-error');
      // Checkbox groups with a maximum: once it is reached, the other boxes
      // are disabled, so the rule is visible before "Add" is pressed.
      form.querySelectorAll('fieldset.group').forEach(function (fs) {
        var max = Number(fs.dataset.max);
        var boxes = fs.querySelectorAll('input[type=checkbox]');
        if (!boxes.length || max <= 0) return;
        fs.addEventListener('change', function () {
          var n = fs.querySelectorAll('input[type=checkbox]:checked').length;
          boxes.forEach(function (b) { b.disabled = !b.checked && n >= max; });
        });
      });
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var ids = [], problem = '';
        form.querySelectorAll('fieldset.group').forEach(function (fs) {
          var chosen = Array.prototype.map.call(fs.querySelectorAll('input:checked'), function (i) { return i.value; })
            .filter(function (v) { return v !== ''; }).map(Number);
          var min = Number(fs.dataset.min), max = Number(fs.dataset.max);
          if (chosen.length < min) problem = problem || ('Choose ' + (min === max ? '' : 'at least ') + min + ' from ' + fs.dataset.name + '.');
          if (max > 0 && chosen.length > max) problem = problem || ('Choose at most ' + max + ' from ' + fs.dataset.name + '.');
          ids = ids.concat(chosen);
        });
        var qty = parseInt(form.elements.quantity.value, 10);
        if (!(qty >= 1 && qty <= 99)) problem = problem || 'Quantity must be between 1 and 99.';
        error.hidden = !problem;
        error.textContent = problem;
        if (problem) return;
        ids.sort(function (a, b) { return a - b; });
        var line = { item_id: Number(form.dataset.itemId), quantity: qty, modifier_ids: ids };
        var cart = loadCart(slug);
        var same = cart.filter(function (l) { return sameLine(l, line); })[0];
        if (same) same.quantity = Math.min(99, same.quantity + qty);
        else cart.push(line);
        saveCart(slug, cart);
        form.elements.quantity.value = '1';
        var btn = form.querySelector('button[type=submit]');
        var label = btn.innerHTML;
        btn.textContent = 'Added ✓';
        btn.classList.add('added');
        setTimeout(function () { btn.innerHTML = label; btn.classList.remove('added'); }, 1200);
        refresh();
        var r = resolve(menu, line);
        announce(qty + ' × ' + (r ? r.name : 'item') + ' added. ' + cartCount(loadCart(slug)) + ' in your order.');
        if (dialog) dialog.done(form);
      });
    });

    var dialog = initItemDialog();
    initMenuTools();
    initCategoryNav();

    window.addEventListener('storage', function (ev) {
      if (ev.key === cartKey(slug)) refresh();
    });
    refresh();
  }

  // announce says something to screen readers through the page's status
  // region (the cart's changes, the filter's result).
  function announce(text) {
    var st = document.querySelector('[data-cart-status]');
    if (!st) return;
    st.textContent = '';
    setTimeout(function () { st.textContent = text; }, 50);
  }

  // initItemDialog: an item with options shows a "Choose" button; its
  // options form opens in one modal <dialog> (the browser traps focus in
  // it and closes it on Escape). The form itself moves into the dialog and
  // back, so its handlers and what was chosen stay. Without JS, or
  // without <dialog>, the forms stay inline under each item.
  function initItemDialog() {
    var dialog = document.querySelector('[data-item-dialog]');
    if (!dialog || typeof dialog.showModal !== 'function') return null;
    var body = dialog.querySelector('[data-dialog-body]');
    var media = dialog.querySelector('[data-dialog-media]');
    var title = dialog.querySelector('[data-dialog-title]');
    var desc = dialog.querySelector('[data-dialog-desc]');
    var current = null; // {form, placeholder, opener}

    document.querySelectorAll('[data-open-item]').forEach(function (btn) {
      var item = btn.closest('[data-item]');
      var form = item.querySelector('form.add-form');
      if (!form) return;
      form.hidden = true;
      btn.hidden = false;
      btn.addEventListener('click', function () { open(btn, item, form); });
    });

    function open(btn, item, form) {
      if (current) {
        if (dialog.open) return;
        // Closed, and its close event not yet run (it comes a task
        // later, and the browser already gave the focus back to the
        // opener, where an Enter may open the dialog again at once):
        // put the last form back first, or that Enter would be lost.
        restore();
      }
      var placeholder = document.createComment('options form');
      form.parentNode.insertBefore(placeholder, form);
      current = { form: form, placeholder: placeholder, opener: btn };
      title.textContent = item.querySelector('.item-name').textContent;
      var d = item.querySelector('.desc');
      desc.textContent = d ? d.textContent : '';
      desc.hidden = !d;
      media.textContent = '';
      var img = item.querySelector('.item-img');
      if (img) {
        var copy = img.cloneNode();
        copy.removeAttribute('loading');
        media.appendChild(copy);
      }
      media.hidden = !img;
      var price = item.querySelector('.price');
      if (price) title.appendChild(el('span', 'price', price.textContent));
      form.hidden = false;
      var err = form.querySelector('.form-error');
      if (err) err.hidden = true;
      body.appendChild(form);
      dialog.showModal();
      dialog.scrollTop = 0;
      var first = form.querySelector('input:checked, input:not([type=hidden])');
      if (first) first.focus();
    }

    // restore puts the open form back in its place under its item and
    // the focus on the button that opened it.
    function restore() {
      if (!current) return;
      var c = current;
      current = null;
      c.form.hidden = true;
      c.placeholder.parentNode.replaceChild(c.form, c.placeholder);
      c.opener.focus();
    }
    dialog.addEventListener('close', function () {
      // A close event that comes after the dialog was opened again (see
      // open) is not this dialog's any more.
      if (!dialog.open) restore();
    });
    dialog.querySelector('[data-dialog-close]').addEventListener('click', function () { dialog.close(); });
    // A click on the backdrop (outside the dialog's box) closes it.
    dialog.addEventListener('click', function (ev) {
      if (ev.target !== dialog) return;
      var r = dialog.getBoundingClientRect();
      if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) dialog.close();
    });
    return {
      done: function (form) {
        if (current && current.form === form) setTimeout(function () { dialog.close(); }, 350);
      }
    };
  }

  // initMenuTools: search by name, description and label, and dietary
  // filters (an item shows when it has every filter pressed). Sections
  // with nothing left hide, and so do their links in the section nav.
  function initMenuTools() {
    var tools = document.querySelector('[data-menu-tools]');
    if (!tools) return;
    tools.hidden = false;
    var search = tools.querySelector('[data-menu-search]');
    var chips = Array.prototype.slice.call(tools.querySelectorAll('[data-diet]'));
    var status = tools.querySelector('[data-filter-status]');
    var noMatch = document.querySelector('[data-no-match]');
    var fold = function (t) { return t.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase(); };
    var items = Array.prototype.map.call(document.querySelectorAll('[data-item]'), function (li) {
      return { el: li, text: fold(li.textContent.replace(/\s+/g, ' ')), tags: (li.dataset.dietary || '').split(' ') };
    });
    var timer = 0;
    function apply() {
      var words = fold(search.value).split(/\s+/).filter(Boolean);
      var need = chips.filter(function (c) { return c.getAttribute('aria-pressed') === 'true'; }).map(function (c) { return c.dataset.diet; });
      var shown = 0;
      items.forEach(function (it) {
        var ok = words.every(function (w) { return it.text.indexOf(w) >= 0; }) &&
          need.every(function (n) { return it.tags.indexOf(n) >= 0; });
        it.el.hidden = !ok;
        if (ok) shown++;
      });
      document.querySelectorAll('[data-category]').forEach(function (sec) {
        sec.hidden = !sec.querySelector('[data-item]:not([hidden])');
        var link = document.querySelector('[data-nav-for="' + sec.id + '"]');
        if (link) link.hidden = sec.hidden;
      });
      var filtering = words.length > 0 || need.length > 0;
      noMatch.hidden = !filtering || shown > 0;
      clearTimeout(timer);
      timer = setTimeout(function () {
        status.textContent = filtering ? (shown === 1 ? '1 dish matches.' : shown + ' dishes match.') : '';
      }, 400);
      window.dispatchEvent(new Event('scroll'));
    }
    search.addEventListener('input', apply);
    chips.forEach(function (c) {
      c.addEventListener('click', function () {
        c.setAttribute('aria-pressed', c.getAttribute('aria-pressed') === 'true' ? 'false' : 'true');
        apply();
      });
    });
    document.querySelector('[data-clear-filters]').addEventListener('click', function () {
      search.value = '';
      chips.forEach(function (c) { c.setAttribute('aria-pressed', 'false'); });
      apply();
      search.focus();
    });
  }

  // initCategoryNav marks the section being read in the section nav
  // (aria-current) and keeps its link in view as the page scrolls.
  function initCategoryNav() {
    var nav = document.querySelector('[data-category-nav]');
    if (!nav) return;
    var links = Array.prototype.slice.call(nav.querySelectorAll('a'));
    var sections = links.map(function (a) { return document.getElementById(a.dataset.navFor); });
    var active = null, queued = false;
    function update() {
      queued = false;
      var line = nav.getBoundingClientRect().bottom + 16;
      var cur = null;
      sections.forEach(function (s, i) {
        if (s && !s.hidden && s.getBoundingClientRect().top <= line) cur = links[i];
      });
      if (!cur) cur = links.filter(function (a) { return !a.hidden; })[0] || null;
      if (cur === active) return;
      if (active) active.removeAttribute('aria-current');
      active = cur;
      if (!cur) return;
      cur.setAttribute('aria-current', 'true');
      var left = cur.offsetLeft - (nav.clientWidth - cur.offsetWidth) / 2;
      if (nav.scrollTo) nav.scrollTo({ left: Math.max(0, left), behavior: 'smooth' });
    }
    window.addEventListener('scroll', function () {
      if (!queued) {
        queued = true;
        requestAnimationFrame(update);
      }
    }, { passive: true });
    update();
  }

  // ---- checkout ----------------------------------------------------------------

  var draftFields = ['name', 'email', 'phone', 'pickup', 'coupon', 'tip', 'marketing', 'payment', 'card_token'];

  function saveDraft(form, slug) {
    var d = {};
    draftFields.forEach(function (n) {
      var f = form.elements[n];
      if (!f) return;
      if (f.type === 'checkbox') d[n] = f.checked;
      else d[n] = f.value; // RadioNodeList has .value too
    });
    session.setItem(draftKey(slug), JSON.stringify(d));
  }

  function restoreDraft(form, slug) {
    var d = readJSON(session, draftKey(slug), null);
    if (!d) return;
    draftFields.forEach(function (n) {
      var f = form.elements[n];
      if (!f || !(n in d)) return;
      if (f.type === 'checkbox') f.checked = !!d[n];
      else if (f.tagName === 'SELECT') {
        if (Array.prototype.some.call(f.options, function (o) { return o.value === d[n]; })) f.value = d[n];
      } else f.value = d[n];
    });
  }

  function initCheckout(form) {
    var slug = form.dataset.slug;
    var menu = menuData();
    var summary = document.querySelector('[data-summary]');
    var placeBtn = form.querySelector('[data-place-order]');
    var progress = form.querySelector('[data-progress]');

    // One key per checkout attempt. "rotate" means the server ended the
    // last attempt (declined card, refused order, duplicate to confirm):
    // start a new one. Otherwise continue the attempt this tab already has.
    var key = session.getItem(attemptKey(slug));
    if (form.dataset.keyMode === 'rotate' || !key) {
      key = newAttemptKey();
      session.setItem(attemptKey(slug), key);
    }
    form.elements.idempotency_key.value = key;

    if (form.dataset.fresh) restoreDraft(form, slug);
    else saveDraft(form, slug);

    // Items the server reported sold out leave the cart.
    var soldOut = (form.dataset.soldOut || '').split(',').filter(Boolean).map(Number);
    var removed = [];
    var cart = loadCart(slug).filter(function (l) {
      var r = resolve(menu, l);
      var gone = !r || !r.available || soldOut.indexOf(l.item_id) >= 0;
      if (gone) removed.push(r ? r.name : 'An item');
      return !gone;
    });
    saveCart(slug, cart);
    if (removed.length && !document.getElementById('checkout-notice')) {
      var note = el('div', 'alert error', removed.join(', ') + (removed.length > 1 ? ' are' : ' is') + ' no longer available and was taken out of your cart.');
      note.setAttribute('role', 'alert');
      form.parentNode.parentNode.insertBefore(note, form.parentNode);
    }
    form.elements.cart.value = JSON.stringify(cart);

    var tipField = form.elements.tip;
    var couponField = form.elements.coupon;
    var couponResult = form.querySelector('[data-coupon-result]');
    var discountRow = summary.querySelector('[data-cart-discount-row]');
    var quoteNote = summary.querySelector('[data-quote-note]');
    var applyBtn = form.querySelector('[data-apply-coupon]');
    if (applyBtn) applyBtn.hidden = true; // the live quote does its work
    if (quoteNote) quoteNote.textContent = '';
    // The total also shows beside "Place order" (.submit-total).
    function setAmount(sel, v) {
      var where = sel === '[data-cart-total]' ? document : summary;
      where.querySelectorAll(sel).forEach(function (e) { e.textContent = formatMoney(v, menu.currency); });
    }

    // totals shows what the page can work out alone at once (no coupon),
    // then asks the server for the exact quote (quote below).
    function totals() {
      var subtotal = renderCart(summary, menu, cart, false);
      var tip = parseMoney(tipField.value, menu.currency);
      if (isNaN(tip)) tip = 0;
      var tax = Math.floor((subtotal * menu.tax_rate_bp + 5000) / 10000);
      setAmount('[data-cart-tax]', tax);
      setAmount('[data-cart-tip]', tip);
      setAmount('[data-cart-total]', subtotal + tax + tip);
      var beside = form.querySelector('.submit-total');
      if (beside) beside.hidden = cart.length === 0;
      placeBtn.disabled = cart.length === 0;
      quote();
      return subtotal;
    }

    // The live quote: POST …/quote with what the order would send (no
    // contact, no payment), at most one in flight that counts (a later
    // one wins), 250 ms after the last change. The server's answer is the
    // exact total the order would get, coupon and all; its refusal (a bad
    // coupon, a closed or full pickup time) shows beside the field before
    // "Place order".
    var quoteSeq = 0, quoteTimer = null;
    function quoteFieldError(name, msg) {
      var f = form.elements[name];
      var id = 'f-' + name + '-live-err';
      var p = document.getElementById(id);
      if (!msg) {
        if (p) p.remove();
        if (!document.getElementById('f-' + name + '-err')) f.removeAttribute('aria-invalid');
        return;
      }
      if (!p) {
        p = el('p', 'field-error');
        p.id = id;
        f.closest('.field').appendChild(p);
      }
      p.textContent = msg;
      f.setAttribute('aria-invalid', 'true');
    }
    function applyQuote(q, problem) {
      var couponMsg = '', pickupMsg = '';
      if (q) {
        setAmount('[data-cart-subtotal]', q.subtotal);
        setAmount('[data-cart-tax]', q.tax);
        setAmount('[data-cart-tip]', q.tip);
        setAmount('[data-cart-total]', q.total);
        discountRow.hidden = !(q.discount > 0);
        summary.querySelector('[data-cart-discount]').textContent = '−' + formatMoney(q.discount, menu.currency);
        summary.querySelector('[data-cart-coupon]').textContent = q.coupon_code || '';
        couponResult.textContent = q.coupon_code ? q.coupon_code + ' applied: −' + formatMoney(q.discount, menu.currency) : '';
      } else {
        discountRow.hidden = true;
        couponResult.textContent = '';
        if (problem.code === 'coupon_invalid' || problem.code === 'coupon_exhausted') {
          couponMsg = (problem.errors && problem.errors.coupon_code) || problem.detail;
          couponMsg = 'Coupon: ' + couponMsg + '.';
        } else if (problem.code === 'restaurant_closed' || problem.code === 'slot_full') {
          pickupMsg = problem.detail;
        }
      }
      quoteFieldError('coupon', couponMsg);
      quoteFieldError('pickup', pickupMsg);
    }
    function quote() {
      clearTimeout(quoteTimer);
      if (!cart.length || !window.fetch) return;
      var tip = parseMoney(tipField.value, menu.currency);
      if (isNaN(tip)) return;
      var seq = ++quoteSeq;
      quoteTimer = setTimeout(function () {
        var body = {
          lines: cart.map(function (l) {
            var line = { item_id: l.item_id, quantity: l.quantity, modifier_ids: l.modifier_ids };
            if (l.note) line.note = l.note;
            return line;
          }),
          coupon_code: couponField.value.trim(),
          tip: tip,
          fulfillment: { type: 'pickup', time: form.elements.pickup.value }
        };
        fetch('/api/v1/restaurants/' + encodeURIComponent(slug) + '/quote', {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
        }).then(function (res) {
          return res.json().then(function (j) { return { ok: res.ok, j: j }; });
        }).then(function (r) {
          if (seq !== quoteSeq) return; // a newer quote is on its way
          if (r.ok) applyQuote(r.j, null);
          else applyQuote(null, r.j);
        }).catch(function () { /* offline or busy: the page's own totals stand */ });
      }, 250);
    }
    var subtotal = totals();

    var presets = form.querySelector('[data-tip-presets]');
    if (presets) {
      presets.hidden = false;
      presets.addEventListener('click', function (ev) {
        var b = ev.target.closest('[data-tip-percent]');
        if (!b) return;
        var pct = Number(b.dataset.tipPercent);
        var tip = Math.round(subtotal * pct / 100);
        tipField.value = pct === 0 ? '' : (tip / Math.pow(10, menu.currency.digits)).toFixed(menu.currency.digits);
        totals();
        saveDraft(form, slug);
      });
    }

    var cardField = form.querySelector('[data-card-field]');
    function paymentChanged() {
      var card = form.elements.payment.value !== 'pay_at_pickup';
      cardField.hidden = !card;
      form.elements.card_token.required = card;
    }
    paymentChanged();

    form.addEventListener('input', function () { totals(); saveDraft(form, slug); });
    form.addEventListener('change', function () { paymentChanged(); saveDraft(form, slug); quote(); });

    // One submit per attempt: the first disables the buttons and shows
    // progress; any later submit event (double click, Enter) is dropped.
    var submitting = false;
    form.addEventListener('submit', function (ev) {
      if (submitting) {
        ev.preventDefault();
        return;
      }
      if (cart.length === 0) {
        ev.preventDefault();
        return;
      }
      // A disabled button's name/value is not sent, so copy "Place it
      // again" into the hidden field before disabling it.
      // (form.elements.confirm_duplicate would be a list: the dialog's
      // button belongs to the form too.)
      if (ev.submitter && ev.submitter.name === 'confirm_duplicate') form.querySelector('input[name=confirm_duplicate]').value = '1';
      submitting = true;
      saveDraft(form, slug);
      document.querySelectorAll('[data-place-order], [data-place-again]').forEach(function (b) {
        b.disabled = true;
        b.setAttribute('aria-busy', 'true');
      });
      placeBtn.textContent = 'Placing your order…';
      progress.hidden = false;
      var dialog = document.getElementById('duplicate-dialog');
      if (dialog && dialog.open) dialog.close();
    });

    var dup = document.getElementById('duplicate-dialog');
    var existing = dup && dup.querySelector('[data-open-existing]');
    var last = existing && local.getItem(lastOrderKey(slug));
    if (last && last.indexOf('/orders/') === 0) {
      existing.setAttribute('href', last);
      existing.hidden = false;
    }
    if (dup && typeof dup.showModal === 'function') {
      dup.close();
      dup.showModal();
    }
  }

  // A page restored from the back/forward cache would show a disabled form
  // for an attempt that is over: load it afresh instead.
  window.addEventListener('pageshow', function (ev) {
    if (ev.persisted && document.querySelector('[data-checkout-form], [data-placing]')) location.reload();
  });

  // ---- "still placing" page --------------------------------------------------------

  function initPlacing(root) {
    var form = root.querySelector('[data-placing-form]');
    var btn = form.querySelector('button');
    var sent = false;
    function send() {
      if (sent) return false;
      sent = true;
      btn.disabled = true;
      return true;
    }
    form.addEventListener('submit', function (ev) { if (!send()) ev.preventDefault(); });
    var secs = Number(root.dataset.retry);
    if (secs > 0) {
      setTimeout(function () { if (send()) form.submit(); }, secs * 1000);
    }
  }

  // ---- order status page -----------------------------------------------------------

  function initOrder(root) {
    // Keep the status current when the live stream (live.js) is not on.
    var secs = Number(root.dataset.refresh);
    if (secs > 0) {
      setInterval(function () {
        if (!document.hidden && document.body.dataset.live !== 'on') location.reload();
      }, secs * 1000);
    }
    var from = root.dataset.fromCheckout;
    if (!from) return;
    var slug = root.dataset.slug;
    // The attempt is over either way; the cart only goes once it is ordered.
    if (from === 'placed') local.removeItem(cartKey(slug));
    session.removeItem(attemptKey(slug));
    session.removeItem(draftKey(slug));
    var url = new URL(location.href);
    url.searchParams.delete('placed');
    if (from === 'placed') local.setItem(lastOrderKey(slug), url.pathname + url.search);
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }

  // ---- staff board -------------------------------------------------------------------

  // The board reloads itself every 30 s, unless its live stream (live.js)
  // is on, which keeps it current in place, or someone is in the middle of
  // something (typing a cancel reason, an open menu).
  function initBoard() {
    setInterval(function () {
      if (document.hidden || document.body.dataset.live === 'on') return;
      var a = document.activeElement;
      if (a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA')) return;
      if (document.querySelector('details[open]')) return;
      location.reload();
    }, 30000);
  }

  // ---- mailbox message ------------------------------------------------------------------

  // The email's HTML part sits in a sandboxed frame of our own origin (no
  // scripts run in it): grow the frame to the email's full height so
  // nothing is cut off, also after its images load.
  function initMailFrame(frame) {
    function fit() {
      var doc = frame.contentDocument;
      if (!doc || !doc.documentElement) return;
      frame.style.height = (doc.documentElement.scrollHeight + 2) + 'px';
    }
    frame.addEventListener('load', function () {
      fit();
      var doc = frame.contentDocument;
      if (doc) doc.querySelectorAll('img').forEach(function (img) { img.addEventListener('load', fit); });
    });
    window.addEventListener('resize', fit);
    fit();
  }

  function init() {
    document.documentElement.classList.add('js');
    var m = document.querySelector('[data-menu-page]');
    if (m) initMenu(m);
    var c = document.querySelector('[data-checkout-form]');
    if (c) initCheckout(c);
    var p = document.querySelector('[data-placing]');
    if (p) initPlacing(p);
    var o = document.querySelector('[data-order-page]');
    if (o) initOrder(o);
    if (document.querySelector('[data-board]')) initBoard();
    document.querySelectorAll('[data-mail-frame]').forEach(initMailFrame);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
