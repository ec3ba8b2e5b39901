// The dashboard's entry point: takes the token from the URL fragment, routes
// `#/<page>/<args>?<params>` to one page module, and gives each page a
// context that knows whether the page is still the one shown.
//
//   #/pipeline (default)   tables, data flow, freshness      pipeline.js
//   #/reports[/<name>?..]  report list, one report           reports.js
//   #/quarantine[/<table>] quarantined records by reason     quarantine.js
//   #/runs[?table=...]     the run history                   runs.js
//   #/sql[?q=...]          ad-hoc read-only SQL              sql.js

import { h, errorBox, hideTokenForm, onUnauthorized, showTokenForm, takeTokenFromFragment } from './common.js';
import { pipelinePage } from './pipeline.js';
import { reportsPage } from './reports.js';
import { quarantinePage } from './quarantine.js';
import { runsPage } from './runs.js';
import { sqlPage } from './sql.js';

const pages = {
  pipeline: pipelinePage,
  reports: reportsPage,
  quarantine: quarantinePage,
  runs: runsPage,
  sql: sqlPage,
};

export function parseHash() {
  const hash = location.hash.replace(/^#\/?/, '');
  const q = hash.indexOf('?');
  const path = q >= 0 ? hash.slice(0, q) : hash;
  const params = new URLSearchParams(q >= 0 ? hash.slice(q + 1) : '');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { page: parts[0] || 'pipeline', args: parts.slice(1), params };
}

let current = null;

function render() {
  takeTokenFromFragment();
  hideTokenForm();
  if (current) current.close();
  const route = parseHash();
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === route.page);
  }
  const root = h('div', { class: `page page-${route.page}`, 'data-page': route.page });
  document.getElementById('view').replaceChildren(root);

  const cleanups = [];
  const ctx = {
    root,
    args: route.args,
    params: route.params,
    open: true,
    // Runs when the user leaves the page (timers, charts, observers).
    onClose(fn) {
      cleanups.push(fn);
    },
    // Marks the page as showing its data (the browser test waits for it).
    ready() {
      if (ctx.open) root.dataset.ready = 'true';
    },
    close() {
      ctx.open = false;
      for (const fn of cleanups) fn();
    },
  };
  current = ctx;

  const page = pages[route.page];
  if (!page) {
    root.append(h('h1', {}, 'Page not found'),
      h('p', {}, 'There is no page ', h('code', {}, location.hash), '. ', h('a', { href: '#/pipeline' }, 'Go to the pipeline.')));
    return;
  }
  Promise.resolve(page(ctx)).catch((err) => {
    if (ctx.open) root.append(errorBox(err));
  });
}

onUnauthorized(() => showTokenForm(render));
window.addEventListener('hashchange', render);
render();
