// The campaign page follows its progress live over server-sent events
// (…/live): the bar, the counts, the rate and the time left update without
// a reload, from every worker process's sends. Without EventSource it polls
// …/progress every second instead. Buttons that do not apply to the
// current status are hidden (admin_campaign.go has the same table).
(function () {
  "use strict";
  var root = document.getElementById("campaign");
  if (!root) return;
  var allowed = {
    draft: ["send", "schedule", "cancel"], scheduled: ["send", "pause", "cancel"],
    sending: ["pause", "cancel"], paused: ["resume", "cancel"], done: ["retry-failed"], cancelled: []
  };
  var last = null;
  function set(id, v) { var el = document.getElementById(id); if (el) el.textContent = v; }
  function show(p) {
    last = p;
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
  var liveURL = root.getAttribute("data-live-url");
  if (window.EventSource && liveURL) {
    var es = new EventSource(liveURL);
    es.addEventListener("progress", function (e) {
      root.setAttribute("data-live", "sse");
      show(JSON.parse(e.data));
    });
    es.addEventListener("end", function () {
      es.close();
      root.setAttribute("data-live", "ended");
      // Failed sends are listed by the server: show them.
      if (last && last.failed > 0 && !document.getElementById("campaign-failed-list")) location.reload();
    });
    es.addEventListener("off", function () { es.close(); root.setAttribute("data-live", "off"); });
    return;
  }
  var url = root.getAttribute("data-progress-url");
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) { if (p) show(p); })
      .catch(function () {})
      .then(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
