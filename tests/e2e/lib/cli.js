// Helpers for the command-line, shutdown and metrics tests: run the binary
// to completion, spawn it with exactly the flags a test wants (the harness's
// startServer always passes --socket.port), make fresh databases, scrape the
// Prometheus endpoint and list a process's listening sockets.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, serverBinary, dbKind } from './server.js';
import { RawConn, rawRequest, sleep } from './http.js';

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** The version in CMakeLists.txt: project(kizuna VERSION x.y.z ...). */
export function projectVersion() {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'CMakeLists.txt'), 'utf8');
  const m = /project\(\s*kizuna\s+VERSION\s+(\d+\.\d+\.\d+)/.exec(text);
  if (!m) throw new Error('no "project(kizuna VERSION x.y.z" in CMakeLists.txt');
  return m[1];
}

/**
 * Run the binary with args until it exits. Returns {code, signal, stdout,
 * stderr, timedOut}; a process still running after timeoutMs is killed
 * (timedOut true, code null), so a command that wrongly starts the server
 * fails the test instead of hanging it.
 */
export function runKizuna(args, { timeoutMs = 15_000, env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(serverBinary(), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(env || {}) },
      cwd: cwd || os.tmpdir(),
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d) => { stderr += d.toString('utf8'); });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); live.delete(child); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Describe a finished run for assertion messages. */
export function describeRun(r) {
  return `exit code ${r.code}, signal ${r.signal}${r.timedOut ? ' (killed after the timeout)' : ''}\n` +
    `stdout: ${JSON.stringify(r.stdout.slice(0, 2000))}\nstderr: ${JSON.stringify(r.stderr.slice(0, 2000))}`;
}

export function tempDir(prefix = 'kz-cli-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

let dbCounter = 0;

/** A fresh, empty PostgreSQL database in the KZ_TEST_PG_URL cluster (pg.sh createdb); returns its URL. */
export function createPostgresDatabase() {
  const clusterUrl = process.env.KZ_TEST_PG_URL;
  if (!clusterUrl) throw new Error('KZ_DB=postgres needs KZ_TEST_PG_URL');
  const name = `kz_cli_${process.pid}_${Date.now().toString(36)}_${dbCounter++}_${Math.random().toString(36).slice(2, 8)}`;
  let out;
  try {
    out = execFileSync('bash', [path.join(REPO_ROOT, 'tests', 'support', 'pg.sh'), 'createdb', clusterUrl, name],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`pg.sh createdb failed (exit ${err.status}): ${err.stderr || err.message}`);
  }
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length !== 1) throw new Error(`pg.sh createdb printed ${JSON.stringify(out)}`);
  return lines[0];
}

/**
 * A fresh store for the current backend: {dataDir, dbAddress, cleanup()}.
 * SQLite: dbAddress is <dataDir>/kizuna.db; PostgreSQL: a new database.
 */
export function freshStore() {
  const dataDir = tempDir('kz-store-');
  const dbAddress = dbKind() === 'postgres' ? createPostgresDatabase() : path.join(dataDir, 'kizuna.db');
  return { dataDir, dbAddress, cleanup: () => fs.rmSync(dataDir, { recursive: true, force: true }) };
}

/**
 * Resolve true when something accepts TCP connections on host:port, false on
 * refusal, 'reset' when the handshake was reset (a listener closing with the
 * connection still in its backlog).
 */
