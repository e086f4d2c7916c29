// attnlab explorer: a single page over the JSON API of attnlab/explorer/app.py.
// Routes (the URL hash): #/ the runs table; #/run/ID one run; #/compare/ID_A|ID_B two runs.
"use strict";

const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("attnlab-token", params.get("token"));
const TOKEN = sessionStorage.getItem("attnlab-token");
const COLOURS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700"];
const state = { sort: "started", desc: true, filter: "", selected: new Set() };

async function api(path) {
  const response = await fetch(path, { headers: TOKEN ? { "X-Attnlab-Token": TOKEN } : {} });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

function fileUrl(id, path) {
  const query = new URLSearchParams({ id, path });
  if (TOKEN) query.set("token", TOKEN);
  return `api/file?${query}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

const fmt = (v) => (typeof v !== "number" ? v : v === Math.round(v) ? String(v) : Math.abs(v) >= 1000 ? v.toFixed(1) : v.toFixed(4));
const runLink = (id) => `#/run/${encodeURIComponent(id)}`;

// ---- the runs table -------------------------------------------------------------------------
const COLUMNS = [
  ["id", "run"], ["recipe", "recipe"], ["model", "model"], ["dataset", "dataset"],
  ["status", "status"], ["started", "started"], ["seconds", "wall s"], ["metrics", "key metrics"],
];

async function showRuns(view) {
  const { root, runs } = await api("api/runs");
  document.getElementById("root").textContent = root;
  const search = el("input", { type: "search", placeholder: "filter: recipe, model, status…", id: "filter" });
  search.value = state.filter;
  const compare = el("button", { id: "compare", disabled: "" }, "compare 2 selected");
  const body = el("tbody");
  const head = el("tr", {}, el("th", {}, ""), COLUMNS.map(([key, label]) =>
    el("th", { "data-key": key, onclick: () => { state.desc = state.sort === key ? !state.desc : false; state.sort = key; draw(); } }, label)));
  const count = el("span", { id: "count" });
  view.replaceChildren(
    el("div", { class: "toolbar" }, search, compare, count),
    el("table", { id: "runs" }, el("thead", {}, head), body),
  );
  search.addEventListener("input", () => { state.filter = search.value; draw(); });
  compare.addEventListener("click", () => { location.hash = `#/compare/${[...state.selected].map(encodeURIComponent).join("|")}`; });

  function draw() {
    const words = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = runs.filter((r) => words.every((w) => [r.id, r.recipe, r.model, r.dataset, r.status].join(" ").toLowerCase().includes(w)));
    const key = (r) => (state.sort === "metrics" ? Object.values(r.metrics)[0] ?? -Infinity : r[state.sort] ?? "");
    shown.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (state.desc ? -1 : 1));
    for (const th of head.querySelectorAll("th[data-key]")) {
      th.className = th.dataset.key === state.sort ? (state.desc ? "sorted-desc" : "sorted-asc") : "";
    }
    body.replaceChildren(...shown.map((r) => {
      const box = el("input", { type: "checkbox", "aria-label": `select ${r.id}` });
      box.checked = state.selected.has(r.id);
      box.addEventListener("change", () => { box.checked ? state.selected.add(r.id) : state.selected.delete(r.id); updateCompare(); });
      const metrics = Object.entries(r.metrics).map(([k, v]) => `${k.replace(/^test\//, "")} ${fmt(v)}`).join(", ");
      return el("tr", { class: r.status === "broken" ? "broken" : "", "data-run": r.id },
        el("td", {}, box), el("td", {}, el("a", { href: runLink(r.id) }, r.id)), el("td", {}, r.recipe),
        el("td", {}, r.model), el("td", {}, r.dataset),
        el("td", { title: r.error }, el("span", { class: `status ${r.status}` }, r.status), r.error ? ` ${r.error}` : ""),
        el("td", {}, r.started), el("td", { class: "num" }, r.seconds == null ? "" : r.seconds.toFixed(0)), el("td", {}, metrics));
    }));
    count.textContent = `${shown.length} of ${runs.length} runs`;
  }
  function updateCompare() {
    compare.toggleAttribute("disabled", state.selected.size !== 2);
  }
  draw();
  updateCompare();
}

// ---- curves -----------------------------------------------------------------------------------
function chart(tag, series) {
  // series: [{name, colour, points: [[step, value], ...]}]; an SVG line chart with its ranges
  const W = 320, H = 180, P = 36;
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => P + ((x - x0) / (x1 - x0 || 1)) * (W - P - 8);
  const sy = (y) => H - 20 - ((y - y0) / (y1 - y0 || 1)) * (H - 32);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  const text = (x, y, t, anchor = "start") => {
    const node = document.createElementNS(ns, "text");
    Object.entries({ x, y, "font-size": 10, fill: "#555", "text-anchor": anchor }).forEach(([k, v]) => node.setAttribute(k, v));
    node.textContent = t; svg.append(node);
  };
  for (const s of series) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", s.points.filter((p) => Number.isFinite(p[1])).map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "));
    Object.entries({ fill: "none", stroke: s.colour, "stroke-width": 1.5 }).forEach(([k, v]) => line.setAttribute(k, v));
    svg.append(line);
  }
  text(2, 12, fmt(y1)); text(2, H - 22, fmt(y0)); text(P, H - 4, x0); text(W - 8, H - 4, x1, "end");
  return el("div", { class: "chart", "data-tag": tag }, el("h4", {}, tag), svg);
}

