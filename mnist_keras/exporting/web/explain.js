// explain.html: every layer of the user's own model, live as they draw (issue 29).
// It runs mnist_inspect.tflite (export's inspection model: each stage a named output) and reads
// mnist_inspect.json (the output names in the model's order, the stages' order, the conv weights).
// Views are built from the model's own output names and shapes, so other layer widths show as well.
import { loadLiteRt, loadAndCompile, Tensor } from "./litert/core.js";
import { addBars, clearBars, imageOf, pad, showBars, showBlank } from "./draw.js";
import { WORK_SIZE, grayOf, inkOf, pixelsOf, toMnist } from "./preprocess.js";

const { canvas, pen, statusLine, upload: uploadButton, clear } = pad();
const layersBox = document.getElementById("layers");
const inputCanvas = document.getElementById("input-view");
const inputView = inputCanvas.getContext("2d");
const inputHint = document.getElementById("input-hint");
const pixelBox = document.getElementById("explain-pixel");
const occlusionNote = document.getElementById("occlusion-note");
const PROBABILITIES = "probabilities";  // the signature's output the bars show (inspect_model.py)
const PATCH = 4;  // the occlusion's square, in input pixels

// What tests and scripts/web_benchmark.py read.
const stats = { loadedMs: null, firstViewMs: null, strokeMs: [], occlusionMs: null, error: null };
const last = { input: null, outputs: {}, flattened: {}, occlusion: null, pixel: null };
window.mnistExplain = { stats, last, ready: null, explainPixel: null };

let model = null, meta = null, details = [], inputShape = null;
let drawing = false, running = null, again = false, next = canvas;
let chosen = null;  // the digit picked in the bars for the occlusion map; null: the top digit
let occlusionRun = 0;  // bumped by each new occlusion, drawing and Clear: older maps are dropped

// --- Running the inspection model ---------------------------------------------------------

async function inspect(pixels) {  // uint8 [H*W] -> { name: { shape, values } }
  const tensor = new Tensor(Float32Array.from(pixels, (v) => v / 255), inputShape);
  let outputs;
  try { outputs = await model.run([tensor]); } finally { tensor.delete(); }
  const result = {};
  try {
    outputs.forEach((t, i) => { result[meta.outputs[i]] = { shape: details[i], values: t.toTypedArray().slice() }; });
  } finally { for (const t of outputs) { t.delete(); } }
  return result;
}

// --- Views, one per output (and the flattened values), built from the shapes ----------------

const shapeText = (s) => `(${s.join(", ")})`;

function views() {  // [{ name, kind, shape, of? }] in the page's order
  const shapeOf = (name) => details[meta.outputs.indexOf(name)];
  const result = [];
  meta.stages.forEach((name, at) => {
    const shape = shapeOf(name), following = meta.stages[at + 1];
    const kind = name === PROBABILITIES ? "bars" : shape.length === 4 ? "maps" : "cells";  // cells: [1, N] or [1]
    result.push({ name, kind, shape });
    if (shape.length === 4 && following && shapeOf(following).length === 2) {  // what the dense layer reads
      result.push({ name: `${name}-flattened`, kind: "flat", of: name,
                    shape: [shape[0], shape[1] * shape[2] * shape[3]], source: shape });
    }
  });
  return result;
}

function heading(view) {
  const { name, kind, shape } = view;
  if (kind === "maps") {
    return `${name}: ${shapeText(shape)} channel-last; channel-first ${shapeText([shape[0], shape[3], shape[1], shape[2]])}`;
  }
  return kind === "flat" ? `${view.of} flattened: ${shapeText(shape)} = ${view.source.slice(1).join(" x ")}, ` +
    "in channel-last order" : `${name}: ${shapeText(shape)}`;
}

function flatNote({ of, source: [, h, w, c] }) {  // how Keras' Flatten orders the values, from the shape
  return `Keras' Flatten reads ${of}'s (1, ${h}, ${w}, ${c}) position by position, row after row, the ${c} ` +
    `channels of each position together: value i is row floor(i / ${w * c}), column floor(i / ${c}) mod ${w}, ` +
    `channel i mod ${c}. The seed's channel-first (1, ${c}, ${h}, ${w}) would be flattened channel by channel ` +
    `instead. Shown wrapped: each of the ${h * w} rows is one position, its ${c} channels left to right.`;
}

