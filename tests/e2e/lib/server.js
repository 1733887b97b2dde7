// Test harness: starts and stops a real Kizuna server process for the
// end-to-end tests, and builds clients that talk to it.
//
// Environment:
//   KZ_BIN             server binary (default <repo>/build/kizuna)
//   KZ_DB              "sqlite" (default) or "postgres"
//   KZ_TEST_PG_URL     cluster URL; required when KZ_DB=postgres. Each server
//                      gets a fresh database made by tests/support/pg.sh.
//   KZ_E2E_VERBOSE=1   copy the server's stdout/stderr to this process's stderr.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Client } from '@heroiclabs/nakama-js';

// For every test file: nakama-js arms a "socket timed out" timer for every request (and for the
// connect) and never clears it, and its heartbeat re-arms a 10 s timer; unref
// those so the file ends with its last test rather than 10-30 s later.
{
  const realSetTimeout = globalThis.setTimeout;
  const patched = function setTimeout(fn, ms, ...args) {
    const t = realSetTimeout(fn, ms, ...args);
    if (typeof fn === 'function' && /socket timed out|pingPong/.test(fn.toString()) && t && t.unref) t.unref();
    return t;
  };
  Object.assign(patched, realSetTimeout);
  for (const sym of Object.getOwnPropertySymbols(realSetTimeout)) patched[sym] = realSetTimeout[sym];
  globalThis.setTimeout = patched;
}

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '..', '..');
export const SERVER_KEY = 'defaultkey';

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_LIMIT = 256 * 1024;

// nakama-js needs a global WebSocket for its realtime socket (node 20 has none).
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = WebSocket;
}

// nakama-js races every request against setTimeout(reject, timeout,
// "Request timed out.") and never clears that timer, so each call would keep
// the test process alive for the client's whole timeout after the last test.
// Unref exactly those timers; they still fire if a request really hangs while
// anything else (a pending fetch, the server child) keeps the loop alive.
{
  const realSetTimeout = globalThis.setTimeout;
  const patched = function setTimeout(fn, ms, ...args) {
    const t = realSetTimeout(fn, ms, ...args);
    if (args.length === 1 && args[0] === 'Request timed out.' && t && typeof t.unref === 'function') {
      t.unref();
    }
    return t;
  };
  Object.assign(patched, realSetTimeout); // keeps util.promisify.custom and friends
  for (const sym of Object.getOwnPropertySymbols(realSetTimeout)) {
    patched[sym] = realSetTimeout[sym];
  }
  globalThis.setTimeout = patched;
}

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export function serverBinary() {
  return process.env.KZ_BIN ? path.resolve(process.env.KZ_BIN) : path.join(REPO_ROOT, 'build', 'kizuna');
}

export function dbKind() {
  const kind = (process.env.KZ_DB || 'sqlite').toLowerCase();
  if (kind !== 'sqlite' && kind !== 'postgres') {
    throw new Error(`KZ_DB must be "sqlite" or "postgres", not "${process.env.KZ_DB}"`);
  }
  return kind;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let dbCounter = 0;

function createPostgresDatabase() {
  const clusterUrl = process.env.KZ_TEST_PG_URL;
  if (!clusterUrl) {
    throw new Error('KZ_DB=postgres needs KZ_TEST_PG_URL (a cluster URL, e.g. from `tests/support/pg.sh start DIR`)');
  }
  const name = `kz_e2e_${process.pid}_${Date.now().toString(36)}_${dbCounter++}_${Math.random().toString(36).slice(2, 8)}`;
  const script = path.join(REPO_ROOT, 'tests', 'support', 'pg.sh');
  let out;
  try {
    out = execFileSync('bash', [script, 'createdb', clusterUrl, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`pg.sh createdb failed (exit ${err.status}): ${err.stderr || err.message}`);
  }
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length !== 1) {
    throw new Error(`pg.sh createdb should print exactly one line (the URL), got: ${JSON.stringify(out)}`);
  }
  return lines[0];
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function healthy(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(1000) });
    const text = await res.text();
    return res.status === 200 && text.trim() !== '' && JSON.stringify(JSON.parse(text)) === '{}';
  } catch {
    return false;
  }
}

function tail(s, n = 4000) {
  return s.length > n ? `...${s.slice(-n)}` : s;
}

