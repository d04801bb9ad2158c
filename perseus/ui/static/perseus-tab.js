// perseus ui: live charts in Locust's PERSEUS tab, and the start form's fixed user count.
//
// Served by perseus itself (/perseus/static/perseus-tab.js) and added to Locust's page, so the UI works
// offline: no CDN, no charting library, only SVG drawn here. Every figure comes from perseus's own
// records through /perseus/stats.json ("series": one point per 10 s window of completions per tenant);
// nothing is computed here but the scale of the axes.
(function () {
  "use strict";

  const POLL_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 520;
  const H = 170;
  const PAD = { left: 46, right: 10, top: 24, bottom: 24 };
  const COLORS = { p50: "#2e86c1", p99: "#c0392b", rps: "#1e8449", line: "#555" };
  let latest = null;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const step = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
    return 10 * step;
  }

  // One chart: lines of [t, value] points, and dashed reference lines (the SLA, the target rate).
  function chart(title, unit, lines, references, xMax) {
    const values = lines.flatMap((l) => l.points.map((p) => p[1])).concat(references.map((r) => r.value));
    const yMax = niceMax(Math.max(0, ...values.filter((v) => v !== null && isFinite(v))) * 1.1);
    const x = (t) => PAD.left + (t / xMax) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "perseus-svg" });
    root.appendChild(svg("text", { x: PAD.left, y: 14, class: "perseus-title" }, title));
    for (const frac of [0, 0.5, 1]) {
      const v = yMax * frac;
      root.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "perseus-grid" }));
      root.appendChild(svg("text", { x: PAD.left - 4, y: y(v) + 4, class: "perseus-tick", "text-anchor": "end" },
        `${+v.toPrecision(3)}`));
    }
    for (const t of [0, xMax / 2, xMax]) {
      root.appendChild(svg("text", { x: x(t), y: H - 6, class: "perseus-tick", "text-anchor": "middle" },
        `${Math.round(t)} s`));
    }
    for (const r of references) {
      if (r.value === null || !isFinite(r.value)) continue;
      root.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(r.value), y2: y(r.value),
        stroke: COLORS.line, "stroke-dasharray": "5 4", class: "perseus-reference" }));
      root.appendChild(svg("text", { x: W - PAD.right, y: y(r.value) - 4, class: "perseus-tick",
        "text-anchor": "end" }, r.label));
    }
    let drawn = 0;
    let legendX = W - PAD.right;
    for (const line of lines.slice().reverse()) {
      const label = svg("text", { x: legendX, y: 14, fill: line.color, class: "perseus-legend", "text-anchor": "end" },
        line.label);
      root.appendChild(label);
      legendX -= 8 + 7 * line.label.length;
      const points = line.points.filter((p) => p[1] !== null && isFinite(p[1]));
      drawn += points.length;
      if (points.length > 1) {
        root.appendChild(svg("polyline", { points: points.map((p) => `${x(p[0])},${y(p[1])}`).join(" "),
          fill: "none", stroke: line.color, "stroke-width": 2 }));
      }
      for (const p of points) root.appendChild(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: line.color }));
    }
    root.setAttribute("data-points", String(drawn));
    root.appendChild(svg("text", { x: 4, y: PAD.top - 4, class: "perseus-tick" }, unit));
    return root;
  }

  function tenantBlock(s, xMax) {
    const block = document.createElement("div");
    block.className = "perseus-chart";
    block.dataset.tenant = s.tenant;
    const head = document.createElement("div");
    head.className = "perseus-chart-head";
    head.textContent = s.tenant;
    block.appendChild(head);
    const pts = (key) => s.windows.map((w) => [w.t, w[key]]);
    block.appendChild(chart("latency per 10 s window", "ms",
      [{ label: "p50", color: COLORS.p50, points: pts("p50") }, { label: "p99", color: COLORS.p99, points: pts("p99") }],
      [{ value: s.sla_ms, label: `SLA p${s.sla_percentile} ≤ ${s.sla_ms} ms` }], xMax));
    block.appendChild(chart("throughput against target", "req/s",
      [{ label: "completed/s", color: COLORS.rps, points: pts("rps") }],
      s.target_rps === null ? [] : [{ value: s.target_rps, label: `target ${+s.target_rps.toPrecision(3)}/s` }], xMax));
    return block;
  }

  function perseusTabShown() {
    const tab = document.querySelector('[role="tab"][aria-selected="true"]');
    return !!tab && /perseus/i.test(tab.textContent || "");
  }

  // The charts go above the exact-statistics table of the tab (Locust's own table component).
  function mountCharts() {
    const existing = document.getElementById("perseus-charts");
    if (!perseusTabShown()) {
      if (existing) existing.remove();
      return;
    }
    const table = document.querySelector("main table, table");
    if (!table) return;
    table.classList.add("perseus-tab-table");
    const anchor = table.closest(".MuiTableContainer-root, .MuiPaper-root") || table;
    let box = existing;
    if (!box || box.nextElementSibling !== anchor) {
      if (box) box.remove();
      box = document.createElement("div");
      box.id = "perseus-charts";
      anchor.parentElement.insertBefore(box, anchor);
    }
    if (!latest || !latest.series) return;
    const stamp = JSON.stringify(latest.series);
    if (box.dataset.stamp === stamp) return;
    box.dataset.stamp = stamp;
    const xMax = Math.max(10, latest.duration_s || 0, ...latest.series.flatMap((s) => s.windows.map((w) => w.t)));
    box.replaceChildren(...latest.series.map((s) => tenantBlock(s, xMax)));
  }

  // Each tenant has exactly one dispatcher user, which replays the tenant's schedule: the user count
  // and ramp-up are not knobs here, so their (disabled, "0") fields give way to one line saying so.
  function fixStartForm() {
    for (const name of ["userCount", "spawnRate"]) {
      const input = document.querySelector(`input[name="${name}"]`);
      if (!input) continue;
      const field = input.closest(".MuiFormControl-root, .MuiTextField-root") || input.parentElement;
      if (field.style.display !== "none") field.style.display = "none";
      if (name !== "userCount") continue;
      let note = document.getElementById("perseus-fixed-users");
      if (!note) {
        note = document.createElement("p");
        note.id = "perseus-fixed-users";
        note.className = "perseus-note";
        field.parentElement.insertBefore(note, field);
      }
      const n = latest && latest.series ? latest.series.length : null;
      const text = `Users are fixed: one dispatcher per tenant${n ? ` (${n} in all)` : ""} replays its ` +
        "schedule from the scenario, so there is no user count or ramp-up to set.";
      if (note.textContent !== text) note.textContent = text; // the count once the first statistics arrive
    }
  }

  function style() {
    const css = document.createElement("style");
    css.textContent = `
      #perseus-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 12px;
                        margin: 8px 0 16px; }
      .perseus-chart { border: 1px solid rgba(128,128,128,.35); border-radius: 6px; padding: 6px 8px; min-width: 0; }
      .perseus-chart-head { font-weight: 600; margin-bottom: 2px; }
      .perseus-svg { width: 100%; height: auto; display: block; font-family: inherit; }
      .perseus-title { font-size: 12px; fill: currentColor; }
      .perseus-tick { font-size: 10px; fill: currentColor; opacity: .75; }
      .perseus-legend { font-size: 11px; font-weight: 600; }
      .perseus-grid { stroke: rgba(128,128,128,.3); }
      .perseus-note { margin: 0; font-size: .9rem; opacity: .85; }
      table.perseus-tab-table { table-layout: auto; width: 100%; }
      table.perseus-tab-table th, table.perseus-tab-table td { padding: 6px 8px; white-space: normal;
                                                              font-size: .8rem; overflow-wrap: anywhere; }
    `;
    document.head.appendChild(css);
  }

  function refresh() {
    fixStartForm();
    mountCharts();
  }

  async function poll() {
    try {
      const response = await fetch("./perseus/stats.json", { cache: "no-store", credentials: "same-origin" });
      if (response.ok) latest = await response.json();
    } catch (e) {
      // the server is gone (the process ended): keep the last charts
    }
    refresh();
  }

  function start() {
    style();
    new MutationObserver(refresh).observe(document.body, { childList: true, subtree: true });
    poll();
    setInterval(poll, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
