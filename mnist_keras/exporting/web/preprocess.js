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

// The ink less a plane fitted to the paper (the pixels at or under the median), so light falling
// off across a photographed page is not taken for ink; as preprocess.py's _without_shading.
export function withoutShading(ink, w, h) {
  const median = percentile(ink, Math.floor(ink.length / 2));
  const scale = 1 / Math.max(w, h);
  // Sums over the paper of 1, r, c, r^2, rc, c^2 and of the ink times 1, r, c (r, c scaled by scale).
  let n = 0, sr = 0, sc = 0, srr = 0, src = 0, scc = 0, sv = 0, svr = 0, svc = 0;
  for (let y = 0; y < h; y++) {
    const r = y * scale;
    for (let x = 0; x < w; x++) {
      const v = ink[y * w + x];
      if (v > median) { continue; }
      const c = x * scale;
      n += 1; sr += r; sc += c; srr += r * r; src += r * c; scc += c * c; sv += v; svr += v * r; svc += v * c;
    }
  }
  // Cramer's rule on the normal equations [n sr sc; sr srr src; sc src scc] [a b c] = [sv svr svc].
  const det3 = (m) => m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
    + m[2] * (m[3] * m[7] - m[4] * m[6]);
  const normal = [n, sr, sc, sr, srr, src, sc, src, scc];
  const det = det3(normal);
  let a = sv / Math.max(n, 1), b = 0, c = 0;  // one row or column: no slope across it
  if (Math.abs(det) > 1e-12 * n * n * n) {
    a = det3([sv, sr, sc, svr, srr, src, svc, src, scc]) / det;
    b = det3([n, sv, sc, sr, svr, src, sc, svc, scc]) / det;
    c = det3([n, sr, sv, sr, srr, svr, sc, src, svc]) / det;
  }
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) { out[y * w + x] = ink[y * w + x] - (a + b * y * scale + c * x * scale); }
  }
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

