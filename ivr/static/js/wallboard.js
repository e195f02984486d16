// The supervisor wallboard: queues, agents, calls and alerts over Server-Sent Events.
"use strict";
(function () {
  const { el, duration, percent, getJSON } = window.ivr;
  const $ = (id) => document.getElementById(id);
  let view = null, skew = 0, chart = null, chartAt = 0;
  const now = () => Date.now() / 1000 + skew;

  function rows(tbody, items, row) {
    tbody.replaceChildren(...items.map(row));
  }

  function show(data) {
    view = data;
    skew = data.now - Date.now() / 1000;
    const alerts = [];
    rows($("queues").tBodies[0], data.queues, (q) => {
      for (const a of q.alerts) { alerts.push(q.queue + ": " + a); }
      const states = Object.entries(q.agents).map(([s, n]) => n + " " + s.replace("_", "-")).join(", ");
      return el("tr", { "data-queue": q.queue },
        el("th", { scope: "row" }, q.queue), el("td", {}, q.waiting),
        el("td", { "data-since": q.oldest_enqueued_at === null ? "" : q.oldest_enqueued_at }, "–"),
        el("td", {}, percent(q.service_level) + " (" + percent(q.target) + " in " + q.threshold_seconds + " s)"),
        el("td", {}, q.asa_seconds === null ? "–" : q.asa_seconds.toFixed(1) + " s"),
        el("td", {}, q.offered), el("td", {}, q.answered),
        el("td", {}, q.abandoned + (q.abandon_rate === null ? "" : " (" + percent(q.abandon_rate) + ")")),
        el("td", {}, states || "–"));
    });
    $("alerts").replaceChildren(...(alerts.length ? alerts.map((a) => el("p", { class: "alert", role: "alert" }, a))
      : [el("p", { class: "muted" }, "None.")]));
    rows($("agents").tBodies[0], data.agents, (a) => el("tr", { "data-agent": a.id },
      el("th", { scope: "row" }, a.name || a.id),
      el("td", {}, el("span", { class: "badge state-" + a.state }, a.state.replace("_", "-"))),
      el("td", { "data-since": a.state_since }, "–"), el("td", {}, a.calls.join(", ") || "–")));
    rows($("calls").tBodies[0], data.calls, (c) => el("tr", {},
      el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => explain(c.id) }, "Explain " + c.id.slice(0, 10))),
      el("td", {}, c.queue), el("td", {}, c.state), el("td", {}, c.agent_id || "–"),
      el("td", { "data-since": c.enqueued_at }, "–")));
    tick();
    if (Date.now() - chartAt > 10000) { chartAt = Date.now(); charts(); }
    document.body.dataset.updated = String(data.now);
  }

  async function explain(callId) {
    const box = $("explain");
    try {
      const data = await getJSON("/wallboard/calls/" + encodeURIComponent(callId));
      box.replaceChildren(el("h3", {}, "Why call " + callId + " went where it did"),
        el("p", {}, "IVR path: " + (data.path.join(" → ") || "–")),
        el("pre", {}, data.explain.join("\n")));
    } catch (err) {
      box.replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
    }
  }

  async function charts() {
    const data = await getJSON("/wallboard/intervals");
    const labels = data.intervals.map((i) => i.interval);
    const sets = [
      { type: "bar", label: "offered", data: data.intervals.map((i) => i.offered), yAxisID: "y" },
      { type: "bar", label: "answered", data: data.intervals.map((i) => i.answered), yAxisID: "y" },
      { type: "bar", label: "abandoned", data: data.intervals.map((i) => i.abandoned), yAxisID: "y" },
      { type: "line", label: "service level %", yAxisID: "sl",
        data: data.intervals.map((i) => i.service_level === null ? null : 100 * i.service_level) },
    ];
    if (chart) { chart.data.labels = labels; chart.data.datasets = sets; chart.update(); return; }
    chart = new window.Chart($("day-chart"), {
      data: { labels: labels, datasets: sets },
      options: { animation: false, scales: {
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "calls" } },
        sl: { position: "right", min: 0, max: 100, title: { display: true, text: "service level %" } } } },
    });
  }

  function tick() {
    for (const node of document.querySelectorAll("[data-since]")) {
      const t = parseFloat(node.dataset.since);
      node.textContent = isNaN(t) ? "–" : duration(now() - t);
    }
  }

  const source = new EventSource("/wallboard/events");
  source.addEventListener("update", (e) => { $("live").textContent = "Live"; show(JSON.parse(e.data)); });
  source.addEventListener("error", () => { $("live").textContent = "Reconnecting…"; });
  setInterval(tick, 1000);
})();
