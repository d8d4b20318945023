// The iuie page: posts to /v1/extract and draws the answer (no build step, no libraries).
"use strict";

const PALETTE = ["#ffd27f", "#9fd8ff", "#b9f0a8", "#ffb3c7", "#d9c2ff", "#ffe9a3", "#a6f0e0", "#ffc9a0", "#c9d6ff", "#e2f5a0"];
const colours = new Map();
const $ = (id) => document.getElementById(id);

function colour(type) {
  if (!colours.has(type)) colours.set(type, PALETTE[colours.size % PALETTE.length]);
  return colours.get(type);
}

function names(value) {
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

function element(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function offsets(pos) {
  return pos ? `${pos[0]}–${pos[1]}` : "not in text";
}

// Every mention of a result with offsets: {start, end, label, kind, key}. key identifies it for arcs.
function mentionsOf(result) {
  const out = [];
  const add = (m, label, kind) => {
    if (!m.pos) return null;
    const key = `${m.pos[0]}:${m.pos[1]}`;
    let found = out.find((x) => x.key === key);
    if (!found) { found = { start: m.pos[0], end: m.pos[1], labels: [], kind, key }; out.push(found); }
    if (!found.labels.includes(label)) found.labels.push(label);
    if (kind === "trigger") found.kind = "trigger";
    return key;
  };
  for (const e of result.entities || []) add(e, e.type, "entity");
  for (const r of result.relations || []) { add(r.head, "head", "entity"); add(r.tail, "tail", "entity"); }
  for (const ev of result.events || []) {
    if (ev.pos) add({ pos: ev.pos }, ev.type, "trigger");
    for (const a of ev.arguments) add(a, a.role, "argument");
  }
  out.sort((a, b) => a.start - b.start || b.end - a.end);
  return out;
}

// The text with non-overlapping highlighted spans (an overlapped mention is listed below, not drawn).
function drawText(result) {
  const doc = $("doc");
  doc.textContent = "";
  const text = result.text;
  let pos = 0;
  for (const m of mentionsOf(result)) {
    if (m.start < pos) continue;
    if (m.start > pos) doc.appendChild(document.createTextNode(text.slice(pos, m.start)));
    const label = m.labels.join(" / ");
    const span = element("mark", {
      class: `mention ${m.kind}`,
      "data-start": String(m.start),
      "data-end": String(m.end),
      "data-key": m.key,
      "data-type": label,
      title: `${label} · characters ${m.start}–${m.end}`,
      style: `background:${colour(m.labels[0])}`,
    });
    span.appendChild(element("span", { class: "text" }, text.slice(m.start, m.end)));
    span.appendChild(element("span", { class: "tag" }, label));
    doc.appendChild(span);
    pos = m.end;
  }
  if (pos < text.length) doc.appendChild(document.createTextNode(text.slice(pos)));
}

// Relations and event arguments as arcs above the text, from one mention to another.
function drawArcs(result) {
  const svg = $("arcs");
  svg.textContent = "";
  const ns = "http://www.w3.org/2000/svg";
  const box = $("doc-wrap").getBoundingClientRect();
  const at = (pos) => pos && document.querySelector(`#doc mark[data-key="${pos[0]}:${pos[1]}"] .text`);
  const links = [];
  for (const r of result.relations || []) links.push([at(r.head.pos), at(r.tail.pos), r.type]);
  for (const ev of result.events || []) for (const a of ev.arguments) links.push([at(ev.pos), at(a.pos), a.role]);
  const defs = document.createElementNS(ns, "defs");
  defs.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#24313f"/></marker>';
  svg.appendChild(defs);
  links.forEach(([from, to, label], i) => {
    if (!from || !to || from === to) return;
    const a = from.getBoundingClientRect();
    const b = to.getBoundingClientRect();
    const x1 = a.left + a.width / 2 - box.left, y1 = a.top - box.top - 2;
    const x2 = b.left + b.width / 2 - box.left, y2 = b.top - box.top - 2;
    const lift = 18 + 10 * (i % 3);
    const top = Math.min(y1, y2) - lift;
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", `M${x1},${y1} C${x1},${top} ${x2},${top} ${x2},${y2}`);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "#24313f");
    path.setAttribute("stroke-width", "1.5");
    path.setAttribute("marker-end", "url(#arrow)");
    path.setAttribute("class", "arc");
    svg.appendChild(path);
    const tag = document.createElementNS(ns, "text");
    tag.setAttribute("x", String((x1 + x2) / 2));
    tag.setAttribute("y", String(top + 4));
    tag.setAttribute("text-anchor", "middle");
    tag.setAttribute("font-size", "12");
    tag.setAttribute("fill", "#24313f");
    tag.setAttribute("paint-order", "stroke");
    tag.setAttribute("stroke", "#fff");
    tag.setAttribute("stroke-width", "3");
    tag.textContent = label;
    svg.appendChild(tag);
  });
}

function table(caption, head, rows) {
  const wrap = element("div");
  wrap.appendChild(element("h2", {}, caption));
  if (!rows.length) { wrap.appendChild(element("p", { class: "muted" }, "none found")); return wrap; }
  const t = element("table");
  const tr = element("tr");
  for (const h of head) tr.appendChild(element("th", {}, h));
  t.appendChild(tr);
  for (const row of rows) {
    const r = element("tr");
    row.forEach((cell, i) => r.appendChild(element("td", head[i].startsWith("offsets") ? { class: "off" } : {}, cell)));
    t.appendChild(r);
  }
  wrap.appendChild(t);
  return wrap;
}

function drawLists(result) {
  const lists = $("lists");
  lists.textContent = "";
  if (result.task === "ner") {
    lists.appendChild(table("Entities", ["type", "mention", "offsets"],
      result.entities.map((e) => [e.type, e.name, offsets(e.pos)])));
  } else if (result.task === "re") {
    lists.appendChild(table("Relations", ["head", "offsets (head)", "relation", "tail", "offsets (tail)"],
      result.relations.map((r) => [r.head.name, offsets(r.head.pos), r.type, r.tail.name, offsets(r.tail.pos)])));
  } else {
    const rows = [];
    for (const ev of result.events) {
      const args = ev.arguments.map((a) => `${a.role}: ${a.name} (${offsets(a.pos)})`).join("; ");
      rows.push([ev.type, ev.trigger, offsets(ev.pos), args || "—"]);
    }
    lists.appendChild(table("Events", ["type", "trigger", "offsets (trigger)", "arguments"], rows));
  }
  const notes = [];
  if (result.unaligned) notes.push(`${result.unaligned} mention(s) found nowhere in the text`);
  if (result.cut) notes.push(`${result.cut} window(s) cut or output(s) at the decode limit`);
  if (result.malformed) notes.push(`${result.malformed} output piece(s) could not be read`);
  if (notes.length) lists.appendChild(element("p", { class: "muted", id: "notes" }, notes.join(" · ")));
}

function drawLegend(result) {
  const legend = $("legend");
  legend.textContent = "";
  const types = new Set(mentionsOf(result).flatMap((m) => m.labels));
  for (const t of types) legend.appendChild(element("span", { style: `background:${colour(t)}` }, t));
}

async function submit(event) {
  event.preventDefault();
  const task = $("task").value;
  const body = { text: $("text").value, task, labels: names($("labels").value), constrained: $("constrained").checked };
  if (task === "ee") body.roles = names($("roles").value);
  $("error").hidden = true;
  $("submit").disabled = true;
  $("status").textContent = "extracting…";
  try {
    const response = await fetch("/v1/extract", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      const problems = (answer.problems || []).map((p) => `${p.field}: ${p.message}`).join("; ");
      throw new Error(`${answer.error || response.status}${problems ? " — " + problems : ""}`);
    }
    const result = answer.results[0];
    $("output").hidden = false;
    drawText(result);
    drawLegend(result);
    drawLists(result);
    $("raw").textContent = JSON.stringify(answer, null, 2);
    drawArcs(result);
    window.lastResult = result;
    $("status").textContent = `done in ${answer.seconds.toFixed(3)} s`;
    document.body.dataset.state = "done";
  } catch (e) {
    $("error").textContent = e.message;
    $("error").hidden = false;
    $("status").textContent = "";
    document.body.dataset.state = "error";
  } finally {
    $("submit").disabled = false;
  }
}

function taskChanged() {
  const ee = $("task").value === "ee";
  $("roles-box").hidden = !ee;
}

async function loadInfo() {
  try {
    const info = await (await fetch("/v1/info")).json();
    const p = info.parameters ? `${(info.parameters / 1e6).toFixed(2)}M parameters` : "";
    $("model-info").textContent = [info.checkpoint, p, `tasks: ${Object.keys(info.tasks).join(", ")}`]
      .filter(Boolean).join(" · ");
    if (!info.constrained_available) $("constrained").disabled = true;
  } catch (e) {
    $("model-info").textContent = "model info unavailable";
  }
}

$("form").addEventListener("submit", submit);
$("task").addEventListener("change", taskChanged);
window.addEventListener("resize", () => window.lastResult && drawArcs(window.lastResult));
taskChanged();
loadInfo();
