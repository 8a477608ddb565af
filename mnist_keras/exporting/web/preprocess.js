// How both export/web/ pages (index.html, explain.html) turn a drawing into the network's 28x28
// input, MNIST-style: the ink found, cropped, its longer side scaled to 20, centred by mass.

export const SIZE = 28, BOX = 20, MIN_CONTRAST = 40, INK = 0.25, WORK_SIZE = 1024;

export function pixelsOf(source, maxSide) {  // RGBA of a canvas or bitmap, shrunk to at most maxSide
  const scale = Math.min(1, maxSide / Math.max(source.width, source.height));
  const w = Math.max(1, Math.round(source.width * scale)), h = Math.max(1, Math.round(source.height * scale));
  const work = new OffscreenCanvas(w, h).getContext("2d", { willReadFrequently: true });
  work.fillStyle = "#fff";  // transparent pixels read as paper
  work.fillRect(0, 0, w, h);
  work.drawImage(source, 0, 0, w, h);
  return work.getImageData(0, 0, w, h);
}

export function grayOf(image, channels = 4) {  // RGBA (ImageData) or RGB pixels
  const { data, width, height } = image;
  const gray = new Float32Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    const at = channels * i;
    gray[i] = 0.299 * data[at] + 0.587 * data[at + 1] + 0.114 * data[at + 2];
  }
  return gray;
}

export function percentile(values, rank) {  // the rank-th smallest (0-based) of 0-255 values
  const histogram = new Uint32Array(256);
  for (const v of values) { histogram[Math.min(255, Math.max(0, Math.round(v)))] += 1; }
  let seenCount = 0;
  for (let v = 0; v < 256; v++) {
    seenCount += histogram[v];
    if (seenCount > rank) { return v; }
  }
  return 255;
}

// Grayscale [h, w] -> the ink, light on dark and scaled to [0, 1]; null when there is no digit.
export function inkOf(gray, w, h) {
  // 3x3 means (row sums, then column sums), so one odd pixel does not decide.
  const rows = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      rows[i] = gray[i] + (x > 0 ? gray[i - 1] : gray[i]) + (x < w - 1 ? gray[i + 1] : gray[i]);
    }
  }
  let low = Infinity, high = -Infinity;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const mean = (rows[i] + (y > 0 ? rows[i - w] : rows[i]) + (y < h - 1 ? rows[i + w] : rows[i])) / 9;
      if (mean < low) { low = mean; }
      if (mean > high) { high = mean; }
    }
  }
  const median = percentile(gray, Math.floor(gray.length / 2));
  const ink = withoutShading(high - median < median - low ? gray.map((v) => 255 - v) : gray, w, h);
  const background = percentile(ink, Math.floor(ink.length / 2));
  const strongest = percentile(ink, Math.max(0, ink.length - 5));
  if (strongest - background < MIN_CONTRAST) { return null; }
  return ink.map((v) => Math.min(1, Math.max(0, (v - background) / (strongest - background))));
}

// The ink above the paper around it (a white top-hat: the image minus its grey opening by a
// square of half the longer side), so uneven light on a photographed page is not taken for ink;
// as preprocess.py's _without_shading.
export function withoutShading(ink, w, h) {
  const side = Math.floor(Math.max(w, h) / 2) | 1;
  const eroded = minimumSquare(ink, w, h, side);
  const opened = minimumSquare(eroded.map((v) => -v), w, h, side);  // a maximum, as minus the minimum of minus
  return ink.map((v, i) => v + opened[i]);
}

// The minimum over a side x side square round each pixel, the square cut short at the image's
// edges (scipy's mode="nearest"): rows, then columns.
function minimumSquare(image, w, h, side) {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) { out.set(runningMinimum(image.subarray(y * w, (y + 1) * w), side), y * w); }
  const column = new Float32Array(h);
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) { column[y] = out[y * w + x]; }
    const least = runningMinimum(column, side);
    for (let y = 0; y < h; y++) { out[y * w + x] = least[y]; }
  }
  return out;
}

// The minimum of a window of `side` (odd) values centred on each one, in three comparisons a value
// whatever the side (van Herk, Gil and Werman): the line, padded with Infinity, is cut into blocks
// of side; every window is the end of one block and the start of the next.
function runningMinimum(line, side) {
  const n = line.length, half = (side - 1) >> 1, m = n + 2 * half;
  const padded = new Float32Array(m).fill(Infinity);
  padded.set(line, half);
  const fromStart = new Float32Array(m), toEnd = new Float32Array(m);
  for (let start = 0; start < m; start += side) {
    const stop = Math.min(m, start + side);
    fromStart[start] = padded[start];
    for (let i = start + 1; i < stop; i++) { fromStart[i] = Math.min(fromStart[i - 1], padded[i]); }
    toEnd[stop - 1] = padded[stop - 1];
    for (let i = stop - 2; i >= start; i--) { toEnd[i] = Math.min(toEnd[i + 1], padded[i]); }
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { out[i] = Math.min(toEnd[i], fromStart[i + side - 1]); }
  return out;
}

// Ink [h, w] in [0, 1] -> uint8 [28 * 28], MNIST-style: cropped, longer side 20, centred by mass.
export function toMnist(ink, w, h) {
  let top = h, bottom = -1, left = w, right = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (ink[y * w + x] > INK) {
        top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  const cw = right - left + 1, ch = bottom - top + 1;
  const crop = new OffscreenCanvas(cw, ch).getContext("2d");
  const cropped = crop.createImageData(cw, ch);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const v = Math.round(255 * ink[(top + y) * w + left + x]);
      cropped.data.set([v, v, v, 255], 4 * (y * cw + x));
    }
  }
  crop.putImageData(cropped, 0, 0);
  const scale = BOX / Math.max(cw, ch);
  const dw = Math.max(1, Math.round(cw * scale)), dh = Math.max(1, Math.round(ch * scale));
  const small = new OffscreenCanvas(dw, dh).getContext("2d", { willReadFrequently: true });
  small.imageSmoothingEnabled = true;
  small.imageSmoothingQuality = "high";
  small.drawImage(crop.canvas, 0, 0, dw, dh);
  const digit = small.getImageData(0, 0, dw, dh).data;
  let total = 0, my = 0, mx = 0;
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const v = digit[4 * (y * dw + x)];
      total += v; my += y * v; mx += x * v;
    }
  }
  const clamp = (v, hi) => Math.min(hi, Math.max(0, v));
  const y0 = clamp(Math.round(SIZE / 2 - my / total), SIZE - dh), x0 = clamp(Math.round(SIZE / 2 - mx / total), SIZE - dw);
  const frame = new Uint8Array(SIZE * SIZE);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) { frame[(y0 + y) * SIZE + x0 + x] = digit[4 * (y * dw + x)]; }
  }
  return frame;
}

