// The run history: `#/runs` lists the latest passes of every table (each
// pass that committed or failed, and every scheduled one), newest first;
// `#/runs?table=<name>` one table's. Errors are shown as text.

import { api, fmtAgo, fmtInt, h, hashFor } from './common.js';

const LIMIT = 200;

// A pass's status as a badge in the pipeline page's colours.
const STATE = { ok: 'ok', retrying: 'retrying', failed: 'failed' };

export async function runsPage(ctx) {
  const table = ctx.params.get('table');
  const query = new URLSearchParams({ limit: String(LIMIT) });
  if (table) query.set('table', table);
  const data = await api(`/api/runs?${query}`);
  if (!ctx.open) return;
  const runs = data.runs || [];
  const failed = runs.filter((r) => r.status === 'failed').length;
  ctx.root.append(h('div', { class: 'page-head' },
    h('h1', {}, table ? `Runs of ${table}` : 'Runs'),
    h('span', { class: 'muted' }, `${fmtInt(runs.length)} latest passes${failed ? `, ${failed} failed` : ''}`),
    table ? h('a', { class: 'back', href: '#/runs' }, '← every table') : null));
  if (!runs.length) {
    ctx.root.append(h('p', { class: 'card' }, 'No pass recorded yet: the history keeps each pass that committed or failed.'));
    ctx.ready();
    return;
  }
  const now = Date.now();
  const num = (v) => h('td', { class: 'num' }, v === null || v === undefined ? '—' : fmtInt(v));
  ctx.root.append(h('section', { class: 'card' }, h('table', { class: 'grid runs' },
    h('thead', {}, h('tr', {}, ['started', 'table', 'status', 'attempt', 'trigger', 'input', 'rows', 'quarantined', 'seconds', 'error']
      .map((c) => h('th', { class: ['rows', 'quarantined', 'seconds', 'attempt'].includes(c) ? 'num' : '' }, c)))),
    h('tbody', {}, runs.map((r) => h('tr', { 'data-run': r.table },
      h('td', { title: r.started }, fmtAgo((now - new Date(r.started).getTime()) / 1000)),
      h('td', {}, h('a', { href: hashFor(['runs'], new URLSearchParams({ table: r.table })) }, r.table)),
      h('td', {}, h('span', { class: `badge state-${STATE[r.status] || 'idle'}` }, r.status)),
      num(r.attempt),
      h('td', {}, r.trigger),
      h('td', { class: 'muted' }, r.input_to === null || r.input_to === undefined ? ''
        : `${fmtInt(r.rows_in)} rows, versions ${r.input_from + 1}–${r.input_to}`),
      num(r.rows),
      num(r.quarantined),
      h('td', { class: 'num' }, r.seconds === null || r.seconds === undefined ? '—' : Number(r.seconds).toFixed(2)),
      r.error ? h('td', { class: 'error-text', title: r.error }, r.error.slice(0, 120)) : h('td', {}, '')))))));
  ctx.ready();
}
