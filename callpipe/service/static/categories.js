// The categories page: poll each category's progress until every stored call is covered.
(function () {
  "use strict";
  function poll(el) {
    var name = el.getAttribute("data-name");
    fetch("/categories/" + encodeURIComponent(name), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (c) {
        if (!c) { return; }
        var p = c.progress || {};
        var state = p.state || "queued";
        el.textContent = (p.covered || 0) + " / " + (p.total || 0) + " calls · " + state;
        el.setAttribute("data-state", state);
        if (state === "queued" || state === "running") { setTimeout(function () { poll(el); }, 700); }
      })
      .catch(function () { setTimeout(function () { poll(el); }, 2000); });
  }
  document.querySelectorAll(".progress[data-name]").forEach(function (el) {
    var state = el.getAttribute("data-state");
    if (state === "queued" || state === "running") { poll(el); }
  });
})();
