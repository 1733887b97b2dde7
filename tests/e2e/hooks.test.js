// Lua before/after hooks on REST routes and socket messages: rejecting,
// rewriting the body, query and path, turning an API off, after hooks that
// see the reply, and socket message order kept while a hook runs.
// Modules: tests/e2e/modules/hooks.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { E2E_DIR } from './lib/server.js';
import { expectClientError, rawAuthDevice, uniq, UUID_RE } from './lib/http.js';
import { createSocket } from './lib/socket.js';

let alice;
let bob;

const ctx = useServer({
  args: ['--runtime.path', path.join(E2E_DIR, 'modules', 'hooks')],
  setup: async () => {
    alice = (await newDeviceSession(ctx.client)).session;
    bob = (await newDeviceSession(ctx.client)).session;
  },
});

/** Resolves with the first event the socket's handler `name` receives. */
function nextEvent(socket, name, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${name} within ${timeoutMs} ms`)), timeoutMs);
    socket[name] = (e) => {
      clearTimeout(t);
      resolve(e);
    };
  });
}

describe('REST hooks', () => {
  test('a before hook rewrites the body and the after hook sees the reply', async () => {
    const acks = await ctx.client.writeStorageObjects(alice, [
      { collection: 'notes', key: 'n1', value: { text: 'hello' }, permission_read: 1, permission_write: 1 },
    ]);
    assert.equal(acks.acks.length, 1);
    const read = await ctx.client.readStorageObjects(alice, {
      object_ids: [
        { collection: 'notes', key: 'n1', user_id: alice.user_id },
        { collection: 'audit', key: 'last_write', user_id: alice.user_id },
      ],
    });
    const byKey = Object.fromEntries(read.objects.map((o) => [o.key, o.value]));
    assert.deepEqual(byKey.n1, { text: 'hello', stamped_by: alice.user_id });
    assert.deepEqual(byKey.last_write, { acks: 1, key: 'n1', version: acks.acks[0].version, requested: 1 });
  });

  test('a before hook error rejects with its code and nothing is written', async () => {
    await expectClientError(
      ctx.client.writeStorageObjects(bob, [{ collection: 'notes', key: 'bad', value: { forbidden: true } }]),
      400, 3, 'forbidden values are not stored');
    const read = await ctx.client.readStorageObjects(bob, {
      object_ids: [
        { collection: 'notes', key: 'bad', user_id: bob.user_id },
        { collection: 'audit', key: 'last_write', user_id: bob.user_id },
      ],
    });
    assert.deepEqual(read.objects, []);
  });

  test('a before hook returning nil turns the API off', async () => {
    await expectClientError(ctx.client.getUsers(alice, [bob.user_id]), 404, 5, 'Requested resource was not found.');
  });

  test('a before hook rewrites a query parameter', async () => {
    const id = uniq('custom-hooked');
    const session = await ctx.client.authenticateCustom(id, true);
    assert.equal(session.username, `hk_${id.slice(0, 12)}`);
    const named = await ctx.client.authenticateCustom(uniq('custom-named'), true, 'chosen_name_1');
    assert.equal(named.username, 'chosen_name_1');
  });

  test('a before hook rewrites a body field', async () => {
    await ctx.client.updateAccount(alice, { display_name: 'alice in caps' });
    const account = await ctx.client.getAccount(alice);
    assert.equal(account.user.display_name, 'ALICE IN CAPS');
  });

  test('a before hook rewrites a path parameter', async () => {
    await ctx.client.writeStorageObjects(bob, [
      { collection: 'real', key: 'r1', value: { n: 1 }, permission_read: 2, permission_write: 1 },
    ]);
    const listed = await ctx.client.listStorageObjects(bob, 'alias', bob.user_id, 10);
    assert.deepEqual(listed.objects.map((o) => [o.collection, o.key, o.value]), [['real', 'r1', { n: 1, stamped_by: bob.user_id }]]);
  });

  test('a path parameter the hook passes through keeps its escaped characters', async () => {
    await ctx.client.writeStorageObjects(bob, [
      { collection: 'a+b %', key: 'k1', value: { n: 2 }, permission_read: 2, permission_write: 1 },
    ]);
    const listed = await ctx.client.listStorageObjects(bob, 'a+b %', bob.user_id, 10);
    assert.deepEqual(listed.objects.map((o) => [o.collection, o.key]), [['a+b %', 'k1']]);
  });

  test('a before hook returning a list instead of the request fails the call', async () => {
    await expectClientError(ctx.client.listFriends(alice), 500, 13,
      'Before hook of ListFriends returned a list where the request object belongs');
  });

  test('a method without input is blocked only by an error', async () => {
    const banned = await rawAuthDevice(ctx.srv, uniq('device-banned'), { vars: { banned: 'yes' } });
    const res = await fetch(`${ctx.srv.baseUrl}/v2/account`, { headers: { Authorization: `Bearer ${banned.token}` } });
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), { code: 7, message: 'banned' });
    const ok = await ctx.client.getAccount(bob);
    assert.equal(ok.user.id, bob.user_id);
  });
});

describe('socket hooks', () => {
  test('a before hook rewrites chat messages, keeps their order, and rejects with error 7', async () => {
    const socket = createSocket(ctx.client);
    await socket.connect(alice, false);
    try {
      const channel = await socket.joinChat(`hooked-${uniq('room')}`, 1, false, false);
      const got = [];
      const all = new Promise((resolve) => {
        socket.onchannelmessage = (m) => {
          got.push(m.content);
          if (got.length === 20) resolve();
        };
      });
      const sends = [];
      for (let i = 0; i < 20; i++) sends.push(socket.writeChatMessage(channel.id, { seq: i }));
      await Promise.all(sends);
      await all;
      assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => ({ seq: i, moderated_for: alice.username })));

      await assert.rejects(socket.writeChatMessage(channel.id, { text: 'a badword here' }),
        (e) => e.code === 7 && e.message === 'message blocked');
    } finally {
      socket.disconnect(false);
    }
  });

  test('the after hook sees the reply envelope and the request', async () => {
    const socket = createSocket(ctx.client);
    await socket.connect(bob, false);
    try {
      const note = nextEvent(socket, 'onnotification');
      const channel = await socket.joinChat('lobby-hooks', 1, false, false);
      const n = await note;
      assert.equal(n.subject, 'joined');
      assert.equal(n.code, 101);
      assert.deepEqual(Object.keys(n.content).sort(), ['channel', 'session', 'target']);
      assert.equal(n.content.channel, channel.id);
      assert.equal(n.content.target, 'lobby-hooks');
      assert.match(n.content.session, UUID_RE);
    } finally {
      socket.disconnect(false);
    }
  });

  test('a before hook returning nil rejects the message with error 1 and closes the socket', async () => {
    const socket = createSocket(ctx.client);
    await socket.connect(alice, false);
    const closed = nextEvent(socket, 'ondisconnect');
    await assert.rejects(socket.updateStatus('busy'), (e) => e.code === 1);
    await closed;
  });
});
