// The agent call page: live status over server-sent events, call controls over fetch.
"use strict";

(() => {
  const root = document.getElementById("call");
  const labels = JSON.parse(document.getElementById("labels").textContent);
  const statusLine = document.getElementById("call-status");
  const timer = document.getElementById("call-timer");
  const feedback = document.getElementById("feedback");
  const call = {
    state: root.dataset.state,
    status: root.dataset.status,
    answer_time: root.dataset.answerTime || null,
    duration: Number(root.dataset.duration),
  };

  const clock = (seconds) => {
    const s = Math.max(0, Math.floor(seconds));
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  };

  function tick() {
    if (call.state === "answered" && call.answer_time) {
      timer.textContent = clock((Date.now() - Date.parse(call.answer_time)) / 1000);
    } else if (call.state === "ended") {
      timer.textContent = call.status === "ANSWER" ? clock(call.duration) : "";
    }
  }

  function render(update) {
    for (const name of ["state", "status", "answer_time", "duration"]) {
      if (name in update) call[name] = update[name];
    }
    statusLine.textContent = labels.statuses[call.status] || labels.states[call.state] || call.state;
    statusLine.dataset.state = call.state;
    statusLine.dataset.status = call.status;
    root.dataset.state = call.state;
    document.title = `${statusLine.textContent} · ${document.getElementById("call-title").textContent} · CallBridge`;
    document.getElementById("hangup").disabled = call.state === "ended";
    for (const button of document.querySelectorAll("[data-needs-answer]")) {
      button.disabled = call.state !== "answered";
    }
    if (update.parties) {
      const list = document.getElementById("parties");
      list.replaceChildren(...update.parties.map((party) => {
        const item = document.createElement("li");
        item.textContent = `${party.kind === "transfer" ? "Transfer" : "Third party"} ${party.number}`;
        return item;
      }));
    }
    if ("notes" in update) document.getElementById("notes").textContent = update.notes;
    tick();
  }

  function say(message, isError) {
    feedback.textContent = message;
    feedback.classList.toggle("error", isError);
    feedback.hidden = false;
  }

  if (call.state !== "ended") {
    const events = new EventSource(root.dataset.eventsUrl);
    const onEvent = (event) => {
      render(JSON.parse(event.data));
      if (call.state === "ended") events.close();
    };
    events.addEventListener("snapshot", onEvent);
    events.addEventListener("call", onEvent);
  }

  const done = {
    hangup: "Hung up.",
    transfer: "Transferred.",
    "add-party": "Added to the call.",
    disposition: "Disposition saved.",
    notes: "Note added.",
  };
  for (const form of document.querySelectorAll("form[data-action]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const buttons = form.querySelectorAll("button");
      buttons.forEach((button) => { button.dataset.wasDisabled = button.disabled; button.disabled = true; });
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new URLSearchParams(new FormData(form)),
          headers: { Accept: "application/json" },
        });
        const answer = await response.json();
        if (!response.ok) {
          say(answer.error.message, true);
        } else {
          say(done[form.dataset.action], false);
          if (form.dataset.action !== "disposition") form.querySelectorAll("input, textarea").forEach((f) => { f.value = ""; });
          render(answer);
        }
      } catch (error) {
        say("Could not reach CallBridge; check your connection and try again.", true);
      } finally {
        buttons.forEach((button) => { if (button.dataset.wasDisabled === "false") button.disabled = false; });
        render({});
      }
    });
  }

  render({});
  setInterval(tick, 1000);
})();
