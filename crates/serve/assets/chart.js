// A report's chart with uPlot (vendor/uPlot.iife.min.js, the global `uPlot`):
// `chart.x` on the x axis, as time (UTC) when its column is a timestamp or a
// date, else as categories (the row index, labelled with the values); each of
// `chart.y` a series, drawn as a line or as grouped bars.
//
// The container gets `data-points` (rows plotted) and `data-signature` (a
// hash of every plotted value), so a test can tell that new data was drawn.

import { fmtCompact, h, shortHash } from './common.js';
import { isNumericType, isTimeType } from './grid.js';

const HEIGHT = 320;
const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
const plots = new WeakMap();

// The plotted arrays of a report result.
export function chartData(report, result) {
  const spec = report.chart || {};
  const names = result.columns.map((c) => c.name);
  let xi = names.indexOf(spec.x);
  if (xi < 0) xi = 0;
  let ys = (spec.y || []).map((n) => names.indexOf(n)).filter((i) => i >= 0 && i !== xi);
  if (!ys.length) ys = result.columns.map((c, i) => i).filter((i) => i !== xi && isNumericType(result.columns[i].type));
  const time = isTimeType(result.columns[xi] && result.columns[xi].type);

  let rows = result.rows;
  let xs;
  let labels = null;
  if (time) {
    rows = rows.map((r) => [parseTime(r[xi]), r]).filter(([t]) => Number.isFinite(t))
      .sort((a, b) => a[0] - b[0]);
    xs = rows.map(([t]) => t);
    rows = rows.map(([, r]) => r);
  } else {
    labels = rows.map((r) => (r[xi] === null ? 'NULL' : String(r[xi])));
    xs = rows.map((_, i) => i);
  }
  const series = ys.map((i) => ({
    name: names[i],
    values: rows.map((r) => {
      const v = r[i] === null || r[i] === undefined ? null : Number(r[i]);
      return Number.isFinite(v) ? v : null;
    }),
  }));
  const signature = shortHash(JSON.stringify([names[xi], xs, labels, series]));
  return { xName: names[xi], time, xs, labels, series, points: xs.length, signature };
}

// Seconds since the epoch; a value without a zone is taken as UTC.
function parseTime(v) {
  if (v === null || v === undefined) return NaN;
  if (typeof v === 'number') return v > 1e11 ? v / 1000 : v;
  let s = String(v).trim().replace(' ', 'T');
  if (/^\d{4}-\d\d-\d\d$/.test(s)) s += 'T00:00:00Z';
  else if (!/(Z|[+-]\d\d:?\d\d)$/i.test(s)) s += 'Z';
  return Date.parse(s) / 1000;
}

export function destroyChart(container) {
  const p = plots.get(container);
  if (p) {
    p.observer.disconnect();
    p.plot.destroy();
    plots.delete(container);
  }
}

// Draws `result` into `container` (replacing what was there).
export function drawChart(container, report, result) {
  destroyChart(container);
  const data = chartData(report, result);
  container.dataset.report = report.name;
  container.replaceChildren();
  if (typeof window.uPlot !== 'function') {
    container.dataset.points = '0';
    container.append(h('p', { class: 'error' }, 'The chart library (assets/vendor/uPlot.iife.min.js) did not load.'));
    return data;
  }
  if (!data.points || !data.series.length) {
    container.dataset.points = '0';
    container.dataset.signature = data.signature;
    container.append(h('p', { class: 'muted empty-chart' }, data.series.length ? 'No rows to plot.' : 'No numeric column to plot.'));
    return data;
  }
  const bar = (report.chart && report.chart.type) === 'bar';
  const width = Math.max(300, container.clientWidth || 800);
  const plot = new window.uPlot(options(data, bar, width), [data.xs, ...data.series.map((s) => s.values)], container);
  const observer = new ResizeObserver(() => {
    const w = Math.max(300, container.clientWidth);
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: HEIGHT });
  });
  observer.observe(container);
  plots.set(container, { plot, observer });
  container.dataset.points = String(data.points);
  container.dataset.signature = data.signature;
  return data;
}

