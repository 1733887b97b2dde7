// The realtime socket's foundation: GET /ws upgrade with the session token,
// JSON envelopes with cid replies, app-level ping/pong, Nakama's handling of
// malformed, unknown and server-only messages, size limits, control pings
// with a pong deadline, and a clean close when the server stops. Raw `ws`
// tests speak JSON and run in the JSON pass only (KZ_WS_FORMAT, lib/socket.js);
// protobuf.test.js has their protobuf counterparts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { request } from './lib/http.js';
import { createSocket, JSON_ONLY } from './lib/socket.js';

// Short keep-alive periods so the control-ping tests run in about a second.
const ctx = useServer({ args: ['--socket.ping_period_ms', '200', '--socket.pong_wait_ms', '700'] });

function url(token, extra = '') {
  return `ws://127.0.0.1:${ctx.srv.port}/ws?lang=en&status=true${token ? `&token=${encodeURIComponent(token)}` : ''}${extra}`;
}

/** Opens a raw socket; resolves once open, or with the HTTP status of a refused upgrade. */
function open(address, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(address, options);
    const messages = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const m = isBinary ? data : JSON.parse(data.toString());
      const w = waiters.shift();
      if (w) w(m); else messages.push(m);
    });
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.next = () => new Promise((res) => {
      if (messages.length) res(messages.shift()); else waiters.push(res);
    });
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('error', (e) => reject(e));
  });
}

async function session() {
  return (await newDeviceSession(ctx.client)).session;
}

describe('upgrade', () => {
  test('nakama-js connects and disconnects with a session', async () => {
    const s = await session();
    const socket = createSocket(ctx.client);
    let disconnected = false;
    socket.ondisconnect = () => { disconnected = true; };
    const got = await socket.connect(s, true);
    assert.equal(got, s);
    socket.disconnect(true);
    for (let i = 0; i < 50 && !disconnected; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(disconnected, true);
  });

  test('a missing, tampered or revoked token is 401 with no upgrade', { skip: JSON_ONLY }, async () => {
    const s = await session();
    let r = await open(url(null));
    assert.equal(r.status, 401);
    assert.equal(r.body, 'Missing or invalid token');
    r = await open(url(s.token.slice(0, -2) + 'xx'));
    assert.equal(r.status, 401);
    r = await open(url(s.refresh_token));
    assert.equal(r.status, 401);
    const out = await request(ctx.srv, 'POST', '/v2/session/logout', { auth: `Bearer ${s.token}`, json: {} });
    assert.equal(out.status, 200);
    r = await open(url(s.token));
    assert.equal(r.status, 401);
  });

  test('the token may come as a Bearer header', { skip: JSON_ONLY }, async () => {
    const s = await session();
    const r = await open(url(null), { headers: { Authorization: `Bearer ${s.token}` } });
    assert.ok(r.ws, `status ${r.status}`);
    r.ws.close();
    await r.ws.closed;
  });

  test('format and status parameters are checked', { skip: JSON_ONLY }, async () => {
    const s = await session();
    let r = await open(url(s.token, '&format=xml'));
    assert.equal(r.status, 400);
    assert.equal(r.body, 'Invalid format parameter');
    r = await open(url(s.token, '&format=json'));
    assert.ok(r.ws);
    r.ws.close();
    r = await open(`ws://127.0.0.1:${ctx.srv.port}/ws?status=maybe&token=${encodeURIComponent(s.token)}`);
    assert.equal(r.status, 400);
  });

  test('a plain GET /ws without the upgrade headers is 400', { skip: JSON_ONLY }, async () => {
    const s = await session();
    const r = await request(ctx.srv, 'GET', `/ws?token=${encodeURIComponent(s.token)}`);
    assert.equal(r.status, 400);
  });
});

describe('envelopes', { skip: JSON_ONLY }, () => {
  test('ping gets pong with the same cid', async () => {
    const { ws } = await open(url((await session()).token));
    ws.send(JSON.stringify({ cid: '7', ping: {} }));
    assert.deepEqual(await ws.next(), { cid: '7', pong: {} });
    ws.send(JSON.stringify({ ping: {} }));
    assert.deepEqual(await ws.next(), { pong: {} });
    ws.close();
    await ws.closed;
  });

  test('a server-only kind is error 1 and a close', async () => {
    const { ws } = await open(url((await session()).token));
    ws.send(JSON.stringify({ cid: '3', match_data: {} }));
    assert.deepEqual(await ws.next(), { cid: '3', error: { code: 1, message: 'Unrecognized message.' } });
    assert.deepEqual(await ws.closed, { code: 1000, reason: 'Unrecognized message.' });
  });

  test('an envelope with no message is error 2 and a close', async () => {
    const { ws } = await open(url((await session()).token));
    ws.send(JSON.stringify({ cid: '4' }));
    assert.deepEqual(await ws.next(), { cid: '4', error: { code: 2, message: 'Missing message.' } });
    assert.equal((await ws.closed).code, 1000);
  });

  test('an unknown kind, a garbage frame or two messages close the socket', async () => {
    const token = (await session()).token;
    for (const frame of ['{"cid":"5","no_such_kind":{}}', 'not json at all', '[1,2]',
      '{"ping":{},"pong":{}}', '{"cid":5,"ping":{}}', '{"ping":"x"}']) {
      const { ws } = await open(url(token));
      ws.send(frame);
      const closed = await ws.closed;
      assert.equal(closed.code, 1000, frame);
      assert.equal(closed.reason.startsWith('Invalid message'), true, `${frame}: ${closed.reason}`);
    }
  });

  test('lowerCamelCase kinds are accepted', async () => {
    const { ws } = await open(url((await session()).token));
    ws.send(JSON.stringify({ cid: '6', matchmakerAdd: {} }));
    assert.deepEqual(await ws.next(), { cid: '6', error: { code: 3, message: 'Invalid minimum count, must be >= 2' } });
    ws.close();
  });

  test('a frame over 4096 bytes closes the socket with 1009', async () => {
    const { ws } = await open(url((await session()).token));
    ws.send(JSON.stringify({ cid: '8', ping: {}, pad: 'x'.repeat(5000) }));
    assert.equal((await ws.closed).code, 1009);
  });

  test('a binary frame on a JSON socket closes it', async () => {
    const { ws } = await open(url((await session()).token));
    ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await ws.closed).code, 1003);
  });

  test('other sockets keep working while one misbehaves', async () => {
    const token = (await session()).token;
    const good = (await open(url(token))).ws;
    const bad = (await open(url(token))).ws;
    bad.send('garbage');
    await bad.closed;
    good.send(JSON.stringify({ cid: '9', ping: {} }));
    assert.deepEqual(await good.next(), { cid: '9', pong: {} });
    good.close();
  });
});

