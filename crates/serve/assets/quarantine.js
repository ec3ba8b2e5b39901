// Quarantined records: `#/quarantine` shows every table that has some, by
// reason, with a few raw records each; `#/quarantine/<table>` shows one table
// with more samples. Raw records are shown as text, never as markup.

import { api, errorBox, fmtInt, fmtPct, h, hashFor, showPipelineName } from './common.js';

const OVERVIEW_SAMPLES = 3;
const TABLE_SAMPLES = 50;

export async function quarantinePage(ctx) {
  const name = ctx.args[0];
  if (name) {
    await oneTable(ctx, name);
    return;
  }
  const data = await api('/api/tables');
  if (!ctx.open) return;
  showPipelineName(data.pipeline);
  const withRecords = data.tables.filter((t) => t.quarantined_rows > 0);
  const clean = data.tables.filter((t) => !(t.quarantined_rows > 0));
  const total = withRecords.reduce((s, t) => s + t.quarantined_rows, 0);
  ctx.root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Quarantine'),
    h('span', { class: 'muted' }, `${fmtInt(total)} records in ${withRecords.length} of ${data.tables.length} tables`)));
  if (!withRecords.length) ctx.root.append(h('p', { class: 'card' }, 'No table has quarantined records.'));

  const cards = withRecords.map((t) => {
    const card = h('section', { class: 'card quarantine', 'data-quarantine': t.name },
      h('div', { class: 'card-head' },
        h('h2', {}, h('a', { href: hashFor(['quarantine', t.name]) }, t.name)),
        h('span', { class: 'muted' }, `${fmtInt(t.quarantined_rows)} quarantined, ${fmtPct(t.quarantined_rows, t.rows + t.quarantined_rows)} of the records`)),
      h('p', { class: 'muted' }, 'loading…'));
    return { t, card };
  });
  ctx.root.append(...cards.map((c) => c.card));
  if (clean.length) {
    ctx.root.append(h('p', { class: 'muted clean' }, 'Nothing quarantined: ',
      clean.map((t, i) => [i ? ', ' : '', h('code', {}, t.name)])));
  }
  await Promise.all(cards.map(async ({ t, card }) => {
    try {
      const q = await api(`/api/tables/${encodeURIComponent(t.name)}/quarantine?limit=${OVERVIEW_SAMPLES}`);
      if (!ctx.open) return;
      card.lastChild.replaceWith(h('div', { class: 'quarantine-body' },
        reasons(q), samples(q.samples.slice(0, OVERVIEW_SAMPLES)),
        q.total > OVERVIEW_SAMPLES ? h('a', { class: 'more', href: hashFor(['quarantine', t.name]) }, `more samples of ${t.name} →`) : null));
    } catch (err) {
      if (ctx.open) card.lastChild.replaceWith(errorBox(err));
    }
  }));
  ctx.ready();
}

async function oneTable(ctx, name) {
  const q = await api(`/api/tables/${encodeURIComponent(name)}/quarantine?limit=${TABLE_SAMPLES}`);
  if (!ctx.open) return;
  const sql = `SELECT * FROM ${name}__quarantine LIMIT 100`;
  ctx.root.append(
    h('div', { class: 'page-head' },
      h('h1', {}, `Quarantine of ${q.table || name}`),
      h('span', { class: 'muted' }, `${fmtInt(q.total)} records`),
      h('a', { class: 'back', href: '#/quarantine' }, '← all tables')),
    h('section', { class: 'card quarantine', 'data-quarantine': name },
      h('div', { class: 'card-head' }, h('h2', {}, 'By reason'),
        h('a', { href: hashFor(['sql'], new URLSearchParams({ q: sql })) }, 'query it in SQL →')),
      reasons(q)),
    h('section', { class: 'card' },
      h('h2', {}, `Samples (${q.samples.length} of ${fmtInt(q.total)})`),
      samples(q.samples)),
    replayCard(name, q));
  ctx.ready();
}

// Reads the table's quarantined records again with the pipeline as it is
// now (`POST /api/tables/<name>/replay`): an admin token, typed here and
// never stored.
function replayCard(name, q) {
  const token = h('input', { type: 'password', placeholder: 'admin token', autocomplete: 'off', 'aria-label': 'admin token' });
  const reason = h('select', { 'aria-label': 'reason' },
    h('option', { value: '' }, 'every reason'),
    q.reasons.map((r) => h('option', { value: r.reason }, `${r.reason} (${fmtInt(r.count)})`)));
  const result = h('p', { class: 'muted replay-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Replay');
  const form = h('form', { class: 'replay' }, reason, token, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    result.replaceChildren('replaying…');
    try {
      const query = new URLSearchParams();
      if (reason.value) query.set('reason', reason.value);
      const r = await api(`/api/tables/${encodeURIComponent(name)}/replay?${query}`, { method: 'POST', token: token.value });
      result.replaceChildren(`${fmtInt(r.candidates)} records looked at: ${fmtInt(r.replayed)} written to the table, `
        + `${fmtInt(r.marked)} already there, ${fmtInt(r.still_bad)} still bad, ${fmtInt(r.skipped)} not replayable.`);
    } catch (err) {
      result.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return h('section', { class: 'card', 'data-replay': name },
    h('h2', {}, 'Replay'),
    h('p', { class: 'muted' }, 'After fixing what made them bad, read these records again: those that read now land in the table once, the others stay here.'),
    form, result);
}

function reasons(q) {
  if (!q.reasons.length) return h('p', { class: 'muted' }, 'No quarantined records.');
  const max = Math.max(...q.reasons.map((r) => r.count), 1);
  return h('table', { class: 'grid reasons' },
    h('thead', {}, h('tr', {}, h('th', {}, 'reason'), h('th', { class: 'num' }, 'records'), h('th', {}, ''))),
    h('tbody', {}, q.reasons.map((r) => h('tr', {},
      h('td', {}, h('code', {}, r.reason)),
      h('td', { class: 'num' }, fmtInt(r.count)),
      h('td', { class: 'bar-cell', title: fmtPct(r.count, q.total) }, bar(r.count / max))))));
}

function bar(fraction) {
  const fillEl = h('span', { class: 'bar-fill' });
  fillEl.style.width = `${Math.max(1, Math.round(fraction * 100))}%`;
  return h('span', { class: 'bar' }, fillEl);
}

function samples(list) {
  if (!list.length) return h('p', { class: 'muted' }, 'No samples.');
  return h('div', { class: 'samples' }, list.map((s) =>
    h('article', { class: 'sample' },
      h('div', { class: 'sample-head' },
        h('code', { class: 'reason' }, s.reason),
        h('span', { class: 'muted' }, `${s.source} @ ${s.position}`),
        h('span', { class: 'muted when' }, s.quarantined_at || '')),
      s.error ? h('div', { class: 'sample-error' }, s.error) : null,
      h('pre', { class: 'raw' }, s.raw === null || s.raw === undefined ? '(no raw record)' : String(s.raw)))));
}