function buildViews() {
  layersBox.replaceChildren();
  for (const view of views()) {
    const box = document.createElement("div");
    box.className = "layer"; box.dataset.layer = view.name; box.dataset.kind = view.kind;
    box.innerHTML = `<h2>${heading(view)} <span class="zeros"></span></h2>` +
      (view.kind === "flat" ? `<p class="hint">${flatNote(view)}</p>` : "") + `<div class="${view.kind}"></div>`;
    const holder = box.lastElementChild;
    if (view.kind === "bars") {
      addBars(holder, view.shape.at(-1));
      for (const bar of holder.children) { bar.addEventListener("click", () => pick(Number(bar.dataset.digit))); }
    } else {
      const [count, width, height] = view.kind === "maps" ? [view.shape[3], view.shape[2], view.shape[1]]
        : view.kind === "flat" ? [1, view.source[3], view.source[1] * view.source[2]] : [1, view.shape.at(-1), 1];
      for (let c = 0; c < count; c++) {
        const map = Object.assign(document.createElement("canvas"), { width, height });
        map.dataset.channel = String(c);
        if (view.kind === "maps" && meta.weights[view.name]) {
          map.addEventListener("click", (e) => clickMap(view.name, c, map, e));
        }
        holder.append(map);
      }
    }
    if (view.kind === "cells" && view.shape.at(-1) <= 16) { box.insertAdjacentHTML("beforeend", `<div class="values"></div>`); }
    layersBox.append(box);
  }
}

function paint(map, pick, scale) {  // gray levels: 0 black, the layer's largest |value| white; negatives red
  const g = map.getContext("2d");
  const image = g.createImageData(map.width, map.height);
  for (let i = 0; i < map.width * map.height; i++) {
    const v = Math.round(255 * Math.min(1, Math.abs(pick(i)) / scale));
    image.data.set(pick(i) < 0 ? [v, 0, 0, 255] : [v, v, v, 255], 4 * i);
  }
  g.putImageData(image, 0, 0);
}

function showInput(pixels) {
  const image = inputView.createImageData(inputCanvas.width, inputCanvas.height);
  pixels.forEach((v, i) => { image.data.set([v, v, v, 255], 4 * i); });
  inputView.putImageData(image, 0, 0);
  inputHint.hidden = true;
}

function showAll(pixels, result) {
  showInput(pixels);
  last.flattened = {};
  for (const box of layersBox.children) {
    const flat = box.dataset.kind === "flat";
    const name = flat ? box.dataset.layer.replace(/-flattened$/, "") : box.dataset.layer;
    const { shape, values } = result[name];
    if (flat) { last.flattened[name] = { shape: [1, values.length], values }; }  // the same order: channel-last
    let top = 1e-6, zeros = 0;
    for (const v of values) { top = Math.max(top, Math.abs(v)); zeros += v === 0 ? 1 : 0; }
    box.querySelector(".zeros").textContent = `- ${(100 * zeros / values.length).toFixed(1)}% zero`;
    box.dataset.zeroShare = String(zeros / values.length);
    if (box.dataset.kind === "bars") {
      showBars(box.querySelector(".bars"), values, values.indexOf(Math.max(...values)));
      continue;
    }
    const channels = box.dataset.kind === "maps" ? shape[3] : 1;
    box.querySelectorAll("canvas").forEach((map, c) => paint(map, (i) => values[i * channels + c], top));
    const text = box.querySelector(".values");
    if (text) { text.textContent = Array.from(values, (v, d) => `${d}: ${v.toFixed(3)}`).join("  "); }
  }
}

function clearViews() {
  showBlank(inputCanvas, inputHint);
  occlusionNote.textContent = ""; pixelBox.textContent = "";
  for (const box of layersBox.children) {
    box.querySelector(".zeros").textContent = "";
    if (box.dataset.kind === "bars") { clearBars(box.querySelector(".bars")); }
    box.querySelectorAll("canvas").forEach((map) => map.getContext("2d").clearRect(0, 0, map.width, map.height));
    const text = box.querySelector(".values");
    if (text) { text.textContent = ""; }
  }
}

// --- A clicked pixel, computed by hand from the weights -------------------------------------

function layerInput(name) {  // what a conv layer reads: the stage before it, or the drawn input
  const at = meta.stages.indexOf(name);
  return at === 0 ? { shape: inputShape, values: last.input } : last.outputs[meta.stages[at - 1]];
}

