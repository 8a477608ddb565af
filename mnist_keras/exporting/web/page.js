// The drawing page, with the model run in the browser by LiteRT.js (WebAssembly, XNNPack).
// Everything it loads comes from its own folder: page.js, model.tflite, model.json, litert/.
//
// It reads the model's input at load time and feeds it what it asks for:
//   [1, H, W, 3] uint8/float32: the picture itself, RGB, fitted into HxW on white paper
//       (the camera model does the MNIST preprocessing inside its graph);
//   [N, 28, 28, 1] uint8/float32: the picture made MNIST-style here first (ink found,
//       cropped, longer side scaled to 20 px, centred by mass in 28x28, white on black),
//       a JavaScript port of mnist_keras/preprocess.py without its speck filter.
"use strict";

import { loadLiteRt, loadAndCompile, Tensor } from "./litert/core.js";
import { addBars, clearBars, imageOf, panel, showBars, showBlank } from "./draw.js";
import { WORK_SIZE, grayOf, inkOf, pixelsOf, toMnist } from "./preprocess.js";

const SIZE = 28;
// The smallest module that uses a SIMD128 instruction (from wasm-feature-detect's probe).
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10,
                                   1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

const { canvas, pen, bars, statusLine, seenCanvas, seen, seenHint, predictionBox, upload, clear } = panel();

// What tests and scripts/web_benchmark.py read: timings, the last input the model got.
const stats = { phases: {}, loadedMs: null, firstInputMs: null, firstPredictionMs: null, latenciesMs: [], inferMs: [], lastInput: null,
                inputShape: null, inputDtype: null, runtime: null, error: null };
window.mnistWeb = { stats, ready: null, classifyBlob: null };

let model = null, meta = {}, input = null;
let drawing = false, pending = false, again = false;
let generation = 0;  // bumped by Clear and uploads: answers for older pictures are dropped

addBars(bars);

function clearResult() {
  predictionBox.textContent = "";
  predictionBox.dataset.noDigit = "false";
  document.getElementById("confidence").textContent = "";
  showBlank(seenCanvas, seenHint);
  clearBars(bars);
}

function clearAll() {
  generation += 1;
  again = false;
  pen.clear();
  clearResult();
  if (!stats.error) { statusLine.textContent = ""; }
}

function fail(message) {  // the page cannot work at all: say why, once, and show no digit
  stats.error = message;
  statusLine.textContent = message;
  clearResult();
}

// --- Drawing ------------------------------------------------------------------------------

function onDown(e) {
  stats.firstInputMs ??= e.timeStamp;
  drawing = true;
  try { canvas.setPointerCapture(e.pointerId); } catch { /* a stroke replayed after its pointer went up */ }
  pen.down(e); classifyCanvas();
}
function onMove(e) { if (drawing) { pen.move(e); classifyCanvas(); } }
function onUp() { if (drawing) { drawing = false; pen.up(); classifyCanvas(); } }
const onPointer = { pointerdown: onDown, pointermove: onMove, pointerup: onUp, pointercancel: onUp };
for (const [type, handler] of Object.entries(onPointer)) { canvas.addEventListener(type, handler); }
clear.addEventListener("click", clearAll);

// At most one inference at a time; strokes made meanwhile are read once it is done.
async function classifyCanvas() {
  if (!pen.inked || stats.error) { return; }
  if (pending) { again = true; return; }
  pending = true;
  try {
    await window.mnistWeb.ready;
    if (!stats.error) { await classify(canvas, generation); }
  } catch (error) { statusLine.textContent = error.message; }
  pending = false;
  if (again) { again = false; classifyCanvas(); }
}

// --- From a picture to the model's input --------------------------------------------------

// The picture fitted (aspect kept) into width x height on white paper: RGB uint8, as a camera gives.
function toRgb(source, width, height) {
  const work = new OffscreenCanvas(width, height).getContext("2d", { willReadFrequently: true });
  work.fillStyle = "#fff";
  work.fillRect(0, 0, width, height);
  const scale = Math.min(width / source.width, height / source.height);
  const w = source.width * scale, h = source.height * scale;
  work.imageSmoothingQuality = "high";
  work.drawImage(source, (width - w) / 2, (height - h) / 2, w, h);
  const rgba = work.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) { rgb.set(rgba.subarray(4 * i, 4 * i + 3), 3 * i); }
  return rgb;
}

