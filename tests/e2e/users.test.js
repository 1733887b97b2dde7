// GET /v2/user
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { request, assertErrorBody, expectClientError, uniqName, TIMESTAMP_RE } from './lib/http.js';

let viewer;
let alice;
let bob;
let aliceName;
let bobName;

const ctx = useServer({
  setup: async () => {
    const c = ctx.client;
    aliceName = uniqName('alice');
    bobName = uniqName('bob');
    viewer = (await newDeviceSession(c)).session;
    alice = (await newDeviceSession(c, { username: aliceName })).session;
    bob = (await newDeviceSession(c, { username: bobName })).session;
    await c.updateAccount(bob, { display_name: 'Bob B', location: 'Paris' });
  },
});

function getUsersRaw(query) {
  return request(ctx.srv, 'GET', `/v2/user${query}`, { auth: `Bearer ${viewer.token}` });
}

function ids(users) {
  return (users || []).map((u) => u.id).sort();
}

test('by ids', async () => {
  const res = await ctx.client.getUsers(viewer, [alice.user_id, bob.user_id]);
  assert.deepEqual(ids(res.users), [alice.user_id, bob.user_id].sort());
  const b = res.users.find((u) => u.id === bob.user_id);
  assert.equal(b.username, bobName);
  assert.equal(b.display_name, 'Bob B');
  assert.equal(b.location, 'Paris');
  assert.equal(b.lang_tag, 'en');
  assert.deepEqual(b.metadata, {});
  assert.match(b.create_time, TIMESTAMP_RE);
  assert.match(b.update_time, TIMESTAMP_RE);
});

test('by usernames', async () => {
  const res = await ctx.client.getUsers(viewer, [], [aliceName, bobName]);
  assert.deepEqual(ids(res.users), [alice.user_id, bob.user_id].sort());
});

test('mixed ids and usernames; unknown ones omitted; no duplicates', async () => {
  const unknownId = crypto.randomUUID();
  const res = await ctx.client.getUsers(viewer, [alice.user_id, unknownId], [aliceName, bobName, uniqName('nobody')]);
  assert.deepEqual(ids(res.users), [alice.user_id, bob.user_id].sort());
});

test('raw user objects: exact keys, no account-only fields', async () => {
  const r = await getUsersRaw(`?ids=${alice.user_id}&usernames=${bobName}`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['users']);
  const a = r.json.users.find((u) => u.id === alice.user_id);
  assert.deepEqual(Object.keys(a).sort(), ['create_time', 'id', 'lang_tag', 'metadata', 'update_time', 'username']);
  assert.equal(a.metadata, '{}');
  const b = r.json.users.find((u) => u.id === bob.user_id);
  assert.deepEqual(Object.keys(b).sort(), ['create_time', 'display_name', 'id', 'lang_tag', 'location', 'metadata', 'update_time', 'username']);
});

test('no parameters: {} (users absent)', async () => {
  const r = await getUsersRaw('');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {});
  const res = await ctx.client.getUsers(viewer);
  assert.deepEqual(res.users, []);
});

test('nothing found: users absent or empty', async () => {
  const r = await getUsersRaw(`?ids=${crypto.randomUUID()}&usernames=${uniqName('ghost')}`);
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.users === undefined || (Array.isArray(r.json.users) && r.json.users.length === 0), r.text);
  assert.deepEqual(Object.keys(r.json).filter((k) => k !== 'users'), []);
});

test('a non-UUID id is 400', async () => {
  assertErrorBody(await getUsersRaw('?ids=not-a-uuid'), 400, 3, "ID 'not-a-uuid' is not a valid system ID.");
  await expectClientError(ctx.client.getUsers(viewer, [alice.user_id, 'nope']), 400, 3, "ID 'nope' is not a valid system ID.");
});

test('needs a session', async () => {
  assertErrorBody(await request(ctx.srv, 'GET', `/v2/user?ids=${alice.user_id}`), 401, 16, 'Auth token required');
});
