// The realtime socket's protobuf format (GET /ws?format=protobuf): one
// nakama.realtime.Envelope per binary frame, spoken by hand with `ws` and
// lib/pb.js, next to nakama-js sockets of both formats in the same match or
// channel. Covers ping/pong, match data and chat across formats (exact bytes,
// int64 op codes, Timestamps), the wire form of a party, and the closes:
// a text frame, undecodable bytes, an empty envelope, a server-only kind, an
// unknown field only, an oversized frame; and a binary frame on a JSON socket.
// Raw, so format-independent: it runs in the JSON pass and the protobuf pass.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { startServer } from './lib/server.js';
import { uniqName, sleep, makeUntil } from './lib/http.js';
import { createSocket } from './lib/socket.js';
import {
  decode, envelope, readEnvelope, lenField, varintField, encode, Envelope as ENVELOPE, KINDS,
} from './lib/pb.js';

const ctx = useServer({ args: ['--workers', '4'] });

const EMPTY = Buffer.alloc(0);

async function user() {
  const name = uniqName('pb');
  return (await newDeviceSession(ctx.client, { username: name })).session;
}

const until = makeUntil(3000);

/**
 * Opens a raw socket (protobuf unless query says otherwise). Resolves with
 * the socket once open, or with {status, body} when the upgrade is refused.
 * Frames queue up as {binary, data}; binary ones also as decoded envelopes.
 */
