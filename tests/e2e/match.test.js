// Relayed (client-authoritative) matches over the socket: create (random and
// named ids), join, leave, presence events, data fan-out to everyone else or
// to targets only, op codes and binary data, errors (with and without cid),
// disconnect cleanup, bounds, and ordering under a burst from several users;
// relayed matches in GET /v2/match; the matchmaker on a server without Lua
// modules (tokens, joining by token) and GET /v2/matchmaker/stats.
// Several nakama-js sockets per test; raw `ws` for exact frames and bad input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { createSocket, JSON_ONLY } from './lib/socket.js';
import { request, uniq, makeUntil, sleep } from './lib/http.js';

const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

// Several I/O threads, so members of one match live on different threads.
// The default outgoing queue bound (64) stays: bursts to clients that keep
// reading must not be mistaken for slow consumers.
const ctx = useServer({ args: ['--workers', '4', '--matchmaker.interval_sec', '1'] });

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const until = makeUntil(3000);

/** A nakama-js socket for a fresh user, recording match events. */
async function player(session) {
  const s = session || (await newDeviceSession(ctx.client)).session;
  const socket = createSocket(ctx.client);
  const p = { session: s, socket, presence: [], data: [], closed: false };
  socket.onmatchpresence = (e) => p.presence.push(e);
  socket.onmatchdata = (d) => p.data.push(d);
  socket.ondisconnect = () => { p.closed = true; };
  await socket.connect(s, true);
  return p;
}

function close(...ps) {
  for (const p of ps) p.socket.disconnect(false);
}

/** The presence a member shows to others. */
const pres = (m) => ({ user_id: m.self.user_id, session_id: m.self.session_id, username: m.self.username });

