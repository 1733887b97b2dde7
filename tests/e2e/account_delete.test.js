// DELETE /v2/account removes what the user had everywhere, in one go:
// friend edges (others' lists and counts), group memberships (with a new
// superadmin where needed), storage objects and notifications.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { request, uniqName } from './lib/http.js';

const ctx = useServer();

async function getJson(session, path) {
  const r = await request(ctx.srv, 'GET', path, { auth: `Bearer ${session.token}` });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

test('deleting an account removes its friends, memberships, objects and notifications', async () => {
  const c = ctx.client;
  const gone = (await newDeviceSession(c)).session;
  const friend = (await newDeviceSession(c)).session;
  const member = (await newDeviceSession(c)).session;

  // A mutual friendship (friend gets a -2, gone a -3 notification).
  await c.addFriends(gone, [friend.user_id]);
  await c.addFriends(friend, [gone.user_id]);
  assert.equal((await c.listFriends(friend)).friends.length, 1);
  const friendAccountBefore = await getJson(friend, '/v2/account');
  assert.equal(friendAccountBefore.user.edge_count, 1);

  // gone is the only superadmin of a group that has another member.
  const group = await c.createGroup(gone, { name: uniqName('grp'), open: true });
  await c.joinGroup(member, group.id);
  // A public storage object of gone's.
  await c.writeStorageObjects(gone, [
    { collection: 'saves', key: 'slot1', value: { level: 3 }, permission_read: 2, permission_write: 1 },
  ]);
  const notesBefore = await getJson(gone, '/v2/notification?limit=100');
  assert.equal(notesBefore.notifications.length, 1);
  assert.equal(notesBefore.notifications[0].code, -3);

  assert.equal(await c.deleteAccount(gone), true);

  // Friend edges are gone on the other side, with the count.
  assert.deepEqual((await c.listFriends(friend)).friends ?? [], []);
  const friendAccount = await getJson(friend, '/v2/account');
  assert.equal(friendAccount.user.edge_count ?? 0, 0);

  // The group survives with its remaining member promoted to superadmin.
  const users = await c.listGroupUsers(member, group.id);
  assert.equal(users.group_users.length, 1);
  assert.equal(users.group_users[0].user.id, member.user_id);
  assert.equal(users.group_users[0].state, 0);

  // The object is gone for everyone.
  const objs = await c.readStorageObjects(member, {
    object_ids: [{ collection: 'saves', key: 'slot1', user_id: gone.user_id }],
  });
  assert.deepEqual(objs.objects ?? [], []);
  const listed = await getJson(member, '/v2/storage/saves?limit=100');
  assert.ok(!(listed.objects ?? []).some((o) => o.user_id === gone.user_id));

  // The account itself and its sessions are gone.
  const r = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${gone.token}` });
  assert.equal(r.status, 401);
});
