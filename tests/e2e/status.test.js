// Status presence over the socket: a session opened with status=true (or
// one that sets a status) is online; sessions following its user get
// status_presence_event joins and leaves as it comes, changes status, goes
// offline and disconnects. status_follow answers the followed users' current
// presences; the caller itself is ignored; bad input is error 3 (BAD_INPUT)
// or, for a malformed message, a closed socket.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { createSocket, JSON_ONLY } from './lib/socket.js';

const ctx = useServer();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function user() {
  return (await newDeviceSession(ctx.client)).session;
}

/** A nakama-js socket for session s that records status events. */
async function connect(t, s, status = true) {
  // Short client timeouts: nakama-js never clears its connect and send
  // timers, which would keep the test process alive for their full length.
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  socket.events = [];
  socket.onstatuspresence = (e) => socket.events.push(e);
  socket.closed = new Promise((res) => { socket.ondisconnect = () => res(); });
  await socket.connect(s, status, 3000);
  t.after(() => socket.disconnect(true)); // also when the test fails
  return socket;
}

/** Waits for the socket's next status event (2 s at most). */
async function nextEvent(socket) {
  for (let i = 0; i < 200; i++) {
    if (socket.events.length) return socket.events.shift();
    await sleep(10);
  }
  throw new Error('no status_presence_event arrived');
}

/** A presence as the events and the status reply list it. */
function presence(s, status) {
  return { user_id: s.user_id, username: s.username, status };
}

/** Strips and checks session_id, which clients cannot know beforehand. */
function noSession(list) {
  return (list || []).map(({ session_id: sid, ...p }) => {
    assert.match(sid, UUID);
    return p;
  });
}