/** Nakama's id for a named relayed match: UUID v5 of the name, DNS namespace. */
function namedId(name) {
  const ns = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');
  const h = crypto.createHash('sha1').update(Buffer.concat([ns, Buffer.from(name, 'utf8')])).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}.`;
}

/** A raw JSON socket with a message queue. */
function raw(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ctx.srv.port}/ws?lang=en&status=false&token=${encodeURIComponent(token)}`);
    const messages = [];
    const waiters = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      const w = waiters.shift();
      if (w) w(m); else messages.push(m);
    });
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.next = (ms = 3000) => new Promise((res, rej) => {
      if (messages.length) return res(messages.shift());
      const t = setTimeout(() => rej(new Error('no message')), ms);
      waiters.push((m) => { clearTimeout(t); res(m); });
    });
    ws.pending = messages;
    // Sends a request and resolves with its reply; events that arrive first
    // stay queued for next().
    ws.call = (cid, msg, ms = 3000) => new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no reply to ${cid}`)), ms);
      const check = () => {
        const i = messages.findIndex((m) => m.cid === cid);
        if (i < 0) return false;
        clearTimeout(t);
        ws.off('message', onMsg);
        res(messages.splice(i, 1)[0]);
        return true;
      };
      const onMsg = () => setImmediate(check);
      ws.on('message', onMsg);
      ws.send(JSON.stringify({ cid, ...msg }));
    });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

/** Round trip on a raw socket: everything the server sent before is in. */
async function sync(ws) {
  const pong = await ws.call('sync', { ping: {} });
  assert.deepEqual(pong, { cid: 'sync', pong: {} });
}

describe('create and join', () => {
  test('match_create makes a relayed match with the creator as its only member', async () => {
    const a = await player();
    const m = await a.socket.createMatch();
    assert.match(m.match_id, /^[0-9a-f-]{36}\.$/);
    assert.match(m.match_id.slice(0, -1), UUID_RE);
    assert.equal(m.authoritative, undefined);
    assert.equal(m.label, undefined);
    assert.equal(m.size, 1);
    assert.equal(m.presences, undefined);
    assert.deepEqual(Object.keys(m.self).sort(), ['session_id', 'user_id', 'username']);
    assert.equal(m.self.user_id, a.session.user_id);
    assert.equal(m.self.username, a.session.username);
    assert.match(m.self.session_id, UUID_RE);
    const m2 = await a.socket.createMatch();
    assert.notEqual(m2.match_id, m.match_id, 'unnamed matches get random ids');
    assert.equal(m2.self.session_id, m.self.session_id);
    close(a);
  });

  test('joins list the others, and the others see the join', async () => {
    const [a, b, c] = await Promise.all([player(), player(), player()]);
    const ma = await a.socket.createMatch();
    const id = ma.match_id;

    const mb = await b.socket.joinMatch(id);
    assert.deepEqual(mb, { match_id: id, size: 1, presences: [pres(ma)], self: mb.self });
    assert.equal(mb.self.user_id, b.session.user_id);
    await until(() => a.presence.length === 1, 'A sees B');
    assert.deepEqual(a.presence, [{ match_id: id, joins: [pres(mb)] }]);

    const mc = await c.socket.joinMatch(id);
    assert.equal(mc.size, 2, 'size counts the listed presences (the others)');
    assert.deepEqual(mc.presences, [pres(ma), pres(mb)]);
    assert.equal(mc.self.user_id, c.session.user_id);
    await until(() => a.presence.length === 2 && b.presence.length === 1, 'A and B see C');
    assert.deepEqual(a.presence[1], { match_id: id, joins: [pres(mc)] });
    assert.deepEqual(b.presence, [{ match_id: id, joins: [pres(mc)] }]);
    await sleep(100);
    assert.equal(c.presence.length, 0, 'the joiner gets no event about itself');
    assert.equal(a.presence.length, 2);

    // Joining again changes nothing: the reply lists everyone, self included.
    const again = await b.socket.joinMatch(id);
    assert.deepEqual(again, { match_id: id, size: 3, presences: [pres(ma), pres(mb), pres(mc)], self: mb.self });
    await sleep(100);
    assert.equal(a.presence.length, 2, 'no event for a repeated join');
    assert.equal(c.presence.length, 0);
    close(a, b, c);
  });

  test('two sockets of one user are two presences', async () => {
    const a1 = await player();
    const a2 = await player(a1.session);
    const m1 = await a1.socket.createMatch();
    const m2 = await a2.socket.joinMatch(m1.match_id);
    assert.equal(m2.self.user_id, m1.self.user_id);
    assert.notEqual(m2.self.session_id, m1.self.session_id);
    assert.deepEqual(m2.presences, [pres(m1)]);
    await until(() => a1.presence.length === 1, 'join event');
    assert.deepEqual(a1.presence[0].joins, [pres(m2)]);
    close(a1, a2);
  });

  test('a named match has the name-derived id and gathers everyone creating it', async () => {
    const [a, b, c] = await Promise.all([player(), player(), player()]);
    const name = `room-${crypto.randomUUID()}`;
    const ma = await a.socket.createMatch(name);
    assert.equal(ma.match_id, namedId(name));
    assert.equal(ma.size, 1);
    assert.equal(ma.presences, undefined);
    const mb = await b.socket.createMatch(name);
    assert.equal(mb.match_id, ma.match_id);
    assert.equal(mb.size, 2, 'a named create counts everyone, self included');
    assert.deepEqual(mb.presences, [pres(ma)]);
    await until(() => a.presence.length === 1, 'A sees B');
    assert.deepEqual(a.presence[0], { match_id: ma.match_id, joins: [pres(mb)] });
    // Joining by id works too, and creating it again as a member is a no-op.
    const mc = await c.socket.joinMatch(ma.match_id);
    assert.deepEqual(mc.presences, [pres(ma), pres(mb)]);
    const again = await a.socket.createMatch(name);
    assert.equal(again.size, 3);
    assert.deepEqual(again.presences, [pres(ma), pres(mb), pres(mc)]);
    // Names are exact: another name is another match.
    const other = await c.socket.createMatch(`${name} `);
    assert.notEqual(other.match_id, ma.match_id);
    assert.equal(other.size, 1);
    close(a, b, c);
  });

  test('join errors: unknown, malformed, authoritative and token ids', async () => {
    const a = await player();
    const err = (p) => p.then(() => assert.fail('expected an error'), (e) => e);
    assert.deepEqual(await err(a.socket.joinMatch(`${crypto.randomUUID()}.`)), { code: 4, message: 'Match not found' });
    assert.deepEqual(await err(a.socket.joinMatch('not-a-match')), { code: 3, message: 'Invalid match ID' });
    assert.deepEqual(await err(a.socket.joinMatch(crypto.randomUUID())), { code: 3, message: 'Invalid match ID' });
    assert.deepEqual(await err(a.socket.joinMatch('zzz.')), { code: 3, message: 'Invalid match ID' });
    assert.deepEqual(await err(a.socket.joinMatch(`${crypto.randomUUID()}.nakama`)), { code: 4, message: 'Match not found' });
    assert.deepEqual(await err(a.socket.joinMatch(undefined, 'some.token')), { code: 3, message: 'Invalid match token' });
    assert.deepEqual(await err(a.socket.joinMatch(undefined)), { code: 3, message: 'No match ID or token found' });
    // The socket is still usable.
    const m = await a.socket.createMatch();
    assert.equal(m.size, 1);
    close(a);
  });

  test('a match id is accepted in the other UUID forms and echoed as given', async () => {
    const [a, b] = await Promise.all([player(), player()]);
    const m = await a.socket.createMatch();
    const upper = m.match_id.toUpperCase();
    const mb = await b.socket.joinMatch(upper);
    assert.equal(mb.match_id, upper);
    assert.deepEqual(mb.presences, [pres(m)]);
    await until(() => a.presence.length === 1, 'join event');
    assert.equal(a.presence[0].match_id, m.match_id, 'events use the canonical id');
    const hashLike = `${m.match_id.replace(/-/g, '').slice(0, -1)}.`;
    const again = await b.socket.joinMatch(hashLike);
    assert.equal(again.size, 2, 'same match: b is already a member');
    close(a, b);
  });
});

describe('leave and disconnect', () => {
  test('leaving tells the others; the last one out removes the match', async () => {
    const [a, b, c, d] = await Promise.all([player(), player(), player(), player()]);
    const ma = await a.socket.createMatch();
    const id = ma.match_id;
    const mb = await b.socket.joinMatch(id);
    const mc = await c.socket.joinMatch(id);
    await until(() => a.presence.length === 2 && b.presence.length === 1, 'joins');

    const ack = await b.socket.leaveMatch(id);
    assert.deepEqual(ack, { cid: ack.cid });
    await until(() => a.presence.length === 3 && c.presence.length === 1, 'B leaves');
    assert.deepEqual(a.presence[2], { match_id: id, leaves: [pres(mb)] });
    assert.deepEqual(c.presence[0], { match_id: id, leaves: [pres(mb)] });
    await sleep(50);
    assert.equal(b.presence.length, 1, 'the leaver gets no event about itself');

    // Leaving again, or a match one is not in, is still acknowledged.
    await b.socket.leaveMatch(id);
    await b.socket.leaveMatch(`${crypto.randomUUID()}.`);
    await assert.rejects(b.socket.leaveMatch('bad'), (e) => e.code === 3 && e.message === 'Invalid match ID');

    // B can rejoin and is listed with the others again.
    const rb = await b.socket.joinMatch(id);
    assert.deepEqual(rb.presences, [pres(ma), pres(mc)]);
    await b.socket.leaveMatch(id);

    await a.socket.leaveMatch(id);
    await until(() => c.presence.length === 4, 'C sees A leave');
    assert.deepEqual(c.presence[3], { match_id: id, leaves: [pres(ma)] });
    await c.socket.leaveMatch(id);
    await assert.rejects(d.socket.joinMatch(id), (e) => e.code === 4 && e.message === 'Match not found');
    // A named match is gone too once empty, and a new create starts afresh.
    const name = `gone-${crypto.randomUUID()}`;
    const n1 = await a.socket.createMatch(name);
    await a.socket.leaveMatch(n1.match_id);
    await assert.rejects(d.socket.joinMatch(n1.match_id), (e) => e.code === 4);
    const n2 = await d.socket.createMatch(name);
    assert.equal(n2.match_id, n1.match_id);
    assert.equal(n2.size, 1);
    close(a, b, c, d);
  });

  test('a closed socket leaves all its matches, with events to the others', async () => {
    const [a, b, c] = await Promise.all([player(), player(), player()]);
    const m1 = await a.socket.createMatch();
    const m2 = await c.socket.createMatch();
    const b1 = await b.socket.joinMatch(m1.match_id);
    await b.socket.joinMatch(m2.match_id);
    await until(() => a.presence.length === 1 && c.presence.length === 1, 'joins');
    b.socket.disconnect(false);
    await until(() => a.presence.length === 2 && c.presence.length === 2, 'leave on disconnect');
    assert.deepEqual(a.presence[1], { match_id: m1.match_id, leaves: [pres(b1)] });
    assert.deepEqual(c.presence[1], { match_id: m2.match_id, leaves: [pres(b1)] });
    // Nobody left in m1 once A goes too: it is gone.
    a.socket.disconnect(false);
    await sleep(150);
    await assert.rejects(c.socket.joinMatch(m1.match_id), (e) => e.code === 4);
    close(c);
  });
});

describe('data', () => {
  test('data goes to every other member with the sender, op code and bytes', async () => {
    const [a, b, c] = await Promise.all([player(), player(), player()]);
    const ma = await a.socket.createMatch();
    const id = ma.match_id;
    const mb = await b.socket.joinMatch(id);
    await c.socket.joinMatch(id);

    await a.socket.sendMatchState(id, 5, 'hello');
    await until(() => b.data.length === 1 && c.data.length === 1, 'data');
    for (const p of [b, c]) {
      assert.deepEqual(p.data[0], {
        match_id: id, presence: pres(ma), op_code: 5, data: new Uint8Array(Buffer.from('hello')),
      });
    }

    // Every byte value round-trips; reliable is passed on.
    const all = new Uint8Array(256).map((_, i) => i);
    await b.socket.sendMatchState(id, 300, all, undefined, true);
    await until(() => a.data.length === 1 && c.data.length === 2, 'binary data');
    for (const d of [a.data[0], c.data[1]]) {
      assert.equal(d.op_code, 300);
      assert.equal(d.reliable, true);
      assert.deepEqual(d.presence, pres(mb));
      assert.deepEqual(Array.from(d.data), Array.from(all));
    }
    await sleep(100);
    assert.equal(a.data.length, 1, 'the sender never gets its own data');
    assert.equal(b.data.length, 1);
    close(a, b, c);
  });

  test('listed presences receive the data, and nobody else', async () => {
    const [a, b, c, d] = await Promise.all([player(), player(), player(), player()]);
    const ma = await a.socket.createMatch();
    const id = ma.match_id;
    const mb = await b.socket.joinMatch(id);
    const mc = await c.socket.joinMatch(id);
    const other = await d.socket.createMatch(); // D is not in the match

    await a.socket.sendMatchState(id, 1, 'to c', [pres(mc), pres(other)]);
    await until(() => c.data.length === 1, 'targeted data');
    assert.equal(new TextDecoder().decode(c.data[0].data), 'to c');
    // The sender receives it when it lists itself.
    await b.socket.sendMatchState(id, 2, 'to a and me', [pres(ma), pres(mb)]);
    await until(() => a.data.length === 1 && b.data.length === 1, 'self-listed data');
    assert.equal(a.data[0].op_code, 2);
    assert.deepEqual(b.data[0].presence, pres(mb));
    await sleep(100);
    assert.equal(b.data.length, 1);
    assert.equal(c.data.length, 1);
    assert.equal(d.data.length, 0, 'a non-member target gets nothing');
    close(a, b, c, d);
  });

  test('raw frames: op code forms, omitted zero values, base64 forms', { skip: JSON_ONLY }, async () => {
    const { session: s1 } = await newDeviceSession(ctx.client);
    const { session: s2 } = await newDeviceSession(ctx.client);
    const [x, y] = await Promise.all([raw(s1.token), raw(s2.token)]);
    const created = await x.call('1', { match_create: {} });
    const id = created.match.match_id;
    assert.deepEqual(created, {
      cid: '1',
      match: { match_id: id, size: 1, self: created.match.self },
    });
    const joined = await y.call('2', { matchJoin: { matchId: id } });
    assert.deepEqual(joined.match.presences, [created.match.self]);
    assert.deepEqual(await x.next(), { match_presence_event: { match_id: id, joins: [joined.match.self] } });

    const from = created.match.self;
    x.send(JSON.stringify({ match_data_send: { match_id: id, op_code: 7, data: 'aGk=' } }));
    assert.deepEqual(await y.next(), { match_data: { match_id: id, presence: from, op_code: '7', data: 'aGk=' } });
    x.send(JSON.stringify({ matchDataSend: { matchId: id, opCode: '-9223372036854775808', data: 'aGk', reliable: true } }));
    assert.deepEqual(await y.next(), {
      match_data: { match_id: id, presence: from, op_code: '-9223372036854775808', data: 'aGk=', reliable: true },
    });
    x.send(JSON.stringify({ match_data_send: { match_id: id, op_code: '0', data: '', reliable: false } }));
    assert.deepEqual(await y.next(), { match_data: { match_id: id, presence: from } });
    x.send(JSON.stringify({ match_data_send: { match_id: id, data: '-_8' } }));
    assert.deepEqual(await y.next(), { match_data: { match_id: id, presence: from, data: '+/8=' } });
    x.send(JSON.stringify({ match_data_send: { match_id: id, op_code: 1, presences: [] } }));
    assert.deepEqual(await y.next(), { match_data: { match_id: id, presence: from, op_code: '1' } });
    await sync(x);
    await sync(y);
    assert.equal(x.pending.length, 0);
    x.close();
    y.close();
  });

  test('errors: a bad match id is an error without cid; a non-member is ignored', { skip: JSON_ONLY }, async () => {
    const { session: s1 } = await newDeviceSession(ctx.client);
    const { session: s2 } = await newDeviceSession(ctx.client);
    const [x, y] = await Promise.all([raw(s1.token), raw(s2.token)]);
    const id = (await x.call('1', { match_create: {} })).match.match_id;

    y.send(JSON.stringify({ cid: '5', match_data_send: { match_id: 'nope', op_code: 1, data: 'aGk=' } }));
    assert.deepEqual(await y.next(), { error: { code: 3, message: 'Invalid match ID' } });
    // Not a member of an existing match, or an unknown match: nothing at all.
    y.send(JSON.stringify({ match_data_send: { match_id: id, op_code: 1, data: 'aGk=' } }));
    y.send(JSON.stringify({ match_data_send: { match_id: `${crypto.randomUUID()}.`, op_code: 1 } }));
    await sync(y);
    assert.equal(y.pending.length, 0);
    // A target with a malformed id drops the whole message.
    await y.call('6', { match_join: { match_id: id } });
    assert.ok((await x.next()).match_presence_event);
    y.send(JSON.stringify({
      match_data_send: { match_id: id, op_code: 1, presences: [{ user_id: 'x', session_id: 'y' }] },
    }));
    await sync(y);
    await sync(x);
    assert.equal(x.pending.length, 0);
    x.close();
    y.close();
  });

  for (const [what, msg] of [
    ['bad base64 data', { match_data_send: { match_id: '', data: '@@@' } }],
    ['an unknown field', { match_data_send: { match_id: '', bogus: 1 } }],
    ['an op code that is not an int64', { match_data_send: { match_id: '', op_code: '1.5x' } }],
    ['an op code past int64', { match_data_send: { match_id: '', op_code: '9223372036854775808' } }],
    ['a target with an unknown field', { match_data_send: { match_id: '', presences: [{ user: 'x' }] } }],
    ['a non-string match id', { match_join: { match_id: 5 } }],
    ['both a match id and a token', { match_join: { match_id: 'a.', token: 'b' } }],
    ['an unknown match_create field', { match_create: { label: 'x' } }],
    ['an unknown match_leave field', { match_leave: { match_id: 'a.', x: 1 } }],
  ]) {
    test(`${what} is a parse error that closes the socket`, { skip: JSON_ONLY }, async () => {
      const { session } = await newDeviceSession(ctx.client);
      const x = await raw(session.token);
      x.send(JSON.stringify({ cid: '1', ...msg }));
      const closed = await x.closed;
      assert.equal(closed.code, 1000);
      assert.equal(x.pending.length, 0);
    });
  }
});

describe('bounds', () => {
  test('a socket can be in at most 64 matches', async () => {
    const a = await player();
    const ids = [];
    for (let i = 0; i < 64; i++) ids.push((await a.socket.createMatch()).match_id);
    await assert.rejects(a.socket.createMatch(), (e) => e.code === 5 && e.message === 'Too many matches joined.');
    // Leaving one makes room again; rejoining a match one is in is still fine.
    await a.socket.joinMatch(ids[0]);
    await a.socket.leaveMatch(ids[1]);
    const m = await a.socket.createMatch();
    assert.equal(m.size, 1);
    close(a);
  });

  test('a match holds at most 256 members', { skip: JSON_ONLY }, async () => {
    const { session } = await newDeviceSession(ctx.client);
    const x = await raw(session.token);
    const id = (await x.call('c', { match_create: {} })).match.match_id;
    const sockets = [];
    for (let i = 0; i < 255; i++) sockets.push(raw(session.token));
    const members = await Promise.all(sockets);
    const replies = await Promise.all(members.map((w, i) => w.call(`j${i}`, { match_join: { match_id: id } })));
    for (const r of replies) assert.ok(r.match, JSON.stringify(r));
    assert.equal(Math.max(...replies.map((r) => r.match.size)), 255);
    const late = await raw(session.token);
    assert.deepEqual(await late.call('l', { match_join: { match_id: id } }), {
      cid: 'l', error: { code: 5, message: 'Match is full.' },
    });
    // One leaves, the late one gets in.
    await members[0].call('x', { match_leave: { match_id: id } });
    const ok = await late.call('l2', { match_join: { match_id: id } });
    assert.equal(ok.match.size, 255);
    for (const w of [x, late, ...members]) w.close();
    await Promise.all([x, late, ...members].map((w) => w.closed));
  });
});

describe('ordering under load', () => {
  test('three users each send 200 messages at once; everyone gets all, in order per sender', async () => {
    const ps = await Promise.all([player(), player(), player()]);
    const ms = [await ps[0].socket.createMatch()];
    for (const p of ps.slice(1)) ms.push(await p.socket.joinMatch(ms[0].match_id));
    const id = ms[0].match_id;
    await until(() => ps[0].presence.length === 2 && ps[1].presence.length === 1, 'joins');

    const N = 200;
    await Promise.all(ps.map(async (p, k) => {
      for (let i = 0; i < N; i++) p.socket.sendMatchState(id, k + 1, `${k}:${i}`);
    }));
    await until(() => ps.every((p) => p.data.length === 2 * N), 'all messages', 10000);
    for (let k = 0; k < 3; k++) {
      const p = ps[k];
      for (let j = 0; j < 3; j++) {
        if (j === k) continue;
        const got = p.data.filter((d) => d.presence.session_id === ms[j].self.session_id);
        assert.equal(got.length, N, `user ${k} from ${j}`);
        assert.deepEqual(got.map((d) => new TextDecoder().decode(d.data)), Array.from({ length: N }, (_, i) => `${j}:${i}`));
        assert.ok(got.every((d) => d.op_code === j + 1));
      }
      assert.equal(p.closed, false, 'no socket was cut off');
    }
    close(...ps);
  });
});

describe('slow consumers', { skip: JSON_ONLY }, () => {
  test('a member that stops reading is cut off; the others see no gap', async () => {
    const sender = await raw((await newDeviceSession(ctx.client)).session.token);
    const good = await raw((await newDeviceSession(ctx.client)).session.token);
    const slow = await raw((await newDeviceSession(ctx.client)).session.token);
    const created = await sender.call('c1', { match_create: {} });
    const id = created.match.match_id;
    for (const [ws, cid] of [[good, 'g1'], [slow, 's1']]) {
      const r = await ws.call(cid, { match_join: { match_id: id } });
      assert.equal(r.match.match_id, id);
    }
    await sync(sender);
    await sync(good);
    await sync(slow);
    good.pending.length = 0;
    // The slow member stops reading at the TCP level: its kernel buffers
    // fill, then its queue on the server, then it is disconnected.
    slow._socket.pause();
    const payload = Buffer.alloc(2800, 7).toString('base64');
    const total = 3000;
    let got = 0;
    let lastSeq = -1;
    let gaps = 0;
    good.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (!m.match_data) return;
      const seq = Number(m.match_data.op_code ?? 0); // 0 is omitted on the wire
      if (seq !== lastSeq + 1) gaps++;
      lastSeq = seq;
      got++;
    });
    for (let i = 0; i < total; i++) {
      sender.send(JSON.stringify({ match_data_send: { match_id: id, op_code: String(i), data: payload } }));
      if (i % 200 === 199) await sleep(5);
    }
    await until(() => got === total, 'all messages at the good member', 20000);
    assert.equal(gaps, 0);
    // The slow socket was closed by the server: once it reads again it sees
    // the end of the stream.
    slow._socket.resume();
    const closed = await Promise.race([slow.closed, sleep(10000).then(() => 'still open')]);
    assert.notEqual(closed, 'still open');
    // The sender and the good member are still served.
    await sync(sender);
    await sync(good);
    sender.close();
    good.close();
  });
});

describe('listing, and the matchmaker without modules', () => {
  test('GET /v2/match lists relayed matches with their sizes and filters by size', async () => {
    const a = await player();
    const b = await player();
    const c = await player();
    const two = await a.socket.createMatch();
    await b.socket.joinMatch(two.match_id);
    const one = await c.socket.createMatch();
    const list = async (...args) => {
      const r = await ctx.client.listMatches(a.session, 100, ...args);
      return new Map((r.matches || []).map((m) => [m.match_id, m]));
    };
    let l = await list();
    assert.deepEqual(l.get(two.match_id), { match_id: two.match_id, authoritative: false, size: 2 });
    assert.deepEqual(l.get(one.match_id), { match_id: one.match_id, authoritative: false, size: 1 });
    l = await list(false, undefined, 2);
    assert.ok(l.has(two.match_id));
    assert.ok(!l.has(one.match_id));
    l = await list(undefined, undefined, undefined, 1);
    assert.ok(!l.has(two.match_id));
    assert.ok(l.has(one.match_id));
    l = await list(true);
    assert.ok(!l.has(two.match_id) && !l.has(one.match_id), 'authoritative=true lists no relayed match');
    // a label or query filter is for authoritative matches only
    l = await list(undefined, 'x');
    assert.equal(l.size, 0);
    // the match goes when its last member leaves
    close(c);
    await until(async () => !(await list()).has(one.match_id), 'the emptied match to go');
    close(a, b);
  });

  test('matched players get a token, meet in the relayed match; stats count them', async () => {
    const tag = uniq('mm');
    const a = await player();
    const b = await player();
    const matched = { a: [], b: [] };
    a.socket.onmatchmakermatched = (m) => matched.a.push(m);
    b.socket.onmatchmakermatched = (m) => matched.b.push(m);
    const stats = async () => {
      const r = await request(ctx.srv, 'GET', '/v2/matchmaker/stats', { auth: { bearer: a.session.token } });
      assert.equal(r.status, 200);
      return r.json;
    };
    const before = await stats();
    const done = (before.completions || []).length;
    const q = `+properties.t:${tag}`;
    await a.socket.addMatchmaker(q, 2, 2, { t: tag });
    const mid = await stats();
    assert.ok(mid.ticket_count >= 1);
    assert.match(mid.oldest_ticket_create_time, TIME_RE);
    await b.socket.addMatchmaker(q, 2, 2, { t: tag });
    await until(() => matched.a.length && matched.b.length, 'both to be matched', 10000);
    assert.equal(typeof matched.a[0].token, 'string');
    assert.equal(matched.a[0].token, matched.b[0].token);
    assert.equal(matched.a[0].match_id, undefined);
    const ma = await a.socket.joinMatch(undefined, matched.a[0].token);
    const mb = await b.socket.joinMatch(undefined, matched.b[0].token);
    assert.equal(ma.match_id, mb.match_id);
    assert.match(ma.match_id, /\.$/);
    await until(() => a.presence.some((e) => (e.joins || []).some((j) => j.user_id === b.session.user_id)),
      'a to see b join');
    const after = await stats();
    assert.equal(after.ticket_count, undefined, 'no ticket left waiting');
    assert.equal(after.oldest_ticket_create_time, undefined);
    assert.equal(after.completions.length, Math.min(done + 2, 100));
    for (const c of after.completions.slice(0, 2)) {
      assert.match(c.create_time, TIME_RE);
      assert.match(c.complete_time, TIME_RE);
      assert.ok(Date.parse(c.complete_time) >= Date.parse(c.create_time));
    }
    close(a, b);
  });
});
