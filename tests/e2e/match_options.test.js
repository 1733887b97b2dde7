// Session and match options: session.single_socket (an older socket of the
// user is told with notification -7 and closed), session.single_match
// (joining a match leaves the others, relayed and authoritative),
// match.max_empty_sec (an authoritative match nobody is in stops; one with
// players stays) and shutdown_grace_sec (match_terminate gets it when the
// server stops). Module: tests/e2e/modules/match_options.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { E2E_DIR, startServer } from './lib/server.js';
import { createSocket } from './lib/socket.js';
import { makeUntil } from './lib/http.js';

const MODULES = path.join(E2E_DIR, 'modules', 'match_options');
const ctx = useServer({
  args: ['--workers', '2', '--runtime.path', MODULES, '--match.max_empty_sec', '1',
    '--session.single_socket', 'true', '--session.single_match', 'true'],
});


const until = makeUntil(10000, 20);

/** A socket for session, recording what arrives. */
async function open(client, session) {
  const socket = createSocket(client);
  const p = { session, socket, notes: [], presence: [], data: [], closed: false };
  socket.onnotification = (n) => p.notes.push(n);
  socket.onmatchpresence = (e) => p.presence.push(e);
  socket.onmatchdata = (d) => p.data.push(d);
  socket.ondisconnect = () => { p.closed = true; };
  await socket.connect(session, true);
  return p;
}

async function player(client = ctx.client) {
  const { session } = await newDeviceSession(client);
  return open(client, session);
}

async function room(client, session, name) {
  const r = await client.rpc(session, 'create_room', { name });
  return r.payload.match_id;
}

const leftBy = (p, matchId, userId) => p.presence.some((e) => e.match_id === matchId &&
  (e.leaves || []).some((l) => l.user_id === userId));

describe('session.single_socket', () => {
  test("a user's new socket closes the older one after notification -7", async () => {
    const a = await player();
    const b = await open(ctx.client, a.session);
    await until(() => a.closed, 'the older socket to close');
    const note = a.notes.find((n) => n.code === -7);
    assert.ok(note, `notifications: ${JSON.stringify(a.notes)}`);
    assert.equal(note.subject, 'single_socket');
    assert.equal(b.closed, false);
    assert.deepEqual(b.notes, []);
    // the new socket works
    const m = await b.socket.createMatch();
    assert.equal(m.self.user_id, a.session.user_id);
    b.socket.disconnect(false);
  });
});

describe('session.single_match', () => {
  test('creating or joining a relayed match leaves the other relayed matches', async () => {
    const x = await player();
    const y = await player();
    const m1 = await y.socket.createMatch();
    await x.socket.joinMatch(m1.match_id);
    const m2 = await x.socket.createMatch();
    await until(() => leftBy(y, m1.match_id, x.session.user_id), 'y to see x leave m1');
    // y joining m2 leaves m1, which is then empty
    await y.socket.joinMatch(m2.match_id);
    await until(() => x.presence.some((e) => e.match_id === m2.match_id &&
      (e.joins || []).some((j) => j.user_id === y.session.user_id)), 'x to see y join m2');
    // joining the match one is in, with the id in upper case, keeps one in it
    const again = await x.socket.joinMatch(m2.match_id.toUpperCase());
    assert.equal(again.match_id, m2.match_id.toUpperCase());
    await x.socket.sendMatchState(m2.match_id, 5, 'after');
    await until(() => y.data.some((d) => d.match_id === m2.match_id && d.op_code === 5), 'y to get the data');
    assert.ok(!leftBy(y, m2.match_id, x.session.user_id), 'x did not leave m2');
    const listed = await ctx.client.listMatches(x.session, 100, false);
    const ids = (listed.matches || []).map((m) => m.match_id);
    assert.ok(ids.includes(m2.match_id));
    assert.ok(!ids.includes(m1.match_id), 'm1 is gone: nobody is left in it');
    x.socket.disconnect(false);
    y.socket.disconnect(false);
  });

  test('joining a relayed match leaves an authoritative one', async () => {
    const x = await player();
    const y = await player();
    const id = await room(ctx.client, x.session, 'single-match');
    await x.socket.joinMatch(id);
    await y.socket.joinMatch(id);
    await until(() => x.presence.some((e) => e.match_id === id &&
      (e.joins || []).some((j) => j.user_id === y.session.user_id)), 'x to see y join');
    await x.socket.createMatch();
    await until(() => leftBy(y, id, x.session.user_id), 'y to see x leave the authoritative match');
    x.socket.disconnect(false);
    y.socket.disconnect(false);
  });
});

describe('match.max_empty_sec', () => {
  test('an empty authoritative match stops; one with a player stays', async () => {
    const x = await player();
    const empty = await room(ctx.client, x.session, 'empty');
    const kept = await room(ctx.client, x.session, 'kept');
    await x.socket.joinMatch(kept);
    const listed = async () => ((await ctx.client.listMatches(x.session, 100, true)).matches || [])
      .map((m) => m.match_id);
    assert.ok((await listed()).includes(empty));
    await until(async () => !(await listed()).includes(empty), 'the empty match to stop');
    assert.ok((await listed()).includes(kept));
    // once its player leaves, the second one stops too
    await x.socket.leaveMatch(kept);
    await until(async () => !(await listed()).includes(kept), 'the match left empty to stop');
    x.socket.disconnect(false);
  });
});

describe('shutdown_grace_sec', () => {
  test('match_terminate gets the grace period when the server stops', async () => {
    const srv = await startServer({
      args: ['--workers', '2', '--runtime.path', MODULES, '--shutdown_grace_sec', '2'],
    });
    try {
      const client = srv.client();
      const x = await player(client);
      const id = await room(client, x.session, 'grace');
      await x.socket.joinMatch(id);
      await srv.stop();
      const d = x.data.find((m) => m.match_id === id);
      assert.ok(d, `match data: ${JSON.stringify(x.data)}`);
      assert.equal(d.op_code, 7);
      assert.equal(Buffer.from(d.data).toString(), '2');
      await until(() => x.closed, 'the socket to close');
    } finally {
      if (!srv.exit) await srv.kill();
      srv.cleanup();
    }
  });
});