function explainPixel(name, y, x, c) {
  const { kernel, kernel_shape: [kh, kw, cin, cout], bias } = meta.weights[name];
  const { shape, values } = layerInput(name);
  const [h, w] = [shape[1], shape[2]];
  let sum = bias[c];
  const lines = [], partial = [];
  for (let ci = 0; ci < cin; ci++) {
    let part = 0;
    for (let dy = 0; dy < kh; dy++) {
      for (let dx = 0; dx < kw; dx++) {
        const yy = y + dy - (kh >> 1), xx = x + dx - (kw >> 1);
        const v = yy < 0 || xx < 0 || yy >= h || xx >= w ? 0 : values[(yy * w + xx) * cin + ci];
        const k = kernel[((dy * kw + dx) * cin + ci) * cout + c];
        part += v * k;
        if (ci === 0) { lines.push(`${v.toFixed(3)} x ${k.toFixed(3)} = ${(v * k).toFixed(4)}`); }
      }
    }
    partial.push(part);
    sum += part;
  }
  const out = last.outputs[name];
  const value = out.values[(y * out.shape[2] + x) * out.shape[3] + c];
  return { layer: name, y, x, channel: c, products: lines, channelSums: partial, bias: bias[c], sum,
           relu: Math.max(0, sum), value };
}

function clickMap(name, c, map, event) {
  if (!last.input) { return; }
  const box = map.getBoundingClientRect();
  const x = Math.floor((event.clientX - box.left) * map.width / box.width);
  const y = Math.floor((event.clientY - box.top) * map.height / box.height);
  const e = explainPixel(name, y, x, c);
  last.pixel = e;
  pixelBox.textContent = `${name}[${y}, ${x}, channel ${c}]: the 3x3 window of input channel 0 times its kernel:\n` +
    `${e.products.join("\n")}\n` +
    (e.channelSums.length > 1 ? `... and the same over ${e.channelSums.length} input channels, each summed: ` +
      `${e.channelSums.map((v) => v.toFixed(3)).join(" + ")}\n` : `summed: ${e.channelSums[0].toFixed(4)}\n`) +
    `+ bias ${e.bias.toFixed(4)} = ${e.sum.toFixed(4)}; ReLU: ${e.relu.toFixed(4)}; the model's value: ${e.value.toFixed(4)}`;
}

// --- Drawing and uploads -------------------------------------------------------------------

function prepare(source) {
  const image = pixelsOf(source, WORK_SIZE);
  const ink = inkOf(grayOf(image), image.width, image.height);
  return ink === null ? null : toMnist(ink, image.width, image.height);
}

// Every view for the canvas (or an uploaded picture); strokes made meanwhile are read once it is done.
function update(source = canvas) {
  next = source;
  if (running) { again = true; return running; }
  running = (async () => {
    try {
      await window.mnistExplain.ready;  // strokes made while the model loads are read once it is there
      if (!model) { return; }
      do {
        again = false;
        const t0 = performance.now();
        const pixels = prepare(next);
        if (pixels === null) {
          statusLine.textContent = "No digit found: the picture is blank or has almost no contrast.";
          continue;
        }
        const result = await inspect(pixels);
        occlusionRun += 1;  // any map being computed is for an older picture
        last.input = Float32Array.from(pixels, (v) => v / 255);
        last.outputs = result;
        showAll(pixels, result);
        statusLine.textContent = "";
        stats.strokeMs.push(performance.now() - t0);
        if (stats.firstViewMs === null) { stats.firstViewMs = performance.now(); }
      } while (again);
    } finally { running = null; }
  })();
  return running;
}

async function upload(file) {
  pen.clear();
  forget();
  try {
    const bitmap = await imageOf(file);
    pen.picture(bitmap);
    await update(bitmap);
    await occlusion();
  } catch (error) { statusLine.textContent = error.message; }
}

function forget() {  // nothing drawn: no input, no outputs, no map; the views blank
  occlusionRun += 1;
  last.input = null; last.outputs = {}; last.flattened = {}; last.occlusion = null; last.pixel = null;
  clearViews();
}

// --- What made it decide: occlusion for the top digit, or the one picked in the bars --------

