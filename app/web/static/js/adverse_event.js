// An SAE's page (templates/adverse_event.html): the reporting clock's time left counts down
// while the page is open, and turns to overdue once the deadline passes; the deadline itself
// is the server's (the adverse events service), never computed here.
"use strict";

(function () {
  const clock = document.getElementById("sae-clock");
  const text = document.getElementById("sae-text");
  const badge = document.getElementById("sae-badge");
  if (!clock || !text || !badge) return;
  const due = Date.parse(clock.dataset.due || "");
  if (Number.isNaN(due)) return;

  // the server's wording (app/web/templating.py time_left): "26 h 5 min", "12 min"
  function span(milliseconds) {
    const minutes = Math.floor(Math.abs(milliseconds) / 60000);
    const hours = Math.floor(minutes / 60);
    return hours ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
  }

  function tick() {
    const left = due - Date.now();
    if (left >= 0) {
      text.textContent = `${span(left)} left to report to the sponsor`;
      return;
    }
    text.textContent = `Overdue by ${span(left)}: not yet reported to the sponsor`;
    if (clock.dataset.state !== "overdue") {
      clock.dataset.state = "overdue";
      clock.classList.replace("sae-running", "sae-overdue");
      badge.classList.replace("sev-warning", "sev-critical");
      badge.textContent = "overdue";
    }
  }

  tick();
  window.setInterval(tick, 30000);
})();
