// The API docs page (/api/docs): fetches /api/openapi.json with the token and
// shows each operation with its parameters (type, required, default, allowed
// values), each with an input, and a "Try it" button that sends the request
// and shows the response (JSON pretty-printed, text as text, binary as a
// download) and the equivalent curl command.

import {
  api, errorBox, fill, getToken, h, hideTokenForm, onUnauthorized, showPipelineName, showTokenForm, takeTokenFromFragment,
} from './common.js';

const MAX_SHOWN_CHARS = 100_000;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

takeTokenFromFragment();
onUnauthorized(() => showTokenForm(load));
load();

async function load() {
  hideTokenForm();
  const root = document.getElementById('docs');
  let doc;
  try {
    doc = await api('/api/openapi.json');
  } catch (err) {
    root.replaceChildren(h('h1', {}, 'API'), errorBox(err));
    return;
  }
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      if (item[method]) ops.push({ path, method, op: item[method], shared: item.parameters || [] });
    }
  }
  api('/api/tables').then((t) => showPipelineName(t.pipeline), () => {});
  const info = doc.info || {};
  fill(root,
    h('div', { class: 'page-head' },
      h('h1', {}, info.title || 'API'),
      info.version ? h('span', { class: 'badge' }, `v${info.version}`) : null,
      h('span', { class: 'muted' }, `OpenAPI ${doc.openapi || ''} · `, h('a', { href: '#', onclick: saveSpec }, 'openapi.json'))),
    info.description ? h('p', { class: 'lead' }, info.description) : null,
    h('p', { class: 'muted' }, 'Every call needs ', h('code', {}, 'Authorization: Bearer <token>'),
      '; this page sends the token the dashboard was opened with.'),
    h('nav', { class: 'card toc' }, h('h2', {}, 'Operations'),
      h('ul', {}, ops.map((o) => h('li', {},
        h('a', { href: `#${anchor(o)}` }, h('span', { class: `method m-${o.method}` }, o.method.toUpperCase()), ' ', h('code', {}, o.path)),
        o.op.summary ? h('span', { class: 'muted' }, ` ${o.op.summary}`) : null)))),
    ops.map((o) => operation(doc, o)));
  document.getElementById('docs').dataset.ready = 'true';
  if (location.hash.length > 1) document.getElementById(location.hash.slice(1))?.scrollIntoView();

  function saveSpec(e) {
    e.preventDefault();
    const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' }));
    const a = h('a', { href: url, download: 'openapi.json', hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  }
}

function anchor(o) {
  return `${o.method}-${o.path}`.replace(/[^A-Za-z0-9_-]+/g, '-');
}

// Follows `{"$ref": "#/components/..."}` within the document.
function resolve(doc, obj) {
  let cur = obj;
  for (let i = 0; cur && cur.$ref && i < 10; i += 1) {
    cur = cur.$ref.replace(/^#\//, '').split('/')
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((o, k) => (o ? o[k] : undefined), doc);
  }
  return cur || {};
}

function typeOf(doc, schema) {
  const s = resolve(doc, schema);
  let t = Array.isArray(s.type) ? s.type.join(' | ') : s.type || (s.enum ? 'enum' : 'any');
  if (s.format) t += ` (${s.format})`;
  if (s.type === 'array' && s.items) t = `array of ${typeOf(doc, s.items)}`;
  return t;
}

function operation(doc, o) {
  const params = [...o.shared, ...(o.op.parameters || [])].map((p) => resolve(doc, p));
  const body = o.op.requestBody ? resolve(doc, o.op.requestBody) : null;
  const inputs = params.map((p) => paramInput(doc, p));
  const bodyInput = body ? bodyEditor(doc, body) : null;
  const response = h('div', { class: 'response' });
  const send = h('button', { type: 'button', class: 'primary' }, 'Try it');
  send.addEventListener('click', () => tryIt(o, params, inputs, bodyInput, response, send));

  return h('section', {
    class: 'card op', id: anchor(o), 'data-method': o.method.toUpperCase(), 'data-path': o.path,
  },
  h('div', { class: 'op-head' },
    h('span', { class: `method m-${o.method}` }, o.method.toUpperCase()),
    h('code', { class: 'path' }, o.path),
    o.op.summary ? h('span', { class: 'summary' }, o.op.summary) : null),
  o.op.description ? h('p', { class: 'description' }, withCode(o.op.description)) : null,
  params.length
    ? h('table', { class: 'grid params' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Parameter'), h('th', {}, 'In'), h('th', {}, 'Type'), h('th', {}, 'Default'),
        h('th', {}, 'Values / description'), h('th', {}, 'Value'))),
      h('tbody', {}, params.map((p, i) => {
        const s = resolve(doc, p.schema);
        return h('tr', { 'data-param': p.name },
          h('td', {}, h('code', {}, p.name), p.required ? h('span', { class: 'req', title: 'required' }, ' *') : null),
          h('td', { class: 'muted' }, p.in),
          h('td', {}, typeOf(doc, p.schema)),
          h('td', {}, s.default !== undefined ? h('code', {}, JSON.stringify(s.default)) : h('span', { class: 'muted' }, '—')),
          h('td', {},
            s.enum ? h('div', { class: 'enum' }, s.enum.map((v) => h('code', {}, String(v)))) : null,
            p.description || s.description ? h('div', { class: 'muted' }, withCode(p.description || s.description)) : null),
          h('td', {}, inputs[i]));
      })))
    : h('p', { class: 'muted' }, 'No parameters.'),
  body ? h('div', { class: 'body-doc' },
    h('h3', {}, 'Request body', body.required ? h('span', { class: 'req' }, ' *') : null, h('span', { class: 'muted' }, ' application/json')),
    body.description ? h('p', { class: 'muted' }, body.description) : null,
    bodyInput) : null,
  responsesDoc(doc, o.op.responses || {}),
  h('div', { class: 'toolbar' }, send),
  response);
}

// `backticked` spans of a description as <code>, the rest as text.
function withCode(text) {
  return String(text).split('`').map((part, i) => (i % 2 ? h('code', {}, part) : part));
}

function paramInput(doc, p) {
  const s = resolve(doc, p.schema);
  const def = s.default !== undefined ? String(s.default) : (p.example !== undefined ? String(p.example) : '');
  const attrs = { name: p.name, 'aria-label': p.name, 'data-in': p.in };
  if (s.enum) {
    const options = s.enum.map((v) => h('option', { value: String(v) }, String(v)));
    options.unshift(h('option', { value: '' }, p.required ? '— choose —' : '— none —'));
    const sel = h('select', attrs, options);
    sel.value = def;
    return sel;
  }
  const type = s.type === 'integer' || s.type === 'number' ? 'number'
    : s.format === 'date' ? 'date' : 'text';
  return h('input', {
    ...attrs, type, value: def, step: s.type === 'integer' ? 1 : null,
    placeholder: s.format === 'date-time' ? '2026-12-07T00:00:00Z' : null,
  });
}

function bodyEditor(doc, body) {
  const media = (body.content || {})['application/json'] || {};
  const schema = resolve(doc, media.schema);
  let example = media.example ?? schema.example;
  if (example === undefined && schema.properties) {
    example = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => {
      const ps = resolve(doc, v);
      return [k, ps.example ?? ps.default ?? (k === 'sql' ? 'SELECT 1 AS one' : '')];
    }));
  }
  return h('textarea', {
    class: 'body-input', rows: 4, spellcheck: 'false', 'aria-label': 'request body',
    value: example === undefined ? '{}' : JSON.stringify(example, null, 2),
  });
}