// source (canvas or bitmap) -> { pixels: uint8 in the model's layout, channels } or null (no digit).
function prepare(source) {
  if (input.channels === 3) {  // the model finds the digit itself; the blank check reads what it gets
    const rgb = toRgb(source, input.width, input.height);  // (a few thousand pixels, not the whole canvas)
    const gray = grayOf({ data: rgb, width: input.width, height: input.height }, 3);
    return inkOf(gray, input.width, input.height) === null ? null : rgb;
  }
  const image = pixelsOf(source, WORK_SIZE);
  const ink = inkOf(grayOf(image), image.width, image.height);
  if (ink === null) { return null; }  // blank, or too little contrast: no digit to read
  if (input.channels === 3) { return toRgb(source, input.width, input.height); }
  return toMnist(ink, image.width, image.height);
}

function showSeen(pixels) {
  const { width, height, channels } = input;
  const image = seen.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const rgb = channels === 3 ? pixels.subarray(3 * i, 3 * i + 3) : [pixels[i], pixels[i], pixels[i]];
    image.data.set([...rgb, 255], 4 * i);
  }
  seen.putImageData(image, 0, 0);
  seenHint.hidden = true;
}

// --- Running the model ---------------------------------------------------------------------

async function infer(pixels) {
  const data = input.dtype === "uint8" ? pixels : Float32Array.from(pixels, (v) => (v - input.mean) / input.std);
  const tensor = new Tensor(data, input.shape);
  let outputs;
  try {
    outputs = await model.run([tensor]);
  } finally { tensor.delete(); }
  try {
    // The digits' output has ten values; a model exported with the no-digit head (no_digit.py)
    // has a second, digit_check = [no digit, digit]: no digit when its "digit" value is under 0.5.
    const arrays = outputs.map((t) => t.toTypedArray());
    const raw = arrays.find((a) => a.length === 10) || arrays[0];
    const checkRaw = arrays.find((a) => a.length === 2);
    const dequantize = (array, spec) => Array.from(array, (v) => (array instanceof Uint8Array
      ? (v - ((spec || {}).zero_point || 0)) * ((spec || {}).scale || 1 / 256) : v));
    const digitScore = checkRaw ? dequantize(checkRaw, meta.no_digit_output)[1] : null;
    let values = dequantize(raw, meta.output);
    const sum = values.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > 0.02 || values.some((v) => v < 0)) {  // logits: make probabilities
      const top = Math.max(...values);
      const e = values.map((v) => Math.exp(v - top));
      const total = e.reduce((a, b) => a + b, 0);
      values = e.map((v) => v / total);
    }
    return { probabilities: values, digitScore };
  } finally { for (const t of outputs) { t.delete(); } }
}

async function classify(source, sent) {
  const start = performance.now();
  const pixels = prepare(source);
  if (sent !== generation) { return; }
  if (pixels === null) {
    clearResult();
    showNoDigit(null);
    statusLine.textContent = "No digit found: the picture is blank or has almost no contrast.";
    return;
  }
  const inferStart = performance.now();
  const { probabilities, digitScore } = await infer(pixels);
  stats.inferMs.push(performance.now() - inferStart);
  if (sent !== generation) { return; }  // cleared meanwhile
  show(probabilities, pixels, digitScore);
  const now = performance.now();
  stats.latenciesMs.push(now - start);
  if (stats.firstPredictionMs === null) { stats.firstPredictionMs = now; }
}

function showNoDigit(digitScore) {  // no_digit.py's decision: what every reader says
  stats.lastNoDigit = true;
  stats.lastDigitScore = digitScore;
  predictionBox.textContent = "no digit";
  predictionBox.dataset.noDigit = "true";
  document.getElementById("confidence").textContent =
    digitScore === null ? "" : `digit score ${digitScore.toFixed(2)}`;
}

function show(probabilities, pixels, digitScore = null) {
  const noDigit = digitScore !== null && digitScore < 0.5;
  const digit = probabilities.indexOf(Math.max(...probabilities));
  stats.lastNoDigit = noDigit;
  stats.lastDigitScore = digitScore;
  predictionBox.textContent = String(digit);
  predictionBox.dataset.noDigit = "false";
  document.getElementById("confidence").textContent = `${(100 * probabilities[digit]).toFixed(1)}% sure`;
  if (noDigit) { showNoDigit(digitScore); }
  showBars(bars, probabilities, noDigit ? null : digit);
  stats.lastInput = Array.from(pixels);
  showSeen(pixels);
  statusLine.textContent = "";
}

