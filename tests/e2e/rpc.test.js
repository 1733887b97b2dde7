// Lua RPCs: POST/GET /v2/rpc/{id} with a session or the http_key, the
// socket's rpc message, errors with the code a script raises, the time and
// memory budgets, the sandbox, and start-up failing on a broken module.
// Modules: tests/e2e/modules/rpc (and modules/broken).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { E2E_DIR, startServer } from './lib/server.js';
import { request } from './lib/http.js';
import { createSocket } from './lib/socket.js';

const HTTP_KEY = 'defaulthttpkey';
let alice;

const ctx = useServer({
  args: [
    '--runtime.path', path.join(E2E_DIR, 'modules', 'rpc'),
    '--runtime.lua_call_timeout_ms', '300',
    '--runtime.lua_memory_mb', '16',
    '--runtime.env', 'GAME_MODE=ranked',
    '--runtime.env', 'ENDPOINT=http://127.0.0.1/?a=b',
  ],
  setup: async () => {
    alice = (await newDeviceSession(ctx.client, { vars: { tier: 'gold' } })).session;
  },
});

/** An RPC error body: {"error": ..., "message": ..., "code": ...}. */
function assertRpcError(res, status, code, message) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.code, code, res.text);
  if (message instanceof RegExp) assert.match(res.json.message, message);
  else assert.equal(res.json.message, message);
  assert.deepEqual(Object.keys(res.json).sort(), ['code', 'error', 'message']);
}

const post = (id, body, opts = {}) =>
  request(ctx.srv, 'POST', `/v2/rpc/${id}${opts.query ? `?${opts.query}` : ''}`, { body, ...opts });

