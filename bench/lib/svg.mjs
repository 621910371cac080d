/**
 * Hand-written SVG bar charts (no chart dependency): horizontal bars, one per label, the
 * value printed at the end of each bar, an optional dashed line for a target, and a log
 * scale for ratios that span orders of magnitude (a thread pool against a process spawn).
 */

const COLORS = { thread: '#2b8a3e', process: '#1971c2', spawn: '#e8590c', bullmq: '#ae3ec9', limit: '#868e96', naive: '#e03131', kiln: '#2b8a3e' };
export const colorFor = (key) => COLORS[key] ?? '#495057';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function formatNumber(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  const abs = Math.abs(v);
  if (abs >= 100_000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  if (abs === 0) return '0';
  return v.toPrecision(Math.max(1, digits - 1));
}

/** 1, 2, 2.5 or 5 times a power of ten, at least `raw`. */
function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/**
 * bars: [{ label, value, color?, text? }]; value null draws no bar and prints "n/a".
 * options: { title, unit, log, target: { value, label } }
 */
export function barChart({ title, unit = '', bars, log = false, target = null, width = 720 }) {
  const rowHeight = 22;
  const labelWidth = Math.min(300, 12 + 7 * Math.max(...bars.map((b) => String(b.label).length), 8));
  const valueWidth = 110;
  const top = 44;
  const plotWidth = width - labelWidth - valueWidth - 10;
  const height = top + bars.length * rowHeight + 24;
  const values = bars.map((b) => b.value).filter((v) => typeof v === 'number' && v > 0);
  if (target) values.push(target.value);
  const maxV = values.length ? Math.max(...values) : 1;
  const minV = values.length ? Math.min(...values) : 1;
  let x;
  if (log) {
    const lo = Math.pow(10, Math.floor(Math.log10(minV)));
    const hi = Math.pow(10, Math.ceil(Math.log10(maxV * 1.01)));
    x = (v) => (v <= 0 ? 0 : (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotWidth);
    x.ticks = [];
    for (let t = lo; t <= hi * 1.0001; t *= 10) x.ticks.push(t);
  } else {
    const step = niceStep((maxV * 1.05) / 4);
    const hi = Math.max(step * Math.ceil((maxV * 1.05) / step), step);
    x = (v) => (v <= 0 ? 0 : (v / hi) * plotWidth);
    x.ticks = [];
    for (let t = 0; t <= hi + step / 2; t += step) x.ticks.push(Number(t.toPrecision(6)));
  }
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  parts.push(`<text x="8" y="18" font-size="14" font-weight="600">${esc(title)}${unit ? ` <tspan font-weight="400" fill="#495057">(${esc(unit)}${log ? ', log scale' : ''})</tspan>` : ''}</text>`);
  for (const t of x.ticks) {
    const tx = labelWidth + x(t);
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${top - 4}" x2="${tx.toFixed(1)}" y2="${top + bars.length * rowHeight}" stroke="#e9ecef"/>`);
    parts.push(`<text x="${tx.toFixed(1)}" y="${top + bars.length * rowHeight + 14}" text-anchor="middle" fill="#868e96" font-size="10">${esc(formatNumber(t))}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowHeight;
    parts.push(`<text x="${labelWidth - 6}" y="${y + 15}" text-anchor="end">${esc(b.label)}</text>`);
    if (typeof b.value === 'number' && b.value > 0) {
      const w = Math.max(1, x(b.value));
      parts.push(`<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${b.color ?? '#495057'}" rx="2"/>`);
      parts.push(`<text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + 15}" fill="#212529">${esc(b.text ?? formatNumber(b.value))}</text>`);
    } else {
      parts.push(`<text x="${labelWidth + 4}" y="${y + 15}" fill="#868e96">${esc(b.text ?? 'n/a')}</text>`);
    }
  });
  if (target) {
    const tx = labelWidth + x(target.value);
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${top - 6}" x2="${tx.toFixed(1)}" y2="${top + bars.length * rowHeight}" stroke="#c92a2a" stroke-dasharray="4 3" stroke-width="1.5"/>`);
    parts.push(`<text x="${(tx + 3).toFixed(1)}" y="${top - 9}" fill="#c92a2a" font-size="10">${esc(target.label ?? `target ${formatNumber(target.value)}`)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
