// The reports: `#/reports` lists them; `#/reports/<name>?<param>=<value>`
// shows one with its parameters as a form (filled from the URL, else the
// defaults), its chart and its rows, and keeps the URL in step with the form
// so that the view can be shared. Changing a field runs the report again.

import { api, download, errorBox, fmtAgo, h, hashFor } from './common.js';
import { destroyChart, drawChart } from './chart.js';
import { resultGrid, resultSummary } from './grid.js';

export async function reportsPage(ctx) {
  const { reports } = await api('/api/reports');
  if (!ctx.open) return;
  const name = ctx.args[0];
  if (!name) {
    listReports(ctx, reports);
    return;
  }
  const report = reports.find((r) => r.name === name);
  if (!report) {
    ctx.root.append(h('h1', {}, name), errorBox({ status: 404, message: `there is no report named "${name}"` }),
      h('p', {}, h('a', { href: '#/reports' }, 'All reports')));
    return;
  }
  showReport(ctx, report);
}

function listReports(ctx, reports) {
  ctx.root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Reports'),
    h('span', { class: 'muted' }, `${reports.length} defined in the pipeline`)));
  if (!reports.length) {
    ctx.root.append(h('p', { class: 'muted' }, 'This pipeline defines no reports.'));
  }
  ctx.root.append(h('div', { class: 'cards' }, reports.map((r) =>
    h('a', { class: 'card report-card', href: hashFor(['reports', r.name]), 'data-report': r.name },
      h('div', { class: 'card-head' }, h('h2', {}, r.name), h('span', { class: 'badge' }, (r.chart && r.chart.type) || 'table')),
      h('p', {}, r.description || h('span', { class: 'muted' }, 'no description')),
      r.params.length
        ? h('p', { class: 'muted params' }, 'parameters: ', r.params.map((p, i) => [i ? ', ' : '', h('code', {}, p.name), ` ${p.type}`]))
        : h('p', { class: 'muted params' }, 'no parameters')))));
  ctx.ready();
}

function showReport(ctx, report) {
  const fields = report.params.map((p) => field(p, ctx.params.get(p.name)));
  const status = h('span', { class: 'run-status muted', 'aria-live': 'polite' });
  const freshness = h('span', { class: 'freshness muted' });
  const form = h('form', { class: 'card report-form', novalidate: true },
    h('div', { class: 'fields' }, fields.map((f) => f.label),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Run'),
        h('button', { type: 'button', onclick: () => save('csv') }, 'CSV'),
        h('button', { type: 'button', onclick: () => save('parquet') }, 'Parquet'))),
    h('div', { class: 'form-foot' }, status, freshness));
  const charted = report.chart && report.chart.type !== 'table';
  const chart = h('div', { class: 'chart', 'data-report': report.name, 'data-points': '0', 'data-signature': '' });
  const results = h('div', { class: 'results' });
  ctx.root.append(
    h('div', { class: 'page-head' },
      h('h1', {}, report.name),
      h('span', { class: 'muted' }, report.description || ''),
      h('a', { class: 'back', href: '#/reports' }, '← all reports')),
    form,
    charted ? h('section', { class: 'card chart-card' }, chart) : null,
    h('section', { class: 'card' }, results));
  ctx.onClose(() => destroyChart(chart));

  const params = () => {
    const out = new URLSearchParams();
    for (const f of fields) {
      const v = f.value();
      if (v !== '') out.set(f.param.name, v);
    }
    return out;
  };
  const missing = () => fields.filter((f) => f.param.required && f.value() === '').map((f) => f.param.name);

  let seq = 0;
  const run = async () => {
    const lack = missing();
    if (lack.length) {
      status.className = 'run-status bad';
      status.textContent = `fill in ${lack.join(', ')}`;
      return;
    }
    const my = ++seq;
    const query = params();
    history.replaceState(history.state, '', hashFor(['reports', report.name], query));
    form.classList.add('busy');
    chart.setAttribute('aria-busy', 'true');
    status.className = 'run-status muted';
    status.textContent = 'running…';
    const started = performance.now();
    try {
      const res = await api(`/api/reports/${encodeURIComponent(report.name)}?${query}`, { raw: true });
      const result = await res.json();
      if (my !== seq || !ctx.open) return;
      status.textContent = `ran in ${Math.round(performance.now() - started)} ms`;
      const asOf = res.headers.get('X-Ingesta-Freshness');
      freshness.textContent = asOf ? `data as of ${asOf.replace('T', ' ')} (${fmtAgo((Date.now() - Date.parse(asOf)) / 1000)})` : '';
      if (charted) drawChart(chart, report, result);
      results.replaceChildren(resultSummary(result), resultGrid(result));
      ctx.ready();
    } catch (err) {
      if (my !== seq || !ctx.open) return;
      status.textContent = '';
      results.replaceChildren(errorBox(err));
    } finally {
      if (my === seq) {
        form.classList.remove('busy');
        chart.removeAttribute('aria-busy');
      }
    }
  };
  const save = (format) => {
    const query = params();
    query.set('format', format);
    download(`/api/reports/${encodeURIComponent(report.name)}?${query}`, `${report.name}.${format}`)
      .catch((err) => results.prepend(errorBox(err)));
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
  form.addEventListener('change', run);
  run();
}

// One form field for a report parameter: the input by the parameter's type,
// and `value()` in the form the API takes.
function field(param, fromUrl) {
  const initial = fromUrl ?? (param.default === null || param.default === undefined ? '' : String(param.default));
  let input;
  let value = () => input.value.trim();
  const common = { name: param.name, id: `param-${param.name}`, required: param.required || null };
  switch (param.type) {
    case 'enum': {
      const values = (param.values || []).map(String);
      const options = values.map((v) => h('option', { value: v }, v));
      if (!param.required || !values.includes(initial)) options.unshift(h('option', { value: '' }, param.required ? '— choose —' : '— any —'));
      input = h('select', common, options);
      input.value = values.includes(initial) ? initial : '';
      break;
    }
    case 'int':
      input = h('input', { ...common, type: 'number', step: 1, value: initial });
      break;
    case 'date':
      input = h('input', { ...common, type: 'date', value: initial.slice(0, 10) });
      break;
    case 'timestamp':
      // Shown and sent as UTC: the input holds `YYYY-MM-DDTHH:MM`, the API gets `...:00Z`.
      input = h('input', { ...common, type: 'datetime-local', value: toLocalInput(initial) });
      value = () => (input.value ? `${input.value.length === 16 ? `${input.value}:00` : input.value}Z` : '');
      break;
    default:
      input = h('input', { ...common, type: 'text', value: initial, spellcheck: 'false' });
  }
  const label = h('label', { class: 'field', for: common.id, title: param.description || null },
    h('span', { class: 'field-name' }, param.name, param.required ? h('span', { class: 'req' }, ' *') : null,
      h('span', { class: 'muted' }, ` ${param.type}${param.type === 'timestamp' ? ' (UTC)' : ''}`)),
    input,
    param.description ? h('span', { class: 'field-help muted' }, param.description) : null);
  return { param, label, input, value };
}

function toLocalInput(v) {
  if (!v) return '';
  const s = String(v).replace(' ', 'T').replace(/(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/i, '');
  return s.length === 10 ? `${s}T00:00` : s.slice(0, 16);
}