function responsesDoc(doc, responses) {
  const entries = Object.entries(responses);
  if (!entries.length) return null;
  return h('ul', { class: 'responses muted' }, entries.map(([code, r]) =>
    h('li', {}, h('code', {}, code), ' ', resolve(doc, r).description || '')));
}

async function tryIt(o, params, inputs, bodyInput, out, button) {
  let path = o.path;
  const query = new URLSearchParams();
  const missing = [];
  params.forEach((p, i) => {
    const v = inputs[i].value.trim();
    if (v === '') {
      if (p.required) missing.push(p.name);
      return;
    }
    if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(v));
    else if (p.in === 'query') query.append(p.name, v);
  });
  if (missing.length) {
    out.replaceChildren(errorBox({ message: `fill in ${missing.join(', ')}` }));
    return;
  }
  const url = path + (query.toString() ? `?${query}` : '');
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method: o.method.toUpperCase(), headers };
  if (bodyInput) {
    try {
      init.body = JSON.stringify(JSON.parse(bodyInput.value));
    } catch (e) {
      out.replaceChildren(errorBox({ message: `the request body is not JSON: ${e.message}` }));
      return;
    }
    headers['Content-Type'] = 'application/json';
  }
  button.disabled = true;
  out.replaceChildren(h('p', { class: 'muted' }, `${init.method} ${url} …`));
  const started = performance.now();
  try {
    const res = await fetch(url, init);
    const ms = Math.round(performance.now() - started);
    if (res.status === 401) showTokenForm(() => tryIt(o, params, inputs, bodyInput, out, button));
    fill(out, await showResponse(res, ms), curl(init, url));
  } catch (e) {
    out.replaceChildren(errorBox({ message: `cannot reach the server (${e.message})` }));
  } finally {
    button.disabled = false;
  }
}

