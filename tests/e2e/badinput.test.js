// Malformed and hostile input: bad JSON, wrong types, oversized bodies and
// headers, stalled clients. After each, the server still serves and nothing
// changed.
import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './lib/fixture.js';
import {
  request, assertErrorBody, expectClientError, uniq, basicAuth, RawConn, rawRequest, sleep,
} from './lib/http.js';

const MAX_BODY = 262144;
let witness; // {id, session, snapshot}

const ctx = useServer({
  setup: async () => {
    const id = uniq('witness');
    const session = await ctx.client.authenticateDevice(id);
    await ctx.client.updateAccount(session, { display_name: 'Witness', location: 'Nowhere' });
    witness = { id, session, snapshot: await ctx.client.getAccount(session) };
  },
});

// Nothing a bad request did may have changed the known account, and the
// server must still answer normal requests.
afterEach(async () => {
  const health = await request(ctx.srv, 'GET', '/healthcheck');
  assert.equal(health.status, 200, 'server still healthy');
  const now = await ctx.client.getAccount(witness.session);
  assert.deepEqual(now, witness.snapshot, 'the witness account is unchanged');
});

function authDevice(body, { query = '', contentType } = {}) {
  const headers = contentType ? { 'Content-Type': contentType } : {};
  return request(ctx.srv, 'POST', `/v2/account/authenticate/device${query}`, { auth: basicAuth(), body, headers });
}

async function assertNoAccount(deviceId) {
  await expectClientError(ctx.client.authenticateDevice(deviceId, false), 404, 5, 'User account not found.');
}

