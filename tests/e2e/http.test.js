// HTTP-level behaviour of the API port: healthcheck, routing errors, CORS,
// keep-alive and pipelining, standard headers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './lib/fixture.js';
import { request, assertErrorBody, uniq, basicAuth, RawConn, rawRequest } from './lib/http.js';

let session;

const ctx = useServer({
  setup: async () => {
    session = await ctx.client.authenticateDevice(uniq('device'));
  },
});

describe('health', () => {
  test('GET /healthcheck is 200 {}', async () => {
    const r = await request(ctx.srv, 'GET', '/healthcheck');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {});
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
  });

  test('GET / is 200 with an empty body', async () => {
    const r = await request(ctx.srv, 'GET', '/');
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
  });
});

describe('routing errors', () => {
  test('unknown paths are 404 {"code":5,"message":"Not Found"}', async () => {
    for (const [method, path] of [
      ['GET', '/v2/nothing-here'],
      ['POST', '/v2/nothing-here'],
      ['GET', '/v3/account'],
      ['POST', '/v2/account/authenticate/nonsense'],
      ['GET', '/v2/account/extra/segments'],
      ['GET', '/healthcheck/more'],
    ]) {
      const r = await request(ctx.srv, method, path, { auth: `Bearer ${session.token}` });
      assertErrorBody(r, 404, 5, 'Not Found');
    }
  });

  test('a known path with another method is 501 {"code":12,"message":"Method Not Allowed"}', async () => {
    for (const [method, path] of [
      ['PATCH', '/v2/account'],
      ['POST', '/v2/account'],
      ['GET', '/v2/account/authenticate/device'],
      ['PUT', '/v2/account/session/refresh'],
      ['DELETE', '/v2/user'],
    ]) {
      const r = await request(ctx.srv, method, path, { auth: `Bearer ${session.token}`, json: method === 'GET' ? undefined : {} });
      assertErrorBody(r, 501, 12, 'Method Not Allowed');
    }
  });

  test('query strings do not change routing', async () => {
    const r = await request(ctx.srv, 'GET', '/v2/account?unused=1&x=%20y', { auth: `Bearer ${session.token}` });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.user.id, session.user_id);
  });
});

describe('CORS', () => {
  test('preflight for /v2/account', async () => {
    const r = await request(ctx.srv, 'OPTIONS', '/v2/account', {
      headers: {
        Origin: 'http://game.example',
        'Access-Control-Request-Method': 'PUT',
        'Access-Control-Request-Headers': 'authorization, content-type',
      },
    });
    assert.ok(r.status === 200 || r.status === 204, `preflight status ${r.status}`);
    const origin = r.headers.get('access-control-allow-origin');
    assert.ok(origin === '*' || origin === 'http://game.example', `Access-Control-Allow-Origin: ${origin}`);
    const methods = (r.headers.get('access-control-allow-methods') || '').toUpperCase().split(/\s*,\s*/);
    for (const m of ['GET', 'POST', 'PUT', 'DELETE']) assert.ok(methods.includes(m), `Allow-Methods has ${m}: ${methods}`);
    const headers = (r.headers.get('access-control-allow-headers') || '').toLowerCase().split(/\s*,\s*/);
    for (const h of ['authorization', 'content-type']) assert.ok(headers.includes(h), `Allow-Headers has ${h}: ${headers}`);
  });

  test('preflight for an authenticate route needs no credentials', async () => {
    const r = await request(ctx.srv, 'OPTIONS', '/v2/account/authenticate/device', {
      headers: { Origin: 'http://game.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
    });
    assert.ok(r.status === 200 || r.status === 204, `preflight status ${r.status}`);
    assert.ok(r.headers.get('access-control-allow-origin'));
  });

  test('normal and error responses carry Access-Control-Allow-Origin', async () => {
    const headers = { Origin: 'http://game.example' };
    const ok = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${session.token}`, headers });
    assert.equal(ok.status, 200);
    const unauth = await request(ctx.srv, 'GET', '/v2/account', { headers });
    assert.equal(unauth.status, 401);
    const auth = await request(ctx.srv, 'POST', '/v2/account/authenticate/device', { auth: basicAuth(), json: { id: uniq('cors') }, headers });
    assert.equal(auth.status, 200);
    for (const r of [ok, unauth, auth]) {
      const origin = r.headers.get('access-control-allow-origin');
      assert.ok(origin === '*' || origin === 'http://game.example', `Access-Control-Allow-Origin: ${origin}`);
    }
  });
});

describe('headers', () => {
  test('API responses are not cacheable', async () => {
    const r = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${session.token}` });
    assert.equal(r.status, 200);
    const cc = r.headers.get('cache-control') || '';
    for (const d of ['no-store', 'no-cache', 'must-revalidate']) assert.ok(cc.includes(d), `Cache-Control has ${d}: "${cc}"`);
  });

  test('401 responses carry WWW-Authenticate', async () => {
    const r = await request(ctx.srv, 'GET', '/v2/account');
    assertErrorBody(r, 401, 16, 'Auth token required');
    assert.ok(r.headers.get('www-authenticate'));
  });
});

