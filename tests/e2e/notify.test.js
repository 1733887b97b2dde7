// Live notifications: a notification created by a REST call (friend
// request -2, friend accepted -3, added to a group -4, group join request
// -5) is pushed, once its transaction committed, to every open socket of
// its recipient as a `notifications` event with no cid, with the same id,
// subject, content, code, sender and time as the stored copy.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { createSocket, JSON_ONLY } from './lib/socket.js';

const ctx = useServer();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

async function user() {
  return (await newDeviceSession(ctx.client)).session;
}

/** A nakama-js socket for session s that records notifications. */
async function connect(t, s, status = false) {
  // Short client timeouts: nakama-js never clears its connect and send
  // timers, which would keep the test process alive for their full length.
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  socket.notes = [];
  socket.onnotification = (n) => socket.notes.push(n);
  await socket.connect(s, status, 3000);
  t.after(() => socket.disconnect(true)); // also when the test fails
  return socket;
}

/** Waits for the socket's next notification (2 s at most). */
async function nextNote(socket) {
  for (let i = 0; i < 200; i++) {
    if (socket.notes.length) return socket.notes.shift();
    await sleep(10);
  }
  throw new Error('no notification arrived');
}

/** The stored notifications of s (oldest first). */
async function stored(s) {
  return (await ctx.client.listNotifications(s, 100)).notifications;
}

/** A pushed notification (content parsed by nakama-js) equals the stored one. */
function sameAsStored(pushed, list) {
  const st = list.find((n) => n.id === pushed.id);
  assert.ok(st, `notification ${pushed.id} is stored`);
  assert.deepEqual(pushed, st);
}

describe('friends', () => {
  test('a friend request reaches every socket of the invitee; acceptance reaches the inviter', async (t) => {
    const a = await user();
    const b = await user();
    const sa = await connect(t, a, true);
    const sb1 = await connect(t, b, false);
    const sb2 = await connect(t, b, true);

    await ctx.client.addFriends(a, [b.user_id]);
    const expect = {
      subject: `${a.username} wants to add you as a friend`,
      content: { username: a.username },
      code: -2,
      sender_id: a.user_id,
      persistent: true,
    };
    const n1 = await nextNote(sb1);
    const n2 = await nextNote(sb2);
    assert.deepEqual(n1, n2);
    const { id, create_time: t1, ...rest } = n1;
    assert.deepEqual(rest, expect);
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.match(t1, RFC3339_SECONDS);
    assert.ok(Math.abs(Date.parse(t1) - Date.now()) < 5000);
    sameAsStored(n1, await stored(b));

    await ctx.client.addFriends(b, [a.user_id]); // accepts
    const n3 = await nextNote(sa);
    const { id: id3, create_time: t3, ...rest3 } = n3;
    assert.deepEqual(rest3, {
      subject: `${b.username} accepted your friend request`,
      content: { username: b.username },
      code: -3,
      sender_id: b.user_id,
      persistent: true,
    });
    assert.notEqual(id3, id);
    assert.match(t3, RFC3339_SECONDS);
    sameAsStored(n3, await stored(a));

    // Nothing else went anywhere: no self-notification, no repeat.
    await sleep(150);
    assert.deepEqual([sa.notes, sb1.notes, sb2.notes], [[], [], []]);
    for (const s of [sa, sb1, sb2]) s.disconnect(true);
  });

  test('no push when nothing was written (already invited, unknown user)', async (t) => {
    const a = await user();
    const b = await user();
    const sb = await connect(t, b);
    await ctx.client.addFriends(a, [b.user_id]);
    assert.equal((await nextNote(sb)).code, -2);
    await ctx.client.addFriends(a, [b.user_id]); // invite already there
    await ctx.client.addFriends(a, ['00000000-0000-4000-8000-000000000002']);
    await sleep(150);
    assert.deepEqual(sb.notes, []);
    assert.equal((await stored(b)).length, 1);
    sb.disconnect(true);
  });

  test('the raw event has no cid and the exact field set', { skip: JSON_ONLY }, async (t) => {
    const a = await user();
    const b = await user();
    const ws = await new Promise((resolve, reject) => {
      const w = new WebSocket(`ws://127.0.0.1:${ctx.srv.port}/ws?token=${encodeURIComponent(b.token)}`);
      w.on('open', () => resolve(w));
      w.on('error', reject);
    });
    t.after(() => ws.close());
    const got = new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error('no notification arrived')), 2000);
      ws.once('message', (d) => { clearTimeout(timer); res(JSON.parse(d.toString())); });
    });
    await ctx.client.addFriends(a, [b.user_id]);
    const env = await got;
    assert.deepEqual(Object.keys(env), ['notifications']);
    const [n] = env.notifications.notifications;
    assert.equal(env.notifications.notifications.length, 1);
    assert.deepEqual(Object.keys(n).sort(), ['code', 'content', 'create_time', 'id', 'persistent', 'sender_id', 'subject']);
    assert.equal(n.content, JSON.stringify({ username: a.username }));
    assert.equal(n.code, -2);
    assert.equal(n.persistent, true);
    ws.close();
  });
});

describe('groups', () => {
  test('a join request to a closed group reaches its admins only', async (t) => {
    const owner = await user();
    const admin = await user();
    const member = await user();
    const joiner = await user();
    const group = await ctx.client.createGroup(owner, { name: `closed-${Date.now()}-${Math.random()}`, open: false });
    const so = await connect(t, owner, true);
    const sadm = await connect(t, admin);
    const smem = await connect(t, member);
    const sj = await connect(t, joiner);

    // admin and member are added by the owner: each gets -4.
    await ctx.client.addGroupUsers(owner, group.id, [admin.user_id, member.user_id]);
    for (const s of [sadm, smem]) {
      const n = await nextNote(s);
      const { create_time: tn, ...rest } = n;
      delete rest.id;
      assert.deepEqual(rest, {
        subject: `You've been added to group ${group.name}`,
        content: { group_id: group.id, name: group.name },
        code: -4,
        sender_id: owner.user_id,
        persistent: true,
      });
      assert.match(tn, RFC3339_SECONDS);
    }
    await ctx.client.promoteGroupUsers(owner, group.id, [admin.user_id]);

    await ctx.client.joinGroup(joiner, group.id);
    const expect = {
      subject: `User ${joiner.username} wants to join your group`,
      content: { group_id: group.id, username: joiner.username },
      code: -5,
      sender_id: joiner.user_id,
      persistent: true,
    };
    const no = await nextNote(so);
    const na = await nextNote(sadm);
    for (const n of [no, na]) {
      const { create_time: tn, ...rest } = n;
      delete rest.id;
      assert.deepEqual(rest, expect);
      assert.match(tn, RFC3339_SECONDS);
    }
    assert.notEqual(no.id, na.id);
    sameAsStored(no, await stored(owner));
    sameAsStored(na, await stored(admin));
    await sleep(150);
    assert.deepEqual([so.notes, sadm.notes, smem.notes, sj.notes], [[], [], [], []]);
    for (const s of [so, sadm, smem, sj]) s.disconnect(true);
  });
});
