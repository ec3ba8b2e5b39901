// Drives the dashboard of a running `ingesta` in headless Chromium and checks
// each page shows the server's data; screenshots go to --out.
//
//   npm ci   # once, in tests/browser/
//   node dashboard.mjs --url http://127.0.0.1:PORT --token TOKEN --out DIR \
//       [--report NAME --param NAME=V1 --param2 V2]
//
// Without --report, the first report with a line or bar chart is used, and
// its first enum parameter (if any) is switched from its default to another
// value. Chromium: $CHROMIUM, else /usr/bin/chromium. Exit 1 on the first miss.

import fs from 'node:fs';
import path from 'node:path';

const TIMEOUT = 15_000;

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const m = /^--(url|token|out|report|param|param2)$/.exec(argv[i]);
    if (!m || i + 1 >= argv.length) {
      fail(`unexpected argument "${argv[i]}"\nusage: node dashboard.mjs --url URL --token TOKEN --out DIR [--report NAME --param NAME=V1 --param2 V2]`);
    }
    out[m[1]] = argv[i + 1];
    i += 1;
  }
  for (const k of ['url', 'token', 'out']) if (!out[k]) fail(`--${k} is required`);
  out.url = out.url.replace(/\/+$/, '');
  return out;
}

const args = parseArgs(process.argv.slice(2));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) {
  fail(process.env.CHROMIUM ? `CHROMIUM=${executablePath} does not exist` : 'install Chromium: apt-get install chromium');
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  fail('playwright-core is missing: run `npm ci` in tests/browser/');
}
fs.mkdirSync(args.out, { recursive: true });

