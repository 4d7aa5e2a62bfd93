// Live reload: when served by `llmlab serve`, listen for rebuilds and reload the page.
// Opened as a file, this does nothing (no network requests).
(function () {
  if (location.protocol !== "http:" && location.protocol !== "https:") return;
  if (!window.EventSource) return;
  var status = document.getElementById("live-status");
  var es = new EventSource("/__events");
  es.addEventListener("open", function () { if (status) status.textContent = "live"; });
  es.addEventListener("reload", function () { location.reload(); });
  es.addEventListener("error", function () { if (status) status.textContent = "offline"; });
})();
