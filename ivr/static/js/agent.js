// The agent desktop: presence, screen pop of offers (Server-Sent Events), the call, wrap-up.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("agent-config").textContent);
  const { el, post, duration } = window.ivr;
  let view = null;
  let skew = 0;            // server clock - browser clock, seconds
  const rendered = {};     // call id -> key of what its card shows
  let muted = false;
  let device = null, activeCall = null;

  const now = () => Date.now() / 1000 + skew;
  const $ = (id) => document.getElementById(id);

  function act(url, body, errorTarget) {
    return post(url, body).catch((err) => {
      const target = errorTarget || $("presence-error");
      target.textContent = err.message;
    });
  }

  // ------------------------------------------------------------ presence
  $("go-available").addEventListener("click", () => act("/agent/presence", { state: "available" }));
  $("go-break").addEventListener("click", () =>
    act("/agent/presence", { state: "break", reason: $("reason").value }));
  $("go-offline").addEventListener("click", () => act("/agent/presence", { state: "offline" }));

  function showPresence() {
    const a = view.agent;
    const state = $("state");
    state.textContent = a.state ? a.state.replace("_", "-") : "unknown";
    state.className = "badge state-" + a.state;
    $("break-reason").textContent = view.break_reason ? "(" + view.break_reason + ")" : "";
    for (const [id, p] of [["go-available", "available"], ["go-break", "break"], ["go-offline", "offline"]]) {
      $(id).setAttribute("aria-pressed", String(a.presence === p));
    }
  }

  // ------------------------------------------------------------ screen pop
  function field(dl, term, value) {
    if (value === null || value === undefined || value === "") { return; }
    dl.append(el("dt", {}, term), el("dd", {}, value));
  }

  function trust(ctx) {
    if (ctx.trust) { return ctx.trust; }
    if (ctx.verified) { return "verified"; }
    if (ctx.identified_by) { return "recognised (" + ctx.identified_by + ")"; }
    return "unknown caller";
  }

  function contextList(call) {
    const ctx = call.context || {};
    const dl = el("dl", { class: "kv" });
    const nlu = ctx.nlu || {};
    const ranked = nlu.ranked || [];
    field(dl, "Queue", call.queue + " (priority " + call.priority + ")");
    dl.append(el("dt", {}, "Waiting"), el("dd", { "data-since": call.enqueued_at }, "–"));
    field(dl, "Caller said", nlu.text ? "“" + nlu.text + "”" : null);
    const intent = ctx.intent || (ranked[0] && ranked[0].intent);
    const conf = ranked.find((r) => r.intent === intent);
    field(dl, "Intent", intent ? intent + (conf ? " (" + Math.round(conf.confidence * 100) + "% sure)" : "") : null);
    field(dl, "Trust", trust(ctx));
    const c = ctx.customer;
    if (c) {
      field(dl, "Customer", [c.first_name, c.last_name].filter(Boolean).join(" ") +
        (c.tier ? " · " + c.tier : "") + (c.account_number ? " · account " + c.account_number : ""));
    }
    field(dl, "Caller ID", ctx.caller);
    const s = ctx.sentiment || {};
    const flags = ["frustrated", "angry", "urgent", "repeat_caller", "fraud_risk", "escalate"].filter((f) => s[f]);
    field(dl, "Sentiment", (flags.length ? flags.join(", ") : "calm") +
      (s.score !== undefined ? " (score " + s.score + ")" : ""));
    field(dl, "IVR path", (call.path || []).join(" → "));
    for (const t of ctx.transfers || []) {
      field(dl, "Transferred", "by " + t.by + " (" + t.reason + ") from " + t.from_queue +
        (t.original_intent ? ", IVR intent " + t.original_intent : ""));
    }
    return dl;
  }

  function offerCard(call) {
    const card = el("section", { class: "card", "aria-label": "Offer " + call.id, "data-call": call.id });
    card.append(el("h2", {}, "Incoming call · " + call.queue));
    card.append(contextList(call));
    card.append(el("p", {}, "Answer within ",
      el("span", { class: "countdown", "data-until": call.expires_at }, "–"), " s"));
    const err = el("p", { class: "error", role: "alert" });
    card.append(el("div", { class: "row" },
      el("button", { type: "button", onclick: () => act("/agent/calls/" + call.id + "/accept", {}, err)
        .then(() => { if (activeCall) { activeCall.accept(); } }) }, "Accept"),
      el("button", { type: "button", class: "secondary", onclick: () => act("/agent/calls/" + call.id + "/reject", {}, err)
        .then(() => { if (activeCall) { activeCall.reject(); } }) }, "Reject")));
    card.append(err);
    card.append(explain(call));
    return card;
  }

  function explain(call) {
    return el("details", {}, el("summary", {}, "Why this call came to you"),
      el("pre", {}, (call.explain || []).join("\n")));
  }

  function select(id, label, options, withEmpty) {
    const s = el("select", { id: id });
    if (withEmpty) { s.append(el("option", { value: "" }, withEmpty)); }
    for (const [value, text] of options) { s.append(el("option", { value: value }, text)); }
    return [el("label", { for: id }, label), s];
  }

  function transferForm(call) {
    const id = (n) => "t-" + n + "-" + call.id;
    const err = el("p", { class: "error", role: "alert" });
    const form = el("fieldset", {}, el("legend", {}, "Transfer"));
    const cold = el("input", { type: "radio", name: id("mode"), id: id("cold"), value: "cold", checked: "" });
    const warm = el("input", { type: "radio", name: id("mode"), id: id("warm"), value: "warm" });
    form.append(el("div", { class: "row" },
      el("span", {}, cold, el("label", { for: id("cold"), style: "display:inline" }, " Cold transfer")),
      el("span", {}, warm, el("label", { for: id("warm"), style: "display:inline" }, " Warm transfer (named agent accepts first)"))));
    const [ql, qs] = select(id("queue"), "Transfer to queue", Object.keys(cfg.queues).map((q) => [q, q]), "(the agent's queue)");
    const [al, as] = select(id("agent"), "Transfer to agent", Object.entries(cfg.agents), "(any agent of the queue)");
    const [rl, rs] = select(id("reason"), "Transfer reason", cfg.transfer_reasons.map((r) => [r, r.replace(/_/g, " ")]));
    const levels = el("div", { class: "row" });
    for (const skill of cfg.skills) {
      const input = el("input", { type: "number", min: "0", max: "5", value: "0", id: id("skill-" + skill), style: "width:4rem" });
      levels.append(el("span", {}, el("label", { for: id("skill-" + skill) }, "Level of " + skill), input));
    }
    qs.addEventListener("change", () => {
      const wanted = cfg.queues[qs.value] || {};
      for (const skill of cfg.skills) { $(id("skill-" + skill)).value = wanted[skill] || 0; }
    });
    const button = el("button", { type: "button", onclick: () => {
      const skills = {};
      for (const skill of cfg.skills) {
        const v = parseInt($(id("skill-" + skill)).value, 10);
        if (v > 0) { skills[skill] = v; }
      }
      const body = { reason: rs.value, skills: skills, mode: warm.checked ? "warm" : "cold" };
      if (qs.value) { body.queue = qs.value; }
      if (as.value) { body.agent = as.value; }
      if (!body.queue && !body.agent) { body.queue = call.queue; }
      act("/agent/calls/" + call.id + "/transfer", body, err);
    } }, "Transfer");
    form.append(ql, qs, al, as, el("p", { class: "hint" }, "Skills the next agent needs (0 = not needed):"), levels, rl, rs, button, err);
    return form;
  }

  function callCard(call, keptForm) {
    const card = el("section", { class: "card", "aria-label": "Call " + call.id, "data-call": call.id });
    card.append(el("h2", {}, "On call · " + call.queue + (call.on_hold ? " · on hold" : "")));
    if (call.consult) {
      card.append(el("p", { role: "status" }, "Warm transfer: waiting for " + call.consult.to_agent + " to accept" +
        (cfg.bridge === "conference" ? " · the caller hears hold music while " + call.consult.to_agent + "'s phone joins you" : "")));
    } else if (call.declined) {
      card.append(el("p", { role: "status", class: "error" }, "The warm transfer was declined: the call stays with you" +
        (cfg.bridge === "conference" ? " (the caller is back on the line)" : "")));
    }
    card.append(el("p", {}, "Talking for ", el("span", { "data-since": call.answered_at }, "–")));
    card.append(contextList(call));
    const err = el("p", { class: "error", role: "alert" });
    const row = el("div", { class: "row" });
    row.append(el("button", { type: "button", onclick: () =>
      act("/agent/calls/" + call.id + "/" + (call.on_hold ? "resume" : "hold"), {}, err) },
      call.on_hold ? "Resume" : "Hold"));
    const mute = el("button", { type: "button", class: "secondary", "aria-pressed": String(muted),
      onclick: () => {
        muted = !muted;
        if (activeCall) { activeCall.mute(muted); }
        mute.setAttribute("aria-pressed", String(muted));
        mute.textContent = muted ? "Unmute" : "Mute";
      } }, muted ? "Unmute" : "Mute");
    if (!cfg.softphone) { mute.disabled = true; mute.title = "Mute is a softphone control"; }
    row.append(mute);
    row.append(el("button", { type: "button", class: "danger", onclick: () => {
      if (activeCall) { activeCall.disconnect(); }
      act("/agent/calls/" + call.id + "/complete", {}, err);
    } }, "End call"));
    card.append(row, err, keptForm || transferForm(call), explain(call));
    return card;
  }

  function wrapCard(w) {
    const id = (n) => "w-" + n + "-" + w.id;
    const card = el("section", { class: "card", "aria-label": "Wrap-up " + w.id, "data-wrap": w.id });
    card.append(el("h2", {}, "Wrap-up"));
    card.append(el("p", {}, "Ends by itself in ", el("span", { "data-until": w.until }, "–"), " s",
      w.intent ? " · the IVR said: " + w.intent : ""));
    const [dl, ds] = select(id("disposition"), "Disposition", cfg.dispositions.map((d) => [d, d.replace(/_/g, " ")]));
    const [il, is] = select(id("intent"), "Corrected intent", w.intents.map((i) => [i, i]), "(the IVR was right)");
    const notes = el("textarea", { id: id("notes"), rows: "3", maxlength: "2000" });
    const err = el("p", { class: "error", role: "alert" });
    card.append(dl, ds, il, is, el("label", { for: id("notes") }, "Notes"), notes,
      el("button", { type: "button", onclick: () => act("/agent/calls/" + w.id + "/wrap-up", {
        disposition: ds.value, corrected_intent: is.value || null, notes: notes.value }, err) }, "Complete"),
      err);
    return card;
  }

  function consultCard(c) {
    const card = el("section", { class: "card", "aria-label": "Consult " + c.call_id, "data-consult": c.call_id });
    card.append(el("h2", {}, "Warm transfer from " + c.from_agent + " (" + c.reason.replace(/_/g, " ") + ")"));
    if (cfg.bridge === "conference") {
      card.append(el("p", { role: "status" }, "Your phone rings to talk with " + c.from_agent +
        " while the caller is on hold; Accept transfer keeps you with the caller, " + c.from_agent + " leaves"));
    }
    card.append(contextList({ queue: c.to_queue || "(same queue)", priority: "-", context: c.context, path: [] }));
    const err = el("p", { class: "error", role: "alert" });
    card.append(el("div", { class: "row" },
      el("button", { type: "button", onclick: () => act("/agent/consults/" + c.call_id + "/accept", {}, err) }, "Accept transfer"),
      el("button", { type: "button", class: "secondary", onclick: () => act("/agent/consults/" + c.call_id + "/decline", {}, err) }, "Decline")), err);
    return card;
  }

  function showConsults() {
    const box = $("calls");
    const wanted = new Set((view.consults || []).map((c) => c.call_id));
    for (const card of box.querySelectorAll("[data-consult]")) {
      if (!wanted.has(card.dataset.consult)) { card.remove(); }
    }
    for (const c of view.consults || []) {
      if (!box.querySelector('[data-consult="' + c.call_id + '"]')) { box.prepend(consultCard(c)); }
    }
  }

  function showCalls() {
    const box = $("calls");
    const live = new Set();
    for (const call of view.calls) {
      const key = [call.id, call.state, call.on_hold, !!call.consult, call.declined].join(":");
      live.add(call.id);
      const old = box.querySelector('[data-call="' + call.id + '"]');
      if (rendered[call.id] === key) {  // only the explanation may have grown
        const pre = old && old.querySelector("details pre");
        if (pre) { pre.textContent = (call.explain || []).join("\n"); }
        continue;
      }
      rendered[call.id] = key;
      // a connected call keeps its transfer form (and what the agent picked in it)
      const kept = old && call.state !== "reserved" ? old.querySelector("fieldset") : null;
      const card = call.state === "reserved" ? offerCard(call) : callCard(call, kept);
      if (old) { old.replaceWith(card); } else { box.append(card); }
    }
    for (const card of box.querySelectorAll("[data-call]")) {
      if (!live.has(card.dataset.call)) { delete rendered[card.dataset.call]; card.remove(); }
    }
    $("no-calls").hidden = view.calls.length > 0 || view.wrap_up.length > 0 || (view.consults || []).length > 0;
    const wraps = $("wrapups");
    const wanted = new Set(view.wrap_up.map((w) => w.id));
    for (const card of wraps.querySelectorAll("[data-wrap]")) {
      if (!wanted.has(card.dataset.wrap)) { card.remove(); }
    }
    for (const w of view.wrap_up) {
      if (!wraps.querySelector('[data-wrap="' + w.id + '"]')) { wraps.append(wrapCard(w)); }
    }
  }

  function tick() {
    if (!view) { return; }
    $("since").textContent = duration(now() - view.agent.state_since);
    for (const node of document.querySelectorAll("[data-since]")) {
      const t = parseFloat(node.dataset.since);
      node.textContent = isNaN(t) ? "–" : duration(now() - t);
    }
    for (const node of document.querySelectorAll("[data-until]")) {
      const t = parseFloat(node.dataset.until);
      node.textContent = isNaN(t) ? "–" : String(Math.max(0, Math.ceil(t - now())));
    }
  }

  function show(data) {
    view = data;
    skew = data.now - Date.now() / 1000;
    showPresence();
    showCalls();
    showConsults();
    tick();
    document.body.dataset.updated = String(data.now);
  }

  // ------------------------------------------------------------ live updates
  function connect() {
    const source = new EventSource("/agent/events");
    source.addEventListener("update", (e) => { $("live").textContent = "Live"; show(JSON.parse(e.data)); });
    source.addEventListener("error", () => { $("live").textContent = "Reconnecting…"; });
  }

  // ------------------------------------------------------------ softphone
  async function softphone() {
    if (!cfg.softphone || !window.Twilio) { return; }
    const status = $("phone-status");
    try {
      const first = await window.ivr.getJSON("/agent/token");
      device = new window.Twilio.Device(first.token, { closeProtection: true });
      device.on("registered", () => { status.textContent = "Softphone ready (client:" + first.identity + ")"; });
      device.on("error", (e) => { status.textContent = "Softphone error: " + e.message; });
      device.on("incoming", (call) => {
        activeCall = call;
        status.textContent = "Ringing: accept the offer to answer";
        call.on("disconnect", () => { activeCall = null; status.textContent = "Softphone ready"; });
      });
      device.on("tokenWillExpire", async () => {
        const fresh = await window.ivr.getJSON("/agent/token");
        device.updateToken(fresh.token);
      });
      await device.register();
    } catch (err) {
      status.textContent = "Softphone unavailable: " + err.message;
    }
  }

  setInterval(tick, 1000);
  connect();
  softphone();
})();
