// The pipeline page: the data-flow graph (sources -> bronze -> silver ->
// gold, edges from each table's input and lookups) and one row per table with
// its size, freshness, state, quarantine rate, last error and a sparkline of
// the rows its recent commits wrote. Refreshes itself every 5 s.

import { api, fill, fmtAgo, fmtBytes, fmtClock, fmtCompact, fmtInt, fmtPct, h, showPipelineName, svg } from './common.js';

const REFRESH_MS = 5000;
const LAYERS = ['bronze', 'silver', 'gold'];

export async function pipelinePage(ctx) {
  const updated = h('span', { class: 'updated', 'aria-live': 'polite' }, 'loading…');
  const summary = h('div', { class: 'summary muted' });
  const alerts = h('div', { class: 'alerts' });
  const graph = h('div', { class: 'graph' });
  const tbody = h('tbody');
  const expanded = new Set();
  ctx.root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Pipeline'), summary, updated),
    alerts,
    h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Data flow'), legend()),
      graph),
    h('section', { class: 'card' },
      h('h2', {}, 'Tables'),
      h('div', { class: 'scroll-x' },
        h('table', { class: 'grid tables' },
          h('thead', {}, h('tr', {},
            h('th', {}, 'Table'), h('th', {}, 'Layer'), h('th', {}, 'Store'),
            h('th', { class: 'num' }, 'Rows'), h('th', { class: 'num' }, 'Version'),
            h('th', {}, 'Freshness'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Quarantine'),
            h('th', {}, 'Last error'), h('th', {}, 'Throughput'))),
          tbody)),
      h('p', { class: 'hint muted' }, 'Click a row for its columns and expectations.')));

  let timer = null;
  ctx.onClose(() => clearTimeout(timer));

  const refresh = async () => {
    try {
      const data = await api('/api/tables');
      if (!ctx.open) return;
      showPipelineName(data.pipeline);
      fill(summary, summaryLine(data));
      alerts.replaceChildren(...alertCards(data.alerts || []));
      graph.replaceChildren(flowGraph(data, (name) => focusRow(tbody, name)));
      tbody.replaceChildren(...data.tables.flatMap((t) => tableRows(t, expanded, () => refreshRows())));
      lastData = data;
      updated.className = 'updated';
      updated.textContent = `updated ${fmtClock()}`;
      ctx.ready();
    } catch (err) {
      if (!ctx.open) return;
      updated.className = 'updated failed';
      updated.textContent = `refresh failed ${fmtClock()}: ${err.message}`;
      if (err.status === 401) return; // the token form is shown; it re-renders the page
    }
    timer = setTimeout(refresh, REFRESH_MS);
  };
  let lastData = null;
  const refreshRows = () => {
    if (lastData) tbody.replaceChildren(...lastData.tables.flatMap((t) => tableRows(t, expanded, refreshRows)));
  };
  await refresh();
}

// The alerts firing now (only a `run --watch` process has them).
function alertCards(firing) {
  if (!firing.length) return [];
  return [h('section', { class: 'card alerts-firing', role: 'alert' },
    h('h2', {}, `${firing.length} alert${firing.length === 1 ? '' : 's'} firing`),
    h('ul', {}, firing.map((a) => h('li', { 'data-alert': a.alert },
      h('span', { class: 'badge state-failed' }, a.alert), ' ', h('code', {}, a.table), ' ',
      h('span', { class: 'muted' }, `since ${new Date(a.since).toLocaleString('en-GB')}: `), a.message))))];
}

function summaryLine(data) {
  const tables = data.tables;
  const rows = tables.reduce((s, t) => s + (t.rows || 0), 0);
  const quarantined = tables.reduce((s, t) => s + (t.quarantined_rows || 0), 0);
  const states = {};
  for (const t of tables) states[t.state] = (states[t.state] || 0) + 1;
  return [
    `${data.sources.length} sources · ${tables.length} tables · ${fmtInt(rows)} rows · ${fmtInt(quarantined)} quarantined · `,
    ...Object.entries(states).flatMap(([s, n], i) => [i ? ' ' : '', h('span', { class: `badge state-${s}` }, `${n} ${s}`)]),
  ];
}

function legend() {
  return h('div', { class: 'legend muted' },
    svg('svg', { width: 28, height: 10 }, svg('line', { x1: 0, y1: 5, x2: 28, y2: 5, class: 'edge' })), ' input ',
    svg('svg', { width: 28, height: 10 }, svg('line', { x1: 0, y1: 5, x2: 28, y2: 5, class: 'edge lookup' })), ' lookup ',
    ...['ok', 'retrying', 'failed', 'stopped', 'idle'].map((s) => h('span', { class: `badge state-${s}` }, s)));
}

// ---- the data-flow graph ----

const W = 1160;
const NODE_W = 210;
const NODE_H = 46;
const GAP_Y = 12;
const TOP = 30;

