// The agent console: the agent's inbound calls, live over server-sent events, each with its card.
"use strict";

(() => {
  const root = document.getElementById("console");
  const list = document.getElementById("calls");
  const empty = document.getElementById("no-calls");
  const status = document.getElementById("console-status");
  const template = document.getElementById("popup");
  const labels = JSON.parse(document.getElementById("labels").textContent);
  const shown = new Map(); // call_id -> its <li>

  function label(call) {
    if (call.state === "ended") return labels.statuses[call.status] || "Call ended";
    return call.state === "answered" ? labels.states.answered : "Incoming call";
  }

  function show(call) {
    let item = shown.get(call.call_id);
    if (!item) {
      item = template.content.firstElementChild.cloneNode(true);
      shown.set(call.call_id, item);
      list.prepend(item);
    }
    item.dataset.state = call.state;
    item.querySelector(".popup-state").textContent = label(call);
    item.querySelector(".popup-number").textContent = call.customer_number || "Withheld number";
    // Rendered by the server from our template, with every value escaped.
    item.querySelector(".popup-card").innerHTML = call.card_html;
    item.querySelector(".popup-open").href = call.page;
    if (call.state === "ended") {
      setTimeout(() => { item.remove(); shown.delete(call.call_id); refresh(); }, 15000);
    }
    refresh();
  }

  function refresh() {
    empty.hidden = shown.size > 0;
  }

  const source = new EventSource(root.dataset.eventsUrl);
  // A stream ends now and then (every few seconds when the server is busy) and the browser
  // comes back by itself: say "Reconnecting…" only when it has not come back by then.
  let lost = null;
  source.addEventListener("open", () => {
    clearTimeout(lost);
    lost = null;
    status.textContent = "Ready for calls";
  });
  source.addEventListener("error", () => {  // again at each failed try: the first one counts
    if (lost === null) lost = setTimeout(() => { status.textContent = "Reconnecting…"; }, 6000);
  });
  source.addEventListener("snapshot", (message) => {
    JSON.parse(message.data).calls.forEach(show);
  });
  source.addEventListener("call", (message) => show(JSON.parse(message.data)));
  refresh();
})();
