// Raw HTTP helpers (for requests the official client cannot make), JWT
// helpers and assertions shared by the end-to-end tests.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { SERVER_KEY, ApiError } from './server.js';

export const DEFAULT_SESSION_KEY = 'defaultencryptionkey';
export const DEFAULT_REFRESH_KEY = 'defaultrefreshencryptionkey';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const UUID_V4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Nakama writes user timestamps with whole seconds: 2024-05-01T10:00:00Z
export const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
export const GENERATED_USERNAME_RE = /^[A-Za-z]{10}$/;

export function basicAuth(key = SERVER_KEY, password = '') {
  return 'Basic ' + Buffer.from(`${key}:${password}`).toString('base64');
}

export function bearer(token) {
  return `Bearer ${token}`;
}

let seq = 0;
/** A unique printable id with the given prefix (no whitespace). */
export function uniq(prefix = 'id') {
  seq += 1;
  return `${prefix}-${process.pid.toString(36)}${Date.now().toString(36)}${seq.toString(36)}${crypto.randomBytes(3).toString('hex')}`;
}

/** A unique username: letters, digits and underscores only. */
export function uniqName(prefix = 'user') {
  seq += 1;
  return `${prefix}_${seq.toString(36)}${crypto.randomBytes(4).toString('hex')}`;
}

