// Live per-object progress of a running sync on the connection page (progressive enhancement).
(function () {
  "use strict";
  var section = document.getElementById("sync");
  if (!section || !section.dataset.running) { return; }
  var url = section.dataset.statusUrl, every = parseInt(section.dataset.pollMs, 10) || 1000;
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var run = data.run;
        if (!run) { return; }
        var status = section.querySelector("[data-sync-status]");
        if (status) { status.textContent = run.status; }
        run.objects.forEach(function (o) {
          var row = section.querySelector('tr[data-object="' + o.name + '"]');
          if (!row) { return; }
          var bar = row.querySelector("progress");
          if (bar) { bar.value = o.percent; bar.textContent = o.percent + "%"; }
          row.querySelector("[data-read]").textContent = o.read;
          row.querySelector("[data-outcome]").textContent = o.status + (o.message ? ": " + o.message : "");
        });
        if (run.finished) { window.location.reload(); } else { window.setTimeout(tick, every); }
      })
      .catch(function () { window.setTimeout(tick, every * 3); });
  }
  window.setTimeout(tick, every);
})();