export function canConnect(port, host = '127.0.0.1', timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect ${host}:${port} timed out`)); }, timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.destroy(); resolve(true); });
    sock.once('error', (err) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED') resolve(false);
      else if (err.code === 'ECONNRESET') resolve('reset');
      else reject(err);
    });
  });
}

async function healthy(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200 && (await res.text()).trim() === '{}';
  } catch {
    return false;
  }
}

/**
 * Spawn the server with exactly args (nothing added) and wait until
 * GET http://127.0.0.1:<port>/healthcheck answers. Returns
 * {child, port, output(), exited, exit, stop(signal)}; stop requires exit code 0.
 */
export async function spawnServer(args, { port, readyTimeoutMs = 10_000, cwd } = {}) {
  const child = spawn(serverBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: cwd || os.tmpdir() });
  live.add(child);
  const srv = {
    child,
    port,
    log: '',
    exit: null,
    output() { return this.log.slice(-4000); },
  };
  srv.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => { live.delete(child); srv.exit = { code, signal }; resolve(srv.exit); });
  });
  const collect = (d) => { srv.log += d.toString('utf8'); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  srv.stop = async (signal = 'SIGTERM', timeoutMs = 10_000) => {
    if (srv.exit) throw new Error(`server had already exited (${JSON.stringify(srv.exit)}); output:\n${srv.output()}`);
    child.kill(signal);
    let timer;
    const r = await Promise.race([srv.exited, new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); })]);
    clearTimeout(timer);
    if (r === 'timeout') {
      child.kill('SIGKILL');
      await srv.exited;
      throw new Error(`server did not exit within ${timeoutMs} ms of ${signal}; output:\n${srv.output()}`);
    }
    return r;
  };
  srv.kill = async () => { if (!srv.exit) { child.kill('SIGKILL'); await srv.exited; } };
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (srv.exit) throw new Error(`server exited during start-up (${JSON.stringify(srv.exit)}); args ${args.join(' ')}; output:\n${srv.output()}`);
    if (await healthy(port)) return srv;
    await sleep(50);
  }
  await srv.kill();
  throw new Error(`server not healthy on port ${port} within ${readyTimeoutMs} ms; args ${args.join(' ')}; output:\n${srv.output()}`);
}

// ---------------------------------------------------------------- metrics

/**
 * Parse the Prometheus text format into {samples: Map(series -> number),
 * types: Map(family -> type), lines: string[]}; a series key is the sample
 * name with its label set exactly as written, e.g. 'x{route="A",status="200"}'.
 */
export function parseMetrics(text) {
  const samples = new Map();
  const types = new Map();
  const lines = text.split('\n').filter((l) => l !== '');
  for (const line of lines) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name, type);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${JSON.stringify(line)}`);
    const value = m[2] === '+Inf' ? Infinity : Number(m[2]);
    if (Number.isNaN(value)) throw new Error(`bad sample value: ${JSON.stringify(line)}`);
    if (samples.has(m[1])) throw new Error(`duplicate series: ${m[1]}`);
    samples.set(m[1], value);
  }
  return { samples, types, lines, text };
}

/** A keep-alive connection to the metrics port (a persistent scraper does not move kizuna_connections_open between scrapes). */
export class MetricsScraper {
  constructor(port) {
    this.port = port;
    this.conn = null;
  }

  async get(pathname = '/metrics', method = 'GET') {
    if (!this.conn || this.conn.closed) {
      this.conn = new RawConn(this.port);
      await this.conn.connect();
    }
    await this.conn.write(rawRequest(method, pathname));
    return this.conn.readResponse({ head: method === 'HEAD' });
  }

  /** GET /metrics, require 200, return the parsed exposition. */
  async scrape() {
    const res = await this.get('/metrics');
    if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${res.text}`);
    return parseMetrics(res.text);
  }

  close() {
    if (this.conn) this.conn.destroy();
    this.conn = null;
  }
}

// ---------------------------------------------------------------- sockets

/**
 * TCP sockets in LISTEN state held by process pid, as a sorted, de-duplicated
 * list of "addr:port" (addr "127.0.0.1", "0.0.0.0", "::", "::1", or hex for
 * other IPv6). Linux only: returns null when /proc is not readable.
 */
export function listeningSockets(pid) {
  let fds;
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  const inodes = new Set();
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const out = new Set();
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]]) {
    let text;
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue;
      const [hexAddr, hexPort] = f[1].split(':');
      out.add(`${v6 ? ipv6FromProc(hexAddr) : ipv4FromProc(hexAddr)}:${parseInt(hexPort, 16)}`);
    }
  }
  return [...out].sort();
}

function ipv4FromProc(hex) {
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

function ipv6FromProc(hex) {
  if (/^0+$/.test(hex)) return '::';
  if (hex === '00000000000000000000000001000000') return '::1';
  return hex;
}