async function showResponse(res, ms) {
  const type = res.headers.get('Content-Type') || '';
  const head = h('div', { class: 'response-head' },
    h('span', { class: `badge ${res.ok ? 'state-ok' : 'state-stopped'}` }, `${res.status} ${res.statusText}`),
    h('span', { class: 'muted' }, `${ms} ms · ${type || 'no content type'}`),
    ...['X-Ingesta-Freshness', 'Content-Disposition'].map((name) =>
      (res.headers.get(name) ? h('span', { class: 'muted' }, `${name}: ${res.headers.get(name)}`) : null)));
  const blob = await res.blob();
  let text = null;
  if (/json/.test(type)) {
    text = await blob.text();
    try {
      text = pretty(JSON.parse(text), '');
    } catch {
      // show it as it came
    }
  } else if (/^text\//.test(type) || /xml|csv/.test(type)) {
    text = await blob.text();
  }
  if (text === null) {
    const url = URL.createObjectURL(blob);
    const name = (/filename="?([^";]+)"?/.exec(res.headers.get('Content-Disposition') || '') || [])[1] || 'response.bin';
    return [head, h('p', {}, `${blob.size.toLocaleString('en-US')} bytes of ${type || 'binary data'} `,
      h('a', { href: url, download: name }, `save as ${name}`))];
  }
  const clipped = text.length > MAX_SHOWN_CHARS;
  return [head, h('pre', { class: 'response-body' }, clipped ? text.slice(0, MAX_SHOWN_CHARS) : text),
    clipped ? h('p', { class: 'muted' }, `showing the first ${MAX_SHOWN_CHARS.toLocaleString('en-US')} of ${text.length.toLocaleString('en-US')} characters`) : null];
}

// JSON indented, but an array of plain values (a row) stays on one line.
function pretty(v, indent) {
  if (Array.isArray(v)) {
    if (!v.length) return '[]';
    if (v.every((x) => x === null || typeof x !== 'object')) return JSON.stringify(v);
    const inner = `${indent}  `;
    return `[\n${v.map((x) => inner + pretty(x, inner)).join(',\n')}\n${indent}]`;
  }
  if (v && typeof v === 'object') {
    const entries = Object.entries(v);
    if (!entries.length) return '{}';
    const flat = entries.every(([, x]) => x === null || typeof x !== 'object');
    if (flat && entries.length <= 4) return `{${entries.map(([k, x]) => `${JSON.stringify(k)}: ${JSON.stringify(x)}`).join(', ')}}`;
    const inner = `${indent}  `;
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${pretty(x, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(v);
}

function curl(init, url) {
  const quote = (s) => `'${s.replace(/'/g, "'\\''")}'`;
  let cmd = 'curl -H "Authorization: Bearer $INGESTA_TOKEN"';
  if (init.method !== 'GET') cmd += ` -X ${init.method}`;
  if (init.body) cmd += ` -H 'Content-Type: application/json' -d ${quote(init.body)}`;
  cmd += ` ${quote(location.origin + url)}`;
  return h('details', { class: 'curl' }, h('summary', {}, 'as curl'), h('pre', {}, cmd));
}