// A PATCH x PATCH square of background slid over the input; how much the digit's probability drops.
async function occlusion() {
  if (!last.input) { return; }
  const run = ++occlusionRun, t0 = performance.now();
  const [, height, width] = inputShape;
  const base = last.outputs[PROBABILITIES].values;
  const top = base.indexOf(Math.max(...base)), digit = chosen ?? top;
  const pixels = Uint8Array.from(last.input, (v) => Math.round(255 * v));
  const drops = [];
  for (let y = 0; y < height; y += PATCH) {
    for (let x = 0; x < width; x += PATCH) {
      const covered = pixels.slice();
      for (let dy = 0; dy < PATCH && y + dy < height; dy++) {
        covered.fill(0, (y + dy) * width + x, (y + dy) * width + Math.min(width, x + PATCH));
      }
      const result = await inspect(covered);
      if (run !== occlusionRun) { return; }  // another drawing or digit meanwhile
      drops.push({ y, x, drop: base[digit] - result[PROBABILITIES].values[digit] });
    }
  }
  showOcclusion(pixels, drops, digit, top);
  last.occlusion = { digit, top, patch: PATCH, drops };
  stats.occlusionMs = performance.now() - t0;
}

function showOcclusion(pixels, drops, digit, top) {  // red: covering lowers the digit's probability; blue: raises it
  showInput(pixels);
  const largest = Math.max(1e-6, ...drops.map((d) => Math.abs(d.drop)));
  for (const d of drops) {
    inputView.fillStyle = d.drop >= 0 ? `rgba(255, 0, 0, ${(0.6 * d.drop / largest).toFixed(3)})`
      : `rgba(0, 90, 255, ${(-0.6 * d.drop / largest).toFixed(3)})`;
    inputView.fillRect(d.x, d.y, PATCH, PATCH);
  }
  occlusionNote.textContent = `Occlusion for ${digit}${digit === top ? " (the top digit)" : ` (the top digit is ${top})`}: ` +
    `each ${PATCH}x${PATCH} square covered in turn. Red where covering it lowers the probability of ${digit} (that ` +
    `part counts for it), blue where it raises it; the largest change ${(100 * largest).toFixed(1)} points. ` +
    "Click a digit's bar below to see its map.";
  for (const bar of layersBox.querySelectorAll(".bars .bar")) { bar.classList.toggle("chosen", Number(bar.dataset.digit) === digit); }
}

function pick(digit) {  // a digit clicked in the bars: its occlusion map
  chosen = digit;
  occlusion();
}

// --- Events and start-up -------------------------------------------------------------------

canvas.addEventListener("pointerdown", (e) => {
  drawing = true; canvas.setPointerCapture(e.pointerId); pen.down(e); update();
});
canvas.addEventListener("pointermove", (e) => { if (drawing) { pen.move(e); update(); } });
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => { if (drawing) { drawing = false; pen.up(); update().then(occlusion); } });
}
clear.addEventListener("click", () => { pen.clear(); chosen = null; forget(); });
uploadButton.addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (file) { await upload(file); }
  event.target.value = "";
});

async function start() {
  pen.clear();
  showBlank(inputCanvas, inputHint);
  try {
    const [description, bytes] = await Promise.all([
      fetch("mnist_inspect.json").then((r) => { if (!r.ok) { throw new Error(`mnist_inspect.json: ${r.status}`); } return r.json(); }),
      fetch("mnist_inspect.tflite").then((r) => { if (!r.ok) { throw new Error(`mnist_inspect.tflite: ${r.status}`); } return r.arrayBuffer(); }),
      loadLiteRt(new URL("litert/wasm/", location.href).href)]);
    meta = description;
    model = await loadAndCompile(new Uint8Array(bytes), { accelerator: "wasm" });
  } catch (error) {
    stats.error = String(error.message || error);
    statusLine.textContent = `The inspection model could not be loaded: ${stats.error}`;
    return;
  }
  inputShape = Array.from(model.getInputDetails()[0].shape);
  details = model.getOutputDetails().map((d) => Array.from(d.shape));
  [inputCanvas.width, inputCanvas.height] = [inputShape[2], inputShape[1]];
  showBlank(inputCanvas, inputHint);  // (resizing a canvas empties it)
  buildViews();
  stats.loadedMs = performance.now();
}

window.mnistExplain.explainPixel = explainPixel;
window.mnistExplain.ready = start();
