// Chat over the socket: channel_join (rooms, groups, direct messages),
// presence events, channel_message_send / update / remove with their acks
// and fan-out, leaving (and disconnecting), and GET /v2/channel/{id}
// history with its cursors. Several nakama-js sockets per test; raw `ws`
// for malformed input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { request, expectClientError, uniqName, sleep, TIMESTAMP_RE, UUID_RE } from './lib/http.js';
import { createSocket, JSON_ONLY } from './lib/socket.js';

// Several I/O threads, so channel members live on different threads.
const ctx = useServer({ args: ['--workers', '4'] });

const ROOM = 1;
const DIRECT = 2;
const GROUP = 3;

/** A user with a connected nakama-js socket that records its events. */
async function user(prefix = 'ch') {
  const name = uniqName(prefix);
  const { session } = await newDeviceSession(ctx.client, { username: name });
  return connect({ s: session, id: session.user_id, name });
}

async function connect(u) {
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  const ev = { messages: [], presences: [], notifications: [] };
  socket.onchannelmessage = (m) => ev.messages.push(m);
  socket.onchannelpresence = (p) => ev.presences.push(p);
  socket.onnotification = (n) => ev.notifications.push(n);
  // Short connect and send timeouts: nakama-js never clears those timers,
  // and its defaults (30 s, 10 s) would keep node alive after the last test.
  await socket.connect(u.s, false, 3000);
  return { ...u, socket, ev };
}

/** Waits until list holds n entries (fails after 3 s). */
async function waitCount(list, n, what = 'events') {
  for (let i = 0; i < 150 && list.length < n; i++) await sleep(20);
  assert.equal(list.length, n, `expected ${n} ${what}, got ${JSON.stringify(list)}`);
}

/** The socket request must fail with a realtime error. */
async function expectSocketError(promise, code, message) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected a socket error');
  assert.equal(err.code, code, JSON.stringify(err));
  if (message instanceof RegExp) assert.match(err.message, message);
  else if (message !== undefined) assert.equal(err.message, message);
}

function roomName() {
  return uniqName('room');
}

function close(...users) {
  for (const u of users) u.socket.disconnect(false);
}