describe('connections', () => {
  test('keep-alive: several requests on one connection', async () => {
    const conn = await new RawConn(ctx.srv.port).connect();
    try {
      const auth = { Authorization: `Bearer ${session.token}` };
      const steps = [
        [rawRequest('GET', '/healthcheck'), 200],
        [rawRequest('GET', '/v2/account', { headers: auth }), 200],
        [rawRequest('GET', '/v2/nope', { headers: auth }), 404],
        [rawRequest('GET', '/v2/account'), 401],
        [rawRequest('POST', '/v2/account/authenticate/device', {
          headers: { Authorization: basicAuth(), 'Content-Type': 'application/json' },
          body: JSON.stringify({ id: uniq('keepalive') }),
        }), 200],
        [rawRequest('PUT', '/v2/account', { headers: { ...auth, 'Content-Type': 'application/json' }, body: '{}' }), 400],
        [rawRequest('GET', '/v2/account', { headers: auth }), 200],
      ];
      for (const [req, status] of steps) {
        assert.equal(conn.closed, false, 'connection still open');
        await conn.write(req);
        const res = await conn.readResponse();
        assert.equal(res.status, status, `${req.split('\r\n')[0]} -> ${res.status} ${res.text}`);
        assert.ok(res.json !== undefined, 'JSON body');
      }
      assert.equal(conn.closed, false, 'server kept the connection open');
    } finally {
      conn.destroy();
    }
  });

  test('pipelined requests are answered in order', async () => {
    const conn = await new RawConn(ctx.srv.port).connect();
    try {
      const auth = { Authorization: `Bearer ${session.token}` };
      await conn.write(
        rawRequest('GET', '/v2/account', { headers: auth })
        + rawRequest('GET', '/v2/nope', { headers: auth })
        + rawRequest('GET', '/healthcheck'),
      );
      const a = await conn.readResponse();
      const b = await conn.readResponse();
      const c = await conn.readResponse();
      assert.deepEqual([a.status, b.status, c.status], [200, 404, 200]);
      assert.equal(a.json.user.id, session.user_id);
      assert.deepEqual(b.json, { code: 5, message: 'Not Found' });
      assert.deepEqual(c.json, {});
    } finally {
      conn.destroy();
    }
  });

  test('Connection: close is honoured', async () => {
    const conn = await new RawConn(ctx.srv.port).connect();
    try {
      await conn.write(rawRequest('GET', '/healthcheck', { headers: { Connection: 'close' } }));
      const res = await conn.readResponse();
      assert.equal(res.status, 200);
      assert.ok(await conn.waitClosed(3000), 'server closed the connection');
    } finally {
      conn.destroy();
    }
  });

  test('many concurrent clients', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2
      ? request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${session.token}` })
      : request(ctx.srv, 'POST', '/v2/account/authenticate/device', { auth: basicAuth(), json: { id: uniq('burst') } }))));
    for (const r of results) assert.equal(r.status, 200, r.text);
  });
});
