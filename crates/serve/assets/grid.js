// The result grid shared by reports and SQL: a query result
// (`{columns, rows, row_count, truncated}`) as a table with a sticky header,
// numbers right-aligned and NULL marked; at most MAX_SHOWN rows go into the
// page (the download buttons give all of them).

import { fmtInt, h } from './common.js';

const MAX_SHOWN = 1000;

export function isNumericType(type) {
  return /^(U?Int|Float|Decimal)/i.test(type || '');
}

export function isTimeType(type) {
  return /^(Timestamp|Date)/i.test(type || '');
}

export function resultSummary(result, extra) {
  const shown = Math.min(result.rows.length, MAX_SHOWN);
  return h('div', { class: 'result-summary' },
    h('span', { class: 'count' }, rowCount(result.row_count ?? result.rows.length)),
    result.truncated ? h('span', { class: 'badge warn' }, 'truncated: the server stopped at its row limit; download for everything') : null,
    shown < result.rows.length ? h('span', { class: 'muted' }, `showing the first ${fmtInt(shown)}`) : null,
    extra || null);
}

function rowCount(n) {
  return `${fmtInt(n)} ${n === 1 ? 'row' : 'rows'}`;
}

export function resultGrid(result) {
  const numeric = result.columns.map((c) => isNumericType(c.type));
  const body = h('tbody');
  const shown = result.rows.slice(0, MAX_SHOWN);
  for (const row of shown) {
    body.append(h('tr', {}, row.map((v, i) => cell(v, numeric[i]))));
  }
  if (!shown.length) {
    body.append(h('tr', {}, h('td', { colspan: Math.max(1, result.columns.length), class: 'muted empty' }, 'no rows')));
  }
  return h('div', { class: 'grid-wrap' },
    h('table', { class: 'grid result' },
      h('thead', {}, h('tr', {}, result.columns.map((c, i) =>
        h('th', { class: numeric[i] ? 'num' : null, title: c.type }, c.name, h('span', { class: 'type' }, shortType(c.type)))))),
      body));
}

function cell(v, numeric) {
  if (v === null || v === undefined) return h('td', { class: 'null' }, 'NULL');
  if (typeof v === 'object') return h('td', { class: 'json' }, JSON.stringify(v));
  return h('td', { class: numeric ? 'num' : null }, String(v));
}

function shortType(type) {
  if (!type) return '';
  const m = /^([A-Za-z0-9]+)/.exec(type);
  return m ? m[1].toLowerCase() : type;
}