class ServerProcess {
  constructor({ child, port, dataDir, dbAddress, ownsDataDir, args }) {
    this.child = child;
    this.port = port;
    this.host = '127.0.0.1';
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.dataDir = dataDir;
    this.dbAddress = dbAddress;
    this.ownsDataDir = ownsDataDir;
    this.args = args;
    this.log = '';
    this.exit = null; // {code, signal} once exited
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    const collect = (chunk) => {
      const s = chunk.toString('utf8');
      if (process.env.KZ_E2E_VERBOSE === '1') process.stderr.write(s);
      this.log += s;
      if (this.log.length > LOG_LIMIT) this.log = this.log.slice(-LOG_LIMIT);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
  }

  /** Server output so far (stdout and stderr interleaved), truncated to the end. */
  output(n) {
    return tail(this.log, n);
  }

  /** A nakama-js Client for this server. Auto-refresh is off unless asked for. */
  client({ serverKey = SERVER_KEY, autoRefreshSession = false, timeoutMs = 7000 } = {}) {
    return makeClient(this.port, { serverKey, autoRefreshSession, timeoutMs });
  }

  /** Stop with SIGTERM, wait for exit, require exit code 0 (SIGKILL after 10 s). */
  async stop() {
    if (this.exit) {
      throw new Error(`server had already exited (code ${this.exit.code}, signal ${this.exit.signal}); output:\n${this.output()}`);
    }
    this.child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS); });
    const res = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (res === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`server did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM (killed); output:\n${this.output()}`);
    }
    if (res.code !== 0 || res.signal !== null) {
      throw new Error(`server exited with code ${res.code}, signal ${res.signal} after SIGTERM (want code 0); output:\n${this.output()}`);
    }
  }

  /** Kill without checks (for cleanup after a failure). */
  async kill() {
    if (!this.exit) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Remove the temp data dir if this server created it. */
  cleanup() {
    if (this.ownsDataDir && this.dataDir) {
      fs.rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

/**
 * Start a server and wait until GET /healthcheck answers 200 {}.
 * opts.args      extra command-line flags, e.g. ['--session.token_expiry_sec', '2']
 * opts.dataDir   reuse a data dir (restart tests); default a fresh temp dir
 * opts.dbAddress reuse a database address (restart tests); default a fresh one
 */
export async function startServer(opts = {}) {
  const bin = serverBinary();
  if (!fs.existsSync(bin)) {
    throw new Error(`server binary not found: ${bin} (build it, or set KZ_BIN)`);
  }
  const ownsDataDir = !opts.dataDir;
  const dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'kz-e2e-'));
  let dbAddress = opts.dbAddress;
  if (!dbAddress) {
    dbAddress = dbKind() === 'postgres' ? createPostgresDatabase() : path.join(dataDir, 'kizuna.db');
  }

  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const args = [
      '--socket.port', String(port),
      '--data_dir', dataDir,
      '--metrics.prometheus_port', '0',
      '--logger.level', 'warn',
      '--database.address', dbAddress,
      ...(opts.args || []),
    ];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env || {}) } });
    live.add(child);
    const srv = new ServerProcess({ child, port, dataDir, dbAddress, ownsDataDir, args });
    const spawnError = new Promise((resolve) => child.on('error', resolve));

    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    let failure = null;
    while (Date.now() < deadline) {
      const r = await Promise.race([healthy(port), spawnError.then((e) => ({ spawnError: e }))]);
      if (r === true) { ready = true; break; }
      if (r && r.spawnError) { failure = `could not spawn ${bin}: ${r.spawnError.message}`; break; }
      if (srv.exit) { failure = `server exited during startup (code ${srv.exit.code}, signal ${srv.exit.signal})`; break; }
      await sleep(50);
    }
    if (ready) return srv;

    await srv.kill();
    if (!failure) failure = `server not healthy on port ${port} within ${READY_TIMEOUT_MS / 1000} s`;
    lastError = new Error(`${failure}\ncommand: ${bin} ${args.join(' ')}\noutput:\n${srv.output()}`);
    // Only a lost race for the port is worth another try.
    if (!/address already in use|EADDRINUSE/i.test(srv.log)) break;
  }
  if (ownsDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  throw lastError;
}

/**
 * nakama-js rejects with the fetch Response on an HTTP error; the wrapped
 * client turns it into an ApiError that carries the body, so failures print
 * the server's answer and expectClientError can read it.
 */
export class ApiError extends Error {
  constructor(method, status, headers, text) {
    super(`${method}: HTTP ${status} ${text}`);
    this.name = 'ApiError';
    this.method = method;
    this.status = status;
    this.headers = headers;
    this.text = text;
    try { this.json = JSON.parse(text); } catch { this.json = undefined; }
  }
}

function wrapClient(client) {
  return new Proxy(client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      return function wrapped(...args) {
        const result = value.apply(target, args);
        if (!result || typeof result.then !== 'function') return result;
        return result.catch(async (err) => {
          if (typeof Response !== 'undefined' && err instanceof Response) {
            const text = await err.text().catch(() => '');
            throw new ApiError(String(prop), err.status, err.headers, text);
          }
          throw err;
        });
      };
    },
  });
}

/** Build a nakama-js client exactly as an app would (errors wrapped, see ApiError). */
export function makeClient(port, { serverKey = SERVER_KEY, autoRefreshSession = false, timeoutMs = 7000 } = {}) {
  return wrapClient(new Client(serverKey, '127.0.0.1', String(port), false, timeoutMs, autoRefreshSession));
}