/** n random lower-case letters and digits. */
export function randomAlnum(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.randomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[bytes[i] % alphabet.length];
  return out;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A poller: until(pred, what, ms = defaultMs) resolves once pred() (which
 * may be async) is true, checking every stepMs, and fails after ms with
 * "timed out waiting for <what>".
 */
export function makeUntil(defaultMs, stepMs = 5) {
  return async function until(pred, what, ms = defaultMs) {
    const end = Date.now() + ms;
    while (!(await pred())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(stepMs);
    }
  };
}

/**
 * fetch wrapper. opts:
 *   auth:    a full Authorization header value, or {server: key} / {bearer: token}; none by default
 *   json:    a value to JSON.stringify as the body
 *   body:    a raw string/Buffer body (e.g. malformed JSON)
 *   headers: extra headers
 * Returns {status, headers, text, json} (json undefined when the body is not JSON).
 */
export async function request(srv, method, path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.auth !== undefined && opts.auth !== null) {
    if (typeof opts.auth === 'string') headers.Authorization = opts.auth;
    else if (opts.auth.server !== undefined) headers.Authorization = basicAuth(opts.auth.server);
    else if (opts.auth.bearer !== undefined) headers.Authorization = bearer(opts.auth.bearer);
  }
  let body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  } else if (opts.body !== undefined) {
    body = opts.body;
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(srv.baseUrl + path, { method, headers, body, signal: AbortSignal.timeout(opts.timeoutMs || 10_000) });
  const text = await res.text();
  let json;
  try { json = text === '' ? undefined : JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

/** Authenticate a new device account through the raw route; returns the Session JSON. */
export async function rawAuthDevice(srv, id, { create, username, vars } = {}) {
  const q = new URLSearchParams();
  if (create !== undefined) q.set('create', String(create));
  if (username !== undefined) q.set('username', username);
  const qs = q.toString() ? `?${q}` : '';
  const res = await request(srv, 'POST', `/v2/account/authenticate/device${qs}`, {
    auth: { server: SERVER_KEY },
    json: vars ? { id, vars } : { id },
  });
  assert.equal(res.status, 200, `authenticate device: ${res.status} ${res.text}`);
  return res.json;
}

/** Assert a Nakama REST error: exact HTTP status, and a body of exactly {code, message}. */
export function assertErrorBody(res, status, code, message) {
  const where = `${res.status} ${res.text}`;
  assert.equal(res.status, status, `HTTP status (got ${where})`);
  assert.ok(res.json && typeof res.json === 'object', `error body must be JSON (got ${where})`);
  assert.equal(res.json.code, code, `error code (got ${where})`);
  if (message instanceof RegExp) {
    assert.match(res.json.message, message, `error message (got ${where})`);
  } else if (message !== undefined) {
    assert.equal(res.json.message, message, `error message (got ${where})`);
  } else {
    assert.equal(typeof res.json.message, 'string', `error message must be a string (got ${where})`);
    assert.ok(res.json.message.length > 0, `error message must not be empty (got ${where})`);
  }
  const extra = Object.keys(res.json).filter((k) => k !== 'code' && k !== 'message');
  assert.deepEqual(extra, [], `error body must only have code and message (got ${where})`);
  const ct = res.headers.get('content-type') || '';
  assert.match(ct, /^application\/json/, `error Content-Type (got "${ct}")`);
  if (status === 401) {
    assert.ok(res.headers.get('www-authenticate'), `a 401 must carry WWW-Authenticate (got ${where})`);
  }
}

/** Await a nakama-js call that must fail; check the HTTP error it rejects with. */
export async function expectClientError(promise, status, code, message) {
  let thrown;
  let value;
  try {
    value = await promise;
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `expected the call to fail with ${status}, but it succeeded with ${JSON.stringify(value)}`);
  let res;
  if (thrown instanceof ApiError) {
    res = { status: thrown.status, headers: thrown.headers, text: thrown.text, json: thrown.json };
  } else if (thrown instanceof Response) {
    const text = await thrown.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    res = { status: thrown.status, headers: thrown.headers, text, json };
  } else {
    assert.fail(`expected an HTTP error response, got: ${thrown && thrown.stack ? thrown.stack : String(thrown)}`);
  }
  assertErrorBody(res, status, code, message);
}

// ---------------------------------------------------------------- JWT

export function b64urlDecode(s) {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export function b64urlEncode(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

export function decodeJwt(token) {
  assert.equal(typeof token, 'string', 'token must be a string');
  const parts = token.split('.');
  assert.equal(parts.length, 3, `a JWT has three parts: ${token}`);
  for (const p of parts) assert.match(p, /^[A-Za-z0-9_-]*$/, `JWT parts are unpadded base64url: ${token}`);
  return {
    header: JSON.parse(b64urlDecode(parts[0]).toString('utf8')),
    payload: JSON.parse(b64urlDecode(parts[1]).toString('utf8')),
    signature: parts[2],
    signingInput: `${parts[0]}.${parts[1]}`,
  };
}

export function hs256(key, input) {
  return b64urlEncode(crypto.createHmac('sha256', key).update(input).digest());
}

export function verifyHs256(token, key) {
  const { signingInput, signature } = decodeJwt(token);
  return hs256(key, signingInput) === signature;
}

/** Build a JWT from header and payload objects, signed with key (or with signature given). */
export function makeJwt(header, payload, key, signature) {
  const input = `${b64urlEncode(JSON.stringify(header))}.${b64urlEncode(JSON.stringify(payload))}`;
  const sig = signature !== undefined ? signature : hs256(key, input);
  return `${input}.${sig}`;
}

// ---------------------------------------------------------------- raw sockets

/**
 * A raw TCP connection that reads HTTP/1.1 responses one at a time
 * (Content-Length, chunked, or read-to-close bodies).
 */
export class RawConn {
  constructor(port, host = '127.0.0.1') {
    this.port = port;
    this.host = host;
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.error = null;
    this.waiters = [];
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.sock = net.connect({ port: this.port, host: this.host }, () => resolve(this));
      this.sock.once('error', reject);
      this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
      this.sock.on('error', (e) => { this.error = e; this.wake(); });
      this.sock.on('close', () => { this.closed = true; this.wake(); });
    });
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  write(data) {
    return new Promise((resolve, reject) => {
      this.sock.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Wait until pred() is true, the socket closes, or the timeout passes. */
  async waitFor(pred, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (this.closed) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return true;
  }

  /** Read one response. Throws on timeout or if the connection closes first. */
  async readResponse({ timeoutMs = 5000, head = false } = {}) {
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    const hasHead = () => this.buf.indexOf('\r\n\r\n') >= 0;
    if (!(await this.waitFor(hasHead, left()))) {
      throw new Error(`no complete response head (closed=${this.closed}, error=${this.error && this.error.code}); got ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
    }
    const headEnd = this.buf.indexOf('\r\n\r\n');
    const headText = this.buf.subarray(0, headEnd).toString('latin1');
    const [statusLine, ...headerLines] = headText.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
    const status = Number(m[1]);
    const headers = {};
    for (const line of headerLines) {
      const i = line.indexOf(':');
      if (i <= 0) throw new Error(`bad header line: ${JSON.stringify(line)}`);
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      headers[name] = headers[name] !== undefined ? `${headers[name]}, ${value}` : value;
    }
    let body = Buffer.alloc(0);
    const noBody = head || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) {
      this.buf = this.buf.subarray(headEnd + 4);
    } else if ((headers['transfer-encoding'] || '').toLowerCase().includes('chunked')) {
      let parsed = null;
      const ok = await this.waitFor(() => (parsed = parseChunked(this.buf, headEnd + 4)) !== null, left());
      if (!ok) throw new Error('chunked body not complete');
      body = parsed.body;
      this.buf = this.buf.subarray(parsed.end);
    } else if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      const ok = await this.waitFor(() => this.buf.length - (headEnd + 4) >= len, left());
      if (!ok) throw new Error(`body shorter than Content-Length ${len}`);
      body = this.buf.subarray(headEnd + 4, headEnd + 4 + len);
      this.buf = this.buf.subarray(headEnd + 4 + len);
    } else {
      await this.waitFor(() => false, left());
      if (!this.closed) throw new Error('response without length did not end with the connection');
      body = this.buf.subarray(headEnd + 4);
      this.buf = Buffer.alloc(0);
    }
    const text = body.toString('utf8');
    let json;
    try { json = text === '' ? undefined : JSON.parse(text); } catch { json = undefined; }
    return { status, headers, body, text, json, get: (n) => headers[n.toLowerCase()] };
  }

  /** Wait for the server to close the connection; true if it did within the timeout. */
  async waitClosed(timeoutMs = 5000) {
    return this.waitFor(() => this.closed, timeoutMs);
  }

  destroy() {
    if (this.sock) this.sock.destroy();
  }
}

/** Parse a complete chunked body starting at off; null while incomplete. */
function parseChunked(buf, off) {
  const chunks = [];
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', off);
    if (lineEnd < 0) return null;
    const size = parseInt(buf.subarray(off, lineEnd).toString('latin1').split(';')[0], 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size line');
    off = lineEnd + 2;
    if (size === 0) {
      // Skip trailers up to the empty line.
      for (;;) {
        const e = buf.indexOf('\r\n', off);
        if (e < 0) return null;
        const empty = e === off;
        off = e + 2;
        if (empty) return { body: Buffer.concat(chunks), end: off };
      }
    }
    if (buf.length < off + size + 2) return null;
    chunks.push(buf.subarray(off, off + size));
    off += size + 2;
  }
}

/** A minimal HTTP/1.1 request as a string. */
export function rawRequest(method, path, { headers = {}, body } = {}) {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  const hasLen = Object.keys(headers).some((h) => h.toLowerCase() === 'content-length');
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== undefined && !hasLen) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body !== undefined ? body : ''}`;
}
