// GET / DELETE /v2/notification. Notifications come from friend requests
// (code -2) and acceptances (code -3), the ones a client can cause itself.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { request, assertErrorBody, expectClientError, uniqName, TIMESTAMP_RE, UUID_RE } from './lib/http.js';

const ctx = useServer();

async function users(n, prefix = 'nt') {
  const out = [];
  for (let i = 0; i < n; i++) {
    const name = uniqName(`${prefix}${i}`);
    const { session } = await newDeviceSession(ctx.client, { username: name });
    out.push({ s: session, id: session.user_id, name });
  }
  return out;
}

function raw(method, path, who) {
  return request(ctx.srv, method, path, { auth: `Bearer ${who.s.token}` });
}

/** target receives a friend request from each of senders, in that order. */
async function requestsFrom(target, senders) {
  for (const s of senders) await ctx.client.addFriends(s.s, [target.id]);
}

describe('list', () => {
  test('none yet: no notifications, a cursor to keep', async () => {
    const [a] = await users(1);
    const r = await raw('GET', '/v2/notification', a);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['cacheable_cursor']);
    assert.match(r.json.cacheable_cursor, /^[A-Za-z0-9_-]+$/);
    const res = await ctx.client.listNotifications(a.s);
    assert.deepEqual(res.notifications, []);
    // That cursor later yields what arrives after it.
    const [b] = await users(1);
    await requestsFrom(a, [b]);
    const later = await ctx.client.listNotifications(a.s, 10, r.json.cacheable_cursor);
    assert.deepEqual(later.notifications.map((n) => n.sender_id), [b.id]);
  });

  test('exact shape of a stored notification', async () => {
    const [a, b] = await users(2);
    await requestsFrom(a, [b]);
    const r = await raw('GET', '/v2/notification?limit=10', a);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['cacheable_cursor', 'notifications']);
    assert.equal(r.json.notifications.length, 1);
    const n = r.json.notifications[0];
    assert.deepEqual(Object.keys(n).sort(), ['code', 'content', 'create_time', 'id', 'persistent', 'sender_id', 'subject']);
    assert.match(n.id, UUID_RE);
    assert.equal(n.subject, `${b.name} wants to add you as a friend`);
    assert.equal(typeof n.content, 'string');
    assert.deepEqual(JSON.parse(n.content), { username: b.name });
    assert.equal(n.code, -2);
    assert.equal(n.sender_id, b.id);
    assert.match(n.create_time, TIMESTAMP_RE);
    assert.ok(Math.abs(Date.parse(n.create_time) - Date.now()) < 60_000, 'created about now');
    assert.equal(n.persistent, true);
  });

  test('default limit 1, oldest first; the cursor walks forward and then waits', async () => {
    const [me, x, y, z, w] = await users(5);
    await requestsFrom(me, [x, y, z]);
    const p1 = await ctx.client.listNotifications(me.s);
    assert.deepEqual(p1.notifications.map((n) => n.sender_id), [x.id]);
    const p2 = await ctx.client.listNotifications(me.s, undefined, p1.cacheable_cursor);
    assert.deepEqual(p2.notifications.map((n) => n.sender_id), [y.id]);
    const p3 = await ctx.client.listNotifications(me.s, 5, p2.cacheable_cursor);
    assert.deepEqual(p3.notifications.map((n) => n.sender_id), [z.id]);
    // Nothing newer: empty, and the same cursor back.
    const p4 = await ctx.client.listNotifications(me.s, 5, p3.cacheable_cursor);
    assert.deepEqual(p4.notifications, []);
    assert.equal(p4.cacheable_cursor, p3.cacheable_cursor);
    // Something new arrives: the kept cursor returns only it.
    await requestsFrom(me, [w]);
    const p5 = await ctx.client.listNotifications(me.s, 100, p4.cacheable_cursor);
    assert.deepEqual(p5.notifications.map((n) => n.sender_id), [w.id]);
    // Without a cursor, everything from the start.
    const all = await ctx.client.listNotifications(me.s, 100);
    assert.deepEqual(all.notifications.map((n) => n.sender_id), [x.id, y.id, z.id, w.id]);
  });

  test('several within one second keep their order across pages', async () => {
    const [me, ...senders] = await users(7);
    await requestsFrom(me, senders);
    const seen = [];
    let cursor;
    for (let i = 0; i < 10; i++) {
      const p = await ctx.client.listNotifications(me.s, 2, cursor);
      if (p.notifications.length === 0) break;
      seen.push(...p.notifications.map((n) => n.sender_id));
      cursor = p.cacheable_cursor;
    }
    assert.deepEqual(seen, senders.map((s) => s.id));
  });

  test('each user sees only their own', async () => {
    const [a, b, c] = await users(3);
    await requestsFrom(a, [c]);
    await requestsFrom(b, [c]);
    const na = await ctx.client.listNotifications(a.s, 100);
    const nb = await ctx.client.listNotifications(b.s, 100);
    assert.equal(na.notifications.length, 1);
    assert.equal(nb.notifications.length, 1);
    assert.notEqual(na.notifications[0].id, nb.notifications[0].id);
    assert.deepEqual((await ctx.client.listNotifications(c.s, 100)).notifications, []);
  });

  test('bad limit and cursor', async () => {
    const [a] = await users(1);
    for (const l of ['0', '101', '-1']) {
      assertErrorBody(await raw('GET', `/v2/notification?limit=${l}`, a), 400, 3, 'Invalid limit - limit must be between 1 and 100.');
    }
    assertErrorBody(await raw('GET', '/v2/notification?limit=abc', a), 400, 3);
    const bad = ['!!!', 'bm90IGpzb24', Buffer.from('{"t":"x","i":""}').toString('base64url'),
      Buffer.from('{"t":1,"i":"nope"}').toString('base64url'), Buffer.from('{"t":-1,"i":""}').toString('base64url')];
    for (const c of bad) {
      assertErrorBody(await raw('GET', `/v2/notification?cacheable_cursor=${encodeURIComponent(c)}`, a), 400, 3,
        'Malformed cursor was used.');
    }
    await expectClientError(ctx.client.listNotifications(a.s, 1, 'garbage*'), 400, 3, 'Malformed cursor was used.');
    const r = await request(ctx.srv, 'GET', '/v2/notification');
    assertErrorBody(r, 401, 16, 'Auth token required');
  });
});