describe('JSON bodies', () => {
  test('malformed JSON is 400 InvalidArgument and creates nothing', async () => {
    const id = uniq('badjson');
    for (const body of [`{"id": "${id}"`, `{"id": "${id}",}`, `{id: "${id}"}`, 'not json at all', '{"id": "\\x"}', '\u0000\u0001']) {
      assertErrorBody(await authDevice(body), 400, 3);
    }
    await assertNoAccount(id);
  });

  test('wrong JSON types are 400', async () => {
    const id = uniq('types');
    for (const body of [
      { id: 123 },
      { id: [id] },
      { id: { nested: id } },
      { id: true },
      { id, vars: 'not-an-object' },
      { id, vars: { n: 1 } },
      { id, vars: ['a'] },
    ]) {
      assertErrorBody(await authDevice(JSON.stringify(body)), 400, 3);
    }
    for (const body of ['[]', '"string"', '42']) {
      assertErrorBody(await authDevice(body), 400, 3);
    }
    await assertNoAccount(id);
  });

  test('wrong types on PUT /v2/account change nothing', async () => {
    const t = witness.session.token;
    for (const body of ['{"display_name": 5}', '{"display_name": ["x"]}', '{"location": {"a": 1}}', '{"display_name": "x"', '[]']) {
      const r = await request(ctx.srv, 'PUT', '/v2/account', { auth: `Bearer ${t}`, body });
      assertErrorBody(r, 400, 3);
    }
  });

  test('bad query parameters are 400', async () => {
    const id = uniq('query');
    assertErrorBody(await authDevice(JSON.stringify({ id }), { query: '?create=notabool' }), 400, 3);
    await assertNoAccount(id);
  });

  test('empty body: "Device ID is required."', async () => {
    assertErrorBody(await authDevice(''), 400, 3, 'Device ID is required.');
  });

  test('unknown fields are ignored', async () => {
    const id = uniq('extra');
    const r = await authDevice(JSON.stringify({ id, extra: { deep: [1, 2, { x: null }] }, another: 'x' }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.created, true);
  });

  test('a large body under the limit is read whole', async () => {
    const id = uniq('big-ok');
    const body = JSON.stringify({ pad: 'p'.repeat(200_000), id });
    assert.ok(body.length < MAX_BODY);
    const r = await authDevice(body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.created, true);
    const s = await ctx.client.authenticateDevice(id, false);
    assert.ok(s.user_id);
  });
});

describe('limits', () => {
  test('a body over 262144 bytes is refused with an error body; nothing created', async () => {
    const id = uniq('too-big');
    const body = JSON.stringify({ id, pad: 'q'.repeat(MAX_BODY + 1000) });
    const conn = await new RawConn(ctx.srv.port).connect();
    try {
      // Write the whole body; the server may answer and close before reading all of it.
      conn.write(rawRequest('POST', '/v2/account/authenticate/device', {
        headers: { Authorization: basicAuth(), 'Content-Type': 'application/json' },
        body,
      })).catch(() => {});
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.ok(res.status === 413 || res.status === 400, `status 413 or 400, got ${res.status} ${res.text.slice(0, 200)}`);
      assert.ok(res.json && typeof res.json.code === 'number' && typeof res.json.message === 'string',
        `Nakama error body, got ${res.text.slice(0, 200)}`);
      if (res.status === 400) assert.equal(res.json.code, 3);
    } finally {
      conn.destroy();
    }
    await assertNoAccount(id);
  });

  test('headers over 5120 bytes are refused', async () => {
    const conn = await new RawConn(ctx.srv.port).connect();
    try {
      await conn.write(rawRequest('GET', '/v2/account', {
        headers: { Authorization: `Bearer ${witness.session.token}`, 'X-Padding': 'h'.repeat(6000) },
      }));
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.ok(res.status === 431 || res.status === 400, `status 431 or 400, got ${res.status} ${res.text.slice(0, 200)}`);
    } finally {
      conn.destroy();
    }
  });

  test('normal-sized headers (about 3 KB) are fine', async () => {
    const r = await request(ctx.srv, 'GET', '/v2/account', {
      auth: `Bearer ${witness.session.token}`,
      headers: { 'X-Padding': 'h'.repeat(3000) },
    });
    assert.equal(r.status, 200, r.text);
  });

  test('garbage instead of HTTP gets an error or a close, not a hang', async () => {
    const conn = await new RawConn(ctx.srv.port).connect();
    try {
      await conn.write('HELLO THERE\r\n\r\n');
      const answered = await conn.waitFor(() => conn.buf.indexOf('\r\n\r\n') >= 0, 5000);
      if (answered) {
        const res = await conn.readResponse({ timeoutMs: 2000 });
        assert.ok(res.status >= 400 && res.status < 500, `a 4xx, got ${res.status}`);
      } else {
        assert.ok(conn.closed, 'no answer within 5 s, so the server must have closed the connection');
      }
    } finally {
      conn.destroy();
    }
  });
});

describe('slow clients', () => {
  test('stalled requests do not block other clients', async () => {
    const stalled = [];
    try {
      // Half a request line, half the headers, and a body that never completes.
      const partials = [
        'GET /v2/acc',
        `GET /v2/account HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${witness.session.token}\r\n`,
        rawRequest('POST', '/v2/account/authenticate/device', {
          headers: { Authorization: basicAuth(), 'Content-Type': 'application/json', 'Content-Length': '200' },
        }) + '{"id": "stalled-device-',
      ];
      for (const p of partials) {
        const conn = await new RawConn(ctx.srv.port).connect();
        stalled.push(conn);
        await conn.write(p);
      }
      await sleep(200);
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        const r = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${witness.session.token}`, timeoutMs: 3000 });
        assert.equal(r.status, 200, r.text);
        assert.ok(Date.now() - started < 2000, 'answered promptly');
        const a = await request(ctx.srv, 'POST', '/v2/account/authenticate/device', { auth: basicAuth(), json: { id: uniq('while-stalled') }, timeoutMs: 3000 });
        assert.equal(a.status, 200, a.text);
      }
    } finally {
      for (const conn of stalled) conn.destroy();
    }
    await assertNoAccount('stalled-device-');
  });

  test('a client that disconnects mid-request does no harm', async () => {
    for (let i = 0; i < 5; i++) {
      const conn = await new RawConn(ctx.srv.port).connect();
      await conn.write(rawRequest('PUT', '/v2/account', {
        headers: { Authorization: `Bearer ${witness.session.token}`, 'Content-Type': 'application/json', 'Content-Length': '100' },
      }) + '{"display_name": "half');
      conn.destroy();
    }
    await sleep(100);
  });
});