function charts(runs) {
  // runs: [{id, curves}] -> one chart per tag any of them logged more than once (a single
  // value, such as a test metric, is in the metrics table)
  const curve = (points) => points && points.filter((p) => Number.isFinite(p[1])).length > 1;
  const tags = [...new Set(runs.flatMap((r) => Object.keys(r.curves).filter((t) => curve(r.curves[t]))))].sort();
  if (!tags.length) return el("p", {}, "no curves logged (tb/ is empty or missing)");
  return el("div", { class: "charts" }, tags.map((tag) => chart(tag,
    runs.filter((r) => curve(r.curves[tag])).map((r) => ({ name: r.id, colour: COLOURS[runs.indexOf(r) % COLOURS.length], points: r.curves[tag] })))));
}

// ---- attention on one test example --------------------------------------------------------------
const STOPS = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]; // inferno-like

function heat(value) {
  const x = Math.min(Math.max(value, 0), 1) * (STOPS.length - 1), i = Math.min(Math.floor(x), STOPS.length - 2), f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
}

function mapCanvas(values, [h, w], mask = false) {
  // a map of h x w values in [0, 1] as a small canvas (the browser scales it smoothly): a heat
  // map, or with `mask` black where the value is 0 and clear where it is 1 (a slot's share)
  const canvas = el("canvas", { width: w, height: h });
  const context = canvas.getContext("2d"), image = context.createImageData(w, h);
  values.forEach((v, i) => { image.data.set(mask ? [0, 0, 0, Math.round(255 * (1 - v))] : [...heat(v), 255], 4 * i); });
  context.putImageData(image, 0, 0);
  return canvas;
}

function loadImage(src) {
  return new Promise((resolve, reject) => { const img = new Image(); img.onload = () => resolve(img); img.onerror = reject; img.src = src; });
}

async function overlay(src, map, opacity, size) {
  // the input picture with a map drawn over it at the given opacity, size = [width, height] pixels
  // (null: the picture's own proportions, its longer side 320 pixels)
  const img = await loadImage(src);
  const scale = 320 / Math.max(img.width, img.height);
  const [W, H] = size || [Math.round(img.width * scale), Math.round(img.height * scale)];
  const canvas = el("canvas", { width: W, height: H, class: "overlay" });
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.drawImage(img, 0, 0, W, H);
  if (map) {
    context.imageSmoothingEnabled = map.smooth;
    context.globalAlpha = opacity;
    context.drawImage(mapCanvas(map.values, map.shape, map.mask), 0, 0, W, H);
  }
  return canvas;
}

function temporalBars(weights, current) {
  // one bar per frame, height = the weight in [0, 1]; the frame on show in a darker colour
  const W = 16 * weights.length, H = 120, ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  weights.forEach((w, t) => {
    const bar = document.createElementNS(ns, "rect");
    const attrs = { x: 16 * t + 2, y: H - 4 - w * (H - 8), width: 12, height: Math.max(w * (H - 8), 1), fill: t === current ? "#cf222e" : "#0969da", "data-frame": t };
    Object.entries(attrs).forEach(([k, v]) => bar.setAttribute(k, v));
    svg.append(bar);
  });
  return svg;
}