function open(token, { query = '&format=protobuf', port = ctx.srv.port } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?lang=en&status=false&token=${encodeURIComponent(token)}${query}`);
    ws.binaryType = 'nodebuffer';
    const frames = [];
    let wake = null;
    ws.on('message', (data, binary) => {
      frames.push({ binary, data: Buffer.from(data) });
      if (wake) wake();
    });
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => {
      if (wake) wake();
      res({ code, reason: reason.toString() });
    }));
    let isClosed = false;
    ws.closed.then(() => { isClosed = true; });
    /** The first queued frame that pred accepts (removed from the queue). */
    ws.take = async (pred = () => true, ms = 3000, what = 'a frame') => {
      const end = Date.now() + ms;
      for (;;) {
        const i = frames.findIndex(pred);
        if (i >= 0) return frames.splice(i, 1)[0];
        const left = end - Date.now();
        if (isClosed) throw new Error(`socket closed while waiting for ${what}`);
        if (left <= 0) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => {
          const t = setTimeout(r, left);
          wake = () => { clearTimeout(t); wake = null; r(); };
        });
      }
    };
    /** The next frame, which must be a binary one; decoded. */
    ws.next = async (ms) => {
      const f = await ws.take(() => true, ms, 'the next frame');
      assert.equal(f.binary, true, `a text frame on a protobuf socket: ${f.data.toString()}`);
      return readEnvelope(f.data);
    };
    /** The first envelope carrying kind (others stay queued). */
    ws.kind = async (kind, ms) => {
      const f = await ws.take((x) => x.binary && readEnvelope(x.data)[kind] !== undefined, ms, kind);
      return readEnvelope(f.data);
    };
    ws.sendEnv = (obj) => ws.send(envelope(obj));
    /** Sends a request and resolves with the envelope carrying its cid. */
    ws.call = async (cid, obj, ms) => {
      ws.sendEnv({ cid, ...obj });
      const f = await ws.take((x) => x.binary && readEnvelope(x.data).cid === cid, ms, `the reply to ${cid}`);
      return readEnvelope(f.data);
    };
    ws.pending = frames;
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('error', reject);
  });
}

/** Round trip on a raw protobuf socket: all that the server sent before is in. */
async function sync(ws, cid = 'sync') {
  assert.deepEqual(await ws.call(cid, { ping: {} }), { cid, pong: {} });
}

/** A nakama-js socket of the given format that records match data and chat. */
async function jsSocket(session, format) {
  const socket = createSocket(ctx.client, { format, timeoutMs: 3000 });
  socket.data = [];
  socket.messages = [];
  socket.onmatchdata = (d) => socket.data.push(d);
  socket.onchannelmessage = (m) => socket.messages.push(m);
  await socket.connect(session, false, 3000);
  return socket;
}

/** An RFC 3339 UTC string as a protobuf Timestamp {seconds: BigInt, nanos}. */
function rfc3339ToTimestamp(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/.exec(s);
  assert.ok(m, `not an RFC 3339 UTC time: ${s}`);
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return { seconds: BigInt(ms / 1000), nanos: m[7] ? Number(m[7].padEnd(9, '0')) : 0 };
}

/** A Timestamp as read from the wire, zero fields filled in. */
function ts(t) {
  assert.ok(t, 'a Timestamp must be present');
  return { seconds: t.seconds ?? 0n, nanos: t.nanos ?? 0 };
}

describe('envelopes', () => {
  test('ping gets a binary pong with the same cid, and none without one', async () => {
    const x = await open((await user()).token);
    x.send(envelope({ cid: '1', ping: {} }));
    const f = await x.take();
    assert.equal(f.binary, true);
    assert.deepEqual(decode(f.data), { 1: [Buffer.from('1')], 33: [EMPTY] });
    x.send(envelope({ ping: {} }));
    const g = await x.take();
    assert.equal(g.binary, true);
    assert.deepEqual(decode(g.data), { 33: [EMPTY] });
    // Unknown fields next to a message are ignored, as protobuf parsers do.
    x.send(Buffer.concat([envelope({ cid: 'u', ping: {} }), varintField(99, 7), lenField(1000, 'x')]));
    assert.deepEqual(await x.next(), { cid: 'u', pong: {} });
    x.close();
    await x.closed;
  });

  test('an envelope with no message is error 2 (MISSING_PAYLOAD) and a close', async () => {
    const x = await open((await user()).token);
    x.send(envelope({ cid: '4' }));
    assert.deepEqual(await x.next(), { cid: '4', error: { code: 2, message: 'Missing message.' } });
    assert.deepEqual(await x.closed, { code: 1000, reason: 'Missing message.' });
  });

  test('an unknown field number alone is a missing message too', async () => {
    const x = await open((await user()).token);
    x.send(Buffer.concat([envelope({ cid: '5' }), varintField(99, 1)]));
    assert.deepEqual(await x.next(), { cid: '5', error: { code: 2, message: 'Missing message.' } });
    assert.deepEqual(await x.closed, { code: 1000, reason: 'Missing message.' });
  });

  test('each of the 21 server-only kinds is error 1 (UNRECOGNIZED_PAYLOAD) and a close', async () => {
    const token = (await user()).token;
    const serverOnly = [2, 5, 6, 10, 11, 12, 14, 18, 20, 22, 23, 25, 27, 30, 31, 34, 39, 44, 47, 48, 50];
    for (const field of serverOnly) {
      const x = await open(token);
      x.send(Buffer.concat([envelope({ cid: String(field) }), lenField(field, EMPTY)]));
      assert.deepEqual(await x.next(), { cid: String(field), error: { code: 1, message: 'Unrecognized message.' } },
        `field ${field}`);
      assert.deepEqual(await x.closed, { code: 1000, reason: 'Unrecognized message.' }, `field ${field}`);
    }
  });

  test('bytes that are not an Envelope close the socket', async () => {
    const token = (await user()).token;
    for (const bytes of [
      [0xff, 0xff, 0xff], // a truncated varint key
      [0x0a, 0x05, 0x31], // cid whose length runs past the end
      [0x82, 0x02, 0x02, 0xff], // ping whose body runs past the end
      [0x0b], // wire type 3 (start group)
      [0x00, 0x00], // field number 0
      [0x08, 0x01], // cid (a string) as a varint
      [0x80, 0x02, 0x01], // ping (a message) as a varint
      [0x0a, 0x02, 0xc3, 0x28, 0x82, 0x02, 0x00], // cid that is not UTF-8
      [0x1a, 0x02, 0x12, 0x01], // channel_join whose type (int32) is length-delimited
    ]) {
      const x = await open(token);
      x.send(Buffer.from(bytes));
      const closed = await x.closed;
      assert.deepEqual(closed, { code: 1000, reason: 'Invalid message: not a protobuf Envelope.' }, Buffer.from(bytes).toString('hex'));
      assert.deepEqual(x.pending, [], 'nothing is sent before the close');
    }
  });

  test('a text frame on a protobuf socket closes it with 1003', async () => {
    const x = await open((await user()).token);
    x.send(JSON.stringify({ cid: '1', ping: {} }));
    assert.deepEqual(await x.closed, { code: 1003, reason: 'Text frames are not accepted on a protobuf socket.' });
    assert.deepEqual(x.pending, []);
  });

  test('a binary frame on a JSON socket closes it with 1003', async () => {
    const x = await open((await user()).token, { query: '' });
    x.send(envelope({ cid: '1', ping: {} }));
    assert.deepEqual(await x.closed, { code: 1003, reason: 'Binary frames are not accepted on a JSON socket.' });
    assert.deepEqual(x.pending, []);
  });

  test('a frame of 4096 bytes is read; one of 4097 closes the socket with 1009', async () => {
    const x = await open((await user()).token);
    const frame = (size) => {
      const head = envelope({ cid: '8', ping: {} });
      for (let pad = size; pad >= 0; pad--) {
        const b = Buffer.concat([head, lenField(99, Buffer.alloc(pad, 0x61))]);
        if (b.length === size) return b;
      }
      throw new Error(`no frame of ${size} bytes`);
    };
    x.send(frame(4096));
    assert.deepEqual(await x.next(), { cid: '8', pong: {} });
    x.send(frame(4097));
    assert.deepEqual(await x.closed, { code: 1009, reason: '' });
  });

  test('format must be json or protobuf; empty is json', async () => {
    const token = (await user()).token;
    for (const q of ['&format=xml', '&format=PROTOBUF', '&format=Json']) {
      const r = await open(token, { query: q });
      assert.deepEqual(r, { status: 400, body: 'Invalid format parameter' }, q);
    }
    const j = await open(token, { query: '&format=' });
    j.send(JSON.stringify({ cid: '1', ping: {} }));
    const f = await j.take();
    assert.deepEqual([f.binary, f.data.toString()], [false, '{"cid":"1","pong":{}}']);
    j.close();
  });

  test('every client kind with an empty body has the same outcome as in JSON', async () => {
    const token = (await user()).token;
    // What a socket sent up to the pong of 'sync', and how it closed.
    const outcome = async (ws, binary) => {
      const replies = [];
      for (;;) {
        let f;
        try {
          f = await ws.take();
        } catch (e) {
          if (!/closed/.test(e.message)) throw e;
          return { replies, closed: await ws.closed };
        }
        assert.equal(f.binary, binary);
        const env = binary ? readEnvelope(f.data) : JSON.parse(f.data.toString());
        if (env.cid === 'sync' && env.pong) {
          ws.close();
          return { replies, closed: null };
        }
        const { cid, error, ...rest } = env;
        replies.push(error
          ? { cid, error: { code: error.code ?? 0, message: error.message ?? '' } }
          : { cid, kinds: Object.keys(rest) });
      }
    };
    const clientKinds = ['channel_join', 'channel_leave', 'channel_message_send', 'channel_message_update',
      'channel_message_remove', 'match_create', 'match_data_send', 'match_join', 'match_leave', 'matchmaker_add',
      'matchmaker_remove', 'rpc', 'status_follow', 'status_unfollow', 'status_update', 'ping', 'pong',
      'party_create', 'party_join', 'party_leave', 'party_promote', 'party_accept', 'party_remove', 'party_close',
      'party_join_request_list', 'party_matchmaker_add', 'party_matchmaker_remove', 'party_data_send', 'party_update'];
    assert.equal(clientKinds.length, 29);
    for (const kind of clientKinds) {
      const [j, x] = await Promise.all([open(token, { query: '' }), open(token)]);
      j.send(JSON.stringify({ cid: 'k', [kind]: {} }));
      j.send(JSON.stringify({ cid: 'sync', ping: {} }));
      x.send(Buffer.concat([envelope({ cid: 'k' }), lenField(KINDS[kind], EMPTY)]));
      x.sendEnv({ cid: 'sync', ping: {} });
      const [oj, ox] = await Promise.all([outcome(j, false), outcome(x, true)]);
      assert.deepEqual(ox, oj, kind);
    }
  });

  test('stopping the server closes protobuf sockets with 1001', async () => {
    const srv = await startServer();
    try {
      const s = await srv.client().authenticateDevice(`device-pb-shutdown-${Date.now()}`, true);
      const x = await open(s.token, { port: srv.port });
      assert.deepEqual(await x.call('1', { ping: {} }), { cid: '1', pong: {} });
      await srv.stop(); // asserts exit code 0
      assert.deepEqual(await x.closed, { code: 1001, reason: 'Server is shutting down.' });
    } finally {
      srv.cleanup();
    }
  });
});

describe('matches across formats', () => {
  test('raw protobuf, nakama-js JSON and nakama-js protobuf exchange op codes and exact bytes', async () => {
    const [sx, sy, sj, sp] = await Promise.all([user(), user(), user(), user()]);
    const [x, y] = await Promise.all([open(sx.token), open(sy.token)]);
    const J = await jsSocket(sj, 'json');
    const P = await jsSocket(sp, 'protobuf');
    try {
      const created = await x.call('1', { match_create: {} });
      const id = created.match.match_id;
      const xSelf = { user_id: sx.user_id, session_id: created.match.self.session_id, username: sx.username };
      assert.deepEqual(created, { cid: '1', match: { match_id: id, size: 1, self: xSelf } });
      const mj = await J.joinMatch(id);
      const mp = await P.joinMatch(id);
      assert.deepEqual(mp.presences, [xSelf, mj.self], 'nakama-js protobuf sees the JSON joiner');
      const joined = await y.call('2', { match_join: { match_id: id } });
      const ySelf = { user_id: sy.user_id, session_id: joined.match.self.session_id, username: sy.username };
      assert.deepEqual(joined.match, { match_id: id, size: 3, presences: [xSelf, mj.self, mp.self], self: ySelf });
      for (const joiner of [mj.self, mp.self, ySelf]) {
        assert.deepEqual(await x.kind('match_presence_event'), { match_presence_event: { match_id: id, joins: [joiner] } });
      }

      // Raw protobuf sends: both nakama-js sockets and the other raw socket get the same bytes.
      const bytes = Buffer.from([0x00, 0xff, 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x00]);
      x.sendEnv({ match_data_send: { match_id: id, op_code: 42, data: bytes } });
      await until(() => J.data.length === 1 && P.data.length === 1, 'data at J and P');
      for (const d of [J.data[0], P.data[0]]) {
        assert.deepEqual(d, { match_id: id, presence: xSelf, op_code: 42, data: new Uint8Array(bytes) });
      }
      assert.deepEqual(await y.kind('match_data'), {
        match_data: { match_id: id, presence: xSelf, op_code: 42n, data: bytes },
      });

      // nakama-js JSON sends an op code past 32 bits and binary data.
      const fromJ = new Uint8Array([0x00, 0xff, 0x00, 0x80]);
      await J.sendMatchState(id, 1234567890123, fromJ);
      for (const w of [x, y]) {
        assert.deepEqual(await w.kind('match_data'), {
          match_data: { match_id: id, presence: mj.self, op_code: 1234567890123n, data: Buffer.from(fromJ) },
        });
      }
      await until(() => P.data.length === 2, 'data at P');
      assert.deepEqual(P.data[1], { match_id: id, presence: mj.self, op_code: 1234567890123, data: fromJ });

      // nakama-js protobuf sends a negative op code, reliable.
      const fromP = new Uint8Array([0xff, 0x00]);
      await P.sendMatchState(id, -7, fromP, undefined, true);
      for (const w of [x, y]) {
        assert.deepEqual(await w.kind('match_data'), {
          match_data: { match_id: id, presence: mp.self, op_code: -7n, data: Buffer.from(fromP), reliable: true },
        });
      }
      await until(() => J.data.length === 2, 'data at J');
      assert.deepEqual(J.data[1], { match_id: id, presence: mp.self, op_code: -7, data: fromP, reliable: true });

      // int64 extremes, and zero values left out on the wire: to y only.
      x.sendEnv({ match_data_send: { match_id: id, op_code: -9223372036854775808n, data: Buffer.from([1]), presences: [ySelf] } });
      assert.deepEqual(await y.kind('match_data'), {
        match_data: { match_id: id, presence: xSelf, op_code: -9223372036854775808n, data: Buffer.from([1]) },
      });
      x.sendEnv({ match_data_send: { match_id: id, op_code: 9223372036854775807n, presences: [ySelf] } });
      assert.deepEqual(await y.kind('match_data'), {
        match_data: { match_id: id, presence: xSelf, op_code: 9223372036854775807n },
      });
      x.sendEnv({ match_data_send: { match_id: id, op_code: 0, data: EMPTY, reliable: false, presences: [ySelf] } });
      assert.deepEqual(await y.kind('match_data'), { match_data: { match_id: id, presence: xSelf } });
      await sync(x);
      await sync(y);
      await J.send({ ping: {} });
      await P.send({ ping: {} });
      assert.equal(J.data.length, 2, 'targeted data reaches only its targets');
      assert.equal(P.data.length, 2);
      assert.deepEqual(x.pending, [], 'the sender gets none of its own data');
      assert.deepEqual(y.pending, []);
    } finally {
      J.disconnect(false);
      P.disconnect(false);
      x.close();
      y.close();
    }
  });

  test('a bad match id is an error without cid on a protobuf socket too', async () => {
    const x = await open((await user()).token);
    x.sendEnv({ cid: '5', match_data_send: { match_id: 'nope', op_code: 1, data: Buffer.from('hi') } });
    assert.deepEqual(await x.next(), { error: { code: 3, message: 'Invalid match ID' } });
    assert.deepEqual(await x.call('6', { match_join: { match_id: 'nope' } }),
      { cid: '6', error: { code: 3, message: 'Invalid match ID' } });
    await sync(x);
    x.close();
  });
});

describe('chat across formats', () => {
  test('JSON and protobuf members see the same message id, content and create time', async () => {
    const [sj, sp, sx] = await Promise.all([user(), user(), user()]);
    const J = await jsSocket(sj, 'json');
    const P = await jsSocket(sp, 'protobuf');
    const x = await open(sx.token);
    try {
      const room = uniqName('room');
      const cj = await J.joinChat(room, 1, true, false);
      const cp = await P.joinChat(room, 1, true, false);
      assert.deepEqual(cp, {
        id: cj.id,
        presences: [cj.self],
        self: { user_id: sp.user_id, session_id: cp.self.session_id, username: sp.username, persistence: true },
        room_name: room,
      });
      const joined = await x.call('j', { channel_join: { target: room, type: 1, persistence: { value: true }, hidden: { value: false } } });
      const xSelf = { user_id: sx.user_id, session_id: joined.channel.self.session_id, username: sx.username, persistence: true };
      assert.deepEqual(joined, {
        cid: 'j',
        channel: { id: cj.id, presences: [cj.self, cp.self], self: xSelf, room_name: room },
      });

      // The raw protobuf member sends.
      const content = '{"from":"pb","text":"\\u0001\u00ff\u{1f600}","n":1}';
      const ack = (await x.call('m', { channel_message_send: { channel_id: cj.id, content } })).channel_message_ack;
      const ev = (await x.kind('channel_message')).channel_message;
      await until(() => J.messages.length === 1 && P.messages.length === 1, 'the message at J and P');
      const jm = J.messages[0];
      assert.deepEqual(P.messages[0], jm, 'nakama-js sees the same message in both formats');
      assert.deepEqual(jm.content, { from: 'pb', text: '\u0001\u00ff\u{1f600}', n: 1 });
      assert.equal(ev.content, content);
      assert.equal(ev.message_id, jm.message_id);
      assert.equal(ack.message_id, jm.message_id);
      assert.deepEqual(ts(ev.create_time), rfc3339ToTimestamp(jm.create_time));
      assert.deepEqual(ts(ack.create_time), rfc3339ToTimestamp(jm.create_time));
      assert.deepEqual(ts(ev.update_time), rfc3339ToTimestamp(jm.update_time));
      // Wrappers are on the wire even at their zero value, as in JSON (code 0).
      assert.ok(ev.code && ack.code, 'code is on the wire');
      assert.equal(ev.code.value ?? 0, 0);
      assert.equal(ack.code.value ?? 0, 0);
      assert.deepEqual(ev, {
        channel_id: cj.id, message_id: jm.message_id, code: ev.code, sender_id: sx.user_id, username: sx.username,
        content, create_time: ev.create_time, update_time: ev.update_time, persistent: { value: true }, room_name: room,
      });
      assert.deepEqual(ack, {
        channel_id: cj.id, message_id: jm.message_id, code: ack.code, username: sx.username,
        create_time: ev.create_time, update_time: ev.update_time, persistent: { value: true }, room_name: room,
      });

      // The JSON member sends: the raw protobuf member gets the same instant.
      const jack = await J.writeChatMessage(cj.id, { from: 'json' });
      const ev2 = (await x.kind('channel_message')).channel_message;
      assert.equal(ev2.message_id, jack.message_id);
      assert.equal(ev2.content, '{"from":"json"}');
      assert.equal(ev2.sender_id, sj.user_id);
      assert.deepEqual(ts(ev2.create_time), rfc3339ToTimestamp(jack.create_time));
      await until(() => P.messages.length === 2, 'the second message at P');
      assert.deepEqual(P.messages[1], J.messages[1]);
    } finally {
      J.disconnect(false);
      P.disconnect(false);
      x.close();
    }
  });
});

describe('parties on the wire', () => {
  test('party_create replies the party with its label, open, hidden and max size', async () => {
    const s = await user();
    const x = await open(s.token);
    const plain = await x.call('1', { party_create: { open: true, max_size: 2 } });
    const self = { user_id: s.user_id, session_id: plain.party.self.session_id, username: s.username };
    assert.deepEqual(plain, {
      cid: '1',
      party: { party_id: plain.party.party_id, open: true, max_size: 2, self, leader: self, presences: [self], label: '{}' },
    });
    const labelled = await x.call('2', { party_create: { max_size: 3, label: '{"mode":"duo"}', hidden: true } });
    assert.deepEqual(labelled, {
      cid: '2',
      party: {
        party_id: labelled.party.party_id, hidden: true, max_size: 3, self, leader: self, presences: [self], label: '{"mode":"duo"}',
      },
    });
    x.close();
  });
});

// The field table and the codec agree with each other (no server needed).
test('lib/pb.js round-trips an envelope', () => {
  const msg = { cid: 'x', match_data_send: { match_id: 'a.', op_code: -9223372036854775808n, data: Buffer.from([0, 255]), reliable: true } };
  const back = readEnvelope(encode(msg, ENVELOPE));
  assert.deepEqual(back, msg);
  assert.deepEqual(decode(envelope({ cid: '1', ping: {} })), { 1: [Buffer.from('1')], 32: [EMPTY] });
  assert.throws(() => decode(Buffer.from([0xff, 0xff, 0xff])), /truncated varint/);
});
