// The System page: fetch the charts (server-rendered inline SVG) every two
// seconds and swap them in. A failed fetch keeps the last charts and marks
// them stale; the next success clears that.
(function () {
  var box = document.querySelector('[data-system-charts]');
  if (!box) return;
  var src = box.getAttribute('data-src');
  var busy = false;
  function tick() {
    if (busy || document.hidden) return;
    busy = true;
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, 5000);
    fetch(src, { credentials: 'same-origin', cache: 'no-store', signal: ctl.signal })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        box.removeAttribute('data-stale');
      })
      .catch(function () { box.setAttribute('data-stale', ''); })
      .finally(function () { clearTimeout(timer); busy = false; });
  }
  setInterval(tick, 2000);
})();
