// The binary's command line: --version and --help, configuration errors,
// the YAML config file and its precedence against flags, `kizuna migrate`,
// and graceful shutdown on SIGTERM / SIGINT.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, freePort, dbKind } from './lib/server.js';
import {
  RawConn, rawRequest, basicAuth, decodeJwt, request, uniq, UUID_RE,
} from './lib/http.js';
import {
  projectVersion, runKizuna, describeRun, tempDir, freshStore, canConnect, spawnServer,
  MetricsScraper,
} from './lib/cli.js';

// ------------------------------------------------------------------ version and help

describe('--version and --help', () => {
  test('--version prints "kizuna <CMake project version>" and exits 0', async () => {
    const version = projectVersion();
    const r = await runKizuna(['--version']);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, `kizuna ${version}\n`, describeRun(r));
    assert.equal(r.stderr, '', describeRun(r));
  });

  test('--help exits 0 and lists the flags', async () => {
    const r = await runKizuna(['--help']);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stderr, '', describeRun(r));
    assert.match(r.stdout, /^kizuna \d+\.\d+\.\d+/, 'help starts with the name and version');
    for (const flag of [
      '--socket.port', '--session.token_expiry_sec', '--database.address', '--metrics.prometheus_port',
      '--data_dir', '--workers', '--config', '--socket.server_key', '--session.encryption_key',
      '--session.refresh_encryption_key', '--logger.level',
    ]) {
      const re = new RegExp(`^\\s+${flag.replace(/\./g, '\\.')}\\s`, 'm');
      assert.match(r.stdout, re, `--help must list ${flag}:\n${r.stdout}`);
    }
    assert.match(r.stdout, /migrate up/, 'help mentions `migrate up`');
    assert.match(r.stdout, /migrate status/, 'help mentions `migrate status`');
  });
});

// ------------------------------------------------------------------ bad configuration

describe('configuration errors stop start-up with exit code 2', () => {
  // Every case runs against an empty data dir with metrics off; a binary that
  // wrongly accepted the configuration would start serving (and be killed by
  // runKizuna's timeout) or create its database in the dir.
  const cases = [
    { name: 'unknown flag', args: ['--socket.prot', '1'], key: 'socket.prot' },
    { name: 'non-numeric port', args: ['--socket.port', 'abc'], key: 'socket.port' },
    { name: 'port out of range', args: ['--socket.port', '70000'], key: 'socket.port' },
    { name: 'port out of range (--key=value form)', args: ['--socket.port=70000'], key: 'socket.port' },
    { name: 'zero token expiry', args: ['--session.token_expiry_sec', '0'], key: 'session.token_expiry_sec' },
    { name: 'unknown log level', args: ['--logger.level', 'loud'], key: 'logger.level' },
    { name: 'flag without a value', args: ['--socket.port'], key: 'socket.port' },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.args.join(' ')}`, async () => {
      const dir = tempDir();
      try {
        const r = await runKizuna(['--data_dir', dir, '--metrics.prometheus_port', '0', ...c.args], { timeoutMs: 5000 });
        assert.equal(r.code, 2, describeRun(r));
        const keyRe = new RegExp(`(^|[^a-z_.])${c.key.replace(/\./g, '\\.')}([^a-z_]|$)`);
        assert.match(r.stderr, keyRe, `stderr must name ${c.key}: ${describeRun(r)}`);
        assert.equal(r.stdout, '', describeRun(r));
        assert.deepEqual(fs.readdirSync(dir), [], 'nothing may be created before the configuration is valid');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('equal session and refresh keys are rejected', async () => {
    const dir = tempDir();
    try {
      const r = await runKizuna(['--data_dir', dir, '--metrics.prometheus_port', '0',
        '--session.encryption_key', 'x', '--session.refresh_encryption_key', 'x'], { timeoutMs: 5000 });
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, /session\.encryption_key/, describeRun(r));
      assert.match(r.stderr, /session\.refresh_encryption_key/, describeRun(r));
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unknown migrate action exits 2 with the usage', async () => {
    const r = await runKizuna(['migrate', 'down'], { timeoutMs: 5000 });
    assert.equal(r.code, 2, describeRun(r));
    assert.match(r.stderr, /migrate up\|status/, describeRun(r));
  });
});

// ------------------------------------------------------------------ config file

function tokenLifetime(token) {
  const { payload } = decodeJwt(token);
  return payload.exp - payload.iat;
}

async function authDevice(port, serverKey = 'defaultkey') {
  const res = await fetch(`http://127.0.0.1:${port}/v2/account/authenticate/device?create=true`, {
    method: 'POST',
    headers: { Authorization: basicAuth(serverKey), 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: uniq('device') }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, json };
}