function flowGraph(data, onPick) {
  const columns = [[], [], [], []];
  const byName = new Map();
  for (const s of data.sources) {
    const n = { name: s.name, col: 0, source: s };
    columns[0].push(n);
    byName.set(s.name, n);
  }
  for (const t of data.tables) {
    const col = LAYERS.indexOf(t.layer) + 1 || 3;
    const n = { name: t.name, col, table: t };
    columns[col].push(n);
    byName.set(t.name, n);
  }
  // Each column in the order of its inputs, so that edges cross little.
  columns.forEach((col, c) => {
    col.forEach((n, i) => {
      const input = n.table && byName.get(n.table.input);
      n.key = input && input.col < c ? input.row : Infinity;
      n.order = i;
    });
    col.sort((a, b) => a.key - b.key || a.order - b.order);
    col.forEach((n, i) => { n.row = i; });
  });

  const tallest = Math.max(...columns.map((c) => c.length), 1);
  const height = TOP + tallest * (NODE_H + GAP_Y) + 4;
  const step = (W - NODE_W - 2) / 3;
  columns.forEach((col) => {
    const offset = ((tallest - col.length) * (NODE_H + GAP_Y)) / 2;
    for (const n of col) {
      n.x = 1 + n.col * step;
      n.y = TOP + offset + n.row * (NODE_H + GAP_Y);
    }
  });

  const edges = [];
  for (const t of data.tables) {
    const to = byName.get(t.name);
    const from = byName.get(t.input);
    if (from) edges.push(edge(from, to, false));
    for (const l of t.lookups || []) {
      const lk = byName.get(l);
      if (lk) edges.push(edge(lk, to, true));
    }
  }

  const titles = ['Sources', 'Bronze', 'Silver', 'Gold'].map((label, c) =>
    svg('text', { x: 1 + c * step + NODE_W / 2, y: 14, class: `col-title col-${c}`, 'text-anchor': 'middle' }, label));
  return svg('svg', {
    viewBox: `0 0 ${W} ${height}`, class: 'flow', role: 'img', 'aria-label': 'data flow of the pipeline',
  },
  svg('defs', {},
    svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))),
  titles, edges, columns.flat().map((n) => node(n, onPick)));
}

function edge(from, to, lookup) {
  const y1 = from.y + NODE_H / 2;
  const y2 = to.y + NODE_H / 2;
  let d;
  if (from.col < to.col) {
    const x1 = from.x + NODE_W;
    const x2 = to.x - 2;
    const mid = (x2 - x1) / 2;
    d = `M${x1},${y1} C${x1 + mid},${y1} ${x2 - mid},${y2} ${x2},${y2}`;
  } else {
    // Same column (or backwards): loop around the right-hand side.
    const x1 = from.x + NODE_W;
    const x2 = to.x + NODE_W + 2;
    d = `M${x1},${y1} C${x1 + 50},${y1} ${x2 + 50},${y2} ${x2},${y2}`;
  }
  return svg('path', { d, class: lookup ? 'edge lookup' : 'edge', 'marker-end': 'url(#arrow)' },
    svg('title', {}, `${from.name} → ${to.name}${lookup ? ' (lookup)' : ''}`));
}