describe('RPC over REST', () => {
  test('a session call reaches the function with its payload and context', async () => {
    const res = await ctx.client.rpc(alice, 'echo', { score: 10, name: 'x' });
    assert.equal(res.id, undefined);
    const p = res.payload;
    assert.equal(p.payload, '{"score":10,"name":"x"}');
    assert.equal(p.user_id, alice.user_id);
    assert.equal(p.username, alice.username);
    assert.equal(p.mode, 'rpc');
    assert.equal(p.session_id, '');
    assert.deepEqual(p.vars, { tier: 'gold' });
    assert.deepEqual(p.env, { GAME_MODE: 'ranked', ENDPOINT: 'http://127.0.0.1/?a=b' });
    assert.equal(p.greeting, 'hello kizuna');
    assert.equal(p.pkg, 'lib.pkg via init.lua');
  });

  test('ids are case-insensitive', async () => {
    const a = await ctx.client.rpc(alice, 'ECHO', { a: 1 });
    assert.equal(a.payload.payload, '{"a":1}');
    const b = await ctx.client.rpc(alice, 'camel_echo', { b: 2 });
    assert.equal(b.payload.payload, '{"b":2}');
  });

  test('the http_key calls without a user; GET passes the query as query_params', async () => {
    const res = await ctx.client.rpcHttpKey(HTTP_KEY, 'echo', { via: 'key' });
    assert.equal(res.payload.user_id, '');
    assert.equal(res.payload.payload, '');
    assert.deepEqual(res.payload.query, { payload: ['{"via":"key"}'] });

    const raw = await request(ctx.srv, 'GET', `/v2/rpc/echo?http_key=${HTTP_KEY}&a=1&a=2&b=x%20y`);
    assert.equal(raw.status, 200, raw.text);
    assert.deepEqual(Object.keys(raw.json), ['payload']);
    assert.deepEqual(JSON.parse(raw.json.payload).query, { a: ['1', '2'], b: ['x y'] });
  });

  test('the http_key in a Basic header; POST body is a JSON string', async () => {
    const basic = `Basic ${Buffer.from(`${HTTP_KEY}:`).toString('base64')}`;
    const res = await post('echo', JSON.stringify('{"k":1}'), { auth: basic });
    assert.equal(res.status, 200, res.text);
    const p = JSON.parse(res.json.payload);
    assert.equal(p.payload, '{"k":1}');
    assert.equal(p.user_id, '');
  });

  test('the request headers reach the context, names in canonical form', async () => {
    const res = await post('echo', '"h"', {
      query: `http_key=${HTTP_KEY}`,
      headers: { 'x-game-version': '1.2.3', 'Content-Type': 'application/json' },
    });
    assert.equal(res.status, 200, res.text);
    const h = JSON.parse(res.json.payload).headers;
    assert.deepEqual(h['X-Game-Version'], ['1.2.3']);
    assert.deepEqual(h['Content-Type'], ['application/json']);
    assert.deepEqual(h['Content-Length'], ['3']);
  });

  test('auth failures are 401 in the RPC error shape', async () => {
    assertRpcError(await post('echo', '"x"'), 401, 16, 'Auth token or HTTP key required');
    assertRpcError(await post('echo', '"x"', { query: 'http_key=wrong' }), 401, 16, 'HTTP key invalid');
    const badBasic = `Basic ${Buffer.from('wrong:').toString('base64')}`;
    assertRpcError(await post('echo', '"x"', { auth: badBasic }), 401, 16, 'HTTP key invalid');
    assertRpcError(await post('echo', '"x"', { auth: 'Bearer not.a.token' }), 401, 16, 'Auth token invalid');
    // The query key wins over a valid session header.
    assertRpcError(await post('echo', '"x"', { query: 'http_key=wrong', auth: `Bearer ${alice.token}` }), 401, 16,
      'HTTP key invalid');
  });

  test('unknown function: 404', async () => {
    assertRpcError(await post('nope', '"x"', { query: `http_key=${HTTP_KEY}` }), 404, 5, 'RPC function not found');
  });

  test('a body that is not a JSON string: 400, the function does not run', async () => {
    for (const body of ['{"a":1}', '12', 'not json', '["x"]']) {
      const res = await post('echo', body, { query: `http_key=${HTTP_KEY}` });
      assertRpcError(res, 400, 3, 'Unable to parse request body: a JSON string is expected.');
    }
  });

  test('?unwrap passes the raw body and returns the raw result', async () => {
    const res = await post('raw', '{"not":"a string"}', {
      query: `http_key=${HTTP_KEY}&unwrap`,
      headers: { 'Content-Type': 'application/json' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'raw:{"not":"a string"}');
    assert.match(res.headers.get('content-type'), /^application\/json/);
  });

  test('errors carry the code the script raised', async () => {
    const cases = [
      [{ message: 'bad thing', code: 3 }, 400, 3],
      [{ message: 'not here', code: 5 }, 404, 5],
      [{ message: 'no way', code: 7 }, 403, 7],
      [{ message: 'later', code: 14 }, 503, 14],
      [{ message: 'out of range', code: 99 }, 500, 13],
    ];
    for (const [input, status, code] of cases) {
      const res = await post('raise_code', JSON.stringify(JSON.stringify(input)), { auth: `Bearer ${alice.token}` });
      assert.equal(res.status, status, res.text);
      assert.deepEqual(res.json, { error: {}, message: input.message, code });
    }
    const text = await post('raise_text', '"x"', { auth: `Bearer ${alice.token}` });
    assert.equal(text.status, 500);
    assert.equal(text.json.code, 13);
    assert.match(text.json.message, /main\.lua:\d+: plain failure$/);
  });

  test('return values: nil is an empty payload, a number is an error', async () => {
    const nothing = await post('nothing', '"x"', { auth: `Bearer ${alice.token}` });
    assert.equal(nothing.status, 200);
    assert.deepEqual(nothing.json, { payload: '' });
    const number = await post('number', '"x"', { auth: `Bearer ${alice.token}` });
    assert.equal(number.status, 500);
    assert.equal(number.json.message,
      'Runtime function returned invalid data - only allowed one return value of type String/Byte.');
  });

  test('a runaway script is stopped by the time budget and its state replaced', async () => {
    for (const id of ['spin', 'spin_pcall']) {
      const res = await post(id, '"x"', { auth: `Bearer ${alice.token}` });
      assert.equal(res.status, 500, res.text);
      assert.deepEqual(res.json, { error: {}, message: 'Lua call exceeded its time budget (300 ms).', code: 13 });
    }
    // Every worker still answers.
    const all = await Promise.all(Array.from({ length: 24 }, (_, i) => ctx.client.rpc(alice, 'echo', { i })));
    all.forEach((r, i) => assert.equal(r.payload.payload, JSON.stringify({ i })));
  });

  test('json_encode of a value that expands without bound fails instead of running away', async () => {
    const res = await post('explode', '"x"', { auth: `Bearer ${alice.token}` });
    assert.equal(res.status, 500, res.text);
    assert.equal(res.json.code, 13);
    assert.match(res.json.message, /json_encode: cannot encode more than 1000000 values$/);
  });

  test('a memory hog is stopped by the memory budget', async () => {
    const res = await post('hog', '"x"', { auth: `Bearer ${alice.token}` });
    assert.equal(res.status, 500, res.text);
    assert.deepEqual(res.json, { error: {}, message: 'Lua call exceeded its memory budget (16 MiB).', code: 13 });
    const after = await ctx.client.rpc(alice, 'echo', { ok: true });
    assert.equal(after.payload.payload, '{"ok":true}');
  });

  test('the sandbox: no io, os.execute, file loading, bytecode, C modules, ffi or jit', async () => {
    const res = await ctx.client.rpc(alice, 'sandbox', {});
    assert.deepEqual(res.payload, {
      io: 'nil',
      debug: 'nil',
      dofile: 'nil',
      loadfile: 'nil',
      os_execute: 'nil',
      os_getenv: 'nil',
      os_time: 'function',
      os_clock: 'function',
      string_rep: 'function',
      bit_band: 'function',
      require_socket: false,
      require_ffi: false,
      require_jit: false,
      nakama_same: true,
      require_string_buffer: false,
      newproxy: 'nil',
      source_chunk: 42,
      bytecode_chunk: 'binary chunks are not allowed',
      bytecode_load: 'binary chunks are not allowed',
    });
  });
});

describe('RPC over the socket', () => {
  test('rpc message: reply with id and payload, context has the session', async () => {
    const socket = createSocket(ctx.client);
    const session = await socket.connect(alice, false);
    try {
      const res = await socket.rpc('echo', '{"via":"socket"}');
      assert.equal(res.id, 'echo');
      const p = JSON.parse(res.payload);
      assert.equal(p.payload, '{"via":"socket"}');
      assert.equal(p.user_id, alice.user_id);
      assert.equal(p.session_id.length, 36);
      assert.equal(p.lang, 'en');
      assert.deepEqual(p.vars, { tier: 'gold' });
      assert.ok(session);
    } finally {
      socket.disconnect(false);
    }
  });

  test('unknown id is error 6, a raised error is error 7 with its message', async () => {
    const socket = createSocket(ctx.client);
    await socket.connect(alice, false);
    try {
      await assert.rejects(socket.rpc('nope', ''), (e) => e.code === 6 && e.message === 'RPC function not found');
      await assert.rejects(socket.rpc('raise_code', JSON.stringify({ message: 'denied', code: 7 })),
        (e) => e.code === 7 && e.message === 'denied');
      await assert.rejects(socket.rpc('', ''), (e) => e.code === 3 && e.message === 'RPC ID must be set');
      // The socket is still usable.
      const ok = await socket.rpc('ECHO', 'z');
      assert.equal(JSON.parse(ok.payload).payload, 'z');
    } finally {
      socket.disconnect(false);
    }
  });

  test('a nil result has no payload', async () => {
    const socket = createSocket(ctx.client);
    await socket.connect(alice, false);
    try {
      const res = await socket.rpc('nothing', '');
      assert.equal(res.id, 'nothing');
      assert.equal(res.payload, undefined);
    } finally {
      socket.disconnect(false);
    }
  });
});

test('a module that fails to load stops start-up with the file and line', async () => {
  await assert.rejects(
    startServer({ args: ['--runtime.path', path.join(E2E_DIR, 'modules', 'broken')] }),
    (e) => /server exited during startup \(code 1/.test(e.message) &&
      /Lua module zz_bad: zz_bad\.lua:4: attempt to index local 't' \(a nil value\)/.test(e.message),
  );
});
