/**
 * A hand-written SVG line chart for the soak (svg.mjs draws bars only): values over
 * progress, several series with a legend, optional step lines (a value held over an x
 * range, as per-slice throughput is) and dashed vertical markers (the 20% mark).
 */
import { formatNumber } from './svg.mjs';

/** Whole numbers as they are (60, not 60.0); fractions as the bar charts print them. */
const tickLabel = (v) => (Number.isInteger(v) ? v.toLocaleString('en-US') : formatNumber(v));
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** 1, 2, 2.5 or 5 times a power of ten, at least `raw`. */
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function ticks(lo, hi, n = 5) {
  const step = niceStep((hi - lo) / n);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step / 1e6; t += step) out.push(Number(t.toPrecision(6)));
  return { step, values: out };
}

/**
 * series: [{ label, color, dash?, width?, points: [[x, y], ...], steps?: [{ x0, x1, y }] }]
 * markers: [{ x, label }]. yFormat formats tick and legend values.
 */
export function lineChart({ title, xLabel, yLabel, series, markers = [], width = 760, height = 320, yFromZero = true, xMax, yFormat = tickLabel }) {
  const left = 70;
  const right = 36;
  const legendRows = Math.ceil(series.length / 2);
  const top = 34 + legendRows * 16;
  const bottom = 42;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const xs = [];
  const ys = [];
  for (const s of series) {
    for (const [x, y] of s.points ?? []) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      xs.push(x);
      ys.push(y);
    }
    for (const st of s.steps ?? []) {
      if (!Number.isFinite(st.y)) continue;
      xs.push(st.x0, st.x1);
      ys.push(st.y);
    }
  }
  const xHi = xMax ?? (xs.length ? Math.max(...xs) : 1);
  const yLoRaw = yFromZero ? 0 : ys.length ? Math.min(...ys) : 0;
  const yHiRaw = ys.length ? Math.max(...ys) : 1;
  const yt = ticks(yLoRaw, yHiRaw * 1.05 || 1);
  const yLo = yFromZero ? 0 : Math.floor(yLoRaw / yt.step) * yt.step;
  const yHi = Math.max(yt.values.at(-1) ?? 1, yHiRaw * 1.02) || 1;
  const xt = ticks(0, xHi);
  const px = (x) => left + (x / (xHi || 1)) * plotW;
  const py = (y) => top + plotH - ((y - yLo) / (yHi - yLo || 1)) * plotH;
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`);
  parts.push('<rect width="100%" height="100%" fill="#ffffff"/>');
  parts.push(`<text x="8" y="18" font-size="14" font-weight="600">${esc(title)}</text>`);
  series.forEach((s, i) => {
    const lx = 12 + (i % 2) * (width / 2);
    const ly = 34 + Math.floor(i / 2) * 16;
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${s.color}" stroke-width="${s.width ?? 2}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    parts.push(`<text x="${lx + 28}" y="${ly}">${esc(s.label)}</text>`);
  });
  for (const t of yt.values) {
    if (t < yLo || t > yHi) continue;
    const y = py(t).toFixed(1);
    parts.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#e9ecef"/>`);
    parts.push(`<text x="${left - 6}" y="${(Number(y) + 4).toFixed(1)}" text-anchor="end" fill="#868e96" font-size="10">${esc(yFormat(t))}</text>`);
  }
  for (const t of xt.values) {
    const x = px(t).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#f1f3f5"/>`);
    parts.push(`<text x="${x}" y="${top + plotH + 14}" text-anchor="middle" fill="#868e96" font-size="10">${esc(tickLabel(t))}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#ced4da"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${height - 8}" text-anchor="middle" fill="#495057">${esc(xLabel)}</text>`);
  parts.push(`<text x="14" y="${top + plotH / 2}" text-anchor="middle" fill="#495057" transform="rotate(-90 14 ${top + plotH / 2})">${esc(yLabel)}</text>`);
  for (const m of markers) {
    const x = px(m.x).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#c92a2a" stroke-dasharray="4 3" stroke-width="1.2"/>`);
    parts.push(`<text x="${Number(x) + 4}" y="${top + 12}" fill="#c92a2a" font-size="10">${esc(m.label)}</text>`);
  }
  for (const s of series) {
    const stroke = `stroke="${s.color}" stroke-width="${s.width ?? 2}" fill="none"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}`;
    if (s.steps?.length) {
      const d = s.steps.filter((st) => Number.isFinite(st.y)).map((st) => `M${px(st.x0).toFixed(1)},${py(st.y).toFixed(1)}H${px(st.x1).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" ${stroke}/>`);
    }
    const pts = (s.points ?? []).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length > 0) parts.push(`<polyline points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}" ${stroke} stroke-linejoin="round"/>`);
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