function matrixCanvas(values, [h, w], rows, cols) {
  // an h x w matrix in [0, 1] as labelled cells: a target token per row, a source token per column
  const C = 24, L = 40;
  const canvas = el("canvas", { width: L + w * C, height: L + h * C, class: "overlay" });
  const context = canvas.getContext("2d");
  context.font = "11px monospace"; context.textAlign = "center"; context.textBaseline = "middle";
  values.forEach((v, i) => {
    context.fillStyle = `rgb(${heat(v).join(",")})`;
    context.fillRect(L + (i % w) * C, L + Math.floor(i / w) * C, C - 1, C - 1);
  });
  context.fillStyle = "#333";
  cols.forEach((c, j) => context.fillText(c, L + j * C + C / 2, L / 2));
  rows.forEach((r, i) => context.fillText(r, L / 2, L + i * C + C / 2));
  return canvas;
}

const EDGES = [[0, 3], [3, 7], [7, 4], [4, 0], [1, 2], [2, 6], [6, 5], [5, 1], [0, 1], [3, 2], [7, 6], [4, 5]];

function pointCloud(input, map, chosenBox, camera) {
  // a rotatable view of the scene (drag: yaw left-right, pitch up-down from side to top): points
  // coloured by the map (or by height), true boxes green, detections red, the chosen one yellow
  const W = 640, H = 420;
  const canvas = el("canvas", { width: W, height: H, class: "points" });
  const context = canvas.getContext("2d");
  const pts = input.points;
  const cx = pts.reduce((a, p) => a + p[0], 0) / pts.length, cy = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  const extent = Math.max(...pts.map((p) => Math.hypot(p[0] - cx, p[1] - cy)), 1);
  const zs = pts.map((p) => p[2]), z0 = Math.min(...zs), z1 = Math.max(...zs);
  function project([x, y, z]) {
    const a = (x - cx) * Math.cos(camera.yaw) - (y - cy) * Math.sin(camera.yaw);
    const b = (x - cx) * Math.sin(camera.yaw) + (y - cy) * Math.cos(camera.yaw);
    const v = b * Math.sin(camera.pitch) - (z - z0) * Math.cos(camera.pitch);
    const scale = (0.48 * Math.min(W, H)) / extent;
    return [W / 2 + a * scale, H / 2 + v * scale];
  }
  function draw() {
    context.fillStyle = "#111"; context.fillRect(0, 0, W, H);
    pts.forEach((p, i) => {
      const [u, v] = project(p);
      const value = map ? map.values[i] : (p[2] - z0) / (z1 - z0 || 1);
      // the scale starts above black, so points of no attention stay visible on the dark ground
      context.fillStyle = map ? `rgb(${heat(0.25 + 0.75 * value).join(",")})` : `rgb(${90 + 120 * value},${120 + 100 * value},200)`;
      context.fillRect(u, v, map && value > 0.5 ? 2.5 : 1.5, map && value > 0.5 ? 2.5 : 1.5);
    });
    const box = (corners, colour, width) => {
      context.strokeStyle = colour; context.lineWidth = width; context.beginPath();
      for (const [i, j] of EDGES) { const [a, b] = [project(corners[i]), project(corners[j])]; context.moveTo(...a); context.lineTo(...b); }
      context.stroke();
    };
    input.truth.forEach((b) => box(b.corners, "#2da44e", 1));
    input.detections.forEach((b, i) => box(b.corners, i === chosenBox ? "#ffd33d" : "#cf222e", i === chosenBox ? 2.5 : 1));
  }
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY]; });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("pointerleave", () => { drag = null; });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    camera.yaw += (e.clientX - drag[0]) * 0.01;
    camera.pitch = Math.min(Math.PI / 2, Math.max(0, camera.pitch - (e.clientY - drag[1]) * 0.01));
    drag = [e.clientX, e.clientY];
    draw();
  });
  draw();
  return canvas;
}

function meanOf(rows) {
  return rows[0].map((_, i) => rows.reduce((sum, r) => sum + r[i], 0) / rows.length);
}

