// Shared helpers of the ivr-router pages: JSON requests that carry the CSRF token.
"use strict";
window.ivr = (function () {
  const token = () => document.querySelector('meta[name="csrf-token"]').content;

  async function send(method, url, body) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json",
                 "X-CSRF-Token": token() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) {
      throw new Error(data.error || (response.status + " " + response.statusText));
    }
    return data;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin",
                                        headers: { "Accept": "application/json" } });
    if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
    return response.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") { node.className = v; } else if (k.startsWith("on")) {
        node.addEventListener(k.slice(2), v);
      } else { node.setAttribute(k, v); }
    }
    for (const c of children) {
      if (c === null || c === undefined) { continue; }
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "–"; }
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : m + ":" + ss;
  }

  function percent(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }

  return { post: (url, body) => send("POST", url, body || {}), getJSON, el, duration, percent };
})();