/** A raw socket with a queue of parsed messages. */
function rawSocket(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ctx.srv.port}/ws?token=${encodeURIComponent(token)}`);
    const queue = [];
    const waiters = [];
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      const w = waiters.shift();
      if (w) w(m); else queue.push(m);
    });
    ws.closed = new Promise((res) => ws.on('close', (code) => res(code)));
    ws.next = () => new Promise((res) => { if (queue.length) res(queue.shift()); else waiters.push(res); });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

describe('rooms', () => {
  test('join replies with the channel, the others, and self; others see the join', async () => {
    const a = await user();
    const b = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, true, false);
    assert.deepEqual(ca, {
      id: `2...${room}`,
      self: { user_id: a.id, session_id: ca.self.session_id, username: a.name, persistence: true },
      room_name: room,
    });
    assert.match(ca.self.session_id, UUID_RE);
    const cb = await b.socket.joinChat(room, ROOM, false, false);
    assert.equal(cb.id, `2...${room}`);
    assert.deepEqual(cb.presences, [ca.self]);
    assert.deepEqual(cb.self, { user_id: b.id, session_id: cb.self.session_id, username: b.name });
    await waitCount(a.ev.presences, 1, 'presence events');
    assert.deepEqual(a.ev.presences[0], { channel_id: ca.id, joins: [cb.self], room_name: room });
    assert.equal(b.ev.presences.length, 0, 'the joiner gets no event for itself');
    close(a, b);
  });

  test('a hidden member is not listed and not announced', async () => {
    const a = await user();
    const h = await user();
    const c = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, true, false);
    const ch = await h.socket.joinChat(room, ROOM, true, true);
    assert.deepEqual(ch.presences, [ca.self]);
    const cc = await c.socket.joinChat(room, ROOM, true, false);
    assert.deepEqual(cc.presences, [ca.self], 'the hidden member is not listed');
    await waitCount(a.ev.presences, 1);
    assert.deepEqual(a.ev.presences[0].joins, [cc.self]);
    await waitCount(h.ev.presences, 1);
    // The hidden member leaving is not announced either.
    await h.socket.leaveChat(ca.id);
    await sleep(100);
    assert.equal(a.ev.presences.length, 1);
    close(a, h, c);
  });

  test('a message goes to every member, sender included, with an ack', async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, true, false);
    await b.socket.joinChat(room, ROOM, true, false);
    await c.socket.joinChat(room, ROOM, true, true);
    const ack = await a.socket.writeChatMessage(ca.id, { hello: 'world', n: 1 });
    assert.deepEqual(Object.keys(ack).sort(),
      ['channel_id', 'code', 'create_time', 'message_id', 'persistent', 'room_name', 'update_time', 'username']);
    assert.equal(ack.channel_id, ca.id);
    assert.match(ack.message_id, UUID_RE);
    assert.equal(ack.code, 0);
    assert.equal(ack.username, a.name);
    assert.match(ack.create_time, TIMESTAMP_RE);
    assert.equal(ack.update_time, ack.create_time);
    assert.equal(ack.persistent, true);
    assert.equal(ack.room_name, room);
    for (const u of [a, b, c]) {
      await waitCount(u.ev.messages, 1, `messages for ${u.name}`);
      assert.deepEqual(u.ev.messages[0], {
        channel_id: ca.id,
        message_id: ack.message_id,
        code: 0,
        sender_id: a.id,
        username: a.name,
        content: { hello: 'world', n: 1 },
        create_time: ack.create_time,
        update_time: ack.create_time,
        persistent: true,
        room_name: room,
      });
    }
    close(a, b, c);
  });

  test('a non-persistent member\'s messages are delivered but not stored', async () => {
    const a = await user();
    const b = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, false, false);
    await b.socket.joinChat(room, ROOM, true, false);
    const ack = await a.socket.writeChatMessage(ca.id, { x: 1 });
    assert.equal(ack.persistent, false);
    await waitCount(b.ev.messages, 1);
    assert.equal(b.ev.messages[0].persistent, false);
    const stored = await b.socket.writeChatMessage(ca.id, { y: 2 });
    assert.equal(stored.persistent, true);
    const h = await ctx.client.listChannelMessages(a.s, ca.id, 100, true);
    assert.deepEqual(h.messages.map((m) => m.message_id), [stored.message_id]);
    close(a, b);
  });

  test('update and remove: own messages only, members see codes 1 and 2', async () => {
    const a = await user();
    const b = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, true, false);
    await b.socket.joinChat(room, ROOM, true, false);
    const sent = await a.socket.writeChatMessage(ca.id, { v: 1 });
    await waitCount(b.ev.messages, 1);

    const up = await a.socket.updateChatMessage(ca.id, sent.message_id, { v: 2 });
    assert.equal(up.code, 1);
    assert.equal(up.message_id, sent.message_id);
    assert.equal(up.create_time, sent.create_time);
    assert.equal(up.persistent, true);
    await waitCount(b.ev.messages, 2);
    assert.equal(b.ev.messages[1].code, 1);
    assert.deepEqual(b.ev.messages[1].content, { v: 2 });
    assert.equal(b.ev.messages[1].message_id, sent.message_id);
    assert.equal(b.ev.messages[1].sender_id, a.id);

    await expectSocketError(b.socket.updateChatMessage(ca.id, sent.message_id, { v: 3 }), 3,
      'Could not find message to update in channel history');
    await expectSocketError(b.socket.removeChatMessage(ca.id, sent.message_id), 3,
      'Could not find message to remove in channel history');

    let h = await ctx.client.listChannelMessages(b.s, ca.id, 10, true);
    assert.equal(h.messages.length, 1);
    assert.deepEqual(h.messages[0].content, { v: 2 });
    assert.equal(h.messages[0].code, 0);

    const rm = await a.socket.removeChatMessage(ca.id, sent.message_id);
    assert.equal(rm.code, 2);
    assert.equal(rm.message_id, sent.message_id);
    await waitCount(b.ev.messages, 3);
    assert.equal(b.ev.messages[2].code, 2);
    assert.deepEqual(b.ev.messages[2].content, {});
    h = await ctx.client.listChannelMessages(b.s, ca.id, 10, true);
    assert.deepEqual(h.messages, []);
    await expectSocketError(a.socket.removeChatMessage(ca.id, sent.message_id), 3,
      'Could not find message to remove in channel history');
    close(a, b);
  });

  test('leave and disconnect announce the leave; messages stop', async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, true, false);
    const cb = await b.socket.joinChat(room, ROOM, true, false);
    const cc = await c.socket.joinChat(room, ROOM, true, false);
    await waitCount(a.ev.presences, 2);
    await b.socket.leaveChat(ca.id);
    await waitCount(a.ev.presences, 3);
    assert.deepEqual(a.ev.presences[2], { channel_id: ca.id, leaves: [cb.self], room_name: room });
    await waitCount(c.ev.presences, 1); // b's leave (b joined before c)
    await a.socket.writeChatMessage(ca.id, { after: 'leave' });
    await waitCount(c.ev.messages, 1);
    await sleep(50);
    assert.equal(b.ev.messages.length, 0, 'a member who left gets no more messages');
    await expectSocketError(b.socket.writeChatMessage(ca.id, { x: 1 }), 3, 'Must join channel before sending messages');
    // Leaving a channel one is not in is fine.
    await b.socket.leaveChat(ca.id);
    c.socket.disconnect(false);
    await waitCount(a.ev.presences, 4);
    assert.deepEqual(a.ev.presences[3].leaves, [cc.self]);
    close(a, b);
  });

  test('joining twice keeps one presence', async () => {
    const a = await user();
    const b = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, true, false);
    await b.socket.joinChat(room, ROOM, true, false);
    const again = await b.socket.joinChat(room, ROOM, true, false);
    assert.equal(again.presences.length, 2, 'a repeated join lists self too');
    await sleep(100);
    assert.equal(a.ev.presences.length, 1, 'no second join event');
    await a.socket.writeChatMessage(ca.id, { n: 1 });
    await waitCount(b.ev.messages, 1);
    await sleep(50);
    assert.equal(b.ev.messages.length, 1, 'delivered once');
    close(a, b);
  });

  test('bad input: room names, channel ids, content', async () => {
    const a = await user();
    await expectSocketError(a.socket.joinChat('x'.repeat(65), ROOM, true, false), 3);
    await expectSocketError(a.socket.joinChat('', ROOM, true, false), 3);
    await expectSocketError(a.socket.joinChat('a\u0007b', ROOM, true, false), 3);
    await expectSocketError(a.socket.joinChat('abc', 9, true, false), 3, 'Unrecognized channel type');
    const okName = 'é'.repeat(32); // 64 bytes
    const c = await a.socket.joinChat(okName, 0, true, false);
    assert.equal(c.id, `2...${okName}`);
    await expectSocketError(a.socket.writeChatMessage('nope', { x: 1 }), 3, 'Invalid channel identifier');
    await expectSocketError(a.socket.writeChatMessage('2...not-joined', { x: 1 }), 3, 'Must join channel before sending messages');
    await expectSocketError(a.socket.writeChatMessage(c.id, [1, 2]), 3, 'Message content must be a valid JSON object');
    await expectSocketError(a.socket.writeChatMessage(c.id, 'text'), 3, 'Message content must be a valid JSON object');
    await expectSocketError(a.socket.updateChatMessage(c.id, 'not-a-uuid', { x: 1 }), 3, 'Invalid message identifier');
    await expectSocketError(a.socket.leaveChat('5.x.y.z'), 3, 'Invalid channel identifier');
    close(a);
  });

  test('raw socket: content that is not an object is error 3; unknown fields close', { skip: JSON_ONLY }, async () => {
    const { session } = await newDeviceSession(ctx.client);
    const ws = await rawSocket(session.token);
    ws.send(JSON.stringify({ cid: '1', channel_join: { target: 'rawroom', type: 1 } }));
    const joined = await ws.next();
    assert.equal(joined.cid, '1');
    assert.equal(joined.channel.id, '2...rawroom');
    assert.equal(joined.channel.self.persistence, true, 'persistence defaults to true');
    ws.send(JSON.stringify({ cid: '2', channel_message_send: { channel_id: '2...rawroom', content: 'not json' } }));
    assert.deepEqual(await ws.next(), { cid: '2', error: { code: 3, message: 'Message content must be a valid JSON object' } });
    ws.send(JSON.stringify({ cid: '3', channelMessageSend: { channelId: '2...rawroom', content: '{"a":1}' } }));
    const m1 = await ws.next();
    const m2 = await ws.next();
    const ack = m1.cid ? m1 : m2;
    const ev = m1.cid ? m2 : m1;
    assert.equal(ack.cid, '3');
    assert.equal(ack.channel_message_ack.code, 0);
    assert.equal(ev.channel_message.content, '{"a":1}');
    assert.equal(ev.cid, undefined);
    ws.send(JSON.stringify({ cid: '4', channel_leave: { channel_id: '2...rawroom' } }));
    assert.deepEqual(await ws.next(), { cid: '4' });
    ws.send(JSON.stringify({ cid: '5', channel_join: { target: 'r', type: 1, bogus: true } }));
    assert.equal(await ws.closed, 1000);
  });
});

describe('many members', () => {
  test('concurrent senders on several threads: everyone gets every message once', async () => {
    const room = roomName();
    const users = await Promise.all(Array.from({ length: 12 }, () => user('many')));
    for (const u of users) await u.socket.joinChat(room, ROOM, true, false);
    const id = `2...${room}`;
    const acks = await Promise.all(users.flatMap((u, i) =>
      Array.from({ length: 5 }, (_, k) => u.socket.writeChatMessage(id, { from: i, k })),
    ));
    assert.equal(new Set(acks.map((a) => a.message_id)).size, 60);
    for (const u of users) {
      await waitCount(u.ev.messages, 60, `messages for ${u.name}`);
      assert.equal(new Set(u.ev.messages.map((m) => m.message_id)).size, 60);
    }
    // Each user's own messages arrive in the order sent.
    for (const u of users) {
      const mine = users[0].ev.messages.filter((m) => m.sender_id === u.id).map((m) => m.content.k);
      assert.deepEqual(mine, [0, 1, 2, 3, 4]);
    }
    const h = await ctx.client.listChannelMessages(users[0].s, id, 100, true);
    assert.equal(h.messages.length, 60);
    // Half of them drop while the others keep talking.
    const [gone, stay] = [users.slice(0, 6), users.slice(6)];
    for (const u of gone) u.socket.disconnect(false);
    await Promise.all(stay.map((u) => u.socket.writeChatMessage(id, { last: true })));
    for (const u of stay) {
      await waitCount(u.ev.messages, 66, `messages for ${u.name}`);
      const leaves = () => u.ev.presences.flatMap((p) => p.leaves || []).length;
      for (let i = 0; i < 150 && leaves() < 6; i++) await sleep(20);
      assert.equal(leaves(), 6);
    }
    close(...stay);
  });
});

describe('groups', () => {
  test('members only; history needs membership', async () => {
    const a = await user();
    const b = await user();
    const out = await user();
    const g = await ctx.client.createGroup(a.s, { name: uniqName('grp'), open: true });
    await ctx.client.joinGroup(b.s, g.id);
    const ca = await a.socket.joinChat(g.id, GROUP, true, false);
    assert.deepEqual(ca, { id: `3.${g.id}..`, self: ca.self, group_id: g.id });
    const cb = await b.socket.joinChat(g.id.toUpperCase(), GROUP, true, false);
    assert.equal(cb.id, ca.id);
    assert.deepEqual(cb.presences, [ca.self]);
    await expectSocketError(out.socket.joinChat(g.id, GROUP, true, false), 3, 'Group membership not found');
    await expectSocketError(out.socket.joinChat('not-a-uuid', GROUP, true, false), 3);
    const ack = await b.socket.writeChatMessage(ca.id, { hi: 'group' });
    assert.equal(ack.group_id, g.id);
    await waitCount(a.ev.messages, 1);
    assert.equal(a.ev.messages[0].group_id, g.id);
    // b's join (code 3, posted before a joined the channel) and the chat message.
    const h = await ctx.client.listChannelMessages(a.s, ca.id, 10, true);
    assert.deepEqual(h.messages.map((m) => [m.code, m.sender_id, m.group_id]), [[3, b.id, g.id], [0, b.id, g.id]]);
    await expectClientError(ctx.client.listChannelMessages(out.s, ca.id, 10), 400, 3, 'Group not found.');
    close(a, b, out);
  });
});

describe('direct messages', () => {
  test('channel id orders the two users; the other user is notified', async () => {
    const a = await user();
    const b = await user();
    const [lo, hi] = [a.id, b.id].sort();
    const ca = await a.socket.joinChat(b.id, DIRECT, true, false);
    assert.deepEqual(ca, { id: `4.${lo}.${hi}.`, self: ca.self, user_id_one: lo, user_id_two: hi });
    await waitCount(b.ev.notifications, 1, 'notifications');
    const n = b.ev.notifications[0];
    assert.equal(n.code, -1);
    assert.equal(n.sender_id, a.id);
    assert.equal(n.subject, `${a.name} wants to chat`);
    assert.deepEqual(n.content, { username: a.name });
    assert.equal(n.persistent, true);
    const stored = await ctx.client.listNotifications(b.s, 10);
    assert.deepEqual(stored.notifications.map((x) => x.code), [-1]);
    // b joins: a is already there, so no notification for a.
    const cb = await b.socket.joinChat(a.id, DIRECT, true, false);
    assert.equal(cb.id, ca.id);
    assert.deepEqual(cb.presences, [ca.self]);
    const ack = await b.socket.writeChatMessage(ca.id, { dm: true });
    assert.equal(ack.user_id_one, lo);
    assert.equal(ack.user_id_two, hi);
    await waitCount(a.ev.messages, 1);
    assert.equal(a.ev.notifications.length, 0);
    // History: only the two users.
    const h = await ctx.client.listChannelMessages(a.s, ca.id, 10);
    assert.equal(h.messages.length, 1);
    const third = await user();
    await expectClientError(ctx.client.listChannelMessages(third.s, ca.id, 10), 400, 3);
    close(a, b, third);
  });

  test('unknown users and users who blocked the caller cannot be joined', async () => {
    const a = await user();
    const b = await user();
    await expectSocketError(a.socket.joinChat('00000000-0000-0000-0000-000000000001', DIRECT, true, false), 3, 'User ID not found');
    await expectSocketError(a.socket.joinChat('00000000-0000-0000-0000-000000000000', DIRECT, true, false), 3);
    await expectSocketError(a.socket.joinChat('bob', DIRECT, true, false), 3);
    await ctx.client.blockFriends(b.s, [a.id]);
    await expectSocketError(a.socket.joinChat(b.id, DIRECT, true, false), 3, 'User ID not found');
    // The blocker may still open the channel.
    const cb = await b.socket.joinChat(a.id, DIRECT, true, false);
    assert.ok(cb.id.startsWith('4.'));
    close(a, b);
  });
});

describe('history', () => {
  test('pages forward and back with cursors, in (create_time, id) order', async () => {
    const a = await user();
    const room = roomName();
    const ca = await a.socket.joinChat(room, ROOM, true, false);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await a.socket.writeChatMessage(ca.id, { i })).message_id);

    const one = await ctx.client.listChannelMessages(a.s, ca.id);
    assert.equal(one.messages.length, 1, 'limit defaults to 1');
    assert.equal(one.messages[0].message_id, ids[0]);

    const all = await ctx.client.listChannelMessages(a.s, ca.id, 100, true);
    assert.deepEqual(all.messages.map((m) => m.message_id), ids);
    assert.deepEqual(all.messages.map((m) => m.content.i), [0, 1, 2, 3, 4]);
    assert.equal(all.next_cursor, undefined);
    assert.equal(all.prev_cursor, undefined);
    const m0 = all.messages[0];
    assert.equal(m0.channel_id, ca.id);
    assert.equal(m0.sender_id, a.id);
    assert.equal(m0.username, a.name);
    assert.equal(m0.persistent, true);
    assert.equal(m0.room_name, room);
    assert.match(m0.create_time, TIMESTAMP_RE);

    const p1 = await ctx.client.listChannelMessages(a.s, ca.id, 2, true);
    assert.deepEqual(p1.messages.map((m) => m.message_id), ids.slice(0, 2));
    assert.ok(p1.next_cursor);
    assert.equal(p1.prev_cursor, undefined);
    const p2 = await ctx.client.listChannelMessages(a.s, ca.id, 2, true, p1.next_cursor);
    assert.deepEqual(p2.messages.map((m) => m.message_id), ids.slice(2, 4));
    assert.ok(p2.prev_cursor);
    const p3 = await ctx.client.listChannelMessages(a.s, ca.id, 2, true, p2.next_cursor);
    assert.deepEqual(p3.messages.map((m) => m.message_id), ids.slice(4));
    assert.equal(p3.next_cursor, undefined);
    const back = await ctx.client.listChannelMessages(a.s, ca.id, 2, true, p3.prev_cursor);
    assert.deepEqual(back.messages.map((m) => m.message_id), ids.slice(2, 4));
    const back2 = await ctx.client.listChannelMessages(a.s, ca.id, 2, true, back.prev_cursor);
    assert.deepEqual(back2.messages.map((m) => m.message_id), ids.slice(0, 2));
    assert.equal(back2.prev_cursor, undefined);
    assert.ok(back2.next_cursor);

    const rev = await ctx.client.listChannelMessages(a.s, ca.id, 3, false);
    assert.deepEqual(rev.messages.map((m) => m.message_id), ids.slice(2).reverse());
    const rev2 = await ctx.client.listChannelMessages(a.s, ca.id, 3, false, rev.next_cursor);
    assert.deepEqual(rev2.messages.map((m) => m.message_id), ids.slice(0, 2).reverse());

    // The cacheable cursor yields what arrives later.
    const later = await a.socket.writeChatMessage(ca.id, { i: 5 });
    const fresh = await ctx.client.listChannelMessages(a.s, ca.id, 10, true, all.cacheable_cursor);
    assert.deepEqual(fresh.messages.map((m) => m.message_id), [later.message_id]);
    close(a);
  });

  test('bad requests', async () => {
    const a = await user();
    const auth = { auth: `Bearer ${a.s.token}` };
    let r = await request(ctx.srv, 'GET', '/v2/channel/2...abc?limit=0', auth);
    assert.equal(r.status, 400);
    r = await request(ctx.srv, 'GET', '/v2/channel/2...abc?limit=101', auth);
    assert.equal(r.status, 400);
    r = await request(ctx.srv, 'GET', '/v2/channel/notachannel', auth);
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { code: 3, message: 'Invalid channel ID.' });
    r = await request(ctx.srv, 'GET', '/v2/channel/2...abc?cursor=garbage', auth);
    assert.equal(r.status, 400);
    assert.equal(r.json.message, 'Cursor is invalid or expired.');
    r = await request(ctx.srv, 'GET', '/v2/channel/2...abc?limit=5', auth);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['cacheable_cursor']);
    // A cursor of another channel is refused.
    r = await request(ctx.srv, 'GET', `/v2/channel/2...other?cursor=${r.json.cacheable_cursor}`, auth);
    assert.equal(r.status, 400);
    r = await request(ctx.srv, 'GET', '/v2/channel/2...abc');
    assert.equal(r.status, 401);
    close(a);
  });
});