const fileKind = (kind) => (kind === "points" ? "point cloud" : kind);  // an upload's kind, in words

function attentionSection(id, shared = { index: 0, views: [] }, title = "Attention on a test example") {
  // shared.index: the example shown; every section given the same `shared` follows it (compare)
  const ui = { method: "", map: 0, head: "mean", opacity: 0.6, frame: 0, box: "", pointMap: "", camera: { yaw: 0, pitch: 1.0 }, upload: null };
  const box = el("section", { class: "attention", "data-run": id }, el("h3", {}, title), el("div", { class: "viewer" }, "loading…"));
  let data = null, timer = null;
  const go = (index) => {
    shared.index = index;
    ui.upload = null;
    if (data && data.input.kind === "points") { ui.box = ""; ui.method = ""; }  // another scene's boxes
    shared.views.forEach((refetch) => refetch());
  };
  shared.views.push(() => fetchView());

  async function fetchView() {
    const query = new URLSearchParams({ id, index: shared.index });
    if (ui.method) query.set("method", ui.method);
    try {
      data = ui.upload  // the file brought last, asked again with another method
        ? await send("POST", "api/view/upload", { id, ...ui.upload, method: ui.method || null })
        : await api(`api/view?${query}`);
      ui.map = Math.max(0, Math.min(ui.map, data.maps.length - 1));
      if (ui.opacity === 0.6 && data.maps.some((m) => m.name.startsWith("slot"))) ui.opacity = 1;  // masks: all or nothing
      draw();
    } catch (error) {
      box.lastChild.replaceChildren(el("p", { class: "viewer-error" }, error.message));
    }
  }

  function upload(file) {
    if (!file) return;
    const reader = new FileReader();
    reader.onload = async () => {
      try {
        const brought = { file: reader.result, name: file.name };
        if (data && data.input.kind === "points") { ui.box = ""; ui.method = ""; }  // the new cloud's boxes
        data = await send("POST", "api/view/upload", { id, ...brought, method: ui.method || null });
        ui.upload = brought;
        ui.map = Math.max(0, Math.min(ui.map, data.maps.length - 1));
        draw();
      } catch (error) {
        showError(error.message);
      }
    };
    reader.readAsDataURL(file);
  }

  function select(label, options, value, onchange, attrs = {}) {
    const node = el("select", { "aria-label": label, ...attrs }, options.map(([v, text]) => el("option", { value: v }, text)));
    node.value = String(value);
    node.addEventListener("change", () => onchange(node.value));
    return el("label", {}, `${label} `, node);
  }

  async function draw() {
    const d = data, maps = d.maps, chosen = maps[ui.map];
    const controls = el("div", { class: "toolbar" },
      el("button", { class: "prev", onclick: () => go(Math.max(0, shared.index - 1)) }, "◀"),
      el("span", { class: "example" }, d.index == null ? `your ${d.upload ? fileKind(d.upload.kind) : "file"}` : `example ${d.index + 1} of ${d.count}`),
      el("button", { class: "next", onclick: () => go(Math.min(d.count - 1, shared.index + 1)) }, "▶"),
      d.upload ? el("label", {}, `or upload a ${fileKind(d.upload.kind)} `, el("input", { type: "file", accept: d.upload.accept, class: "upload", onchange: (e) => upload(e.target.files[0]) })) : "",
      d.input.kind === "points" ? select("box", [["", "none"], ...d.input.detections.map((b, i) => [i, `${i}: ${b.label} ${b.score.toFixed(2)}`])], ui.box, (v) => { ui.box = v; if (ui.pointMap && v !== "") { ui.method = `${ui.pointMap} ${v}`; fetchView(); } else draw(); }, { class: "box" }) : "",
      d.input.kind === "points" ? select("explain with", [["", "nothing (points by height)"], ...d.methods.map((m) => [m, m])], ui.pointMap, (v) => { ui.pointMap = v; ui.method = v && ui.box !== "" ? `${v} ${ui.box}` : ""; fetchView(); }, { class: "point-map" }) : "",
      d.methods.length && d.input.kind !== "points" ? select("map from", [["", "the model's attention"], ...d.methods.map((m) => [m, m])], ui.method, (v) => { ui.method = v; ui.map = 0; fetchView(); }, { class: "method" }) : "",
      maps.length && !chosen.frames && !chosen.values ? select("layer", maps.map((m, i) => [i, m.name]), ui.map, (v) => { ui.map = Number(v); ui.head = "mean"; draw(); }, { class: "layer" }) : "",
      chosen && chosen.heads && chosen.heads.length > 1 ? select("head", [["mean", "mean"], ...chosen.heads.map((_, i) => [i, i])], ui.head, (v) => { ui.head = v; draw(); }, { class: "head" }) : "",
      maps.length && d.input.kind !== "points" ? el("label", {}, "opacity ", Object.assign(el("input", { type: "range", min: 0, max: 1, step: 0.05, class: "opacity" }), { value: ui.opacity, oninput: (e) => { ui.opacity = Number(e.target.value); draw(); } })) : "",  // only where a map is drawn over the input
    );
    const prediction = el("p", { class: "prediction" }, d.prediction.length ? `prediction: ${d.prediction.map((p) => (p.p == null ? p.label : `${p.label} (${p.p.toFixed(3)})`)).join(", ")}` : "",
      d.target != null ? ` · target: ${d.target}` : "");
    const notes = el("ul", { class: "notes" }, (d.notes || []).map((line) => el("li", {}, line)));
    const pictures = el("div", { class: "pictures" });
    if (d.input.kind === "video") {
      const frames = d.input.frames.length;
      ui.frame = Math.min(ui.frame, frames - 1);
      const slider = Object.assign(el("input", { type: "range", min: 0, max: frames - 1, step: 1, class: "frame" }), { value: ui.frame, oninput: (e) => { ui.frame = Number(e.target.value); draw(); } });
      const play = el("button", { class: "play", onclick: () => {
        if (timer) { clearInterval(timer); timer = null; draw(); return; }
        timer = setInterval(() => { ui.frame = (ui.frame + 1) % frames; draw(); }, 400);
        draw();
      } }, timer ? "pause" : "play");
      controls.append(el("label", {}, `frame ${ui.frame + 1} of ${frames} `, slider), play);
      const size = [192, 192];
      pictures.append(el("figure", {}, await overlay(d.input.frames[ui.frame], null, 0, size), el("figcaption", {}, "frame")));
      if (d.recon) pictures.append(el("figure", {}, await overlay(d.recon[ui.frame], null, 0, size), el("figcaption", {}, "reconstruction")));
      for (const m of maps.filter((m) => m.frames)) {
        const slot = m.name.startsWith("slot");  // the frame seen through the slot's mask
        const map = { values: m.frames[ui.frame], shape: m.shape, smooth: Boolean(m.smooth), mask: slot };
        pictures.append(el("figure", { class: "slot" }, await overlay(d.input.frames[ui.frame], map, ui.opacity, size), el("figcaption", {}, m.name)));
      }
      if (d.temporal) pictures.append(el("figure", { class: "temporal" }, temporalBars(d.temporal, ui.frame), el("figcaption", {}, "temporal attention M_t per frame")));
    } else if (d.input.kind === "points") {
      const map = maps.length ? maps[0] : null;
      pictures.append(el("figure", { class: "cloud" }, pointCloud(d.input, map, ui.box === "" ? -1 : Number(ui.box), ui.camera),
        el("figcaption", {}, `${d.input.points.length} points · ${d.input.truth.length} true boxes (green) · ${d.input.detections.length} detections (red)`,
          map ? ` · ${map.name}` : "", " · drag to turn")));
    } else if (d.input.kind === "matrix") {
      pictures.append(el("figure", { class: "matrix" }, matrixCanvas(chosen.heads[0], chosen.shape, d.input.rows, d.input.cols),
        el("figcaption", {}, `${chosen.name}: rows the target, columns the source`)));
    } else if (chosen) {
      const values = ui.head === "mean" ? meanOf(chosen.heads) : chosen.heads[Number(ui.head)];
      const sequence = d.input.kind === "sequence";
      const size = sequence ? [Math.max(320, 12 * d.input.shape[1]), 48] : [320, 320];
      pictures.append(el("figure", {}, await overlay(d.input.png, null, 0, size), el("figcaption", {}, "input")));
      pictures.append(el("figure", {}, await overlay(d.input.png, { values, shape: chosen.shape, smooth: !sequence }, ui.opacity, size),
        el("figcaption", {}, `${chosen.name}${ui.head === "mean" ? " (mean of heads)" : `, head ${ui.head}`}`)));
    } else if (d.input.png) {
      pictures.append(el("figure", {}, await overlay(d.input.png, null, 0, [320, 320]), el("figcaption", {}, d.input.caption || "input")));
      if (d.methods.length) pictures.append(el("p", {}, "this model records no attention; pick a map method"));
    }
    for (const extra of d.pictures || []) pictures.append(el("figure", { class: "extra" }, await overlay(extra.png, null, 0, null), el("figcaption", {}, extra.caption)));
    box.lastChild.replaceChildren(controls, prediction, notes, pictures);
  }
  fetchView();
  return box;
}