async function getJson(route) {
  let res;
  try {
    res = await fetch(args.url + route, { headers: { Authorization: `Bearer ${args.token}` } });
  } catch (e) {
    fail(`cannot reach ${args.url}${route}: ${e.message}`);
  }
  if (!res.ok) fail(`GET ${route} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

// The report and the parameter change to test.
async function pickReport() {
  const { reports } = await getJson('/api/reports');
  let report;
  if (args.report) {
    report = reports.find((r) => r.name === args.report);
    if (!report) fail(`GET /api/reports has no report "${args.report}" (it has: ${reports.map((r) => r.name).join(', ')})`);
  } else {
    report = reports.find((r) => r.chart && r.chart.type !== 'table');
    if (!report) fail('no report with a line or bar chart; name one with --report');
  }
  let param = null;
  let v1 = null;
  let v2 = args.param2 ?? null;
  if (args.param) {
    const eq = args.param.indexOf('=');
    param = eq >= 0 ? args.param.slice(0, eq) : args.param;
    v1 = eq >= 0 ? args.param.slice(eq + 1) : null;
    if (!report.params.some((p) => p.name === param)) fail(`report ${report.name} has no parameter "${param}"`);
  } else {
    const p = report.params.find((x) => x.type === 'enum' && (x.values || []).length > 1);
    if (p) {
      param = p.name;
      v1 = p.default != null ? String(p.default) : String(p.values[0]);
    }
  }
  if (param && v2 === null) {
    const p = report.params.find((x) => x.name === param);
    v2 = (p.values || []).map(String).find((v) => v !== v1) ?? null;
    if (v2 === null) fail(`give the value to change ${param} to with --param2`);
  }
  return { report, param, v1, v2 };
}

const tables = (await getJson('/api/tables')).tables.map((t) => t.name);
const pick = await pickReport();

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const pageErrors = [];
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.warn(`  browser console: ${m.text()}`);
  });
  const shot = (name) => page.screenshot({ path: path.join(args.out, name), fullPage: true });
  const step = async (what, fn) => {
    try {
      await fn();
    } catch (e) {
      throw new Error(`${what}: ${e.message.split('\n')[0]}`);
    }
    if (pageErrors.length) throw new Error(`${what}: the page threw: ${pageErrors.join('; ')}`);
  };
  const chartState = () => page.evaluate((name) => {
    const el = [...document.querySelectorAll('.chart')].find((c) => c.dataset.report === name);
    return el ? { points: Number(el.dataset.points), signature: el.dataset.signature } : null;
  }, pick.report.name);

  // (a) the token from the fragment, then the pipeline page with every table
  await step('opening /#token=…', async () => {
    await page.goto(`${args.url}/#token=${encodeURIComponent(args.token)}`);
    await page.waitForFunction(() => !location.hash.includes('token='), null, { timeout: 5000 })
      .catch(() => { throw new Error('the token stayed in the address bar'); });
  });
  await step('pipeline page', async () => {
    await page.goto(`${args.url}/#/pipeline`);
    for (const name of tables) {
      await page.waitForSelector(`tr[data-table=${JSON.stringify(name)}]`)
        .catch(() => { throw new Error(`no row [data-table=${name}] within ${TIMEOUT / 1000} s (GET /api/tables lists it)`); });
    }
    const name = await page.textContent('#pipeline-name');
    if (!name.trim()) throw new Error('the nav bar shows no pipeline name');
  });
  await shot('pipeline.png');
  console.log(`ok - pipeline page lists all ${tables.length} tables`);
  await step('pipeline refresh', async () => {
    const before = await page.textContent('.updated');
    await page.waitForFunction((b) => document.querySelector('.updated')?.textContent !== b, before, { timeout: 12_000 })
      .catch(() => { throw new Error(`the "updated" indicator stayed "${before}" for 12 s`); });
  });
  console.log('ok - pipeline page refreshes itself');

  // (b) a report: chart drawn, then redrawn with other data after a field change
  const query = pick.param && pick.v1 !== null ? `?${new URLSearchParams({ [pick.param]: pick.v1 })}` : '';
  let before;
  await step(`report ${pick.report.name}`, async () => {
    await page.goto(`${args.url}/#/reports/${encodeURIComponent(pick.report.name)}${query}`);
    await page.waitForFunction((name) => [...document.querySelectorAll('.chart')]
      .some((c) => c.dataset.report === name && Number(c.dataset.points) > 0), pick.report.name)
      .catch(() => { throw new Error(`no .chart[data-report=${pick.report.name}] with data-points > 0`); });
    before = await chartState();
  });
  await shot('report.png');
  console.log(`ok - report ${pick.report.name} drew ${before.points} points`);
  if (pick.param) {
    await step(`report ${pick.report.name} with ${pick.param}=${pick.v2}`, async () => {
      const field = page.locator(`.report-form [name=${JSON.stringify(pick.param)}]`);
      if (await field.count() !== 1) throw new Error(`no single form field name=${pick.param}`);
      const kind = await field.evaluate((el) => (el.tagName === 'SELECT' ? 'select' : el.type));
      // A datetime-local input takes `YYYY-MM-DDTHH:MM`; the URL then carries `...:00Z`.
      const typed = kind === 'datetime-local' ? pick.v2.slice(0, 16) : pick.v2;
      if (kind === 'select') await field.selectOption(pick.v2);
      else {
        await field.fill(typed);
        await field.dispatchEvent('change');
      }
      await page.waitForFunction(([name, sig]) => [...document.querySelectorAll('.chart')]
        .some((c) => c.dataset.report === name && Number(c.dataset.points) > 0 && c.dataset.signature !== sig),
      [pick.report.name, before.signature])
        .catch(() => { throw new Error(`data-signature stayed ${before.signature} (or data-points fell to 0)`); });
      const hash = await page.evaluate(() => location.hash);
      const inUrl = new URLSearchParams(hash.split('?')[1] || '').getAll(pick.param);
      if (!inUrl.some((v) => v === pick.v2 || v.startsWith(typed))) {
        throw new Error(`the URL does not carry ${pick.param}=${pick.v2}: ${hash}`);
      }
    });
    await shot('report-changed.png');
    const after = await chartState();
    console.log(`ok - report ${pick.report.name} redrew ${after.points} points for ${pick.param}=${pick.v2} (signature ${before.signature} -> ${after.signature})`);
  } else {
    console.log(`skip - report ${pick.report.name} has no parameter to change`);
  }

  // (c) quarantine, runs, SQL, API docs
  await step('quarantine page', async () => {
    await page.goto(`${args.url}/#/quarantine`);
    await page.waitForSelector('.page[data-page=quarantine][data-ready]');
  });
  await shot('quarantine.png');
  console.log('ok - quarantine page');

  await step('runs page', async () => {
    await page.goto(`${args.url}/#/runs`);
    await page.waitForSelector('.page[data-page=runs][data-ready]');
    const shown = await page.$$eval('tr[data-run]', (rows) => rows.length);
    const api = await page.evaluate(async (token) => {
      const r = await fetch('/api/runs?limit=200', { headers: { Authorization: `Bearer ${token}` } });
      return (await r.json()).runs.length;
    }, args.token);
    if (!api || shown !== api) throw new Error(`the runs page shows ${shown} passes, the API has ${api}`);
  });
  await shot('runs.png');
  console.log('ok - runs page');

  await step('SQL page', async () => {
    await page.goto(`${args.url}/#/sql`);
    await page.waitForSelector('.page[data-page=sql][data-ready]');
    await page.fill('textarea[name=sql]', 'SELECT 1 AS one');
    await page.press('textarea[name=sql]', 'Control+Enter');
    await page.waitForFunction(() => [...document.querySelectorAll('.results table.grid td')].some((td) => td.textContent.trim() === '1'))
      .catch(async () => {
        const err = await page.textContent('.results').catch(() => '');
        throw new Error(`no result cell "1"${err ? ` (the page shows: ${err.trim().slice(0, 200)})` : ''}`);
      });
  });
  await shot('sql.png');
  console.log('ok - SQL page ran SELECT 1 AS one');

  const opPath = `/api/reports/${pick.report.name}`;
  await step('API docs page', async () => {
    await page.goto(`${args.url}/api/docs`);
    await page.waitForSelector(`.op[data-path=${JSON.stringify(opPath)}]`)
      .catch(() => { throw new Error(`no operation for ${opPath}`); });
  });
  await shot('docs.png');
  console.log(`ok - API docs show ${opPath}`);
  console.log(`all checks passed; screenshots in ${args.out}`);
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  const failed = path.join(args.out, 'failure.png');
  const pages = browser.contexts().flatMap((c) => c.pages());
  if (pages.length) {
    await pages[0].screenshot({ path: failed, fullPage: true }).then(() => console.error(`  the page at the failure: ${failed}`), () => {});
  }
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
