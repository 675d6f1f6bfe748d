// The dashboard's few behaviours htmx does not cover: the phone menu, submit-once buttons,
// selects that submit their form, ticking durations ([data-since] elements) and live streams.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-nav-toggle]");
    if (!toggle) return;
    var nav = document.getElementById(toggle.getAttribute("aria-controls"));
    var open = nav.classList.toggle("is-open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // A second click while the first submission is on its way sends nothing (the server also
  // refuses a form token twice: dashboard/forms.py SubmitOnceForm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method.toLowerCase() !== "post" || form.hasAttribute("hx-post")) return;
    if (form.dataset.submitted) { event.preventDefault(); return; }
    form.dataset.submitted = "true";
    form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (button) {
      button.setAttribute("aria-disabled", "true");
    });
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
    if (event.target.matches("select[name=engine]")) showEngine(event.target);
  });

  // The telephony form: only the chosen engine's own fields (without script, all of them).
  function showEngine(select) {
    select.form.querySelectorAll("fieldset[data-engine]").forEach(function (group) {
      group.hidden = group.dataset.engine !== select.value;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[name=engine]").forEach(showEngine);
  });

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function formatSeconds(total) {
    total = Math.max(0, Math.floor(total));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return (h ? h + ":" + pad(m) : m) + ":" + pad(s);
  }
  function tick() {
    document.querySelectorAll("[data-since]").forEach(function (element) {
      var since = Date.parse(element.dataset.since);
      if (!isNaN(since)) element.textContent = formatSeconds((Date.now() - since) / 1000);
    });
  }

  // <div data-live-stream="URL" hx-get="…" hx-trigger="live-changed">: one EventSource per page
  // (the browser reconnects when the server ends a bounded stream); each call event, and the
  // snapshot a reconnection starts with, asks htmx to re-fetch the server-rendered part.
  function followStream(element) {
    var source = new EventSource(element.dataset.liveStream);
    var pending = null;
    function changed() {
      clearTimeout(pending);
      pending = setTimeout(function () { htmx.trigger(element, "live-changed"); }, 150);
    }
    source.addEventListener("call", changed);
    source.addEventListener("analytics", changed);
    source.addEventListener("snapshot", changed);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-stream]").forEach(followStream);
  });
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
})();
