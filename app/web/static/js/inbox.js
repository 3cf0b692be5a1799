// The alerts inbox (templates/inbox.html), kept current from the API's alert stream: each event
// fetches the alert's row as the server renders it (/alerts/{id}/row, the same scope checks)
// and puts it in its place (most severe first, then the newest), or drops it once resolved.
// EventSource reconnects by itself, sending Last-Event-ID, and the stream replays what was
// missed; a stream that starts later than the page (its first "ready" event says so) reloads
// the table (/alerts/rows). The count of open alerts shows in the title and on the favicon, so
// a tab in the background still tells; a beep too, once the user has turned the sound on.
"use strict";

(function () {
  const table = document.getElementById("inbox");
  if (!table) return;
  const stream = table.dataset.stream;
  const liveState = document.getElementById("live-state");
  const soundButton = document.getElementById("sound-toggle");
  const favicon = document.getElementById("favicon");
  const plainIcon = favicon ? favicon.getAttribute("href") : null;
  const plainIconType = favicon ? favicon.getAttribute("type") : null;
  const baseTitle = document.title.replace(/^\(\d+\)\s*/, "");
  let lastSeen = Number(table.dataset.head || 0);

  const rowsBody = () => document.getElementById("alert-rows");

  // --- the count: page, title, favicon ----------------------------------------------------
  let iconImage = null;

  function drawBadge(count) {
    if (!favicon) return;
    if (!count) {
      favicon.setAttribute("href", plainIcon);
      if (plainIconType) favicon.setAttribute("type", plainIconType);
      return;
    }
    const draw = () => {
      const canvas = document.createElement("canvas");
      canvas.width = 64;
      canvas.height = 64;
      const ctx = canvas.getContext("2d");
      if (!ctx) return;
      if (iconImage && iconImage.complete && iconImage.naturalWidth) {
        ctx.drawImage(iconImage, 0, 0, 64, 64);
      }
      ctx.fillStyle = "#a4161a";
      ctx.beginPath();
      ctx.arc(42, 22, 22, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#ffffff";
      ctx.font = "bold 30px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(count > 9 ? "9+" : String(count), 42, 24);
      favicon.setAttribute("type", "image/png");
      favicon.setAttribute("href", canvas.toDataURL("image/png"));
    };
    if (!iconImage && plainIcon) {
      iconImage = new Image();
      iconImage.addEventListener("load", () => drawBadge(openCount()));
      iconImage.src = plainIcon;
    }
    draw();
  }

  function openCount() {
    return rowsBody().querySelectorAll('tr[data-status="open"]').length;
  }

  function showCount() {
    const count = openCount();
    document.title = count ? `(${count}) ${baseTitle}` : baseTitle;
    const shown = document.getElementById("open-count");
    if (shown && shown.textContent !== String(count)) shown.textContent = String(count);
    const empty = document.getElementById("inbox-empty");
    if (empty) empty.hidden = rowsBody().rows.length > 0;
    drawBadge(count);
  }

  // --- sound ------------------------------------------------------------------------------
  const AudioContextClass = window.AudioContext || window.webkitAudioContext;
  let audio = null;
  let soundOn = false;
  let beepQueued = false;

  function beep() {
    if (!soundOn || !audio) return;
    const start = audio.currentTime;
    for (const offset of [0, 0.25]) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.type = "sine";
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.18);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.2);
    }
  }

  function cue() {
    if (beepQueued) return; // one beep for a burst of new alerts
    beepQueued = true;
    window.setTimeout(() => {
      beepQueued = false;
      beep();
    }, 50);
  }

  if (soundButton && AudioContextClass) {
    soundButton.hidden = false;
    soundButton.addEventListener("click", () => {
      soundOn = !soundOn;
      if (soundOn && !audio) audio = new AudioContextClass();
      if (audio && audio.state === "suspended") audio.resume();
      soundButton.setAttribute("aria-pressed", String(soundOn));
      if (soundOn) beep();
    });
  }

  // --- rows -------------------------------------------------------------------------------
  function parse(html, selector) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.querySelector(selector);
  }

  function sortsBefore(a, b) {
    const rankA = Number(a.dataset.rank);
    const rankB = Number(b.dataset.rank);
    if (rankA !== rankB) return rankA > rankB;
    return Date.parse(a.dataset.raised) > Date.parse(b.dataset.raised);
  }

  function place(row) {
    const body = rowsBody();
    const existing = document.getElementById(row.id);
    const hadFocus = existing && existing.contains(document.activeElement);
    if (existing) existing.remove();
    if (row.dataset.status === "resolved") return;
    const next = Array.from(body.rows).find((other) => sortsBefore(row, other));
    body.insertBefore(row, next || null);
    if (window.htmx) window.htmx.process(row);
    if (hadFocus) {
      row.setAttribute("tabindex", "-1");
      (row.querySelector("button") || row).focus();
    }
  }

  async function fetchPage(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.redirected) {
      window.location.reload(); // signed out: the page goes to the sign-in
      return null;
    }
    return response;
  }

  async function refreshRow(alertId, isNew) {
    const response = await fetchPage(`/alerts/${encodeURIComponent(alertId)}/row`);
    if (!response) return;
    if (response.status === 404) {
      const gone = document.getElementById(`alert-${alertId}`);
      if (gone) gone.remove();
    } else if (response.ok) {
      const row = parse(await response.text(), "tr");
      if (!row) return;
      place(row);
      if (isNew && row.dataset.status === "open") cue();
    }
    showCount();
  }

  async function reloadRows() {
    const response = await fetchPage("/alerts/rows");
    if (!response || !response.ok) return;
    const fresh = parse(await response.text(), "tbody");
    if (!fresh) return;
    rowsBody().replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    showCount();
  }

  // one alert's fetches in the order of its events, so an older row never replaces a newer one
  const queues = new Map();
  function refreshInTurn(alertId, isNew) {
    const previous = queues.get(alertId) || Promise.resolve();
    const next = previous.then(() => refreshRow(alertId, isNew)).catch(() => undefined);
    queues.set(alertId, next);
    next.then(() => {
      if (queues.get(alertId) === next) queues.delete(alertId);
    });
  }

  // after an acknowledgement in place the button is gone: keep the focus on its row
  let swappingRow = null;
  document.addEventListener("htmx:beforeRequest", (event) => {
    const row = event.target.closest ? event.target.closest("tr.alert-row") : null;
    swappingRow = row && row.contains(document.activeElement) ? row.id : null;
  });
  document.addEventListener("htmx:afterSwap", () => {
    showCount();
    const row = swappingRow && document.getElementById(swappingRow);
    swappingRow = null;
    if (row && (document.activeElement === document.body || !document.activeElement)) {
      row.setAttribute("tabindex", "-1");
      row.focus();
    }
  });

  // --- the stream -------------------------------------------------------------------------
  function setState(state, text) {
    if (!liveState) return;
    liveState.dataset.state = state;
    liveState.textContent = text;
  }

  const EVENTS = [
    "alert.opened",
    "alert.updated",
    "alert.acknowledged",
    "alert.resolved",
    "alert.escalated",
  ];

  function connect() {
    const source = new EventSource(stream);
    source.addEventListener("open", () => setState("live", "live"));
    source.addEventListener("ready", (event) => {
      setState("live", "live");
      const startsAt = Number(JSON.parse(event.data).last_event_id || 0);
      if (startsAt > lastSeen) {
        lastSeen = startsAt; // changes came between the page and the stream: reload the rows
        reloadRows();
      }
    });
    for (const type of EVENTS) {
      source.addEventListener(type, (event) => {
        const id = Number(event.lastEventId || 0);
        if (id && id <= lastSeen) return;
        if (id) lastSeen = id;
        const payload = JSON.parse(event.data);
        const raised =
          type === "alert.opened" || (type === "alert.updated" && "severity" in payload.changes);
        refreshInTurn(payload.alert.id, raised);
      });
    }
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // refused (signed out, or the server's log was reset): start again in a while
        setState("reconnecting", "reconnecting…");
        source.close();
        window.setTimeout(() => reloadRows().finally(connect), 5000);
      } else {
        setState("reconnecting", "reconnecting…");
      }
    });
  }

  showCount();
  if (stream) connect();
})();
