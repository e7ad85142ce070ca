// Live screens: the staff order board and the guest's order status page
// listen to server-sent events (internal/live) and show changes as they
// happen, made on any screen by any server process. The server renders the
// pages; on a change this file fetches the page again and swaps in the part
// that changed, so the live view is always exactly what a reload would show.
// Without EventSource (or with the stream down) the pages still reload on
// their own timers.
(function () {
  'use strict';
  if (!window.EventSource) return;

  // ---- sound: a short two-tone chime through WebAudio ------------------------------

  var audio = null;
  var soundOn = true;
  try { soundOn = localStorage.getItem('ladle.board.sound') !== 'off'; } catch (e) { /* default on */ }

  function audioContext() {
    if (!audio) {
      var AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return null;
      audio = new AC();
    }
    return audio;
  }

  // Browsers start audio only after a click or key press on the page: the
  // first one unlocks it.
  function unlockAudio() {
    var ctx = audioContext();
    if (ctx && ctx.state === 'suspended') ctx.resume();
  }
  document.addEventListener('click', unlockAudio, { capture: true });
  document.addEventListener('keydown', unlockAudio, { capture: true });

  var live = window.ladleLive = { chimes: 0, updates: 0, refreshes: 0 };

  function chime() {
    live.chimes++;
    if (!soundOn) return;
    var ctx = audioContext();
    if (!ctx) return;
    var t = ctx.currentTime;
    [[880, 0], [1318.5, 0.18]].forEach(function (n) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = n[0];
      gain.gain.setValueAtTime(0.0001, t + n[1]);
      gain.gain.exponentialRampToValueAtTime(0.3, t + n[1] + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + n[1] + 0.5);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t + n[1]);
      osc.stop(t + n[1] + 0.55);
    });
  }

  // ---- staff board --------------------------------------------------------------

  function initBoard(board) {
    var m = location.pathname.match(/^\/admin\/r\/(\d+)\/orders/);
    if (!m) return;
    var head = document.querySelector('.board-head');
    var status = document.createElement('span');
    status.className = 'live-status off';
    status.setAttribute('role', 'status');
    status.textContent = 'Connecting…';
    var sound = document.createElement('button');
    sound.type = 'button';
    sound.className = 'button small ghost';
    function soundLabel() { sound.textContent = soundOn ? 'Sound: on' : 'Sound: off'; }
    soundLabel();
    sound.addEventListener('click', function () {
      soundOn = !soundOn;
      try { localStorage.setItem('ladle.board.sound', soundOn ? 'on' : 'off'); } catch (e) { /* keep in memory */ }
      soundLabel();
      if (soundOn) chime();
    });
    if (head) {
      var tools = document.createElement('div');
      tools.className = 'live-tools';
      tools.appendChild(status);
      tools.appendChild(document.createTextNode(' '));
      tools.appendChild(sound);
      var mailbox = document.createElement('a');
      mailbox.className = 'button small ghost';
      mailbox.href = '/admin/r/' + m[1] + '/mailbox';
      mailbox.textContent = 'Mailbox';
      tools.appendChild(document.createTextNode(' '));
      tools.appendChild(mailbox);
      head.appendChild(tools);
    }

    var arrived = {}; // order id -> highlight until (ms)
    var inFlight = false;
    var again = false;

    // Staff typing a cancel reason or with a menu open keep their board
    // until they are done; the refresh waits.
    function busy() {
      var a = document.activeElement;
      if (a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA')) return true;
      return !!board.querySelector('details[open]');
    }

    function highlight() {
      var now = Date.now();
      Object.keys(arrived).forEach(function (id) {
        if (arrived[id] < now) { delete arrived[id]; return; }
        var el = document.getElementById('order-' + id);
        if (el) el.classList.add('arrived');
      });
    }

    function refresh() {
      if (inFlight) { again = true; return; }
      if (busy()) { setTimeout(refresh, 1000); return; }
      inFlight = true;
      fetch(location.pathname, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, 'text/html');
          var fresh = doc.querySelector('[data-board]');
          if (!fresh) return;
          if (busy()) { again = true; return; }
          board.innerHTML = fresh.innerHTML;
          var oldInfo = document.querySelector('.board-head .muted');
          var newInfo = doc.querySelector('.board-head .muted');
          if (oldInfo && newInfo) oldInfo.innerHTML = newInfo.innerHTML;
          live.refreshes++;
          highlight();
        })
        .catch(function () { /* the next event or the timed reload catches up */ })
        .then(function () {
          inFlight = false;
          if (again) { again = false; refresh(); }
        });
    }

    var es = new EventSource('/admin/r/' + m[1] + '/orders/live');
    es.addEventListener('off', function () {
      es.close();
      if (status.parentNode) status.parentNode.removeChild(status);
      if (sound.parentNode) sound.parentNode.removeChild(sound);
    });
    es.addEventListener('hello', function () {
      status.className = 'live-status on';
      status.textContent = '● Live';
      document.body.dataset.live = 'on';
      refresh(); // anything that happened while we were connecting
    });
    es.addEventListener('order', function (ev) {
      var u;
      try { u = JSON.parse(ev.data); } catch (e) { return; }
      live.updates++;
      if (u.type === 'order.placed') {
        arrived[u.order_id] = Date.now() + 10000;
        chime();
      }
      refresh();
    });
    es.addEventListener('error', function () {
      status.className = 'live-status off';
      status.textContent = 'Reconnecting…';
      document.body.dataset.live = 'off';
    });
  }

  // ---- guest status page ---------------------------------------------------------

  function initOrder(root) {
    var m = location.pathname.match(/^\/orders\/([^/]+)$/);
    var token = new URLSearchParams(location.search).get('token');
    if (!m || !token) return;
    var hero = root.querySelector('.order-hero');
    var shown = hero && (hero.className.match(/status-([a-z_]+)/) || [])[1];
    var es = new EventSource('/orders/' + m[1] + '/live?token=' + encodeURIComponent(token));
    function check(status) {
      if (status && status !== shown) {
        es.close();
        location.reload();
      }
    }
    es.addEventListener('off', function () { es.close(); });
    es.addEventListener('hello', function () {
      document.body.dataset.live = 'on';
      // A change made before the stream opened: compare with the page now.
      fetch(location.href, { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.text() : ''; })
        .then(function (html) {
          var h = new DOMParser().parseFromString(html, 'text/html').querySelector('.order-hero');
          check(h && (h.className.match(/status-([a-z_]+)/) || [])[1]);
        })
        .catch(function () { /* the meta refresh catches up */ });
    });
    es.addEventListener('order', function (ev) {
      var u;
      try { u = JSON.parse(ev.data); } catch (e) { return; }
      live.updates++;
      check(u.status);
    });
  }

  function init() {
    var board = document.querySelector('[data-board]');
    if (board) initBoard(board);
    var o = document.querySelector('[data-order-page]');
    if (o) initOrder(o);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
