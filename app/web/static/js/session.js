// The live page of a dosing session (templates/session.html).
//
// - The alerts come from the API's alert stream (EventSource on /api/v1/alerts/stream, the
//   session cookie authenticates; the browser resumes it with Last-Event-ID). Each event of
//   this session refreshes the alerts panel in place (htmx, the page's own fragment).
// - The readings come from the API's list (GET /api/v1/dosing-sessions/{id}/vital-readings),
//   read again on each event of this session and every POLL_MS besides: a reading that raises
//   no alert still reaches the chart, and nothing depends on having seen an event.
// - "live" / "reconnecting" says whether the stream is connected.
"use strict";

(function () {
  const POLL_MS = 10000;
  const STATUS_MS = 30000;  // the schedule and the dose gate change with the clock too
  const REOPEN_MS = 3000;
  const EVENT_TYPES = ["alert.opened", "alert.updated", "alert.acknowledged", "alert.resolved",
    "alert.escalated"];
  const COLOURS = { SYSBP: "#a4161a", DIABP: "#1d4f91", PULSE: "#6b3fa0", TEMP: "#8a3b00",
    OXYSAT: "#1e6b35" };
  const LIMIT_COLOURS = { critical: "#a4161a", warning: "#8a6d00", info: "#1d4f91" };
  // The charts: blood pressure together, then one per measure.
  const PANELS = [
    { key: "bp", title: "Blood pressure (mmHg)", codes: ["SYSBP", "DIABP"] },
    { key: "pulse", title: "Heart rate (beats/min)", codes: ["PULSE"] },
    { key: "temp", title: "Temperature (C)", codes: ["TEMP"] },
    { key: "spo2", title: "SpO2 (%)", codes: ["OXYSAT"] },
  ];

  const holder = document.getElementById("charts");
  if (!holder) return;
  const config = JSON.parse(holder.dataset.config);
  const measures = Object.fromEntries(config.measures.map((m) => [m.code, m]));
  const latest = document.getElementById("latest");
  const liveState = document.getElementById("live-state");

  // --- time since the initial dose, ticking from the server's clock --------------------------
  const since = document.getElementById("since-dose");
  if (since) {
    const dosedAt = Date.parse(since.getAttribute("datetime"));
    const skew = Date.parse(since.dataset.serverNow) - Date.now();
    const until = since.dataset.until ? Date.parse(since.dataset.until) : null;
    const tick = () => {
      const now = until !== null ? until : Date.now() + skew;
      const seconds = Math.max(0, Math.floor((now - dosedAt) / 1000));
      const h = Math.floor(seconds / 3600);
      const m = Math.floor((seconds % 3600) / 60);
      const s = seconds % 60;
      since.textContent = `${h} h ${String(m).padStart(2, "0")} min ${String(s).padStart(2, "0")} s`;
    };
    tick();
    if (until === null) window.setInterval(tick, 1000);
  }

  // --- the charts ----------------------------------------------------------------------------
  const doses = config.doses.map((d) => ({ ...d, t: Date.parse(d.at) / 1000 }));
  const charts = [];

  function limitLines(codes) {
    return codes.flatMap((code) => measures[code].limits.map((limit) => ({ ...limit, code })));
  }

  function drawMarks(u, lines) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    ctx.lineWidth = devicePixelRatio;
    ctx.textBaseline = "bottom";
    ctx.textAlign = "right";  // the limits labelled at the right end, the doses at the top
    for (const line of lines) {
      const y = u.valToPos(line.value, "y", true);
      if (y < top || y > top + height) continue;
      ctx.strokeStyle = ctx.fillStyle = LIMIT_COLOURS[line.severity] || "#4a5565";
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.fillText(`${line.code} ${line.op} ${line.value}`, left + width - 4 * devicePixelRatio, y - 2 * devicePixelRatio);
    }
    ctx.setLineDash([]);
    ctx.textAlign = "left";
    ctx.strokeStyle = ctx.fillStyle = "#1b2430";
    for (const dose of doses) {
      const x = u.valToPos(dose.t, "x", true);
      if (x < left || x > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.fillText(`${dose.kind} ${dose.amount_mg} mg`, x + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
    }
    ctx.restore();
  }

  function yRange(lines) {
    return (u, min, max) => {
      const values = lines.map((l) => l.value);
      if (min !== null && min !== undefined) values.push(min, max);
      if (!values.length) return [0, 1];
      const lo = Math.min(...values);
      const hi = Math.max(...values);
      const pad = Math.max(1, (hi - lo) * 0.08);
      return [Math.floor(lo - pad), Math.ceil(hi + pad)];
    };
  }

  function width() {
    return Math.max(280, holder.clientWidth - 8);
  }

  function build() {
    for (const panel of PANELS) {
      const figure = document.createElement("figure");
      figure.className = "chart";
      const caption = document.createElement("figcaption");
      caption.textContent = panel.title;
      const plot = document.createElement("div");
      plot.setAttribute("role", "img");
      plot.setAttribute("aria-label", `${panel.title} over the session, with the protocol's limits and the doses`);
      figure.append(caption, plot);
      holder.append(figure);
      const lines = limitLines(panel.codes);
      const opts = {
        width: width(),
        height: 180,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), config.timezone),
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true }, y: { range: yRange(lines) } },
        axes: [{ stroke: "#4a5565" }, { stroke: "#4a5565", size: 48 }],
        series: [{}, ...panel.codes.map((code) => ({
          label: measures[code].name,
          stroke: COLOURS[code],
          width: 2,
          points: { show: true, size: 5 },
          spanGaps: true,
        }))],
        hooks: { draw: [(u) => drawMarks(u, lines)] },
      };
      charts.push({ panel, chart: new uPlot(opts, [[], ...panel.codes.map(() => [])], plot) });
    }
    let drawnWidth = width();
    new ResizeObserver(() => {
      if (width() === drawnWidth) return;
      drawnWidth = width();
      for (const { chart } of charts) chart.setSize({ width: drawnWidth, height: 180 });
    }).observe(holder);
  }

  function show(readings) {
    const valid = readings.filter((r) => r.record_status === "valid");
    for (const { panel, chart } of charts) {
      const rows = valid.filter((r) => panel.codes.some((code) => r[measures[code].field] !== null));
      const xs = rows.map((r) => Date.parse(r.measured_at) / 1000);
      const ys = panel.codes.map((code) => rows.map((r) => r[measures[code].field]));
      chart.setData([xs, ...ys]);
    }
    const last = valid[valid.length - 1];
    if (!last) {
      latest.textContent = "No readings yet.";
      return;
    }
    const at = new Date(last.measured_at).toLocaleTimeString("en-US", {
      timeZone: config.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      timeZoneName: "short",
    });
    const parts = config.measures
      .filter((m) => last[m.field] !== null)
      .map((m) => `${m.name} ${last[m.field]} ${m.unit}`);
    latest.textContent = `Latest reading, ${at}: ${parts.join(", ")} (${valid.length} readings).`;
  }

  // --- reading the readings (the API's list, page by page) ----------------------------------
  let seen = "";
  let reading = null;

  async function fetchReadings() {
    const items = [];
    let cursor = null;
    do {
      const url = new URL(config.readings_url, window.location.origin);
      url.searchParams.set("limit", "500");
      if (cursor) url.searchParams.set("cursor", cursor);
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`readings: ${response.status}`);
      const page = await response.json();
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  function refreshReadings() {
    if (reading) return reading;
    reading = fetchReadings()
      .then((items) => {
        const key = items.map((r) => `${r.id}:${r.record_status}`).join(",");
        if (key !== seen) {
          const first = seen === "";
          seen = key;
          show(items);
          if (!first) htmx.trigger(document.body, "vigil:session");
        }
      })
      .catch(() => { /* the server is away: the stream's state says so; the next poll retries */ })
      .finally(() => { reading = null; });
    return reading;
  }

  // --- the alert stream ----------------------------------------------------------------------
  function setState(state, text) {
    if (!liveState) return;
    liveState.dataset.state = state;
    liveState.textContent = text;
  }

  let lastEventId = null;
  let source = null;

  function onEvent(event) {
    lastEventId = event.lastEventId || lastEventId;
    let data = null;
    try { data = JSON.parse(event.data); } catch (_) { return; }
    if (data && data.alert && data.alert.dosing_session_id === config.session_id) {
      htmx.trigger(document.body, "vigil:alerts");
      refreshReadings();
    }
  }

  function open() {
    const url = new URL("/api/v1/alerts/stream", window.location.origin);
    if (lastEventId !== null) url.searchParams.set("after", lastEventId);
    source = new EventSource(url);
    source.addEventListener("ready", (event) => {
      const first = lastEventId === null;
      lastEventId = event.lastEventId || lastEventId;
      setState("live", "Live");
      if (!first) {  // back after a break: catch up on what the panels may have missed
        htmx.trigger(document.body, "vigil:alerts");
        refreshReadings();
      }
    });
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.addEventListener("error", (event) => {
      if (event.data) {  // the server ended the stream (sign-in ended): say so, do not retry
        source.close();
        setState("reconnecting", "Not live: sign in again");
        return;
      }
      setState("reconnecting", "Reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        // refused outright (e.g. while the server starts): the browser gives up, so do we not
        window.setTimeout(open, REOPEN_MS);
      }
    });
  }

  // The alerts panel is replaced whenever an alert changes: what someone was typing in it (a
  // note, a resolution), and where they were, is put back, except in the form just sent.
  let kept = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!target || target.id !== "alerts") return;
    const status = event.detail.xhr.status;
    if (status === 409 || status === 422) {  // a refused acknowledge or resolve: show why
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
    const sent = event.detail.requestConfig && event.detail.requestConfig.elt;
    const active = document.activeElement;
    kept = {
      focus: active && active.id && target.contains(active) && !(sent && sent.contains(active)) ? active.id : null,
      values: [...target.querySelectorAll("input[id]")]
        .filter((input) => input.type !== "hidden" && input.value && !(sent && sent.contains(input)))
        .map((input) => [input.id, input.value]),
    };
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (!kept) return;
    for (const [id, value] of kept.values) {
      const input = document.getElementById(id);
      if (input && !input.value) input.value = value;
    }
    const focus = kept.focus && document.getElementById(kept.focus);
    if (focus) focus.focus();
    kept = null;
  });

  build();
  refreshReadings();
  // Not while the stream says the server is away: the requests would only fail (the stream's
  // "ready" catches up once it is back).
  const away = () => liveState !== null && liveState.dataset.state === "reconnecting";
  window.setInterval(() => { if (!away()) refreshReadings(); }, POLL_MS);
  window.setInterval(() => { if (!away()) htmx.trigger(document.body, "vigil:session"); }, STATUS_MS);
  if (liveState) open();
})();
