// What the dashboard and the API docs page share: the bearer token (taken
// from the URL fragment, kept in sessionStorage), `api()` which sends it and
// turns error bodies into exceptions, the token form shown on 401, downloads,
// a DOM builder that only ever inserts text (never HTML), and formatters.

const TOKEN_KEY = 'ingesta.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// `#token=abc`, `#/reports/x?farm=1&token=abc`: keeps the token and takes it
// out of the address bar (and so out of the history and of shared links).
export function takeTokenFromFragment() {
  const hash = location.hash.replace(/^#/, '');
  if (!/(^|[?&])token=/.test(hash)) return;
  const q = hash.indexOf('?');
  let path = '';
  let query = hash;
  if (q >= 0) {
    path = hash.slice(0, q);
    query = hash.slice(q + 1);
  } else if (hash.startsWith('/')) {
    return;
  }
  const params = new URLSearchParams(query);
  const token = params.get('token');
  if (token) setToken(token);
  params.delete('token');
  const rest = params.toString();
  const fragment = path + (rest ? `?${rest}` : '');
  history.replaceState(history.state, '', location.pathname + location.search + (fragment ? `#${fragment}` : ''));
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};

// What to do when the server answers 401 (the pages show the token form).
export function onUnauthorized(handler) {
  unauthorized = handler;
}

// Calls the API with the token. Resolves to the parsed JSON, or to the
// Response itself with `raw: true`; rejects with an ApiError carrying the
// server's `{"error": ...}` text.
// `token` replaces the stored token for one call (an admin token typed for an action).
export async function api(path, { method = 'GET', body, raw = false, token: given } = {}) {
  const headers = {};
  const token = given || getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${e.message})`);
  }
  if (res.status === 401) {
    if (!given) unauthorized();
    throw new ApiError(401, token ? 'the token was refused' : 'a token is needed');
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const err = await res.json();
      if (err && err.error) message = err.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, message);
  }
  return raw ? res : res.json();
}

// Fetches with the token and saves the body as a file.
export async function download(path, fallbackName, init = {}) {
  const res = await api(path, { ...init, raw: true });
  const blob = await res.blob();
  const disposition = res.headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = m ? decodeURIComponent(m[1]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// The small form asking for a token; `onSaved` runs once one is entered.
export function showTokenForm(onSaved) {
  let form = document.getElementById('token-form');
  if (form) return;
  const input = h('input', {
    type: 'password', name: 'token', placeholder: 'token', autocomplete: 'off', required: true,
  });
  form = h('form', { id: 'token-form', class: 'token-form' },
    h('strong', {}, getToken() ? 'The server refused this token.' : 'This server needs an access token.'),
    h('span', { class: 'muted' }, 'Paste a read or admin token (kept for this tab only).'),
    input,
    h('button', { type: 'submit', class: 'primary' }, 'Use token'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    form.remove();
    onSaved();
  });
  document.body.prepend(form);
  input.focus();
}

export function hideTokenForm() {
  document.getElementById('token-form')?.remove();
}

// ---- DOM: elements from tag, attributes and children; text stays text ----

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// Replaces the children of `el` (arrays flattened, null and false skipped).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// ---- formatting ----

export function fmtInt(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

export function fmtCompact(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  const a = Math.abs(n);
  const one = (x) => x.toFixed(1).replace(/\.0$/, '');
  if (a >= 1e9) return `${one(n / 1e9)}G`;
  if (a >= 1e6) return `${one(n / 1e6)}M`;
  if (a >= 1e3) return `${one(n / 1e3)}k`;
  return String(a >= 10 ? Math.round(n) : Math.round(n * 10) / 10);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function fmtAgo(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, seconds);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 360) / 10} h ago`;
  return `${Math.round(s / 8640) / 10} d ago`;
}

export function fmtClock(date = new Date()) {
  return date.toLocaleTimeString('en-GB', { hour12: false });
}

export function fmtPct(part, whole) {
  if (!whole) return '0%';
  const p = (100 * part) / whole;
  if (p === 0) return '0%';
  if (p < 0.01) return '<0.01%';
  return `${p < 1 ? p.toFixed(2) : p.toFixed(1)}%`;
}

// A short hash of a string (FNV-1a, 32 bits, hex).
export function shortHash(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}

export function errorBox(err) {
  const status = err && err.status ? `${err.status}: ` : '';
  return h('div', { class: 'error', role: 'alert' }, status + (err && err.message ? err.message : String(err)));
}

// `#/reports/x?farm=1` from (['reports', 'x'], URLSearchParams).
export function hashFor(parts, params) {
  const path = parts.map(encodeURIComponent).join('/');
  const query = params ? params.toString() : '';
  return `#/${path}${query ? `?${query}` : ''}`;
}

export function showPipelineName(name) {
  if (!name) return;
  const el = document.getElementById('pipeline-name');
  if (el) el.textContent = name;
  document.title = `${name} · Ingesta`;
}
