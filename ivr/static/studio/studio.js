// The flow studio's editor page: CodeMirror with the server's checks inline, the flow
// picture redrawn as the draft changes, the test caller, the impact preview, publish,
// roll back and compare. Plain JavaScript over the page's JSON endpoints.
(function () {
  "use strict";
  const root = document.getElementById("studio");
  if (!root || !window.CM) return;
  const base = root.dataset.base;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const status = (text) => { $("status").textContent = text; };
  // Timings for the browser test and the note: keystroke -> inline problems / picture.
  window.studioTimings = [];
  let editedAt = null;
  let nodeLines = {};

  async function post(path, body) {
    const r = await fetch(base + path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf,
                "Accept": "application/json"},
      body: JSON.stringify(body)});
    let data = {};
    try { data = await r.json(); } catch (e) { data = {error: r.status + " " + r.statusText}; }
    return {ok: r.ok, status: r.status, data};
  }

  // ---------------------------------------------------------------- the editor
  function text() { return view.state.doc.toString(); }

  function toDiagnostics(problems) {
    const doc = view.state.doc;
    return problems.map((p) => {
      const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
      const from = Math.min(line.from + Math.max(p.column - 1, 0), line.to);
      return {from, to: Math.max(line.to, from), severity: "error", message: p.message};
    });
  }

  function showProblems(problems) {
    const list = $("problems");
    list.replaceChildren();
    if (!problems.length) {
      const li = document.createElement("li");
      li.className = "ok";
      li.textContent = "No problems: this draft can be published.";
      list.append(li);
      return;
    }
    for (const p of problems) {
      const li = document.createElement("li");
      li.textContent = "line " + p.line + ": " + p.message;
      li.tabIndex = 0;
      li.addEventListener("click", () => jumpToLine(p.line));
      list.append(li);
    }
  }

  function jumpToLine(n) {
    const line = view.state.doc.line(Math.min(Math.max(n, 1), view.state.doc.lines));
    view.dispatch({selection: {anchor: line.from, head: line.to}, scrollIntoView: true});
    view.focus();
  }

  async function serverLint(v) {
    const started = editedAt;
    const r = await post("/validate", {text: v.state.doc.toString()});
    if (!r.ok) { status(r.data.error || "validation failed"); return []; }
    const problems = r.data.problems || [];
    showProblems(problems);
    const lintedAt = performance.now();
    if (r.data.svg) drawPicture($("picture"), r.data.svg);
    nodeLines = r.data.nodes || {};
    const drawnAt = performance.now();
    if (started !== null) {
      window.studioTimings.push({problems_ms: lintedAt - started, picture_ms: drawnAt - started,
                                 problems: problems.length});
      editedAt = null;
    }
    status(problems.length ? problems.length + " problem(s) in the draft" : "Draft is valid");
    return toDiagnostics(problems);
  }

  // Completion from the published JSON Schema: field names, and values of enums
  // (node types, input kinds, ...), where the cursor is.
  let schemaWords = null;
  fetch(root.dataset.schema, {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then((r) => r.json()).then((schema) => { schemaWords = collectSchema(schema); })
    .catch(() => { schemaWords = {keys: [], values: {}}; });

  function collectSchema(schema) {
    const keys = new Map();
    const values = {};
    const visit = (s) => {
      if (!s || typeof s !== "object") return;
      if (s.properties) {
        for (const [k, p] of Object.entries(s.properties)) {
          if (!keys.has(k)) keys.set(k, p.description || "");
          const enumOf = p.enum || (p.const !== undefined ? [p.const] : null);
          if (enumOf) values[k] = Array.from(new Set([...(values[k] || []), ...enumOf]));
          visit(p);
        }
      }
      for (const part of ["items", "additionalProperties"]) visit(s[part]);
      for (const part of ["anyOf", "oneOf", "allOf"]) (s[part] || []).forEach(visit);
      for (const d of Object.values(s.$defs || s.definitions || {})) visit(d);
    };
    visit(schema);
    return {keys: Array.from(keys, ([label, info]) => ({label, info})), values};
  }

  function complete(context) {
    if (!schemaWords) return null;
    const line = context.state.doc.lineAt(context.pos);
    const before = line.text.slice(0, context.pos - line.from);
    const valueAt = /^\s*(?:- )?([\w-]+):\s*([\w-]*)$/.exec(before);
    if (valueAt && schemaWords.values[valueAt[1]]) {
      return {from: context.pos - valueAt[2].length,
              options: schemaWords.values[valueAt[1]].map((v) => ({label: String(v), type: "enum"}))};
    }
    const keyAt = /^\s*(?:- )?([\w-]*)$/.exec(before);
    if (!keyAt || (!keyAt[1] && !context.explicit)) return null;
    return {from: context.pos - keyAt[1].length,
            options: schemaWords.keys.map((k) => ({label: k.label, type: "property",
                                                   info: k.info, apply: k.label + ": "}))};
  }

  const view = new CM.EditorView({
    parent: $("editor"),
    doc: $("source").value,
    extensions: [
      CM.basicSetup, CM.yaml(), CM.lintGutter(),
      CM.linter(serverLint, {delay: 300}),
      CM.autocompletion({override: [complete]}),
      CM.EditorView.contentAttributes.of({"aria-label": "Flow YAML"}),
      CM.EditorView.updateListener.of((u) => {
        if (u.docChanged && editedAt === null) editedAt = performance.now();
      }),
    ],
  });
  window.studioView = view;

  // ---------------------------------------------------------------- the picture
  // Node boxes in the server's SVG: Graphviz groups (<g class="node"><title>id</title>)
  // or the built-in drawing (a <rect> followed by its label, first line = id).
  function svgNodes(svg) {
    const found = new Map();
    const groups = svg.querySelectorAll("g.node");
    if (groups.length) {
      groups.forEach((g) => {
        const t = g.querySelector("title");
        if (t) found.set(t.textContent.trim(), g);
      });
      return found;
    }
    svg.querySelectorAll("rect").forEach((rect) => {
      const label = rect.nextElementSibling;
      if (label && label.tagName.toLowerCase() === "text") found.set(label.textContent.trim(), rect);
    });
    return found;
  }

  function drawPicture(figure, svgText, marks) {
    figure.innerHTML = svgText;
    const svg = figure.querySelector("svg");
    if (!svg) return;
    const nodes = svgNodes(svg);
    for (const [id, el] of nodes) {
      el.dataset.node = id;
      if (marks) for (const kind of ["added", "changed", "removed"]) {
        if ((marks[kind] || []).includes(id)) el.classList.add(kind);
      }
      const label = el.tagName.toLowerCase() === "rect" ? el.nextElementSibling : null;
      for (const target of label ? [el, label] : [el]) {
        target.addEventListener("click", () => {
          const line = nodeLines[id] || nodeLines[id.split("/")[0]];
          if (line) jumpToLine(line);
        });
      }
    }
  }

  // ---------------------------------------------------------------- buttons
  $("validate").addEventListener("click", () => { editedAt = performance.now(); CM.forceLinting(view); });

  $("publish").addEventListener("click", async () => {
    const message = $("message").value.trim();
    if (!message) { status("Write a message saying why, then publish."); $("message").focus(); return; }
    const r = await post("/publish", {text: text(), message});
    if (!r.ok) {
      if (r.data.problems) showProblems(r.data.problems);
      status(r.data.error || "publish failed");
      return;
    }
    status("Published version " + r.data.published + " (" + r.data.hash + "): new calls use it.");
    $("message").value = "";
    renderHistory(r.data.history, r.data.audit);
  });

  // ---------------------------------------------------------------- try a call
  let tryState = null;
  function say(kind, line) {
    const li = document.createElement("li");
    li.className = kind;
    li.textContent = line;
    $("transcript").append(li);
    li.scrollIntoView({block: "nearest"});
  }
  function showTurn(d) {
    for (const s of d.said || []) say("ivr", "IVR: " + s);
    if (d.nlu && d.nlu.ranked && d.nlu.ranked.length) {
      say("engine", "heard \"" + d.nlu.text + "\": " + d.nlu.ranked.map(
        (r) => r.intent + " " + r.confidence.toFixed(2)).join(", "));
    }
    for (const s of d.steps || []) say("engine", (s.node || "") + ": " + s.decision);
    if (d.route) {
      const skills = Object.entries(d.route.skills || {}).map(([k, v]) => k + ">=" + v).join(", ");
      say("engine", "Routed to queue " + d.route.queue + (skills ? " (" + skills + ")" : "") +
          ", priority " + d.route.priority + ", language " + d.route.language);
    }
    if (d.status !== "active") say("engine", "Call over: " + (d.outcome || d.status));
  }
  async function startTry() {
    $("try-panel").hidden = false;
    $("transcript").replaceChildren();
    tryState = null;
    const r = await post("/try", {text: text(), caller: $("caller").value.trim()});
    if (!r.ok) { status(r.data.error || "try failed"); if (r.data.problems) showProblems(r.data.problems); return; }
    tryState = r.data.state;
    showTurn(r.data);
    $("answer").focus();
  }
  $("try").addEventListener("click", startTry);
  $("restart").addEventListener("click", startTry);
  $("answer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!tryState) return startTry();
    const answer = $("answer").value.trim();
    $("answer").value = "";
    const keys = /^[0-9*#]+$/.test(answer);
    say("caller", "Caller: " + (answer ? (keys ? "presses " + answer : answer) : "(silence)"));
    const r = await post("/try", {text: text(), state: tryState,
                                  digits: keys ? answer : null, speech: keys ? null : answer || null});
    if (!r.ok) { status(r.data.error || "try failed"); return; }
    tryState = r.data.state;
    showTurn(r.data);
  });

  // ---------------------------------------------------------------- impact preview
  $("impact").addEventListener("click", async () => {
    status("Replaying recent calls through the published version and the draft...");
    const r = await post("/impact", {text: text(), days: Number($("days").value)});
    const body = $("impact-body");
    $("impact-panel").hidden = false;
    body.replaceChildren();
    if (!r.ok) { status(r.data.error || "impact preview failed"); return; }
    const d = r.data;
    const p = document.createElement("p");
    p.textContent = d.calls + " call(s) of the last " + d.days + " day(s) replayed; " +
      d.changed_count + " would end differently.";
    body.append(p);
    const table = document.createElement("table");
    table.innerHTML = "<thead><tr><th scope='col'>Outcome</th><th scope='col'>Published</th>" +
      "<th scope='col'>Draft</th><th scope='col'>Change</th></tr></thead>";
    const tb = document.createElement("tbody");
    for (const row of d.rows) {
      const tr = document.createElement("tr");
      for (const v of [row.outcome, row.published, row.draft, (row.change > 0 ? "+" : "") + row.change]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      tb.append(tr);
    }
    table.append(tb);
    body.append(table);
    if (d.changed.length) {
      const h = document.createElement("h3");
      h.textContent = "Calls whose outcome changes";
      const ul = document.createElement("ul");
      for (const c of d.changed) {
        const li = document.createElement("li");
        li.textContent = c.started_at + " " + c.caller + ": " + c.before + " \u2192 " + c.after +
          " (said: " + c.inputs.join(" | ") + ")";
        ul.append(li);
      }
      body.append(h, ul);
    }
    if (d.unreached.length) {
      const q = document.createElement("p");
      q.textContent = "No stored call reaches: " + d.unreached.join(", ") +
        (d.new_unreached.length ? " (new in this draft: " + d.new_unreached.join(", ") + ")" : "");
      body.append(q);
    }
    status("Impact preview ready.");
  });

  // ---------------------------------------------------------------- history, rollback, diff
  function renderHistory(history, audit) {
    const tb = $("history").querySelector("tbody");
    tb.replaceChildren();
    for (const h of history) {
      const tr = document.createElement("tr");
      if (h.live) tr.className = "live";
      for (const v of [h.version + (h.live ? " (live)" : ""), h.hash, h.author, h.created_at,
                       h.published_at || "", h.message]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      const td = document.createElement("td");
      if (!h.live) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Roll back";
        b.setAttribute("aria-label", "Roll back to version " + h.version);
        b.addEventListener("click", () => doRollback(h.version));
        td.append(b);
      }
      const live = history.find((x) => x.live);
      if (live && live.version !== h.version) {
        const c = document.createElement("button");
        c.type = "button";
        c.textContent = "Compare";
        c.setAttribute("aria-label", "Compare version " + h.version + " with the live version");
        c.addEventListener("click", () => compare(h.version, live.version));
        td.append(" ", c);
      }
      tr.append(td);
      tb.append(tr);
    }
    const ol = $("audit");
    ol.replaceChildren();
    for (const a of audit) {
      const li = document.createElement("li");
      li.textContent = a.at + " " + a.actor + " " + a.action +
        (a.version ? " version " + a.version : "") + (a.message ? ": " + a.message : "");
      ol.append(li);
    }
  }

  async function doRollback(version) {
    const r = await post("/rollback/" + version, {});
    if (!r.ok) { status(r.data.error || "rollback failed"); return; }
    status("Rolled back: version " + r.data.live + " is live for new calls.");
    view.dispatch({changes: {from: 0, to: view.state.doc.length, insert: r.data.text}});
    renderHistory(r.data.history, r.data.audit);
  }

  async function compare(a, b) {
    const r = await fetch(base + "/diff?a=" + a + "&b=" + b,
                          {credentials: "same-origin", headers: {"Accept": "application/json"}});
    const d = await r.json();
    $("diff-panel").hidden = false;
    $("diff-summary").textContent = "Version " + a + " \u2192 " + b + ": added " +
      (d.added.join(", ") || "none") + "; removed " + (d.removed.join(", ") || "none") +
      "; changed " + (d.changed.join(", ") || "none") + ".";
    $("diff-text").textContent = d.diff || "(no text differences)";
    if (d.svg) drawPicture($("diff-picture"), d.svg, {added: d.added, changed: d.changed});
    $("diff-picture-old").hidden = !(d.removed.length && d.svg_a);
    if (d.removed.length && d.svg_a) drawPicture($("diff-picture-old"), d.svg_a, {removed: d.removed});
    $("diff-panel").scrollIntoView();
  }

  const initial = JSON.parse($("initial").textContent);
  renderHistory(initial.history, initial.audit);
})();
