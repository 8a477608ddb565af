// What the drawing pages share (mnist-serve's /, export/web/'s index.html and explain.html): the pen
// on the canvas, an uploaded picture put on it, the ten bars of probabilities and the blank preview.
// mnist-serve serves this module at /draw.js; mnist-export copies it beside export/web/index.html.

export const PEN_WIDTH = 20;  // in canvas pixels: about MNIST's stroke once the digit is scaled down

// The pen: strokes from pointer events, a dot for a tap; `inked` once anything is drawn.
export class Pen {
  constructor(canvas, ctx) {
    this.canvas = canvas;
    this.ctx = ctx;
    this.last = null;
    this.inked = false;
  }

  clear() {  // white paper, nothing drawn
    this.ctx.fillStyle = "#fff";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.inked = false;
  }

  point(event) {  // the event's position in canvas pixels, however the canvas is scaled on screen
    const box = this.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * this.canvas.width / box.width,
            (event.clientY - box.top) * this.canvas.height / box.height];
  }

  picture(bitmap) {  // an uploaded picture on white paper, fitted (aspect kept) and centred
    this.clear();
    const { width, height } = this.canvas;
    const scale = Math.min(width / bitmap.width, height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    this.ctx.drawImage(bitmap, (width - w) / 2, (height - h) / 2, w, h);
    this.inked = true;
  }

  down(event) { this.last = null; this.stroke(this.point(event)); }
  move(event) { this.stroke(this.point(event)); }
  up() { this.last = null; }

  stroke(to) {
    const ctx = this.ctx;
    ctx.strokeStyle = "#000";
    ctx.lineWidth = PEN_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    if (this.last) {
      ctx.moveTo(...this.last);
      ctx.lineTo(...to);
      ctx.stroke();
    } else {  // a tap: a dot (a zero-length line would draw nothing)
      ctx.fillStyle = "#000";
      ctx.arc(to[0], to[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
    }
    this.last = to;
    this.inked = true;
  }
}

// The elements of pad.html (every drawing page) and of panel.html (both drawing pages, around the pad),
// by the names the pages' scripts give them; the pen on the pad's canvas.
export function pad() {
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });  // the pages read it back
  return { canvas, ctx, pen: new Pen(canvas, ctx), statusLine: document.getElementById("status"),
           upload: document.getElementById("upload"), clear: document.getElementById("clear") };
}

export function panel() {
  const seenCanvas = document.getElementById("seen");
  return { ...pad(), bars: document.getElementById("bars"), seenCanvas, seen: seenCanvas.getContext("2d"),
           seenHint: document.getElementById("seen-hint"), predictionBox: document.getElementById("prediction") };
}

// An uploaded file as a bitmap; an Error naming the file when this browser cannot read it as a picture.
export async function imageOf(file, name = file.name) {
  try {
    return await createImageBitmap(file);
  } catch {
    throw new Error(`${name}: not an image file this browser can read (PNG, JPEG, GIF, WebP, BMP)`);
  }
}

// "What the network sees" before anything is drawn: light paper and its hint, not a black square.
export const BLANK_GRAY = 238;
export function showBlank(preview, hint) {
  const g = preview.getContext("2d");
  g.fillStyle = `rgb(${BLANK_GRAY}, ${BLANK_GRAY}, ${BLANK_GRAY})`;
  g.fillRect(0, 0, preview.width, preview.height);
  if (hint) { hint.hidden = false; }
}

export function addBars(bars, count = 10) {  // one row a class: its label, a bar, the percentage
  for (let d = 0; d < count; d++) {
    bars.insertAdjacentHTML("beforeend",
      `<div class="bar" data-digit="${d}"><span>${d}</span>` +
      `<div class="track"><div class="fill"></div></div><span class="value"></span></div>`);
  }
}

export function showBars(bars, probabilities, best) {  // best: the digit to mark, or null
  for (const bar of bars.children) {
    const d = Number(bar.dataset.digit);
    bar.classList.toggle("best", d === best);
    bar.querySelector(".fill").style.width = `${(100 * probabilities[d]).toFixed(1)}%`;
    bar.querySelector(".value").textContent = `${(100 * probabilities[d]).toFixed(1)}%`;
    bar.dataset.probability = String(probabilities[d]);
  }
}

export function clearBars(bars) {
  for (const bar of bars.children) {
    bar.classList.remove("best");
    bar.querySelector(".fill").style.width = "0";
    bar.querySelector(".value").textContent = "";
    delete bar.dataset.probability;
  }
}