describe('keep-alive', { skip: JSON_ONLY }, () => {
  test('the server sends control pings, and a client that answers stays', async () => {
    const { ws } = await open(url((await session()).token));
    let pings = 0;
    ws.on('ping', () => { pings++; });
    await new Promise((r) => setTimeout(r, 1200));
    assert.ok(pings >= 3, `pings: ${pings}`);
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.close();
  });

  test('a client that never answers pings is dropped after the pong wait', async () => {
    const { ws } = await open(url((await session()).token), { autoPong: false });
    const started = Date.now();
    const closed = await ws.closed;
    const took = Date.now() - started;
    assert.ok(took >= 600 && took < 3000, `dropped after ${took} ms`);
    assert.equal(closed.code, 1006);
  });
});

describe('shutdown', { skip: JSON_ONLY }, () => {
  test('stopping the server closes open sockets with 1001 and exits 0', async () => {
    const { startServer } = await import('./lib/server.js');
    const srv = await startServer();
    try {
      const s = await srv.client().authenticateDevice(`device-shutdown-${Date.now()}`, true);
      const { ws } = await open(`ws://127.0.0.1:${srv.port}/ws?token=${encodeURIComponent(s.token)}`);
      ws.send(JSON.stringify({ cid: '1', ping: {} }));
      assert.deepEqual(await ws.next(), { cid: '1', pong: {} });
      const started = Date.now();
      await srv.stop(); // asserts exit code 0
      assert.deepEqual(await ws.closed, { code: 1001, reason: 'Server is shutting down.' });
      assert.ok(Date.now() - started < 5000);
    } finally {
      srv.cleanup();
    }
  });
});
