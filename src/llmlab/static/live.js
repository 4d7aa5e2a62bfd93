// Live reload for `llmlab serve`: listens for server-sent events and reloads the page when
// the site is rebuilt. Does nothing when the page is opened as a file (no network at all).
(function () {
  "use strict";
  if (location.protocol !== "http:" && location.protocol !== "https:") return;
  if (!window.EventSource) return;
  var meta = document.querySelector('meta[name="llmlab-build"]');
  var build = meta ? meta.getAttribute("content") : "";
  var es = new EventSource("/__events?build=" + encodeURIComponent(build));
  function el(id) { return document.getElementById(id); }
  es.addEventListener("open", function () { var d = el("live"); if (d) d.hidden = false; });
  es.addEventListener("error", function () { var d = el("live"); if (d) d.hidden = true; });
  es.addEventListener("reload", function (e) {
    if (e.data && e.data !== build) { es.close(); location.reload(); }
  });
  es.addEventListener("build-error", function (e) {
    var b = el("banner");
    if (b) { b.textContent = "The site could not be rebuilt: " + e.data; b.hidden = false; }
  });
  es.addEventListener("build-ok", function () {
    var b = el("banner");
    if (b) { b.hidden = true; b.textContent = ""; }
  });
})();