// ---- editing an ABN run's attention maps, and fine-tuning on them -----------------------------
async function send(method, path, body) {
  const headers = { "Content-Type": "application/json", ...(TOKEN ? { "X-Attnlab-Token": TOKEN } : {}) };
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || `${response.status} ${response.statusText}`);
  return answer;
}

const predictionText = (rows) => rows.map((p) => `${p.label} (${p.p.toFixed(3)})`).join(", ");

function editorSection(id) {
  const ui = { index: 0, brush: "attend", size: 3, opacity: 0.6 };
  const box = el("section", { id: "editor" }, el("h3", {}, "Edit the attention map (human knowledge)"),
    el("p", {}, "Paint where the model should look (attend) or not (ignore); the prediction follows the edited map. ",
      "Saved maps are what fine-tuning trains on (attnlab abn-maps finetune)."),
    el("button", { id: "start-editing", onclick: () => load() }, "start editing (exports 32 training examples the first time)"),
    el("div", { class: "editor" }));
  let data = null, values = null, image = null;
  const SCALE = 10;

  async function load() {
    try {
      data = await api(`api/edit?id=${encodeURIComponent(id)}&index=${ui.index}`);
      values = data.map.slice();
      image = await loadImage(data.image);
      draw();
    } catch (error) {
      box.lastChild.replaceChildren(el("p", { class: "viewer-error" }, error.message));
    }
  }

  function paint(canvas, event) {
    const [H, W] = data.shape, rect = canvas.getBoundingClientRect();
    const cx = ((event.clientX - rect.left) / rect.width) * W, cy = ((event.clientY - rect.top) / rect.height) * H;
    const value = ui.brush === "attend" ? 1 : 0, r = ui.size / 2;
    for (let y = Math.floor(cy - r); y <= cy + r; y++) {
      for (let x = Math.floor(cx - r); x <= cx + r; x++) {
        if (x >= 0 && y >= 0 && x < W && y < H && (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) values[y * W + x] = value;
      }
    }
    render(canvas);
  }

  function render(canvas) {
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.globalAlpha = 1;
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    context.globalAlpha = ui.opacity;
    context.drawImage(mapCanvas(values, data.shape), 0, 0, canvas.width, canvas.height);
  }

  async function repredict() {
    const answer = await send("POST", "api/edit/predict", { id, index: ui.index, map: values });
    box.querySelector("#edited-prediction").textContent = `with your map: ${predictionText(answer.edited)}`;
  }

  function draw() {
    const [H, W] = data.shape;
    const canvas = el("canvas", { id: "paint", width: W * SCALE, height: H * SCALE, class: "paint" });
    let down = false;
    canvas.addEventListener("pointerdown", (e) => { down = true; paint(canvas, e); });
    canvas.addEventListener("pointermove", (e) => { if (down) paint(canvas, e); });
    const finish = () => { if (down) { down = false; repredict().catch((e) => showError(e.message)); } };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointerleave", finish);
    const radio = (value) => el("label", {}, Object.assign(el("input", { type: "radio", name: "brush", value, id: `brush-${value}` }),
      { checked: ui.brush === value, onchange: () => { ui.brush = value; } }), ` ${value} `);
    box.lastChild.replaceChildren(
      el("div", { class: "toolbar" },
        el("button", { id: "edit-prev", onclick: () => { ui.index = Math.max(0, ui.index - 1); load(); } }, "◀"),
        el("span", { id: "edit-example" }, `training example ${data.index + 1} of ${data.count} · label ${data.target}`),
        el("button", { id: "edit-next", onclick: () => { ui.index = Math.min(data.count - 1, ui.index + 1); load(); } }, "▶"),
        radio("attend"), radio("ignore"),
        el("label", {}, "brush ", Object.assign(el("input", { type: "range", min: 1, max: 12, step: 1, id: "brush-size" }),
          { value: ui.size, oninput: (e) => { ui.size = Number(e.target.value); } })),
        el("label", {}, "opacity ", Object.assign(el("input", { type: "range", min: 0, max: 1, step: 0.05 }),
          { value: ui.opacity, oninput: (e) => { ui.opacity = Number(e.target.value); render(canvas); } })),
        el("button", { id: "reset-map", onclick: () => { values = data.map.slice(); render(canvas); repredict(); } }, "undo edits"),
        el("button", { id: "save-map", onclick: async () => {
          try {
            const saved = await send("PUT", "api/edit/map", { id, index: ui.index, map: values });
            data.map = values.slice();
            box.querySelector("#saved").textContent = `saved ${saved.saved}`;
          } catch (error) { showError(error.message); }
        } }, "save map")),
      el("div", { class: "pictures" }, canvas),
      el("p", { id: "model-prediction" }, `the model's own: ${predictionText(data.model)}`),
      el("p", { id: "edited-prediction" }, `with your map: ${predictionText(data.edited)}`),
      el("p", { id: "saved" }, `maps folder: ${data.maps_folder}`),
      el("div", { class: "toolbar" },
        el("label", {}, "fine-tune steps ", Object.assign(el("input", { type: "number", min: 1, id: "finetune-steps" }), { value: 300 })),
        el("button", { id: "finetune", onclick: async () => {
          try {
            await send("POST", "api/jobs", { kind: "finetune", id, steps: Number(box.querySelector("#finetune-steps").value) });
            refreshJobs();
          } catch (error) { showError(error.message); }
        } }, "fine-tune on the saved maps")),
    );
    render(canvas);
  }
  return box;
}

const EXPLAINABLE = ["classification", "attention-branch", "signal-classification", "detection3d"];

function explainTools(id) {
  // attnlab explain on the run's test set, as a job; its pictures join the figures when done
  const limit = Object.assign(el("input", { type: "number", min: 1, id: "explain-limit" }), { value: 100 });
  return el("section", { id: "explain" }, el("h3", {}, "Explanation metrics on the test set"),
    el("div", { class: "toolbar" }, el("label", {}, "test examples ", limit),
      el("button", { id: "explain-start", onclick: async () => {
        try {
          await send("POST", "api/jobs", { kind: "explain", id, limit: Number(limit.value) });
          refreshJobs();
        } catch (error) { showError(error.message); }
      } }, "score every explanation method (attnlab explain)")));
}

// ---- background jobs ---------------------------------------------------------------------------
let jobsTimer = null;

async function refreshJobs() {
  const panel = document.getElementById("jobs");
  if (!panel) return;
  const jobs = await api("api/jobs");
  panel.hidden = !jobs.length;
  panel.replaceChildren(el("h3", {}, "Jobs"), el("table", { id: "job-table" }, jobs.map((j) => el("tr", { "data-job": j.id },
    el("td", {}, j.title), el("td", {}, el("a", { href: runLink(j.run) }, j.run)),
    el("td", {}, el("span", { class: `status ${j.status}` }, j.status)),
    el("td", {}, el("progress", { max: 1, value: j.progress }), ` ${(100 * j.progress).toFixed(0)} %`),
    el("td", { class: "log" }, j.last_line),
    el("td", {}, j.status === "running" ? el("button", { class: "cancel", onclick: async () => { await send("DELETE", `api/jobs/${j.id}`); refreshJobs(); } }, "cancel") : "")))));
  clearTimeout(jobsTimer);
  if (jobs.some((j) => j.status === "running" || j.status === "cancelling")) jobsTimer = setTimeout(refreshJobs, 1000);
}

// ---- one run ---------------------------------------------------------------------------------
async function showRun(view, id) {
  const [run, curves] = await Promise.all([api(`api/run?id=${encodeURIComponent(id)}`), api(`api/curves?id=${encodeURIComponent(id)}`)]);
  const s = run.summary;
  const metrics = Object.entries(run.metrics);
  view.replaceChildren(
    el("h2", {}, id),
    el("p", {}, el("span", { class: `status ${s.status}` }, s.status), ` ${s.recipe} · model ${s.model || "?"} · data ${s.dataset || "?"} · started ${s.started}`,
      s.seconds == null ? "" : ` · ${s.seconds.toFixed(0)} s`, s.error ? el("div", { class: "error" }, s.error) : ""),
    el("section", {}, el("h3", {}, "Metrics"), metrics.length
      ? el("table", { class: "metrics" }, metrics.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, fmt(v)))))
      : el("p", {}, "no test metrics yet")),
    el("section", {}, el("h3", {}, "Curves"), charts([{ id, curves }])),
    run.summary.status === "finished" ? attentionSection(id) : "",
    run.summary.status === "finished" && EXPLAINABLE.includes(run.summary.task) ? explainTools(id) : "",
    run.summary.status === "finished" && run.summary.task === "attention-branch" ? editorSection(id) : "",
    el("section", { id: "figures" }, el("h3", {}, "Figures"), run.figures.length
      ? run.figures.map((f) => el("figure", {}, el("img", { src: fileUrl(id, f.path), alt: f.caption, loading: "lazy" }), el("figcaption", {}, f.caption)))
      : el("p", {}, "no figures")),
    el("section", {}, el("h3", {}, "Configuration"), el("pre", { class: "config" }, run.config)),
    el("section", {}, el("h3", {}, "Weights and checkpoints"), el("ul", {}, run.files.map((f) =>
      el("li", {}, el("a", { href: fileUrl(id, f.path), download: "" }, f.path), ` (${(f.bytes / 1e6).toFixed(1)} MB)`)))),
  );
}