function rawSocket(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ctx.srv.port}/ws?status=true&token=${encodeURIComponent(token)}`);
    const messages = [];
    const waiters = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      const w = waiters.shift();
      if (w) w(m); else messages.push(m);
    });
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.next = () => Promise.race([
      new Promise((res) => { if (messages.length) res(messages.shift()); else waiters.push(res); }),
      sleep(2000).then(() => { throw new Error('no reply arrived'); }),
    ]);
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

describe('follow and events', () => {
  test('a follower sees the user come online, change status, go offline and disconnect', async (t) => {
    const a = await user();
    const b = await user();
    const fb = await connect(t, b, false);
    const st = await fb.followUsers([a.user_id]);
    assert.deepEqual(st.presences ?? [], []); // a is offline

    const sa = await connect(t, a, true);
    let ev = await nextEvent(fb);
    assert.deepEqual(noSession(ev.joins), [presence(a, '')]);
    assert.equal(ev.leaves, undefined);
    const sid = ev.joins[0].session_id;

    await sa.updateStatus('playing');
    ev = await nextEvent(fb);
    assert.deepEqual(noSession(ev.joins), [presence(a, 'playing')]);
    assert.deepEqual(noSession(ev.leaves), [presence(a, '')]);
    assert.equal(ev.joins[0].session_id, sid);
    assert.equal(ev.leaves[0].session_id, sid);

    await sa.updateStatus(); // no status: appear offline
    ev = await nextEvent(fb);
    assert.equal(ev.joins, undefined);
    assert.deepEqual(noSession(ev.leaves), [presence(a, 'playing')]);

    await sa.updateStatus('back');
    ev = await nextEvent(fb);
    assert.deepEqual(noSession(ev.joins), [presence(a, 'back')]);
    assert.equal(ev.leaves, undefined);

    // A new follower gets the current status in the reply.
    const c = await user();
    const fc = await connect(t, c, true);
    const now = await fc.followUsers([a.user_id]);
    assert.deepEqual(noSession(now.presences), [presence(a, 'back')]);
    assert.equal(now.presences[0].session_id, sid);

    sa.disconnect(true);
    ev = await nextEvent(fb);
    assert.deepEqual(noSession(ev.leaves), [presence(a, 'back')]);
    assert.equal(ev.leaves[0].session_id, sid);
    ev = await nextEvent(fc);
    assert.deepEqual(noSession(ev.leaves), [presence(a, 'back')]);
    await sleep(100);
    assert.deepEqual(fb.events, []);
    fb.disconnect(true);
    fc.disconnect(true);
  });

  test('every session of a followed user is a presence; several followers all hear', async (t) => {
    const a = await user();
    const a1 = await connect(t, a, true);
    const a2 = await connect(t, a, true);
    const followers = [];
    for (let i = 0; i < 3; i++) followers.push(await connect(t, await user(), false));
    for (const f of followers) {
      const st = await f.followUsers([a.user_id, a.user_id]); // duplicates count once
      assert.equal(st.presences.length, 2);
      assert.deepEqual(noSession(st.presences), [presence(a, ''), presence(a, '')]);
      assert.notEqual(st.presences[0].session_id, st.presences[1].session_id);
    }
    await a2.updateStatus('away');
    for (const f of followers) {
      const ev = await nextEvent(f);
      assert.deepEqual(noSession(ev.joins), [presence(a, 'away')]);
      assert.deepEqual(noSession(ev.leaves), [presence(a, '')]);
    }
    a1.disconnect(true);
    a2.disconnect(true);
    for (const f of followers) {
      const got = [await nextEvent(f), await nextEvent(f)].map((e) => noSession(e.leaves)[0].status).sort();
      assert.deepEqual(got, ['', 'away']);
      f.disconnect(true);
    }
  });

  test('unfollow stops the events; following again resumes them', async (t) => {
    const a = await user();
    const sa = await connect(t, a, true);
    const fb = await connect(t, await user(), true);
    const fc = await connect(t, await user(), true);
    await fb.followUsers([a.user_id]);
    await fc.followUsers([a.user_id]);
    await fb.unfollowUsers([a.user_id]);
    await fb.unfollowUsers([a.user_id]); // not followed any more: still fine
    await sa.updateStatus('one');
    const ev = await nextEvent(fc);
    assert.deepEqual(noSession(ev.joins), [presence(a, 'one')]);
    await sleep(150);
    assert.deepEqual(fb.events, []);

    const again = await fb.followUsers([a.user_id]);
    assert.deepEqual(noSession(again.presences), [presence(a, 'one')]);
    await sa.updateStatus('two');
    assert.deepEqual(noSession((await nextEvent(fb)).joins), [presence(a, 'two')]);
    assert.deepEqual(noSession((await nextEvent(fc)).joins), [presence(a, 'two')]);
    for (const s of [sa, fb, fc]) s.disconnect(true);
  });

  test('a status=false socket is not online until it sets a status', async (t) => {
    const a = await user();
    const fb = await connect(t, await user(), true);
    await fb.followUsers([a.user_id]);
    const sa = await connect(t, a, false);
    await sleep(150);
    assert.deepEqual(fb.events, []);
    assert.deepEqual((await fb.followUsers([a.user_id])).presences ?? [], []);
    await sa.updateStatus('hello');
    const ev = await nextEvent(fb);
    assert.deepEqual(noSession(ev.joins), [presence(a, 'hello')]);
    assert.equal(ev.leaves, undefined);
    sa.disconnect(true);
    assert.deepEqual(noSession((await nextEvent(fb)).leaves), [presence(a, 'hello')]);
    fb.disconnect(true);
  });

  test('following yourself is ignored; unknown users are skipped; usernames resolve', async (t) => {
    const a = await user();
    const sa = await connect(t, a, true);
    let st = await sa.followUsers([a.user_id]);
    assert.deepEqual(st.presences ?? [], []);
    await sa.updateStatus('me');
    await sleep(150);
    assert.deepEqual(sa.events, []);

    const b = await user();
    const sb = await connect(t, b, true);
    st = await sb.followUsers(['00000000-0000-4000-8000-000000000001', a.user_id.toUpperCase()]);
    assert.deepEqual(noSession(st.presences), [presence(a, 'me')]);

    // By username (nakama-js has no helper for it: a raw send).
    const c = await user();
    const sc = await connect(t, c, true);
    const reply = await sc.send({ status_follow: { usernames: [a.username, 'no-such-user-xyz', c.username] } });
    assert.deepEqual(noSession(reply.status.presences), [presence(a, 'me')]);
    await sa.updateStatus('later');
    assert.deepEqual(noSession((await nextEvent(sc)).joins), [presence(a, 'later')]);
    assert.deepEqual(noSession((await nextEvent(sb)).joins), [presence(a, 'later')]);
    for (const s of [sa, sb, sc]) s.disconnect(true);
  });

  test('a follower that disconnects is dropped from the index', async (t) => {
    const a = await user();
    const sa = await connect(t, a, true);
    const gone = [];
    for (let i = 0; i < 5; i++) {
      const f = await connect(t, await user(), false);
      await f.followUsers([a.user_id]);
      gone.push(f);
    }
    for (const f of gone) f.disconnect(true);
    await Promise.all(gone.map((f) => f.closed));
    await sleep(100);
    const fb = await connect(t, await user(), false);
    await fb.followUsers([a.user_id]);
    await sa.updateStatus('still here');
    assert.deepEqual(noSession((await nextEvent(fb)).joins), [presence(a, 'still here')]);
    sa.disconnect(true);
    fb.disconnect(true);
  });
});

describe('bad input', () => {
  test('invalid user ids, empty usernames and long statuses are BAD_INPUT', async (t) => {
    const a = await user();
    const sa = await connect(t, a, true);
    await assert.rejects(sa.followUsers(['not-a-uuid']), (e) => {
      assert.deepEqual(e, { code: 3, message: 'Invalid user identifier' });
      return true;
    });
    await assert.rejects(sa.unfollowUsers([a.user_id, 'x']), (e) => e.code === 3 && e.message === 'Invalid user identifier');
    await assert.rejects(sa.send({ status_follow: { usernames: [''] } }),
      (e) => e.code === 3 && e.message === 'Invalid username - cannot be empty');
    await assert.rejects(sa.updateStatus('x'.repeat(2049)),
      (e) => e.code === 3 && e.message === 'Status must be 2048 characters or less');
    // Exactly 2048 bytes is fine, and the socket is still usable.
    const fb = await connect(t, await user(), true);
    await fb.followUsers([a.user_id]);
    await sa.updateStatus('y'.repeat(2048));
    assert.equal((await nextEvent(fb)).joins[0].status.length, 2048);
    sa.disconnect(true);
    fb.disconnect(true);
  });

  test('raw envelopes: acks carry the cid, camelCase input works, malformed messages close', { skip: JSON_ONLY }, async (t) => {
    const a = await user();
    const ws = await rawSocket(a.token);
    ws.send(JSON.stringify({ cid: '1', status_update: { status: 'raw' } }));
    assert.deepEqual(await ws.next(), { cid: '1' });
    ws.send(JSON.stringify({ cid: '2', statusFollow: { userIds: [] } }));
    assert.deepEqual(await ws.next(), { cid: '2', status: {} });
    ws.send(JSON.stringify({ cid: '3', status_unfollow: {} }));
    assert.deepEqual(await ws.next(), { cid: '3' });
    ws.send(JSON.stringify({ cid: '4', status_update: { status: null } }));
    assert.deepEqual(await ws.next(), { cid: '4' });
    for (const bad of [{ status_update: { status: 5 } }, { status_follow: { user_ids: 'x' } },
      { status_follow: { user_ids: [1] } }, { status_unfollow: { whatever: [] } }, { status_update: { mood: 'x' } }]) {
      const w = await rawSocket(a.token);
      w.send(JSON.stringify({ cid: '9', ...bad }));
      const closed = await w.closed;
      assert.equal(closed.code, 1000, JSON.stringify(bad));
      assert.equal(closed.reason, 'Invalid message.');
    }
    ws.close();
    await ws.closed;
  });
});
