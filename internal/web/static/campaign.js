// The campaign page polls its progress every second and updates the bar,
// the counts, the rate and the time left without a reload. Buttons that do
// not apply to the current status are hidden.
(function () {
  "use strict";
  var root = document.getElementById("campaign");
  if (!root) return;
  var url = root.getAttribute("data-progress-url");
  var allowed = {
    draft: ["send", "cancel"], scheduled: ["send", "pause", "cancel"], sending: ["pause", "cancel"],
    paused: ["resume", "cancel"], done: ["retry-failed"], cancelled: []
  };
  function set(id, v) { var el = document.getElementById(id); if (el) el.textContent = v; }
  function show(p) {
    var done = p.sent + p.failed + p.skipped;
    var bar = document.getElementById("campaign-bar");
    bar.max = p.total || 1;
    bar.value = done;
    set("campaign-status", p.status);
    set("campaign-sent", p.sent); set("campaign-failed", p.failed); set("campaign-skipped", p.skipped);
    set("campaign-pending", p.pending); set("campaign-total", p.total);
    set("campaign-rate", p.rate_per_second);
    set("campaign-left", p.seconds_left ? p.seconds_left + " s left" : "—");
    var ok = allowed[p.status] || [];
    root.querySelectorAll("form[data-action]").forEach(function (f) {
      f.hidden = ok.indexOf(f.getAttribute("data-action")) < 0;
    });
    root.setAttribute("data-status", p.status);
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) { if (p) show(p); })
      .catch(function () {})
      .then(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