// --- Uploads -------------------------------------------------------------------------------

async function classifyFile(file, name) {
  generation += 1;
  const sent = generation;
  clearAll();
  generation = sent;
  let bitmap;
  try {
    bitmap = await imageOf(file, name);
  } catch (error) {
    statusLine.textContent = error.message;
    return;
  }
  pen.picture(bitmap);
  await window.mnistWeb.ready;
  if (stats.error) { return; }
  try { await classify(bitmap, sent); } catch (error) { statusLine.textContent = error.message; }
}
window.mnistWeb.classifyBlob = classifyFile;

upload.addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) { return; }
  await classifyFile(file, file.name);
  event.target.value = "";
});

// --- Start-up ------------------------------------------------------------------------------

const nextTask = () => new Promise((resolve) => { setTimeout(resolve, 0); });

// The first pass over a picture is slow (the 2D canvas's first read-back, JavaScript not yet
// compiled): done once on the blank canvas while the runtime compiles, not on the first stroke.
function warmUp() {
  const side = 64;
  inkOf(grayOf({ data: toRgb(canvas, side, side), width: side, height: side }, 3), side, side);
}

async function start() {
  stats.phases.script = performance.now();
  if (typeof WebAssembly !== "object" || !WebAssembly.validate(SIMD_PROBE)) {
    fail("This browser lacks WebAssembly SIMD, which the in-browser model needs. Use a current " +
         "Chrome, Edge, Firefox or Safari (16.4 or later), or the server-backed page (mnist-serve).");
    return;
  }
  const boot = window.mnistBoot;  // what index.html started: the model's bytes, the runtime compiling
  warmUp();
  try {
    if (!boot || !boot.runtime) { throw new Error("index.html's start-up script did not run"); }
    const runtime = await boot.runtime;
    // LiteRT.js runs the build's JavaScript (preloaded), which instantiates the module compiled meanwhile.
    let failed;
    const failure = new Promise((resolve, reject) => { failed = reject; });
    window.Module = {
      instantiateWasm(imports, receive) {
        runtime.module.then((module) => WebAssembly.instantiate(module, imports)
          .then((instance) => receive(instance, module))).catch(failed);
        return {};
      },
    };
    await Promise.race([loadLiteRt(new URL(runtime.script, location.href).href), failure]);
    stats.phases.runtime = performance.now();
    await nextTask();  // strokes made meanwhile are drawn between the long steps of the start-up
    meta = await boot.description;
    model = await loadAndCompile(new Uint8Array(await boot.model), { accelerator: "wasm" });
    stats.phases.model = performance.now();
  } catch (error) {
    fail(`The model could not be loaded: ${error.message || error}`);
    return;
  } finally {
    Object.assign(stats.phases, boot ? boot.times : {});
  }
  const details = model.getInputDetails()[0];
  const shape = Array.from(details.shape);
  stats.inputShape = shape; stats.inputDtype = details.dtype;
  const [height, width, channels] = shape.slice(1);
  if (shape.length !== 4 || !(channels === 3 || (channels === 1 && height === SIZE && width === SIZE))) {
    fail(`model.tflite takes [${shape}]; this page reads models taking [1, H, W, 3] or [1, 28, 28, 1]`);
    return;
  }
  const norm = (meta.input && meta.input.normalization) || {};
  input = { shape: [1, height, width, channels], height, width, channels, dtype: details.dtype,
            mean: norm.mean ?? 0, std: norm.std ?? 255 };
  seenCanvas.width = width; seenCanvas.height = height;
  showBlank(seenCanvas, seenHint);  // (resizing a canvas empties it)
  document.getElementById("seen-size").textContent = `${width}x${height}${channels === 3 ? " RGB" : ""}`;
  stats.runtime = `LiteRT.js ${meta.runtime_version || ""}`.trim();
  document.getElementById("runtime").textContent = `Model: ${meta.source || "model.tflite"} ` +
    `([${shape}] ${details.dtype}).`;
  await nextTask();
  await infer(new Uint8Array(height * width * channels));  // the first run sets up XNNPack's kernels
  stats.loadedMs = performance.now();
}

clearAll();
window.mnistWeb.ready = start();
// Strokes begun before this script ran (index.html kept them): drawn now, read once the model is ready.
for (const event of window.mnistBoot ? window.mnistBoot.takeEarlyEvents() : []) { onPointer[event.type](event); }