describe('delete', () => {
  test('deletes only the caller\'s own', async () => {
    const [a, b, x, y] = await users(4);
    await requestsFrom(a, [x, y]);
    await requestsFrom(b, [x]);
    const na = (await ctx.client.listNotifications(a.s, 100)).notifications;
    const nb = (await ctx.client.listNotifications(b.s, 100)).notifications;
    // b tries to delete a's notification: accepted, nothing happens.
    assert.equal(await ctx.client.deleteNotifications(b.s, [na[0].id]), true);
    assert.equal((await ctx.client.listNotifications(a.s, 100)).notifications.length, 2);
    // a deletes one of theirs, naming b's and an unknown one too.
    assert.equal(await ctx.client.deleteNotifications(a.s, [na[0].id, nb[0].id, crypto.randomUUID()]), true);
    assert.deepEqual((await ctx.client.listNotifications(a.s, 100)).notifications.map((n) => n.id), [na[1].id]);
    assert.deepEqual((await ctx.client.listNotifications(b.s, 100)).notifications.map((n) => n.id), [nb[0].id]);
    // Upper-case ids name the same notification.
    const r = await raw('DELETE', `/v2/notification?ids=${na[1].id.toUpperCase()}`, a);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    assert.deepEqual((await ctx.client.listNotifications(a.s, 100)).notifications, []);
  });

  test('nothing named is {}; a non-UUID id is InvalidArgument and deletes nothing', async () => {
    const [a, x] = await users(2);
    await requestsFrom(a, [x]);
    const [n] = (await ctx.client.listNotifications(a.s, 100)).notifications;
    const none = await raw('DELETE', '/v2/notification', a);
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.json, {});
    assertErrorBody(await raw('DELETE', `/v2/notification?ids=${n.id}&ids=bogus`, a), 400, 3,
      "Invalid notification ID 'bogus'.");
    assert.equal((await ctx.client.listNotifications(a.s, 100)).notifications.length, 1);
  });
});
