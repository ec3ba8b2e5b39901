// Ad-hoc read-only SQL over the pipeline's tables (POST /api/sql). Ctrl+Enter
// runs the editor's text; `#/sql?q=<sql>` opens with a query and runs it, so a
// query can be shared as a link. The last query is kept for the tab.

import { api, download, errorBox, h, hashFor } from './common.js';
import { resultGrid, resultSummary } from './grid.js';

const LAST_KEY = 'ingesta.sql';

export async function sqlPage(ctx) {
  const fromUrl = ctx.params.get('q');
  const editor = h('textarea', {
    class: 'sql-editor', name: 'sql', spellcheck: 'false', rows: 8, 'aria-label': 'SQL',
    placeholder: 'SELECT * FROM readings LIMIT 100',
  });
  editor.value = fromUrl ?? sessionStorage.getItem(LAST_KEY) ?? '';
  const status = h('span', { class: 'run-status muted', 'aria-live': 'polite' });
  const results = h('div', { class: 'results' });
  const runButton = h('button', { type: 'button', class: 'primary', onclick: () => run() }, 'Run');
  const tables = h('div', { class: 'table-list' }, h('p', { class: 'muted' }, 'loading tables…'));

  ctx.root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'SQL'),
      h('span', { class: 'muted' }, 'read-only; quarantines are ', h('code', {}, '<table>__quarantine'))),
    h('div', { class: 'sql-layout' },
      h('aside', { class: 'card' }, h('h2', {}, 'Tables'), tables),
      h('div', { class: 'sql-main' },
        h('section', { class: 'card' }, editor,
          h('div', { class: 'toolbar' }, runButton,
            h('span', { class: 'muted kbd-hint' }, 'Ctrl+Enter'),
            status,
            h('span', { class: 'spacer' }),
            h('button', { type: 'button', onclick: () => save('csv') }, 'Download CSV'),
            h('button', { type: 'button', onclick: () => save('parquet') }, 'Download Parquet'))),
        h('section', { class: 'card' }, results))));

  editor.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      run();
    }
  });

  let seq = 0;
  async function run() {
    const sql = editor.value.trim();
    if (!sql) {
      editor.focus();
      return;
    }
    sessionStorage.setItem(LAST_KEY, sql);
    history.replaceState(history.state, '', hashFor(['sql'], new URLSearchParams({ q: sql })));
    const my = ++seq;
    runButton.disabled = true;
    status.className = 'run-status muted';
    status.textContent = 'running…';
    const started = performance.now();
    try {
      const result = await api('/api/sql', { method: 'POST', body: { sql } });
      if (my !== seq || !ctx.open) return;
      status.textContent = `ran in ${Math.round(performance.now() - started)} ms`;
      results.replaceChildren(resultSummary(result), resultGrid(result));
    } catch (err) {
      if (my !== seq || !ctx.open) return;
      status.className = 'run-status bad';
      status.textContent = 'failed';
      results.replaceChildren(errorBox(err));
    } finally {
      if (my === seq) runButton.disabled = false;
    }
  }

  function save(format) {
    const sql = editor.value.trim();
    if (!sql) return;
    download(`/api/sql?format=${format}`, `query.${format}`, { method: 'POST', body: { sql } })
      .catch((err) => results.replaceChildren(errorBox(err)));
  }

  ctx.ready();
  if (fromUrl) run();
  else editor.focus();

  try {
    const data = await api('/api/tables');
    if (!ctx.open) return;
    tables.replaceChildren(tableList(data.tables, (sql) => {
      editor.value = sql;
      editor.focus();
    }));
    if (!editor.value && data.tables.length) {
      editor.value = `SELECT * FROM ${data.tables[data.tables.length - 1].name} LIMIT 100`;
    }
  } catch (err) {
    if (ctx.open) tables.replaceChildren(errorBox(err));
  }
}

function tableList(tables, pick) {
  return h('ul', {}, tables.map((t) =>
    h('li', {},
      h('details', {},
        h('summary', {},
          h('button', {
            type: 'button', class: 'link', title: `SELECT * FROM ${t.name} LIMIT 100`,
            onclick: () => pick(`SELECT * FROM ${t.name} LIMIT 100`),
          }, t.name),
          h('span', { class: `layer layer-${t.layer}` }, t.layer)),
        h('ul', { class: 'columns' }, (t.columns || []).map((c) =>
          h('li', {}, h('code', {}, c.name), ' ', h('span', { class: 'muted' }, c.type))))))));
}
