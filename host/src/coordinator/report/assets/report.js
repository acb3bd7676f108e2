"use strict";
// Draws the swarm-host report from the JSON block above. Guest text only
// ever reaches the page through textContent, text nodes and attribute
// values (never as markup), and no element that loads anything is made.
window.addEventListener("error", (e) => document.documentElement.setAttribute("data-error", String(e.message)));
(function () {
  const t0 = performance.now();
  const TASK_PAGE = 50, FINDING_PAGE = 100;
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const r = data.report, tl = data.timeline, app = document.getElementById("app");

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  const ms = (n) => (n < 1000 ? n + " ms" : (n / 1000).toFixed(n < 10000 ? 2 : 1) + " s");
  const pct = (n, of) => (of > 0 ? (100 * n) / of : 0);
  const statusWord = { completed: "completed", failed: "failed", pending: "not run", in_progress: "still running" };

  // Header and totals.
  const t = r.totals;
  app.append(
    el("h1", { text: "Team " + r.team }),
    el("p", { class: "sub" },
      el("span", { class: "badge " + (data.success ? "ok" : "bad"), text: data.success ? "success" : "failed" }),
      `${t.tasks} task(s), ${r.teammates.length} teammate(s), ${r.backend} backend, wall time ${ms(tl.span_ms)}`,
      data.verdict_line ? " — " + data.verdict_line : null),
  );
  if (r.interrupted) app.append(el("p", { class: "err", text: "Run interrupted: " + r.interrupted }));
  for (const e of r.state_errors || []) app.append(el("p", { class: "err", text: "State not saved: " + e }));
  const card = (n, label) => el("div", { class: "card" }, el("b", { text: String(n) }), el("span", { text: label }));
  const cards = el("div", { class: "cards" }, card(t.tasks, "tasks"), card(t.completed, "completed"),
    card(t.failed, "failed"), card(t.findings, "findings"), card(t.retries, "retries"), card(ms(tl.span_ms), "wall time"));
  for (const [sev, n] of data.by_severity) cards.append(card(n, sev + " findings"));
  app.append(el("h2", { text: "Totals" }), cards);
  const rules = Object.entries(t.by_rule || {});
  if (rules.length) {
    const tb = el("tbody");
    for (const [rule, n] of rules) tb.append(el("tr", null, el("td", { text: rule }), el("td", { class: "num", text: String(n) })));
    app.append(el("table", { id: "by-rule" }, el("thead", null, el("tr", null, el("th", { text: "rule" }), el("th", { text: "findings" }))), tb));
  }
  // Model usage (teams with `[models]`): in total, per teammate (the lead
  // included when it made calls) and, in each task, per task.
  const usage = r.llm_usage;
  const usageLine = (u) => `${u.calls} call(s), ${u.input_tokens} tokens in, ${u.output_tokens} out, ~$${u.usd.toFixed(4)}`;
  if (usage && usage.total && usage.total.calls > 0) {
    app.append(el("h2", { text: "Model usage" }), el("p", { id: "usage-total", text: "In total: " + usageLine(usage.total) }));
    if (r.lead_usage) app.append(el("p", { id: "usage-lead", text: "The lead (coordination): " + usageLine(r.lead_usage) }));
    const ub = el("tbody");
    for (const [who, u] of Object.entries(usage.teammates || {})) {
      ub.append(el("tr", null, el("td", { text: who }), el("td", { class: "num", text: String(u.calls) }),
        el("td", { class: "num", text: String(u.input_tokens) }), el("td", { class: "num", text: String(u.output_tokens) }),
        el("td", { class: "num", text: "$" + u.usd.toFixed(4) })));
    }
    app.append(el("table", { id: "usage" }, el("thead", null, el("tr", null,
      ...["teammate", "calls", "tokens in", "tokens out", "cost"].map((h) => el("th", { text: h })))), ub));
  }
  for (const w of r.warnings || []) app.append(el("p", { class: "muted", text: "Plan warning: " + w }));
  if (r.synthesis) app.append(el("h2", { text: "Synthesis" }), el("pre", { id: "synthesis", text: r.synthesis }));

  // The plan as the lead proposed it (each attempt, a rejected one with
  // its problems) and as validated.
  if (r.lead_plan) {
    const lp = r.lead_plan, sec = el("section", { id: "lead-plan" }, el("h2", { text: "Plan" }));
    const table = (heads, rows) => el("table", null, el("thead", null, el("tr", null, ...heads.map((h) => el("th", { text: h })))),
      el("tbody", null, ...rows.map((cells) => el("tr", null, ...cells.map((c) => el("td", { text: c }))))));
    lp.proposed.forEach((p, n) => {
      const rejected = p.problems.length > 0;
      const d = el("details", { class: "proposal " + (rejected ? "rejected" : "accepted"), "data-attempt": n + 1 },
        el("summary", { text: `As the lead proposed it, attempt ${n + 1}: ${p.tasks.length} task(s), ${rejected ? "rejected" : "validated"}` }),
        table(["task", "subject", "owner", "owns", "after"],
          p.tasks.map((x) => [x.id, x.subject, x.owner || "anyone", x.owns.join(", "), x.blocked_by.join(", ")])));
      if (rejected) d.append(el("ul", { class: "problems" }, ...p.problems.map((x) => el("li", { class: "err", text: x }))));
      sec.append(d);
    });
    sec.append(el("details", { class: "validated", open: "" },
      el("summary", { text: `As validated: ${lp.validated.length} task(s)` }),
      table(["task", "subject", "owner", "files owned", "after"], lp.validated.map((x) => [x.id, x.subject, x.owner || "anyone",
        x.files.join(", ") + (x.file_count > x.files.length ? ` and ${x.file_count - x.files.length} more` : ""), x.blocked_by.join(", ")]))));
    app.append(sec);
  }

  // Timeline.
  app.append(el("h2", { text: "Timeline" }));
  const legend = el("div", { class: "legend" }, "bars: ");
  for (const o of ["completed", "failed", "interrupted", "unfinished"]) legend.append(el("i", { class: o }), o);
  legend.append( " · dashed: a retry · yellow edge: a limit hit · hatched: idle · ✉ a message to the lead · dotted arrow: a message to a teammate");
  app.append(legend);
  let span = tl.span_ms;
  for (const lane of tl.lanes) for (const b of lane.bars) span = Math.max(span, b.end_ms);
  span = Math.max(span, 1);
  const box = el("div", { class: "tl", id: "timeline" });
  const lead = el("div", { class: "track" });
  box.append(el("div", { class: "lane lead" }, el("div", { class: "label", text: "team-lead" }), lead));
  const laneRow = new Map();
  tl.lanes.forEach((lane, i) => {
    laneRow.set(lane.teammate, i + 1);
    const track = el("div", { class: "track" });
    const idle = pct(lane.idle_ms, span).toFixed(0);
    box.append(el("div", { class: "lane", "data-teammate": lane.teammate },
      el("div", { class: "label", title: `${lane.teammate}: busy ${ms(lane.busy_ms)}, idle ${ms(lane.idle_ms)}` },
        lane.teammate + " ", el("small", { text: `idle ${idle}%` })),
      track));
    for (const b of lane.bars) {
      const task = r.tasks[b.task];
      const cls = ["bar", b.outcome, b.attempt > 1 ? "retry" : null, b.limit ? "limit" : null].filter(Boolean).join(" ");
      const tip = `${task.id} — ${task.subject}\nattempt ${b.attempt}: ${b.outcome}` +
        (b.limit ? ` (limit: ${b.limit})` : "") + `\n${ms(b.start_ms)} → ${ms(b.end_ms)}`;
      const bar = el("div", { class: cls, title: tip, tabindex: "0", "data-task": task.id, "data-index": b.task, "data-attempt": b.attempt },
        (b.attempt > 1 ? "↻" : "") + (b.limit ? "⚠" : "") + task.id);
      bar.style.left = pct(b.start_ms, span) + "%";
      bar.style.width = pct(b.end_ms - b.start_ms, span) + "%";
      track.append(bar);
    }
  });
  // One listener for every bar (there is a bar per attempt).
  const barOf = (e) => e.target.closest && e.target.closest(".bar");
  box.addEventListener("click", (e) => { const bar = barOf(e); if (bar) showTask(Number(bar.dataset.index), false); });
  box.addEventListener("keydown", (e) => { const bar = barOf(e); if (bar && e.key === "Enter") showTask(Number(bar.dataset.index), false); });
  if (tl.untimed) box.append(el("p", { class: "muted", text: `${tl.untimed} attempt(s) without a claim time are not drawn.` }));
  app.append(box);
  // Messages: a mark on the lead's lane and an arrow from the sender's.
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "arrows");
  const defs = document.createElementNS(NS, "defs"), marker = document.createElementNS(NS, "marker");
  for (const [k, v] of [["id", "head"], ["markerWidth", "8"], ["markerHeight", "8"], ["refX", "4"], ["refY", "4"], ["orient", "auto"]]) marker.setAttribute(k, v);
  const head = document.createElementNS(NS, "path");
  head.setAttribute("d", "M0,0 L8,4 L0,8 z");
  head.setAttribute("fill", "#5c6bc0");
  marker.append(head); defs.append(marker); svg.append(defs);
  for (const m of tl.messages) {
    const body = r.messages[m.index].body, x = pct(m.at_ms, span);
    const mark = el("div", { class: "msg", title: `${ms(m.at_ms)} from ${m.from}: ${body}`, "data-from": m.from,
      onclick: () => document.getElementById("message-" + m.index).scrollIntoView() }, "✉");
    mark.style.left = x + "%";
    lead.append(mark);
    const row = laneRow.get(m.from);
    if (row == null) continue;
    const line = document.createElementNS(NS, "line");
    for (const [k, v] of [["x1", x + "%"], ["x2", x + "%"], ["y1", String(row * 26 + 13)], ["y2", "20"], ["marker-end", "url(#head)"]]) line.setAttribute(k, v);
    const title = document.createElementNS(NS, "title");
    title.textContent = `${m.from} → team-lead: ${body}`;
    line.append(title);
    svg.append(line);
  }
  // Messages to teammates: an arrow from the sender's lane (the lead's for
  // `team-lead`) to the recipient's, at the time it was sent.
  const rowOf = (id) => (id === "team-lead" ? 0 : laneRow.get(id));
  for (const m of tl.sends) {
    const from = rowOf(m.from), to = rowOf(m.to);
    if (from == null || to == null || from === to) continue;
    const sent = r.traffic[m.index], x = pct(m.at_ms, span) + "%";
    const line = document.createElementNS(NS, "line");
    for (const [k, v] of [["class", "send"], ["data-from", m.from], ["data-to", m.to], ["x1", x], ["x2", x],
      ["y1", String(from * 26 + 13)], ["y2", String(to * 26 + (to > from ? 6 : 20))], ["marker-end", "url(#head)"]]) line.setAttribute(k, v);
    const title = document.createElementNS(NS, "title");
    title.textContent = `${ms(m.at_ms)} ${m.from} → ${m.to}` + (sent.summary ? ": " + sent.summary : "");
    line.append(title);
    svg.append(line);
  }
  if (r.traffic_dropped) box.append(el("p", { class: "muted", text: `${r.traffic_dropped} more message(s) between teammates are not drawn.` }));
  box.append(svg);
  const placeArrows = () => {
    const track = lead.getBoundingClientRect(), outer = box.getBoundingClientRect();
    svg.style.left = track.left - outer.left + "px";
    svg.style.width = track.width + "px";
    svg.style.height = (tl.lanes.length + 1) * 26 + "px";
  };
  placeArrows();
  window.addEventListener("resize", placeArrows);

  // Tasks, a page at a time; a task's body is built when it is opened.
  app.append(el("h2", { text: "Tasks" }));
  const filter = el("input", { type: "search", placeholder: "filter: id, subject, teammate", id: "task-filter", size: "32" });
  const status = el("select", { id: "task-status" }, el("option", { value: "", text: "any status" }),
    ...["completed", "failed", "pending", "in_progress"].map((s) => el("option", { value: s, text: statusWord[s] })));
  const pager = el("span", { class: "muted" }), prev = el("button", { text: "‹ prev" }), next = el("button", { text: "next ›" });
  app.append(el("div", { class: "controls" }, filter, status, prev, pager, next));
  const list = el("div", { id: "tasks" });
  app.append(list);
  let shown = r.tasks.map((_, i) => i), page = 0;
  function applyFilter() {
    const q = filter.value.toLowerCase(), s = status.value;
    shown = [];
    r.tasks.forEach((task, i) => {
      if (s && task.status !== s) return;
      if (q && ![task.id, task.subject, task.teammate || ""].some((x) => x.toLowerCase().includes(q))) return;
      shown.push(i);
    });
    page = 0;
    renderPage();
  }
  function renderPage() {
    const pages = Math.max(1, Math.ceil(shown.length / TASK_PAGE));
    page = Math.min(page, pages - 1);
    pager.textContent = `page ${page + 1} of ${pages} (${shown.length} task(s))`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    list.replaceChildren(...shown.slice(page * TASK_PAGE, (page + 1) * TASK_PAGE).map(taskNode));
  }
  filter.addEventListener("input", applyFilter);
  status.addEventListener("change", applyFilter);
  prev.addEventListener("click", () => { page--; renderPage(); });
  next.addEventListener("click", () => { page++; renderPage(); });

  function taskNode(i) {
    const task = r.tasks[i];
    const d = el("details", { class: "task", id: "task-" + i, "data-task": task.id },
      el("summary", null, el("span", { class: "badge " + task.status, text: statusWord[task.status] || task.status }),
        el("b", { text: task.id }), " ", task.subject,
        el("span", { class: "muted", text: ` — ${task.teammate || "unassigned"}, ${task.findings.length} finding(s)` +
          (task.attempts.length > 1 ? `, ${task.attempts.length} attempts` : "") })));
    d.addEventListener("toggle", () => { if (d.open && !d.dataset.built) { d.dataset.built = "1"; d.append(taskBody(task)); } });
    return d;
  }
  function taskBody(task) {
    const b = el("div", { class: "body" });
    b.append(el("p", null, `Owner: ${task.teammate || "unassigned"} · ${task.owned_files} owned file(s)`));
    if (task.error) b.append(el("p", { class: "err" }, "Error: " + task.error + (task.limit ? ` (limit hit: ${task.limit})` : "")));
    if (task.summary) b.append(el("p", null, "Summary: " + task.summary));
    const used = usage && usage.tasks && usage.tasks[task.id];
    if (used) b.append(el("p", { class: "usage" }, "Model usage: " + usageLine(used)));
    if (task.attempts.length) {
      const tb = el("tbody");
      task.attempts.forEach((a, n) => tb.append(el("tr", null, el("td", { class: "num", text: String(n + 1) }),
        el("td", { text: a.teammate }), el("td", { text: a.duration || "-" }), el("td", { text: a.limit || "" }),
        el("td", { text: a.interrupted ? "interrupted" : a.error || "" }))));
      b.append(el("table", { class: "attempts" }, el("thead", null, el("tr", null, ...["attempt", "teammate", "time", "limit", "error"].map((h) => el("th", { text: h })))), tb));
    }
    if (task.findings.length) {
      const tb = el("tbody"), more = el("button", { text: "show more findings" });
      let done = 0;
      const add = () => {
        for (const f of task.findings.slice(done, done + FINDING_PAGE)) {
          tb.append(el("tr", null, el("td", { class: "sev-" + f.severity, text: f.severity }),
            el("td", { text: f.file + (f.line ? ":" + f.line : "") }), el("td", { text: f.rule }), el("td", { text: f.message })));
        }
        done = Math.min(task.findings.length, done + FINDING_PAGE);
        more.hidden = done >= task.findings.length;
        more.textContent = `show more findings (${task.findings.length - done} left)`;
      };
      more.addEventListener("click", add);
      add();
      b.append(el("h3", { text: `Findings (${task.findings.length})` }),
        el("table", { class: "findings" }, el("thead", null, el("tr", null, ...["severity", "where", "rule", "message"].map((h) => el("th", { text: h })))), tb), more);
    }
    if ((task.diffs || []).length) {
      b.append(el("h3", { text: `Changed files (${task.diffs.length})` }));
      for (const f of task.diffs) {
        const pre = el("pre", { class: "diff" });
        for (const line of f.diff.split("\n")) {
          const c = line.startsWith("@@") ? "hunk" : line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : null;
          pre.append(c ? el("span", { class: c, text: line }) : line + "\n");
        }
        b.append(el("details", { class: "diff" }, el("summary", { text: f.path }), pre));
      }
    }
    if ((task.transcript || []).length) {
      const ol = el("ol", { class: "transcript" });
      for (const e of task.transcript) {
        ol.append(el("li", { class: e.kind + (e.denied ? " denied" : "") }, el("span", { class: "kind", text: e.kind.replace("_", " ") + (e.denied ? " — denied" : "") }),
          e.name ? el("b", { text: e.name }) : null, el("pre", { text: e.text })));
      }
      b.append(el("details", { class: "transcript" }, el("summary", { text: `Transcript (${task.transcript.length} entries)` }), ol));
    }
    return b;
  }
  function showTask(i, openAll) {
    if (!shown.includes(i)) { filter.value = ""; status.value = ""; shown = r.tasks.map((_, n) => n); }
    page = Math.floor(shown.indexOf(i) / TASK_PAGE);
    renderPage();
    const d = document.getElementById("task-" + i);
    d.open = true;
    if (!d.dataset.built) { d.dataset.built = "1"; d.append(taskBody(r.tasks[i])); }
    if (openAll) for (const inner of d.querySelectorAll("details")) inner.open = true;
    for (const s of document.querySelectorAll("details.task.selected")) s.classList.remove("selected");
    d.classList.add("selected");
    d.scrollIntoView({ block: "nearest" });
  }
  renderPage();

  // Messages, refused operations, teammates.
  if (r.messages.length) {
    const ol = el("ol", { id: "messages" });
    r.messages.forEach((m, i) => ol.append(el("li", { id: "message-" + i }, el("b", { text: m.from }), ": " + m.body)));
    app.append(el("h2", { text: `Messages to the lead (${r.messages.length})` }), ol);
  }
  if ((r.denials || []).length) {
    const ul = el("ul", { id: "denials" });
    for (const d of r.denials) ul.append(el("li", null, `${d.teammate} ${d.operation}${d.task ? " in task " + d.task : ""}: ${d.reason}`));
    app.append(el("h2", { text: "Refused file operations" }), ul);
  }
  const tb = el("tbody");
  for (const m of r.teammates) tb.append(el("tr", null, el("td", { text: m.id }), el("td", { text: m.group }), el("td", { text: m.state }), el("td", { text: m.exit || "" })));
  app.append(el("h2", { text: "Teammates" }), el("table", { id: "teammates" },
    el("thead", null, el("tr", null, ...["teammate", "group", "state", "exit"].map((h) => el("th", { text: h })))), tb));

  // `#task=<id>` opens that task with its diffs and transcript.
  const want = decodeURIComponent((location.hash.match(/^#task=(.*)$/) || [])[1] || "");
  if (want) { const i = r.tasks.findIndex((x) => x.id === want); if (i >= 0) showTask(i, true); }
  // For the scale figures: the script's own time and the time since
  // navigation began, in milliseconds.
  document.documentElement.setAttribute("data-script-ms", String(Math.round(performance.now() - t0)));
  document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now())));
  document.documentElement.setAttribute("data-ready", "1");
})();
