// The per-build values, then live reload.
//
// Pages carry nothing that changes with every build (so a build re-renders only the pages
// whose data changed): `build.js`, loaded just before this file, sets window.llmlabBuild
// (build id, event count, last event, build time). Here they fill the footer, and each
// <time data-ago> (an absolute UTC time in the page) becomes "3 d ago" as of the build.
// Without JavaScript the page shows the absolute times and no counts.
//
// Live reload for `llmlab serve`: listens for server-sent events and reloads the page when
// the site is rebuilt. Does nothing when the page is opened as a file (no network at all).
(function () {
  "use strict";
  var b = window.llmlabBuild || null;

  function utc(ts) { return Date.parse(String(ts).slice(0, 19) + "Z"); }

  // the same words as llmlab.site.data.days_ago
  function ago(ts, now) {
    var d = (now - utc(ts)) / 86400000;
    if (d < 1 / 24) return "just now";
    if (d < 1) return Math.floor(d * 24) + " h ago";
    return d < 60 ? Math.floor(d) + " d ago" : Math.floor(d / 30) + " months ago";
  }

  function fill() {
    if (!b) return;
    var set = function (name, text) {
      var els = document.querySelectorAll('[data-build="' + name + '"]');
      for (var i = 0; i < els.length; i++) els[i].textContent = text;
    };
    var n = b.events;
    set("events", n.toLocaleString("en-US") + " event" + (n === 1 ? "" : "s"));
    set("last", b.last_event ? " (last " + b.last_event + ")" : "");
    set("built", "; built " + String(b.generated_at).slice(0, 16).replace("T", " ") + " UTC");
    var now = utc(b.generated_at);
    var times = document.querySelectorAll("time[data-ago]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      t.title = t.textContent;
      t.textContent = ago(t.getAttribute("datetime"), now);
    }
  }
  fill();

  if (location.protocol !== "http:" && location.protocol !== "https:") return;
  if (!window.EventSource) return;
  var build = b ? b.build : "";
  var es = new EventSource("/__events?build=" + encodeURIComponent(build));
  function el(id) { return document.getElementById(id); }
  es.addEventListener("open", function () { var d = el("live"); if (d) d.hidden = false; });
  es.addEventListener("error", function () { var d = el("live"); if (d) d.hidden = true; });
  es.addEventListener("reload", function (e) {
    if (e.data && e.data !== build) { es.close(); location.reload(); }
  });
  es.addEventListener("build-error", function (e) {
    var bn = el("banner");
    if (bn) { bn.textContent = "The site could not be rebuilt: " + e.data; bn.hidden = false; }
  });
  es.addEventListener("build-ok", function () {
    var bn = el("banner");
    if (bn) { bn.hidden = true; bn.textContent = ""; }
  });
})();
