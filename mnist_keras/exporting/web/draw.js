// What both drawing pages share (mnist-serve's / and export/web/): the pen on the canvas and the
// ten bars of probabilities. mnist-serve serves this module at /draw.js; mnist-export copies it
// beside export/web/index.html.

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

export function addBars(bars) {  // one row a digit: its label, a bar, the percentage
  for (let d = 0; d < 10; d++) {
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