// ---- two runs --------------------------------------------------------------------------------
async function showCompare(view, ids) {
  const runs = await Promise.all(ids.map(async (id) => ({
    id, run: await api(`api/run?id=${encodeURIComponent(id)}`), curves: await api(`api/curves?id=${encodeURIComponent(id)}`),
  })));
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.run.metrics)))].sort();
  view.replaceChildren(
    el("h2", {}, "Compare"),
    el("div", { class: "legend" }, runs.map((r, i) => el("span", { style: `color:${COLOURS[i]}` }, "■ ", el("a", { href: runLink(r.id) }, r.id)))),
    el("section", {}, el("h3", {}, "Metrics"), el("table", { class: "metrics", id: "compare-metrics" },
      el("tr", {}, el("th", {}, "metric"), runs.map((r) => el("th", {}, r.id))),
      names.map((n) => el("tr", {}, el("td", {}, n), runs.map((r) => el("td", { class: "num" }, n in r.run.metrics ? fmt(r.run.metrics[n]) : "–")))))),
    el("section", {}, el("h3", {}, "Curves"), charts(runs)),
    sideBySide(runs),
  );
}

function sideBySide(runs) {
  // both runs' attention on the same test example (the same index: the same example when they
  // were tested on the same data, which the page says when it is not so)
  const finished = runs.filter((r) => r.run.summary.status === "finished");
  if (finished.length < 2) return "";
  const datasets = new Set(finished.map((r) => r.run.summary.dataset));
  const shared = { index: 0, views: [] };
  return el("section", { id: "side-by-side" }, el("h3", {}, "Attention on the same test example"),
    datasets.size > 1 ? el("p", {}, `different datasets (${[...datasets].join(", ")}): each run shows its own example of that number`) : "",
    el("div", { class: "side-by-side" }, finished.map((r) => attentionSection(r.id, shared, r.id))));
}

async function route() {
  const view = document.getElementById("view");
  showError("");
  const hash = decodeURIComponent(location.hash.slice(1) || "/");
  try {
    if (hash.startsWith("/run/")) await showRun(view, hash.slice(5));
    else if (hash.startsWith("/compare/")) await showCompare(view, hash.slice(9).split("|"));
    else await showRuns(view);
  } catch (error) {
    showError(error.message);
  }
}

window.addEventListener("hashchange", route);
route();
refreshJobs().catch(() => {});