function options(data, bar, width) {
  const k = data.series.length;
  const fmt = (u, v) => (v === null || v === undefined ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 }));
  const xSeries = data.time
    ? { label: `${data.xName} (UTC)`, value: '{YYYY}-{MM}-{DD} {HH}:{mm}' }
    : { label: data.xName, value: (u, v) => (v === null || v === undefined ? '—' : data.labels[v] ?? '') };
  const ySeries = data.series.map((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    return bar
      ? { label: s.name, stroke: color, fill: `${color}cc`, width: 1, paths: groupedBars(k, i), points: { show: false }, value: fmt }
      : { label: s.name, stroke: color, width: 2, value: fmt, spanGaps: false, points: { size: 5 } };
  });
  const xAxis = { stroke: '#475569', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' } };
  if (data.time) {
    xAxis.values = (u, splits, axisIdx, space, incr) => timeLabels(splits, incr);
    xAxis.space = 60;
  } else {
    xAxis.splits = (u) => categorySplits(data.labels.length, u.bbox.width / devicePixelRatio);
    xAxis.values = (u, splits) => splits.map((i) => clip(data.labels[i] ?? ''));
    xAxis.grid = { show: false };
  }
  const half = bar ? halfStep(data.xs) : 0;
  return {
    width,
    height: HEIGHT,
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
    scales: {
      x: {
        time: data.time,
        range: (u, min, max) => (min === max ? [min - (half || 1), max + (half || 1)] : [min - half, max + half]),
      },
      y: {
        range: (u, min, max) => {
          const lo = bar ? Math.min(0, min) : min;
          const hi = bar ? Math.max(0, max) : max;
          const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
          return [bar && lo === 0 ? 0 : lo - pad, hi + pad];
        },
      },
    },
    series: [xSeries, ...ySeries],
    axes: [xAxis, {
      stroke: '#475569', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' }, size: 60,
      values: (u, splits) => splits.map(axisNumber),
    }],
    legend: { live: true },
    cursor: { drag: { x: !bar, y: false } },
  };
}

// 24-hour UTC labels; the date only where it changes.
function timeLabels(splits, incr) {
  let lastDay = null;
  return splits.map((ts) => {
    const iso = new Date(ts * 1000).toISOString();
    const day = iso.slice(0, 10);
    if (incr >= 86400) return day;
    const clock = incr < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
    const label = day !== lastDay ? `${clock}\n${day}` : clock;
    lastDay = day;
    return label;
  });
}

// 120k and 1.5M for big ticks, 12.5 and 0.25 exactly for small ones.
function axisNumber(v) {
  if (v === null || v === undefined) return '';
  if (Math.abs(v) >= 10_000) return fmtCompact(v);
  return v.toLocaleString('en-US', { maximumFractionDigits: 6 });
}

function categorySplits(n, pixels) {
  const fit = Math.max(1, Math.floor(pixels / 70));
  const step = Math.max(1, Math.ceil(n / fit));
  const out = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

function halfStep(xs) {
  let gap = Infinity;
  for (let i = 1; i < xs.length; i += 1) gap = Math.min(gap, xs[i] - xs[i - 1]);
  return Number.isFinite(gap) && gap > 0 ? gap / 2 : 0.5;
}

function clip(text) {
  return text.length > 14 ? `${text.slice(0, 13)}…` : text;
}

// Bars of series `idx` of `k`, side by side around each x value.
function groupedBars(k, idx) {
  return (u, seriesIdx, i0, i1) => {
    const xs = u.data[0];
    const ys = u.data[seriesIdx];
    let gap = Infinity;
    for (let i = Math.max(i0, 1); i <= i1; i += 1) {
      gap = Math.min(gap, Math.abs(u.valToPos(xs[i], 'x', true) - u.valToPos(xs[i - 1], 'x', true)));
    }
    if (!Number.isFinite(gap)) gap = u.bbox.width / 2;
    const group = gap * 0.8;
    const bw = group / k;
    const y0 = u.valToPos(Math.max(0, u.scales.y.min), 'y', true);
    const path = new Path2D();
    for (let i = i0; i <= i1; i += 1) {
      if (ys[i] === null || ys[i] === undefined) continue;
      const left = u.valToPos(xs[i], 'x', true) - group / 2 + idx * bw;
      const top = u.valToPos(ys[i], 'y', true);
      path.rect(Math.round(left), Math.min(top, y0), Math.max(1, Math.round(bw * 0.9)), Math.abs(y0 - top));
    }
    return { stroke: path, fill: path };
  };
}
