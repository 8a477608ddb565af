// explain.html: every layer of the user's own model, live as they draw (issue 29).
// It runs mnist_inspect.tflite (export's inspection model: each stage a named output) and reads
// mnist_inspect.json (the output names in the model's order, the stages' order, the conv weights).
// Views are built from the model's own output shapes, so other layer widths show as well.
import { loadLiteRt, loadAndCompile, Tensor } from "./litert/core.js";
import { Pen } from "./draw.js";
import { WORK_SIZE, grayOf, inkOf, pixelsOf, toMnist } from "./preprocess.js";

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const pen = new Pen(canvas, ctx);
const layersBox = document.getElementById("layers");
const inputView = document.getElementById("input-view").getContext("2d");
const statusLine = document.getElementById("status");
const pixelBox = document.getElementById("explain-pixel");

// What tests and scripts/web_benchmark.py read.
const stats = { loadedMs: null, firstViewMs: null, strokeMs: [], occlusionMs: null, error: null };
const last = { input: null, outputs: {}, occlusion: null, pixel: null };
window.mnistExplain = { stats, last, ready: null, explainPixel: null, showPixels: null };

let model = null, meta = null, details = [], inputShape = null;
let drawing = false, busy = false, again = false;

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

// --- Views, one per output, built from its shape --------------------------------------------

const shapeText = (s) => `(${s.join(", ")})`;

function buildViews() {
  layersBox.replaceChildren();
  meta.stages.forEach((name) => {
    const shape = details[meta.outputs.indexOf(name)];
    const box = document.createElement("div");
    box.className = "layer"; box.dataset.layer = name;
    const first = shape.length === 4 ? `; channel-first ${shapeText([shape[0], shape[3], shape[1], shape[2]])}` : "";
    box.innerHTML = `<h2>${name}: ${shapeText(shape)} channel-last${first}` +
                    ` <span class="zeros"></span></h2><div class="${shape.length === 4 ? "maps" : "cells"}"></div>`;
    const holder = box.lastElementChild;
    const count = shape.length === 4 ? shape[3] : 1;
    for (let c = 0; c < count; c++) {
      const map = document.createElement("canvas");
      map.width = shape.length === 4 ? shape[2] : shape[shape.length - 1];
      map.height = shape.length === 4 ? shape[1] : 1;
      map.dataset.channel = String(c);
      if (meta.weights[name]) { map.addEventListener("click", (e) => clickMap(name, c, map, e)); }
      holder.append(map);
    }
    if (name === "probabilities" || name === "logits") { box.insertAdjacentHTML("beforeend", `<div class="values"></div>`); }
    layersBox.append(box);
  });
}

function paint(map, values, pick, scale) {  // gray levels: 0 black, the layer's largest |value| white
  const g = map.getContext("2d");
  const image = g.createImageData(map.width, map.height);
  for (let i = 0; i < map.width * map.height; i++) {
    const v = Math.round(255 * Math.min(1, Math.abs(pick(i)) / scale));
    image.data.set(pick(i) < 0 ? [v, 0, 0, 255] : [v, v, v, 255], 4 * i);
  }
  g.putImageData(image, 0, 0);
}

function showAll(pixels, result) {
  const input = inputView.createImageData(28, 28);
  for (let i = 0; i < 784; i++) { input.data.set([pixels[i], pixels[i], pixels[i], 255], 4 * i); }
  inputView.putImageData(input, 0, 0);
  for (const box of layersBox.children) {
    const { shape, values } = result[box.dataset.layer];
    let top = 1e-6, zeros = 0;
    for (const v of values) { top = Math.max(top, Math.abs(v)); zeros += v === 0 ? 1 : 0; }
    box.querySelector(".zeros").textContent = `- ${(100 * zeros / values.length).toFixed(1)}% zero`;
    box.dataset.zeroShare = String(zeros / values.length);
    const channels = shape.length === 4 ? shape[3] : 1;
    box.querySelectorAll("canvas").forEach((map, c) => paint(map, values, (i) => values[i * channels + c], top));
    const text = box.querySelector(".values");
    if (text) { text.textContent = Array.from(values, (v, d) => `${d}: ${v.toFixed(3)}`).join("  "); }
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

// --- Drawing -------------------------------------------------------------------------------

function prepare() {
  const image = pixelsOf(canvas, WORK_SIZE);
  const ink = inkOf(grayOf(image), image.width, image.height);
  return ink === null ? null : toMnist(ink, image.width, image.height);
}

async function update() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    do {
      again = false;
      const t0 = performance.now();
      const pixels = prepare();
      if (pixels === null) { continue; }
      const result = await inspect(pixels);
      last.input = Float32Array.from(pixels, (v) => v / 255);
      last.outputs = result;
      showAll(pixels, result);
      stats.strokeMs.push(performance.now() - t0);
      if (stats.firstViewMs === null) { stats.firstViewMs = performance.now(); }
    } while (again);
  } finally { busy = false; }
}

// Occlusion: a 4x4 patch of background slid over the input; how much the top digit's probability drops.
async function occlusion() {
  if (!last.input) { return; }
  const t0 = performance.now();
  const base = last.outputs.probabilities.values;
  const top = base.indexOf(Math.max(...base));
  const pixels = Uint8Array.from(last.input, (v) => Math.round(255 * v));
  const patch = 4, drops = [];
  for (let y = 0; y < 28; y += patch) {
    for (let x = 0; x < 28; x += patch) {
      const covered = pixels.slice();
      for (let dy = 0; dy < patch; dy++) { covered.fill(0, (y + dy) * 28 + x, (y + dy) * 28 + x + patch); }
      const result = await inspect(covered);
      drops.push({ y, x, drop: base[top] - result.probabilities.values[top] });
    }
  }
  const largest = Math.max(1e-6, ...drops.map((d) => d.drop));
  for (const d of drops) {
    inputView.fillStyle = `rgba(255, 0, 0, ${(0.6 * Math.max(0, d.drop) / largest).toFixed(3)})`;
    inputView.fillRect(d.x, d.y, patch, patch);
  }
  last.occlusion = { digit: top, patch, drops };
  stats.occlusionMs = performance.now() - t0;
}

canvas.addEventListener("pointerdown", (e) => { drawing = true; canvas.setPointerCapture(e.pointerId); pen.down(e); update(); });
canvas.addEventListener("pointermove", (e) => { if (drawing) { pen.move(e); update(); } });
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => { if (drawing) { drawing = false; pen.up(); update().then(occlusion); } });
}
document.getElementById("clear").addEventListener("click", () => {
  pen.clear(); last.input = null; last.outputs = {}; pixelBox.textContent = "";
  inputView.fillStyle = "#000"; inputView.fillRect(0, 0, 28, 28);
});

async function start() {
  pen.clear();
  inputView.fillStyle = "#000"; inputView.fillRect(0, 0, 28, 28);
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
  buildViews();
  stats.loadedMs = performance.now();
}

window.mnistExplain.explainPixel = explainPixel;
window.mnistExplain.ready = start();
