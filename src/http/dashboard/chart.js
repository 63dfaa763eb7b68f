/**
 * A live line chart drawn on a <canvas> (no chart library: nothing may come from a CDN and
 * there is no build step). It keeps the last `capacity` samples per series, redraws on push,
 * and mirrors the latest values into the canvas's data attributes and an optional text readout
 * so that tests and screen readers see the numbers without reading pixels.
 */

/**
 * @typedef {{key: string, label: string, color: string}} Series
 */

export class LineChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {Series[]} series
   * @param {{capacity?: number, readout?: HTMLElement, unit?: string}} [opts]
   */
  constructor(canvas, series, opts = {}) {
    this.canvas = canvas;
    this.series = series;
    this.capacity = opts.capacity ?? 120;
    this.readout = opts.readout ?? null;
    this.unit = opts.unit ?? "";
    /** @type {{t:number, values:number[]}[]} */
    this.points = [];
  }

  /**
   * Adds a sample (missing or non-numeric values count as 0) and redraws.
   * @param {number} t ms epoch
   * @param {Record<string, number>} sample
   */
  push(t, sample) {
    const values = this.series.map((s) => {
      const v = Number(sample[s.key]);
      return Number.isFinite(v) ? v : 0;
    });
    this.points.push({ t, values });
    if (this.points.length > this.capacity) {
      this.points.splice(0, this.points.length - this.capacity);
    }
    const last = Object.fromEntries(this.series.map((s, i) => [s.key, values[i]]));
    this.canvas.dataset.points = String(this.points.length);
    this.canvas.dataset.last = JSON.stringify(last);
    if (this.readout) {
      this.readout.textContent = this.series
        .map((s, i) => `${s.label}: ${format(values[i])}${this.unit}`)
        .join(" · ");
    }
    this.draw();
  }

  /** Empties the chart (e.g. after logging out). */
  clear() {
    this.points = [];
    delete this.canvas.dataset.points;
    delete this.canvas.dataset.last;
    if (this.readout) this.readout.textContent = "waiting for data";
    this.draw();
  }

  /** The y-axis top: the largest value shown, rounded up to 1, 2 or 5 × 10^n (at least 1). */
  static niceMax(max) {
    if (!(max > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(max));
    for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
    return 10 * p;
  }

  draw() {
    const c = this.canvas;
    const ratio = globalThis.devicePixelRatio || 1;
    const w = c.clientWidth || 300;
    const hgt = c.clientHeight || 120;
    if (c.width !== Math.round(w * ratio) || c.height !== Math.round(hgt * ratio)) {
      c.width = Math.round(w * ratio);
      c.height = Math.round(hgt * ratio);
    }
    const g = c.getContext("2d");
    if (!g) return;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const style = getComputedStyle(c);
    const ink = style.getPropertyValue("--chart-ink").trim() || "#667";
    const grid = style.getPropertyValue("--chart-grid").trim() || "#ddd";
    const left = 40, right = 6, top = 8, bottom = 16;
    const pw = w - left - right, ph = hgt - top - bottom;
    const max = LineChart.niceMax(
      Math.max(0, ...this.points.flatMap((p) => p.values)),
    );
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = ink;
    g.strokeStyle = grid;
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      g.beginPath();
      g.moveTo(left, Math.round(y) + 0.5);
      g.lineTo(left + pw, Math.round(y) + 0.5);
      g.stroke();
      g.fillText(format((max * i) / 4), left - 4, y);
    }
    g.textAlign = "left";
    g.textBaseline = "alphabetic";
    g.fillText(`last ${this.capacity} s`, left, hgt - 3);
    const n = this.capacity;
    const x = (i) => left + (pw * (n - this.points.length + i)) / Math.max(1, n - 1);
    const y = (v) => top + ph - (ph * v) / max;
    g.lineWidth = 2;
    this.series.forEach((s, si) => {
      g.strokeStyle = s.color;
      g.beginPath();
      this.points.forEach((p, i) => {
        if (i === 0) g.moveTo(x(i), y(p.values[si]));
        else g.lineTo(x(i), y(p.values[si]));
      });
      g.stroke();
    });
  }
}

function format(v) {
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  return String(Number(v.toFixed(Math.abs(v) < 10 ? 2 : 1)));
}