describe('YAML config file', () => {
  // Nested keys for everything the server needs, so the file alone runs it.
  async function writeConfig(dir, store, port, extra = '') {
    const file = path.join(dir, 'kizuna.yml');
    fs.writeFileSync(file, [
      '# written by cli.test.js',
      `data_dir: ${JSON.stringify(store.dataDir)}`,
      'socket:',
      `  port: ${port}`,
      '  server_key: file-server-key',
      'session:',
      '  token_expiry_sec: 120',
      '  refresh_token_expiry_sec: 7200',
      'database:',
      `  address: ${JSON.stringify(store.dbAddress)}`,
      'metrics:',
      '  prometheus_port: 0',
      'logger:',
      '  level: warn',
      extra,
    ].join('\n'));
    return file;
  }

  test('nested keys from the file are honoured (port, server key, token lifetimes)', async () => {
    const store = freshStore();
    const dir = tempDir();
    try {
      const port = await freePort();
      const file = await writeConfig(dir, store, port);
      const srv = await spawnServer(['--config', file], { port });
      try {
        const wrongKey = await authDevice(port, 'defaultkey');
        assert.equal(wrongKey.status, 401, `the default server key must not work when the file sets another: ${wrongKey.text}`);
        const res = await authDevice(port, 'file-server-key');
        assert.equal(res.status, 200, res.text);
        assert.equal(tokenLifetime(res.json.token), 120, 'session token exp - iat from session.token_expiry_sec');
        assert.equal(tokenLifetime(res.json.refresh_token), 7200, 'refresh token exp - iat from session.refresh_token_expiry_sec');
      } finally {
        const exit = await srv.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, srv.output());
      }
      if (dbKind() === 'sqlite') {
        assert.ok(fs.existsSync(store.dbAddress), 'the SQLite file named by database.address in the file was used');
      }
    } finally {
      store.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const [label, order] of [
    ['before --config', (file) => ['--session.token_expiry_sec', '90', '--config', file]],
    ['after --config (--key=value form)', (file) => [`--config=${file}`, '--session.token_expiry_sec=90']],
  ]) {
    test(`a flag overrides the file (flag ${label})`, async () => {
      const store = freshStore();
      const dir = tempDir();
      try {
        const port = await freePort();
        const file = await writeConfig(dir, store, port);
        const srv = await spawnServer(order(file), { port });
        try {
          const res = await authDevice(port, 'file-server-key');
          assert.equal(res.status, 200, res.text);
          assert.equal(tokenLifetime(res.json.token), 90, 'the flag wins over session.token_expiry_sec: 120 in the file');
          assert.equal(tokenLifetime(res.json.refresh_token), 7200, 'keys the flag does not set still come from the file');
        } finally {
          const exit = await srv.stop();
          assert.deepEqual(exit, { code: 0, signal: null }, srv.output());
        }
      } finally {
        store.cleanup();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('an unknown key in the file exits 2 naming the key and the file', async () => {
    const store = freshStore();
    const dir = tempDir();
    try {
      const port = await freePort();
      const file = await writeConfig(dir, store, port);
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('  server_key: file-server-key\n', '  server_key: file-server-key\n  bogus_key: 1\n'));
      const r = await runKizuna(['--config', file], { timeoutMs: 5000 });
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, /socket\.bogus_key/, `stderr must name the nested key: ${describeRun(r)}`);
      assert.ok(r.stderr.includes(file), `stderr must name the file ${file}: ${describeRun(r)}`);
      assert.equal(await canConnect(port), false, 'nothing may listen on the port from the file');
    } finally {
      store.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad value in the file exits 2 naming the key and the file', async () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'bad.yml');
      fs.writeFileSync(file, `data_dir: ${JSON.stringify(dir)}\nsession:\n  token_expiry_sec: 0\n`);
      const r = await runKizuna(['--config', file], { timeoutMs: 5000 });
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, /session\.token_expiry_sec/, describeRun(r));
      assert.ok(r.stderr.includes(file), describeRun(r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing config file exits 2 naming the file', async () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'does-not-exist.yml');
      const r = await runKizuna(['--config', file], { timeoutMs: 5000 });
      assert.equal(r.code, 2, describeRun(r));
      assert.ok(r.stderr.includes(file), describeRun(r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ migrate

// `kizuna migrate status` prints one line per migration:
//   "  1 initial schema            pending"
//   "  1 initial schema            applied 2026-11-23T20:32:14.042Z"
const STATUS_LINE_RE = /^\s*(\d+)\s+(\S.*?)\s+(pending|applied(?: (\S+))?)\s*$/;

function parseStatus(stdout) {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  return lines.map((line) => {
    const m = STATUS_LINE_RE.exec(line);
    assert.ok(m, `unexpected migrate status line: ${JSON.stringify(line)} in\n${stdout}`);
    return { version: Number(m[1]), name: m[2], state: m[3].split(' ')[0], at: m[4] };
  });
}

describe('kizuna migrate', () => {
  test(`status, up, up again, then a server on the same store (${dbKind()})`, async () => {
    const store = freshStore();
    // SQLite: only --data_dir, so the default <data_dir>/kizuna.db is used.
    const flags = dbKind() === 'postgres'
      ? ['--data_dir', store.dataDir, '--database.address', store.dbAddress]
      : ['--data_dir', store.dataDir];
    try {
      let r = await runKizuna(['migrate', 'status', ...flags]);
      assert.equal(r.code, 0, describeRun(r));
      let status = parseStatus(r.stdout);
      assert.ok(status.length >= 1, `status lists the migrations: ${r.stdout}`);
      assert.equal(status[0].version, 1, r.stdout);
      assert.equal(status[0].name, 'initial schema', r.stdout);
      assert.deepEqual(status.map((s) => s.version), status.map((_, i) => i + 1), `versions 1..n in order: ${r.stdout}`);
      for (const s of status) assert.equal(s.state, 'pending', `a fresh store has nothing applied: ${r.stdout}`);
      const count = status.length;

      const before = Date.now();
      r = await runKizuna(['migrate', 'up', ...flags]);
      const after = Date.now();
      assert.equal(r.code, 0, describeRun(r));

      r = await runKizuna(['migrate', 'status', ...flags]);
      assert.equal(r.code, 0, describeRun(r));
      status = parseStatus(r.stdout);
      assert.equal(status.length, count, r.stdout);
      for (const s of status) {
        assert.equal(s.state, 'applied', r.stdout);
        assert.match(s.at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, `applied time: ${r.stdout}`);
        const t = Date.parse(s.at);
        assert.ok(t >= Math.floor(before / 1000) * 1000 - 1000 && t <= after + 1000,
          `applied at ${s.at}, expected between ${new Date(before).toISOString()} and ${new Date(after).toISOString()}`);
      }
      const appliedAt = status.map((s) => s.at);
      if (dbKind() === 'sqlite') assert.ok(fs.existsSync(path.join(store.dataDir, 'kizuna.db')), 'up creates <data_dir>/kizuna.db');

      r = await runKizuna(['migrate', 'up', ...flags]);
      assert.equal(r.code, 0, `a second up is a no-op: ${describeRun(r)}`);
      r = await runKizuna(['migrate', 'status', ...flags]);
      assert.equal(r.code, 0, describeRun(r));
      assert.deepEqual(parseStatus(r.stdout).map((s) => s.at), appliedAt, 'a second up re-applies nothing');

      const srv = await startServer({ dataDir: store.dataDir, dbAddress: store.dbAddress });
      try {
        const client = srv.client();
        const id = uniq('device');
        const session = await client.authenticateDevice(id, true);
        assert.equal(session.created, true);
        const account = await client.getAccount(session);
        assert.equal(account.user.id, session.user_id);
        assert.deepEqual(account.devices.map((d) => d.id), [id]);
      } finally {
        await srv.stop();
      }

      r = await runKizuna(['migrate', 'status', ...flags]);
      assert.equal(r.code, 0, describeRun(r));
      assert.deepEqual(parseStatus(r.stdout).map((s) => s.at), appliedAt, 'the server re-applies nothing');
    } finally {
      store.cleanup();
    }
  });

  test('migrate up against a database it cannot open exits non-zero', async () => {
    const dir = tempDir();
    try {
      const port = await freePort(); // nothing listens there
      const address = dbKind() === 'postgres'
        ? `postgres://kizuna:kizuna@127.0.0.1:${port}/nope`
        : path.join(dir, 'a-regular-file', 'kizuna.db');
      fs.writeFileSync(path.join(dir, 'a-regular-file'), 'not a directory');
      const r = await runKizuna(['migrate', 'up', '--data_dir', dir, '--database.address', address]);
      assert.notEqual(r.code, 0, describeRun(r));
      assert.equal(r.timedOut, false, describeRun(r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ graceful shutdown

function signupRequest(email, password = 'password-123') {
  return rawRequest('POST', '/v2/account/authenticate/email?create=true', {
    headers: { Authorization: basicAuth(), 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
}

function assertSession(res, what) {
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.json.created, true, `${what}: ${res.text}`);
  const { payload } = decodeJwt(res.json.token);
  assert.match(payload.uid, UUID_RE, `${what}: ${res.text}`);
  decodeJwt(res.json.refresh_token);
  return payload.uid;
}

async function waitExit(srv, ms = 10_000) {
  let timer;
  const r = await Promise.race([srv.exited, new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); })]);
  clearTimeout(timer);
  if (r === 'timeout') {
    await srv.kill();
    assert.fail(`server did not exit within ${ms} ms; output:\n${srv.output()}`);
  }
  return r;
}

describe('start-up', () => {
  test('fails when the API port is already held by another kizuna', async () => {
    // Two processes must not share one API port (the kernel would split the
    // connections between them, possibly over two different databases).
    const first = await startServer();
    const store = freshStore();
    try {
      const r = await runKizuna(['--socket.port', String(first.port), '--data_dir', store.dataDir,
        '--database.address', store.dbAddress, '--metrics.prometheus_port', '0'], { timeoutMs: 5000 });
      assert.equal(r.timedOut, false, `a second server started on port ${first.port} held by another server: ${describeRun(r)}`);
      assert.notEqual(r.code, 0, describeRun(r));
      assert.match(r.stderr, new RegExp(`${first.port}.*(in use|EADDRINUSE)`, 'i'), describeRun(r));
      assert.equal((await request(first, 'GET', '/healthcheck')).status, 200, 'the first server is unaffected');
    } finally {
      await first.stop();
      first.cleanup();
      store.cleanup();
    }
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM right after a sign-up is written: the sign-up gets its session, exit 0', async () => {
    const srv = await startServer();
    const conn = new RawConn(srv.port);
    try {
      await conn.connect();
      await conn.write(signupRequest(`${uniq('term')}@example.com`));
      srv.child.kill('SIGTERM');
      const res = await conn.readResponse({ timeoutMs: 10_000 });
      assertSession(res, 'in-flight sign-up');
      const exit = await waitExit(srv);
      assert.deepEqual(exit, { code: 0, signal: null }, srv.output());
      assert.equal(await canConnect(srv.port), false, 'nothing listens after exit');
    } finally {
      conn.destroy();
      await srv.kill();
      srv.cleanup();
    }
  });

  test('SIGTERM drains queued work, refuses new connections meanwhile, closes idle ones; the work is committed', async () => {
    // One worker, three sign-ups: one hashing, two queued. Waiting for
    // kizuna_worker_queue_depth >= 2 before the signal means the server has
    // read (nearly certainly all of) them, so this test is about draining
    // queued work rather than about the race the previous test runs.
    const store = freshStore();
    const mport = await freePort();
    let srv = await startServer({
      dataDir: store.dataDir,
      dbAddress: store.dbAddress,
      args: ['--database.max_open_conns', '1', '--metrics.prometheus_port', String(mport)],
    });
    const scraper = new MetricsScraper(mport);
    const idle = new RawConn(srv.port);
    const conns = [];
    const emails = [1, 2, 3].map((i) => `${uniq(`drain${i}`)}@example.com`);
    try {
      await idle.connect();
      await idle.write(rawRequest('GET', '/healthcheck'));
      assert.equal((await idle.readResponse()).status, 200);

      assert.equal((await scraper.scrape()).samples.get('kizuna_worker_queue_depth'), 0, 'nothing queued at rest');
      for (const email of emails) {
        const c = new RawConn(srv.port);
        conns.push(c);
        await c.connect();
        await c.write(signupRequest(email));
      }
      let depth;
      const deadline = Date.now() + 5000;
      do {
        depth = (await scraper.scrape()).samples.get('kizuna_worker_queue_depth');
      } while (depth < 2 && Date.now() < deadline);
      assert.ok(depth >= 2 && depth <= 3, `sign-ups queued behind the one being hashed: depth ${depth}`);
      scraper.close();

      srv.child.kill('SIGTERM');
      let refusedWhileRunning = false;
      const refuseDeadline = Date.now() + 3000;
      while (Date.now() < refuseDeadline && !srv.exit) {
        if ((await canConnect(srv.port)) === false) {
          // Still draining: some sign-up has not been answered yet.
          refusedWhileRunning = conns.some((c) => c.buf.length === 0 && !c.closed);
          break;
        }
      }
      assert.ok(refusedWhileRunning, `a new connection must be refused while the server still drains (exit: ${JSON.stringify(srv.exit)})`);
      assert.ok(await idle.waitClosed(5000), 'an idle keep-alive connection is closed on SIGTERM');

      const uids = [];
      for (let i = 0; i < conns.length; i++) {
        uids.push(assertSession(await conns[i].readResponse({ timeoutMs: 10_000 }), `sign-up ${i + 1}`));
      }
      assert.equal(new Set(uids).size, 3, 'three distinct accounts');
      const exit = await waitExit(srv);
      assert.deepEqual(exit, { code: 0, signal: null }, srv.output());

      // The drained sign-ups were committed: sign in again without create.
      srv = await startServer({ dataDir: store.dataDir, dbAddress: store.dbAddress });
      const client = srv.client();
      for (let i = 0; i < emails.length; i++) {
        const session = await client.authenticateEmail(emails[i], 'password-123', false);
        assert.equal(session.user_id, uids[i], `account ${i + 1} survived the shutdown`);
      }
      await srv.stop();
    } finally {
      scraper.close();
      idle.destroy();
      for (const c of conns) c.destroy();
      await srv.kill();
      store.cleanup();
    }
  });

  test('SIGINT exits 0 promptly', async () => {
    const srv = await startServer();
    try {
      const res = await request(srv, 'GET', '/healthcheck');
      assert.equal(res.status, 200);
      const t0 = Date.now();
      srv.child.kill('SIGINT');
      const exit = await waitExit(srv);
      assert.deepEqual(exit, { code: 0, signal: null }, srv.output());
      assert.ok(Date.now() - t0 < 5000, `an idle server stops in under 5 s (took ${Date.now() - t0} ms)`);
      assert.equal(await canConnect(srv.port), false);
    } finally {
      await srv.kill();
      srv.cleanup();
    }
  });
});