function node(n, onPick) {
  const t = n.table;
  const state = t ? t.state : 'source';
  const sub = t
    ? `${fmtCompact(t.rows)} rows · ${t.exists ? fmtAgo(t.freshness_seconds) : 'not created'}`
    : `${n.source.type} source`;
  const tip = t
    ? `${t.name} (${t.layer}, ${t.store})\n${fmtInt(t.rows)} rows, version ${t.version ?? '—'}\nstate: ${t.state}${t.last_error ? `\nlast error: ${t.last_error}` : ''}`
    : `${n.name}: ${n.source.type} source`;
  const g = svg('g', { class: `node state-${state}`, 'data-node': n.name, tabindex: t ? 0 : null },
    svg('title', {}, tip),
    svg('rect', { x: n.x, y: n.y, width: NODE_W, height: NODE_H, rx: 7, class: 'box' }),
    svg('rect', { x: n.x, y: n.y, width: 6, height: NODE_H, rx: 3, class: 'stripe' }),
    svg('text', { x: n.x + 16, y: n.y + 19, class: 'node-name' }, clip(n.name, 25)),
    svg('text', { x: n.x + 16, y: n.y + 36, class: 'node-sub' }, clip(sub, 32)));
  if (t) {
    g.addEventListener('click', () => onPick(n.name));
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter') onPick(n.name); });
  }
  return g;
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function focusRow(tbody, name) {
  const row = [...tbody.querySelectorAll('tr[data-table]')].find((r) => r.dataset.table === name);
  if (!row) return;
  row.scrollIntoView({ behavior: 'smooth', block: 'center' });
  row.classList.remove('flash');
  void row.offsetWidth; // restart the animation
  row.classList.add('flash');
}

// ---- the table of tables ----

function tableRows(t, expanded, onToggle) {
  const total = (t.rows || 0) + (t.quarantined_rows || 0);
  const row = h('tr', { 'data-table': t.name, class: expanded.has(t.name) ? 'open' : null, title: 'show columns and expectations' },
    h('td', {}, h('span', { class: 'name' }, t.name), t.exists ? null : h('span', { class: 'tag' }, 'not created')),
    h('td', {}, h('span', { class: `layer layer-${t.layer}` }, t.layer)),
    h('td', {}, t.store),
    h('td', { class: 'num' }, fmtInt(t.rows)),
    h('td', { class: 'num' }, t.version ?? '—'),
    h('td', { title: t.last_commit || 'no commit yet' }, fmtAgo(t.freshness_seconds)),
    h('td', {}, h('span', { class: `badge state-${t.state}` }, t.state)),
    h('td', { class: 'num' }, t.quarantined_rows
      ? h('a', { href: `#/quarantine/${encodeURIComponent(t.name)}`, title: `${fmtInt(t.quarantined_rows)} quarantined rows` },
        fmtPct(t.quarantined_rows, total), h('span', { class: 'muted' }, ` (${fmtInt(t.quarantined_rows)})`))
      : h('span', { class: 'muted' }, '0%')),
    h('td', { class: 'last-error' }, t.last_error ? h('span', { class: 'error-text', title: t.last_error }, t.last_error) : h('span', { class: 'muted' }, '—')),
    h('td', {}, sparkline(t.history || [])));
  row.addEventListener('click', (e) => {
    if (e.target.closest('a')) return;
    if (expanded.has(t.name)) expanded.delete(t.name);
    else expanded.add(t.name);
    onToggle();
  });
  if (!expanded.has(t.name)) return [row];
  return [row, details(t)];
}

function details(t) {
  const expectations = Object.entries(t.expectations || {});
  return h('tr', { class: 'details' }, h('td', { colspan: 10 },
    h('div', { class: 'details-body' },
      h('div', {},
        h('h3', {}, 'Columns'),
        h('ul', { class: 'columns' }, (t.columns || []).map((c) => h('li', {}, h('code', {}, c.name), ' ', h('span', { class: 'muted' }, c.type))))),
      h('div', {},
        h('h3', {}, 'Expectations'),
        expectations.length
          ? h('table', { class: 'grid compact' },
            h('thead', {}, h('tr', {}, h('th', {}, 'name'), h('th', {}, 'action'), h('th', { class: 'num' }, 'passed'), h('th', { class: 'num' }, 'failed'))),
            h('tbody', {}, expectations.map(([name, e]) => h('tr', {},
              h('td', {}, name), h('td', {}, e.action), h('td', { class: 'num' }, fmtInt(e.passed)),
              h('td', { class: e.failed ? 'num bad' : 'num' }, fmtInt(e.failed))))))
          : h('p', { class: 'muted' }, 'none'),
        h('h3', {}, 'Storage'),
        h('p', {}, `${fmtBytes(t.bytes)}; input `, h('code', {}, t.input || '—'),
          (t.lookups || []).length ? [', lookups ', t.lookups.map((l, i) => [i ? ', ' : '', h('code', {}, l)])] : null,
          `; last commit ${t.last_commit || '—'}`)))));
}

// Rows written by each of the last commits, oldest first, with the mean rate.
function sparkline(history) {
  const w = 90;
  const hgt = 24;
  if (!history.length) return h('span', { class: 'muted' }, '—');
  const rows = history.map((c) => c.rows || 0);
  const max = Math.max(...rows, 1);
  const dx = history.length > 1 ? w / (history.length - 1) : 0;
  const pts = rows.map((r, i) => [history.length > 1 ? i * dx : w / 2, hgt - 2 - (r / max) * (hgt - 4)]);
  const line = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const area = `${line} L${pts[pts.length - 1][0].toFixed(1)},${hgt} L${pts[0][0].toFixed(1)},${hgt} Z`;
  const first = Date.parse(history[0].time);
  const last = Date.parse(history[history.length - 1].time);
  const span = (last - first) / 1000;
  const written = rows.slice(1).reduce((a, b) => a + b, 0);
  const rate = span > 0 ? written / span : null;
  const total = rows.reduce((a, b) => a + b, 0);
  const tip = `${history.length} commits wrote ${fmtInt(total)} rows` + (rate !== null ? `; ${fmtCompact(rate)} rows/s` : '');
  return h('span', { class: 'spark', title: tip },
    svg('svg', { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, class: 'sparkline' },
      svg('path', { d: area, class: 'spark-area' }),
      svg('path', { d: line, class: 'spark-line' }),
      svg('circle', { cx: pts[pts.length - 1][0], cy: pts[pts.length - 1][1], r: 2, class: 'spark-dot' })),
    h('span', { class: 'rate' }, rate !== null ? `${fmtCompact(rate)}/s` : ''));
}
