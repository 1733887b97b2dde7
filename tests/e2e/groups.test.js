// Groups: create, update, delete, list; join and leave; add, kick, ban,
// promote, demote with Nakama's role rules; group users and user groups
// listings; the notifications joins and adds send. Several nakama-js users
// per test; raw requests for exact shapes and bad input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, newDeviceSession } from './lib/fixture.js';
import {
  request, assertErrorBody, expectClientError, uniqName, randomAlnum, TIMESTAMP_RE, UUID_V4_RE,
} from './lib/http.js';

const ctx = useServer();
const GHOST = '99999999-9999-4999-8999-999999999999';

async function user() {
  const { session } = await newDeviceSession(ctx.client);
  return session;
}

async function users(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await user());
  return out;
}

function raw(session, method, path, opts = {}) {
  return request(ctx.srv, method, path, { auth: { bearer: session.token }, ...opts });
}

function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) for (const x of v) q.append(k, x);
    else if (v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function mkGroup(owner, fields = {}) {
  return ctx.client.createGroup(owner, { name: uniqName('grp'), ...fields });
}

/** {user_id: state} of a group's users as the raw API lists them (states 0..3, or the given one). */
async function roles(session, gid, state) {
  const r = await raw(session, 'GET', `/v2/group/${gid}/user${qs({ state, limit: 100 })}`);
  assert.equal(r.status, 200, r.text);
  const out = {};
  for (const gu of r.json.group_users || []) {
    assert.equal(typeof gu.state, 'number', `state is always emitted: ${JSON.stringify(gu)}`);
    out[gu.user.id] = gu.state;
  }
  return out;
}

async function groupById(session, gid) {
  const r = await raw(session, 'GET', `/v2/user/${session.user_id}/group${qs({ limit: 100 })}`);
  assert.equal(r.status, 200, r.text);
  const ug = (r.json.user_groups || []).find((x) => x.group.id === gid);
  return ug && ug.group;
}

async function edgeCountOf(owner, gid) {
  const g = await groupById(owner, gid);
  assert.ok(g, `${owner.user_id} is in ${gid}`);
  return g.edge_count;
}

async function notifications(session, code) {
  const list = await ctx.client.listNotifications(session, 100);
  return list.notifications.filter((n) => code === undefined || n.code === code);
}

// ------------------------------------------------------------------ create

describe('create group', () => {
  test('minimal body: exact shape and defaults', async () => {
    const owner = await user();
    const name = uniqName('Grp');
    const r = await raw(owner, 'POST', '/v2/group', { json: { name } });
    assert.equal(r.status, 200, r.text);
    const g = r.json;
    assert.deepEqual(Object.keys(g).sort(), [
      'create_time', 'creator_id', 'edge_count', 'id', 'lang_tag', 'max_count', 'metadata', 'name', 'open', 'update_time',
    ]);
    assert.match(g.id, UUID_V4_RE);
    assert.equal(g.creator_id, owner.user_id);
    assert.equal(g.name, name);
    assert.equal(g.lang_tag, 'en');
    assert.equal(g.metadata, '{}');
    assert.equal(g.open, false, 'open is a BoolValue: emitted even when false');
    assert.equal(g.edge_count, 1);
    assert.equal(g.max_count, 100);
    assert.match(g.create_time, TIMESTAMP_RE);
    assert.equal(g.update_time, g.create_time);
    assert.ok(Math.abs(Date.parse(g.create_time) - Date.now()) < 60_000);
    // The creator is the superadmin (state 0, emitted).
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0 });
  });

  test('every field through nakama-js; unknown fields and metadata ignored', async () => {
    const owner = await user();
    const name = uniqName('full');
    const g = await ctx.client.createGroup(owner, {
      name, description: 'A fine group', lang_tag: 'pt', avatar_url: 'https://example.com/a.png', open: true, max_count: 5,
    });
    assert.equal(g.name, name);
    assert.equal(g.description, 'A fine group');
    assert.equal(g.lang_tag, 'pt');
    assert.equal(g.avatar_url, 'https://example.com/a.png');
    assert.equal(g.open, true);
    assert.equal(g.max_count, 5);
    assert.equal(g.edge_count, 1);
    assert.deepEqual(g.metadata, {});
    assert.equal(g.creator_id, owner.user_id);
    // lowerCamelCase input, unknown keys, and metadata (not in CreateGroupRequest).
    const r = await raw(owner, 'POST', '/v2/group', {
      json: { name: uniqName('camel'), maxCount: '7', langTag: 'de', avatarUrl: 'x.png', metadata: '{"a":1}', bogus: [1] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.max_count, 7);
    assert.equal(r.json.lang_tag, 'de');
    assert.equal(r.json.avatar_url, 'x.png');
    assert.equal(r.json.metadata, '{}');
    // max_count 0 means the default.
    const z = await raw(owner, 'POST', '/v2/group', { json: { name: uniqName('zero'), max_count: 0 } });
    assert.equal(z.status, 200, z.text);
    assert.equal(z.json.max_count, 100);
  });

  test('name in use', async () => {
    const [a, b] = await users(2);
    const g = await mkGroup(a);
    await expectClientError(ctx.client.createGroup(b, { name: g.name }), 409, 6, 'Group name is in use.');
    const list = await ctx.client.listGroups(b, g.name, undefined, 10);
    assert.deepEqual(list.groups.map((x) => x.id), [g.id]);
  });

  test('bad input is refused and creates nothing', async () => {
    const owner = await user();
    const name = uniqName('bad');
    const cases = [
      [{}, 'Group name must be set.'],
      [{ name: '' }, 'Group name must be set.'],
      [{ name, max_count: -1 }, 'Group max count must be >= 1 when set.'],
      [{ name: 123 }, /name/],
      [{ name, open: 'yes' }, /open/],
      [{ name, max_count: 'many' }, /max_count/],
      [{ name, max_count: 1.5 }, /max_count/],
      [{ name, max_count: 2 ** 31 }, /max_count/],
      [{ name, description: { a: 1 } }, /description/],
      [{ name: 'n'.repeat(256) }, /name/],
      [{ name, lang_tag: 'l'.repeat(19) }, /lang_tag/],
      [{ name, description: 'd'.repeat(256) }, /description/],
      [{ name, avatar_url: 'a'.repeat(513) }, /avatar_url/],
    ];
    for (const [body, message] of cases) {
      const r = await raw(owner, 'POST', '/v2/group', { json: body });
      assertErrorBody(r, 400, 3, message);
    }
    assertErrorBody(await raw(owner, 'POST', '/v2/group', { body: '{"name":' }), 400, 3);
    assertErrorBody(await raw(owner, 'POST', '/v2/group', { body: '["name"]' }), 400, 3);
    const list = await ctx.client.listGroups(owner, `${name}%`, undefined, 10);
    assert.deepEqual(list.groups, []);
    assert.deepEqual(await ctx.client.listUserGroups(owner, owner.user_id), { user_groups: [], cursor: undefined });
    // Multi-byte names count characters: 255 of them are fine.
    const ok = await raw(owner, 'POST', '/v2/group', { json: { name: `${randomAlnum(8)}${'é'.repeat(247)}` } });
    assert.equal(ok.status, 200, ok.text);
  });

  test('needs a session', async () => {
    const r = await request(ctx.srv, 'POST', '/v2/group', { json: { name: uniqName('anon') } });
    assertErrorBody(r, 401, 16, 'Auth token required');
  });
});

// ------------------------------------------------------------------ update / delete

describe('update group', () => {
  test('superadmin and admin may, member and stranger may not', async () => {
    const [owner, admin, member, stranger] = await users(4);
    const g = await mkGroup(owner, { open: true, description: 'before' });
    await ctx.client.joinGroup(admin, g.id);
    await ctx.client.joinGroup(member, g.id);
    await ctx.client.promoteGroupUsers(owner, g.id, [admin.user_id]);

    const name = uniqName('renamed');
    assert.equal(await ctx.client.updateGroup(owner, g.id, {
      name, description: 'after', lang_tag: 'es', avatar_url: 'https://example.com/b.png', open: false,
    }), true);
    let got = await groupById(owner, g.id);
    assert.equal(got.name, name);
    assert.equal(got.description, 'after');
    assert.equal(got.lang_tag, 'es');
    assert.equal(got.avatar_url, 'https://example.com/b.png');
    assert.equal(got.open, false);
    assert.equal(got.max_count, 100);

    // The admin clears the description (empty = clear) and reopens.
    assert.equal(await ctx.client.updateGroup(admin, g.id, { description: '', open: true }), true);
    got = await groupById(owner, g.id);
    assert.equal('description' in got, false);
    assert.equal(got.open, true);

    for (const s of [member, stranger]) {
      await expectClientError(ctx.client.updateGroup(s, g.id, { name: uniqName('no') }), 404, 5,
        "Group not found or you're not allowed to update.");
    }
    await expectClientError(ctx.client.updateGroup(owner, GHOST, { name: uniqName('no') }), 404, 5,
      "Group not found or you're not allowed to update.");
    got = await groupById(owner, g.id);
    assert.equal(got.name, name);
  });

  test('validation and errors', async () => {
    const owner = await user();
    const g = await mkGroup(owner);
    const other = await mkGroup(owner);
    const put = (body, id = g.id) => raw(owner, 'PUT', `/v2/group/${id}`, { json: body });
    assertErrorBody(await put({ name: '' }), 400, 3, 'Group name cannot be empty.');
    assertErrorBody(await put({ lang_tag: '' }), 400, 3, 'Group language cannot be empty.');
    assertErrorBody(await put({}), 400, 3, 'Specify at least one field to update.');
    assertErrorBody(await put({ bogus: 1 }), 400, 3, 'Specify at least one field to update.');
    assertErrorBody(await put({ name: other.name }), 400, 3, 'Group name is in use.');
    assertErrorBody(await put({ open: 'no' }), 400, 3, /open/);
    assertErrorBody(await put({ name: 5 }), 400, 3, /name/);
    assertErrorBody(await put({ name: 'x' }, 'not-a-uuid'), 400, 3, 'Group ID must be a valid ID.');
    assertErrorBody(await raw(owner, 'PUT', `/v2/group/${g.id}`, { body: '{' }), 400, 3);
    const got = await groupById(owner, g.id);
    assert.equal(got.name, g.name);
    assert.equal(got.lang_tag, 'en');
    assert.equal(got.open, false);
  });
});

describe('delete group', () => {
  test('superadmin only; the group and its memberships go', async () => {
    const [owner, admin, member] = await users(3);
    const g = await mkGroup(owner, { open: true });
    await ctx.client.joinGroup(admin, g.id);
    await ctx.client.joinGroup(member, g.id);
    await ctx.client.promoteGroupUsers(owner, g.id, [admin.user_id]);
    for (const s of [admin, member]) {
      await expectClientError(ctx.client.deleteGroup(s, g.id), 400, 3, "Group not found or you're not allowed to delete.");
    }
    assert.equal(await edgeCountOf(owner, g.id), 3);
    assert.equal(await ctx.client.deleteGroup(owner, g.id), true);
    assert.deepEqual(await roles(owner, g.id), {});
    assert.equal(await groupById(member, g.id), undefined);
    await expectClientError(ctx.client.joinGroup(member, g.id), 404, 5, 'Group not found.');
    await expectClientError(ctx.client.deleteGroup(owner, g.id), 400, 3, "Group not found or you're not allowed to delete.");
    assertErrorBody(await raw(owner, 'DELETE', '/v2/group/123'), 400, 3, 'Group ID must be a valid ID.');
  });
});

// ------------------------------------------------------------------ join / leave

describe('join and leave', () => {
  test('open group: join makes a member, again is a no-op', async () => {
    const [owner, joiner] = await users(2);
    const g = await mkGroup(owner, { open: true });
    assert.equal(await ctx.client.joinGroup(joiner, g.id), true);
    assert.equal(await ctx.client.joinGroup(joiner, g.id), true);
    assert.equal(await ctx.client.joinGroup(owner, g.id), true);
    assert.deepEqual(await roles(joiner, g.id), { [owner.user_id]: 0, [joiner.user_id]: 2 });
    assert.equal(await edgeCountOf(owner, g.id), 2);
    assert.equal((await notifications(owner, -5)).length, 0);
  });

  test('closed group: a join request, superadmins and admins are notified', async () => {
    const [owner, admin, member, joiner] = await users(4);
    const g = await mkGroup(owner, { open: true });
    await ctx.client.joinGroup(admin, g.id);
    await ctx.client.joinGroup(member, g.id);
    await ctx.client.promoteGroupUsers(owner, g.id, [admin.user_id]);
    await ctx.client.updateGroup(owner, g.id, { open: false });

    assert.equal(await ctx.client.joinGroup(joiner, g.id), true);
    assert.equal(await ctx.client.joinGroup(joiner, g.id), true); // no second request
    const r = await roles(owner, g.id);
    assert.equal(r[joiner.user_id], 3);
    assert.equal(await edgeCountOf(owner, g.id), 3, 'a request is not a member');
    // The joiner sees the request among its groups.
    const mine = await ctx.client.listUserGroups(joiner, joiner.user_id);
    assert.deepEqual(mine.user_groups.map((x) => [x.group.id, x.state]), [[g.id, 3]]);

    for (const s of [owner, admin]) {
      const ns = await notifications(s, -5);
      assert.equal(ns.length, 1, `one join request for ${s.username}`);
      assert.equal(ns[0].subject, `User ${joiner.username} wants to join your group`);
      assert.deepEqual(ns[0].content, { group_id: g.id, username: joiner.username });
      assert.equal(ns[0].sender_id, joiner.user_id);
      assert.equal(ns[0].persistent, true);
      assert.match(ns[0].create_time, TIMESTAMP_RE);
    }
    assert.equal((await notifications(member, -5)).length, 0);
    assert.equal((await notifications(joiner, -5)).length, 0);

    // The request is withdrawn by leaving.
    assert.equal(await ctx.client.leaveGroup(joiner, g.id), true);
    assert.equal((await roles(owner, g.id))[joiner.user_id], undefined);
    assert.equal(await edgeCountOf(owner, g.id), 3);
  });

  test('full group', async () => {
    const [owner, a, b] = await users(3);
    const g = await mkGroup(owner, { open: true, max_count: 2 });
    await ctx.client.joinGroup(a, g.id);
    await expectClientError(ctx.client.joinGroup(b, g.id), 400, 3, 'Group is full.');
    assert.equal(await ctx.client.joinGroup(a, g.id), true, 'a member re-joining a full group is a no-op');
    const closed = await mkGroup(owner, { max_count: 1 });
    await expectClientError(ctx.client.joinGroup(b, closed.id), 400, 3, 'Group is full.');
    assert.deepEqual(await roles(owner, closed.id), { [owner.user_id]: 0 });
  });

  test('leave: the last superadmin stays, members go', async () => {
    const [owner, second, member, stranger] = await users(4);
    const g = await mkGroup(owner, { open: true });
    await ctx.client.joinGroup(member, g.id);
    await ctx.client.joinGroup(second, g.id);
    await expectClientError(ctx.client.leaveGroup(owner, g.id), 400, 3, 'Cannot leave group when you are the last superadmin.');
    assert.equal(await ctx.client.leaveGroup(member, g.id), true);
    assert.equal(await ctx.client.leaveGroup(stranger, g.id), true, 'not a member: nothing to do');
    assert.equal(await edgeCountOf(owner, g.id), 2);
    await ctx.client.promoteGroupUsers(owner, g.id, [second.user_id]);
    await ctx.client.promoteGroupUsers(owner, g.id, [second.user_id]);
    assert.equal(await ctx.client.leaveGroup(owner, g.id), true);
    assert.deepEqual(await roles(second, g.id), { [second.user_id]: 0 });
    assert.equal(await edgeCountOf(second, g.id), 1);
  });

  test('bad and unknown group ids', async () => {
    const s = await user();
    await expectClientError(ctx.client.joinGroup(s, GHOST), 404, 5, 'Group not found.');
    assert.equal(await ctx.client.leaveGroup(s, GHOST), true);
    for (const op of ['join', 'leave']) {
      assertErrorBody(await raw(s, 'POST', `/v2/group/nope/${op}`), 400, 3, 'Group ID must be a valid ID.');
      assertErrorBody(await raw(s, 'POST', `/v2/group/${GHOST.slice(0, 35)}/${op}`), 400, 3, 'Group ID must be a valid ID.');
    }
    // Upper-case ids are the same group.
    const owner = await user();
    const g = await mkGroup(owner, { open: true });
    const r = await raw(s, 'POST', `/v2/group/${g.id.toUpperCase()}/join`);
    assert.equal(r.status, 200, r.text);
    assert.equal((await roles(owner, g.id))[s.user_id], 2);
  });
});

// ------------------------------------------------------------------ admin actions

describe('add users', () => {
  test('admins add users and accept requests; the added are notified', async () => {
    const [owner, admin, requester, newcomer, member] = await users(5);
    const g = await mkGroup(owner);
    await ctx.client.addGroupUsers(owner, g.id, [admin.user_id, member.user_id]);
    await ctx.client.promoteGroupUsers(owner, g.id, [admin.user_id]);
    await ctx.client.joinGroup(requester, g.id);
    assert.equal((await roles(owner, g.id))[requester.user_id], 3);

    // A member may not add.
    await expectClientError(ctx.client.addGroupUsers(member, g.id, [newcomer.user_id]), 404, 5,
      'Group not found or permission denied.');
    assert.equal(await ctx.client.addGroupUsers(admin, g.id, [requester.user_id, newcomer.user_id, admin.user_id]), true);
    assert.deepEqual(await roles(owner, g.id), {
      [owner.user_id]: 0, [admin.user_id]: 1, [member.user_id]: 2, [requester.user_id]: 2, [newcomer.user_id]: 2,
    });
    assert.equal(await edgeCountOf(owner, g.id), 5);

    for (const s of [requester, newcomer]) {
      const ns = await notifications(s, -4);
      assert.equal(ns.length, 1);
      assert.equal(ns[0].subject, `You've been added to group ${g.name}`);
      assert.deepEqual(ns[0].content, { group_id: g.id, name: g.name });
      assert.equal(ns[0].sender_id, admin.user_id);
      assert.equal(ns[0].persistent, true);
    }
    // The admin was told once, by the owner's add; adding itself again told nobody.
    const adminNotes = await notifications(admin, -4);
    assert.equal(adminNotes.length, 1);
    assert.equal(adminNotes[0].sender_id, owner.user_id);
    assert.equal((await notifications(member, -4)).length, 1);
    assert.equal((await notifications(owner, -4)).length, 0);
    // Re-adding is a no-op.
    assert.equal(await ctx.client.addGroupUsers(owner, g.id, [newcomer.user_id]), true);
    assert.equal((await notifications(newcomer, -4)).length, 1);
    // The added user sees the group.
    const ug = await ctx.client.listUserGroups(newcomer, newcomer.user_id);
    assert.deepEqual(ug.user_groups.map((x) => [x.group.id, x.state]), [[g.id, 2]]);
  });

  test('errors change nothing', async () => {
    const [owner, a, b] = await users(3);
    const g = await mkGroup(owner, { max_count: 2 });
    const add = (ids, s = owner, gid = g.id) => raw(s, 'POST', `/v2/group/${gid}/add${qs({ user_ids: ids })}`);
    assertErrorBody(await add([a.user_id, GHOST]), 400, 3, 'One or more users not found.');
    assertErrorBody(await add([a.user_id, b.user_id]), 400, 3, 'Group is full.');
    assertErrorBody(await add([a.user_id, 'nope']), 400, 3, 'User ID must be a valid ID.');
    assertErrorBody(await add(['00000000-0000-0000-0000-000000000000']), 400, 3, 'User ID must be a valid ID.');
    assertErrorBody(await add([a.user_id], owner, 'nope'), 400, 3, 'Group ID must be a valid ID.');
    assertErrorBody(await add([a.user_id], a), 404, 5, 'Group not found or permission denied.');
    assertErrorBody(await add([a.user_id], owner, GHOST), 404, 5, 'Group not found or permission denied.');
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0 });
    assert.equal((await notifications(a, -4)).length, 0);
    // No ids at all: nothing to do (even for a stranger).
    const none = await add([], a);
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.json, {});
    // One fits.
    assert.equal((await add([a.user_id])).status, 200);
    assert.equal(await edgeCountOf(owner, g.id), 2);
  });
});

describe('kick, ban, promote, demote', () => {
  /** owner (0), admin (1), m1 and m2 (2) in an open group. */
  async function clan() {
    const [owner, admin, m1, m2, outsider] = await users(5);
    const g = await mkGroup(owner, { open: true });
    for (const s of [admin, m1, m2]) await ctx.client.joinGroup(s, g.id);
    await ctx.client.promoteGroupUsers(owner, g.id, [admin.user_id]);
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [admin.user_id]: 1, [m1.user_id]: 2, [m2.user_id]: 2 });
    return { g, owner, admin, m1, m2, outsider };
  }

  test('kick: members and admins by rank', async () => {
    const { g, owner, admin, m1, m2, outsider } = await clan();
    await expectClientError(ctx.client.kickGroupUsers(m1, g.id, [m2.user_id]), 404, 5, 'Group not found or permission denied.');
    await expectClientError(ctx.client.kickGroupUsers(outsider, g.id, [m2.user_id]), 404, 5, 'Group not found or permission denied.');
    // An admin cannot kick the superadmin or another admin; skipped silently.
    await ctx.client.promoteGroupUsers(owner, g.id, [m2.user_id]);
    assert.equal(await ctx.client.kickGroupUsers(admin, g.id, [owner.user_id, m2.user_id]), true);
    assert.equal((await roles(owner, g.id))[owner.user_id], 0);
    assert.equal((await roles(owner, g.id))[m2.user_id], 1);
    // An admin kicks a member; a join request is declined the same way.
    assert.equal(await ctx.client.kickGroupUsers(admin, g.id, [m1.user_id]), true);
    await ctx.client.updateGroup(owner, g.id, { open: false });
    await ctx.client.joinGroup(outsider, g.id);
    assert.equal(await ctx.client.kickGroupUsers(admin, g.id, [outsider.user_id]), true);
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [admin.user_id]: 1, [m2.user_id]: 1 });
    assert.equal(await edgeCountOf(owner, g.id), 3);
    // The superadmin kicks an admin; nobody kicks themselves.
    assert.equal(await ctx.client.kickGroupUsers(owner, g.id, [m2.user_id, owner.user_id]), true);
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [admin.user_id]: 1 });
    assert.equal(await edgeCountOf(owner, g.id), 2);
    // The kicked member may join again.
    await ctx.client.joinGroup(m1, g.id);
    assert.equal((await roles(owner, g.id))[m1.user_id], 3);
  });

  test('ban: banned users are listed as 4 and cannot come back', async () => {
    const { g, owner, admin, m1, m2, outsider } = await clan();
    await expectClientError(ctx.client.banGroupUsers(m1, g.id, [m2.user_id]), 404, 5, 'Group not found or permission denied.');
    assert.equal(await ctx.client.banGroupUsers(admin, g.id, [m1.user_id, owner.user_id, outsider.user_id]), true);
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [admin.user_id]: 1, [m2.user_id]: 2 });
    assert.deepEqual(await roles(owner, g.id, 4), { [m1.user_id]: 4 });
    assert.equal(await edgeCountOf(owner, g.id), 3);
    // Joining or being added does nothing; the ban is not in the user's group list.
    assert.equal(await ctx.client.joinGroup(m1, g.id), true);
    assert.equal(await ctx.client.addGroupUsers(owner, g.id, [m1.user_id]), true);
    assert.deepEqual(await roles(owner, g.id, 4), { [m1.user_id]: 4 });
    assert.equal(await edgeCountOf(owner, g.id), 3);
    assert.deepEqual((await ctx.client.listUserGroups(m1, m1.user_id)).user_groups, []);
    assert.equal((await notifications(m1, -4)).length, 0);
    // The superadmin bans the admin; kicking a banned user lifts the ban.
    assert.equal(await ctx.client.banGroupUsers(owner, g.id, [admin.user_id]), true);
    assert.deepEqual(await roles(owner, g.id, 4), { [m1.user_id]: 4, [admin.user_id]: 4 });
    assert.equal(await ctx.client.kickGroupUsers(owner, g.id, [m1.user_id]), true);
    assert.deepEqual(await roles(owner, g.id, 4), { [admin.user_id]: 4 });
    assert.equal(await ctx.client.joinGroup(m1, g.id), true);
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [m2.user_id]: 2, [m1.user_id]: 2 });
    assert.equal(await edgeCountOf(owner, g.id), 3);
  });

  test('promote: one step, only targets ranked below the caller', async () => {
    const { g, owner, admin, m1, m2 } = await clan();
    await expectClientError(ctx.client.promoteGroupUsers(m1, g.id, [m2.user_id]), 404, 5, 'Group not found or permission denied.');
    // nakama-js hands back the response body ({}) for promote.
    assert.deepEqual(await ctx.client.promoteGroupUsers(admin, g.id, [m1.user_id, admin.user_id, owner.user_id]), {});
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [admin.user_id]: 1, [m1.user_id]: 1, [m2.user_id]: 2 });
    assert.deepEqual(await ctx.client.promoteGroupUsers(admin, g.id, [m1.user_id]), {}, 'admin cannot make a superadmin');
    assert.equal((await roles(owner, g.id))[m1.user_id], 1);
    assert.deepEqual(await ctx.client.promoteGroupUsers(owner, g.id, [m1.user_id, m2.user_id]), {});
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [m1.user_id]: 0, [admin.user_id]: 1, [m2.user_id]: 1 });
    // A join request is not promoted.
    await ctx.client.updateGroup(owner, g.id, { open: false });
    const req = await user();
    await ctx.client.joinGroup(req, g.id);
    assert.deepEqual(await ctx.client.promoteGroupUsers(owner, g.id, [req.user_id]), {});
    assert.equal((await roles(owner, g.id))[req.user_id], 3);
    // No ids: nothing to do.
    const r = await raw(owner, 'POST', `/v2/group/${g.id}/promote`);
    assert.equal(r.status, 200, r.text);
  });

  test('demote: one step, never the last superadmin', async () => {
    const { g, owner, admin, m1, m2 } = await clan();
    await ctx.client.promoteGroupUsers(owner, g.id, [m1.user_id]);
    await expectClientError(ctx.client.demoteGroupUsers(m2, g.id, [m1.user_id]), 404, 5, 'Group not found or permission denied.');
    // An admin demotes another admin, not the superadmin; members stay members.
    assert.equal(await ctx.client.demoteGroupUsers(admin, g.id, [owner.user_id, m1.user_id, m2.user_id]), true);
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [admin.user_id]: 1, [m1.user_id]: 2, [m2.user_id]: 2 });
    // The superadmin demotes itself? no: never self.
    assert.equal(await ctx.client.demoteGroupUsers(owner, g.id, [owner.user_id, admin.user_id]), true);
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0, [admin.user_id]: 2, [m1.user_id]: 2, [m2.user_id]: 2 });
    // A second superadmin can demote the first.
    await ctx.client.promoteGroupUsers(owner, g.id, [m1.user_id]);
    await ctx.client.promoteGroupUsers(owner, g.id, [m1.user_id]);
    assert.equal(await ctx.client.demoteGroupUsers(m1, g.id, [owner.user_id]), true);
    assert.equal((await roles(owner, g.id))[owner.user_id], 1);
    // Demote needs ids.
    assertErrorBody(await raw(m1, 'POST', `/v2/group/${g.id}/demote`), 400, 3, 'User IDs must be set.');
    assert.equal(await edgeCountOf(m1, g.id), 4);
  });

  test('bad ids for every action', async () => {
    const owner = await user();
    const g = await mkGroup(owner);
    for (const op of ['kick', 'ban', 'promote', 'demote', 'add']) {
      assertErrorBody(await raw(owner, 'POST', `/v2/group/${g.id}/${op}?user_ids=zzz`), 400, 3, 'User ID must be a valid ID.');
      assertErrorBody(await raw(owner, 'POST', `/v2/group/x/${op}?user_ids=${owner.user_id}`), 400, 3, 'Group ID must be a valid ID.');
      const r = await raw(owner, 'POST', `/v2/group/${g.id}/${op}?user_ids=${GHOST}`);
      if (op === 'add') assertErrorBody(r, 400, 3, 'One or more users not found.');
      else assert.equal(r.status, 200, `${op} of an unknown user is skipped: ${r.text}`);
    }
    assert.deepEqual(await roles(owner, g.id), { [owner.user_id]: 0 });
  });
});

// ------------------------------------------------------------------ listings

describe('list groups', () => {
  test('name: case-insensitive pattern, pages of one by default', async () => {
    const owner = await user();
    const prefix = `lst${randomAlnum(8)}`;
    const names = [`${prefix}a`, `${prefix}b`, `${prefix}c`];
    for (const n of names) await ctx.client.createGroup(owner, { name: n, open: true });
    const seen = [];
    let cursor;
    for (let page = 0; page < 5; page++) {
      const list = await ctx.client.listGroups(owner, `${prefix.toUpperCase()}%`, cursor);
      assert.ok(list.groups.length <= 1, 'default limit is 1');
      seen.push(...list.groups.map((g) => g.name));
      cursor = list.cursor;
      if (!cursor) break;
    }
    assert.deepEqual(seen, names);
    // Exact name, leading % stripped.
    const one = await ctx.client.listGroups(owner, `%%${names[1]}`, undefined, 10);
    assert.deepEqual(one.groups.map((g) => g.name), [names[1]]);
    assert.equal(one.cursor, undefined);
    const g = one.groups[0];
    assert.equal(g.open, true);
    assert.equal(g.edge_count, 1);
    assert.equal(g.creator_id, owner.user_id);
    // Raw page: shape of the list.
    const r = await raw(owner, 'GET', `/v2/group${qs({ name: `${prefix}%`, limit: 2 })}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['cursor', 'groups']);
    assert.equal(r.json.groups.length, 2);
    assert.equal(typeof r.json.cursor, 'string');
    const none = await raw(owner, 'GET', `/v2/group${qs({ name: `${prefix}zzz` })}`);
    assert.deepEqual(none.json, {});
  });

  test('lang_tag, members and open filters', async () => {
    const [owner, a, b] = await users(3);
    const lang = randomAlnum(12);
    const big = await mkGroup(owner, { lang_tag: lang, open: true });
    const small = await mkGroup(owner, { lang_tag: lang });
    const mid = await mkGroup(owner, { lang_tag: lang, open: true });
    await ctx.client.joinGroup(a, big.id);
    await ctx.client.joinGroup(b, big.id);
    await ctx.client.joinGroup(a, mid.id);
    const list = async (params) => {
      const ids = [];
      let cursor;
      for (;;) {
        const r = await raw(owner, 'GET', `/v2/group${qs({ ...params, cursor })}`);
        assert.equal(r.status, 200, r.text);
        ids.push(...(r.json.groups || []).map((g) => g.id));
        cursor = r.json.cursor;
        if (!cursor) return ids;
      }
    };
    // Language: smallest first.
    assert.deepEqual(await list({ lang_tag: lang }), [small.id, mid.id, big.id]);
    assert.deepEqual(await list({ lang_tag: lang, limit: 2 }), [small.id, mid.id, big.id]);
    // Members: at most that many, biggest first.
    assert.deepEqual(await list({ lang_tag: lang, members: 2 }), [mid.id, small.id]);
    assert.deepEqual(await list({ lang_tag: lang, members: 3, limit: 1 }), [big.id, mid.id, small.id]);
    assert.deepEqual(await list({ lang_tag: lang, members: 0 }), []);
    // Open / closed.
    assert.deepEqual(await list({ lang_tag: lang, open: true }), [mid.id, big.id]);
    assert.deepEqual(await list({ lang_tag: lang, open: false }), [small.id]);
    assert.deepEqual(await list({ lang_tag: lang, open: true, members: 2 }), [mid.id]);
    // No filter pages through everything, this test's groups included.
    const all = await list({ limit: 100 });
    for (const g of [big, small, mid]) assert.ok(all.includes(g.id));
    assert.equal(new Set(all).size, all.length, 'no group twice');
  });

  test('bad input', async () => {
    const s = await user();
    const bad = async (params, message) => assertErrorBody(await raw(s, 'GET', `/v2/group${qs(params)}`), 400, 3, message);
    await bad({ limit: 0 }, 'Invalid limit - limit must be between 1 and 100.');
    await bad({ limit: 101 }, 'Invalid limit - limit must be between 1 and 100.');
    await bad({ limit: 'ten' }, /limit/);
    await bad({ members: 'x' }, /members/);
    await bad({ open: 'maybe' }, /open/);
    await bad({ name: 'abc', lang_tag: 'en' }, 'name filter cannot be combined with any other filter');
    await bad({ name: 'abc', open: false }, 'name filter cannot be combined with any other filter');
    await bad({ name: 'abc', members: 3 }, 'name filter cannot be combined with any other filter');
    await bad({ cursor: 'garbage!' }, 'Malformed cursor was used.');
    await bad({ cursor: Buffer.from('{"o":1}').toString('base64url') }, 'Malformed cursor was used.');
    // A cursor made for one filter does not serve another.
    const lang = randomAlnum(10);
    await mkGroup(s, { lang_tag: lang });
    await mkGroup(s, { lang_tag: lang });
    const r = await raw(s, 'GET', `/v2/group${qs({ lang_tag: lang })}`);
    assert.ok(r.json.cursor, r.text);
    await bad({ lang_tag: `${lang}x`, cursor: r.json.cursor }, 'Malformed cursor was used.');
    await bad({ cursor: r.json.cursor }, 'Malformed cursor was used.');
    const ok = await raw(s, 'GET', `/v2/group${qs({ lang_tag: lang, cursor: r.json.cursor })}`);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.groups.length, 1);
  });
});

describe('list group users and user groups', () => {
  test('group users: order, state filter, pages, exact shape', async () => {
    const [owner, admin, m1, m2, req] = await users(5);
    const g = await mkGroup(owner, { open: true });
    await ctx.client.joinGroup(m1, g.id);
    await ctx.client.joinGroup(admin, g.id);
    await ctx.client.joinGroup(m2, g.id);
    await ctx.client.promoteGroupUsers(owner, g.id, [admin.user_id]);
    await ctx.client.updateGroup(owner, g.id, { open: false });
    await ctx.client.joinGroup(req, g.id);

    const r = await raw(m1, 'GET', `/v2/group/${g.id}/user`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['group_users']);
    assert.deepEqual(r.json.group_users.map((x) => [x.user.id, x.state]), [
      [owner.user_id, 0], [admin.user_id, 1], [m1.user_id, 2], [m2.user_id, 2], [req.user_id, 3],
    ]);
    const u = r.json.group_users[0].user;
    assert.deepEqual(Object.keys(u).sort(), ['create_time', 'id', 'lang_tag', 'metadata', 'update_time', 'username']);
    assert.equal(u.username, owner.username);
    assert.match(u.create_time, TIMESTAMP_RE);

    // Pages of two through nakama-js.
    const seen = [];
    let cursor;
    for (let i = 0; i < 5; i++) {
      const page = await ctx.client.listGroupUsers(m1, g.id, undefined, 2, cursor);
      seen.push(...page.group_users.map((x) => [x.user.id, x.state]));
      cursor = page.cursor;
      if (!cursor) break;
    }
    assert.deepEqual(seen, r.json.group_users.map((x) => [x.user.id, x.state]));
    // State filter.
    const members = await ctx.client.listGroupUsers(m1, g.id, 2, 1);
    assert.deepEqual(members.group_users.map((x) => x.user.id), [m1.user_id]);
    assert.ok(members.cursor);
    const next = await ctx.client.listGroupUsers(m1, g.id, 2, 1, members.cursor);
    assert.deepEqual(next.group_users.map((x) => x.user.id), [m2.user_id]);
    assert.equal(next.cursor, undefined);
    // A group nobody is in lists nothing.
    assert.deepEqual((await raw(m1, 'GET', `/v2/group/${GHOST}/user`)).json, {});

    const bad = async (q, message, gid = g.id) => assertErrorBody(await raw(m1, 'GET', `/v2/group/${gid}/user${q}`), 400, 3, message);
    await bad('?limit=0', 'Invalid limit - limit must be between 1 and 100.');
    await bad('?limit=101', 'Invalid limit - limit must be between 1 and 100.');
    await bad('?limit=1.5', /limit/);
    await bad('?state=5', 'Invalid state - state must be between 0 and 4.');
    await bad('?state=-1', 'Invalid state - state must be between 0 and 4.');
    await bad('?state=two', /state/);
    await bad('?cursor=notacursor', 'Cursor is invalid.');
    await bad(`?state=3&cursor=${members.cursor}`, 'Cursor is invalid.');
    await bad(`?state=2&cursor=${members.cursor}`, 'Cursor is invalid.', GHOST);
    await bad('', 'Group ID must be a valid ID.', 'abc');
  });

  test('user groups: another user, state filter, pages', async () => {
    const [owner, other, viewer] = await users(3);
    const g1 = await mkGroup(owner, { open: true });
    const g2 = await mkGroup(other, { open: true });
    const g3 = await mkGroup(other);
    await ctx.client.joinGroup(owner, g2.id);
    await ctx.client.joinGroup(owner, g3.id);
    // Anyone may list anyone's groups.
    const list = await ctx.client.listUserGroups(viewer, owner.user_id);
    assert.deepEqual(list.user_groups.map((x) => [x.group.id, x.state]), [[g1.id, 0], [g2.id, 2], [g3.id, 3]]);
    const first = list.user_groups[0].group;
    assert.equal(first.name, g1.name);
    assert.equal(first.open, true);
    assert.equal(first.edge_count, 1);
    assert.deepEqual(first.metadata, {});
    const r = await raw(viewer, 'GET', `/v2/user/${owner.user_id}/group${qs({ limit: 1 })}`);
    assert.deepEqual(Object.keys(r.json).sort(), ['cursor', 'user_groups']);
    assert.deepEqual(Object.keys(r.json.user_groups[0]).sort(), ['group', 'state']);
    assert.equal(r.json.user_groups[0].state, 0);
    // nakama-js 2.8 passes listUserGroups' state as the limit and its limit as
    // the state (client.ts swaps them): listUserGroups(s, id, 1) asks for one
    // group of any state, listUserGroups(s, id, undefined, 3) for requests.
    const p2 = await ctx.client.listUserGroups(viewer, owner.user_id, 1, undefined, r.json.cursor);
    assert.deepEqual(p2.user_groups.map((x) => x.group.id), [g2.id]);
    assert.ok(p2.cursor);
    const p3 = await ctx.client.listUserGroups(viewer, owner.user_id, 1, undefined, p2.cursor);
    assert.deepEqual(p3.user_groups.map((x) => x.group.id), [g3.id]);
    assert.equal(p3.cursor, undefined);
    const requests = await ctx.client.listUserGroups(viewer, owner.user_id, undefined, 3);
    assert.deepEqual(requests.user_groups.map((x) => [x.group.id, x.state]), [[g3.id, 3]]);
    const raw2 = await raw(viewer, 'GET', `/v2/user/${owner.user_id}/group${qs({ state: 2 })}`);
    assert.deepEqual(raw2.json.user_groups.map((x) => [x.group.id, x.state]), [[g2.id, 2]]);
    assert.deepEqual(await ctx.client.listUserGroups(viewer, GHOST), { user_groups: [], cursor: undefined });
    const bad = async (path, message) => assertErrorBody(await raw(viewer, 'GET', path), 400, 3, message);
    await bad('/v2/user/nope/group', 'User ID must be a valid ID.');
    await bad(`/v2/user/${owner.user_id}/group?limit=500`, 'Invalid limit - limit must be between 1 and 100.');
    await bad(`/v2/user/${owner.user_id}/group?state=9`, 'Invalid state - state must be between 0 and 4.');
    await bad(`/v2/user/${other.user_id}/group?cursor=${r.json.cursor}`, 'Cursor is invalid.');
  });
});

// ------------------------------------------------------------------ account deletion

describe('account deletion', () => {
  test('memberships go, an admin or the oldest member takes over, empty groups go', async () => {
    const [gone, older, admin, requester, otherOwner] = await users(5);
    // g1: older joins first, admin later but promoted: the admin takes over.
    const g1 = await mkGroup(gone, { open: true });
    await ctx.client.joinGroup(older, g1.id);
    await ctx.client.joinGroup(admin, g1.id);
    await ctx.client.promoteGroupUsers(gone, g1.id, [admin.user_id]);
    // g2: members only: the oldest one takes over.
    const g2 = await mkGroup(gone, { open: true });
    await ctx.client.joinGroup(older, g2.id);
    await ctx.client.joinGroup(admin, g2.id);
    // g3: nobody but a pending request: the group goes.
    const g3 = await mkGroup(gone);
    await ctx.client.joinGroup(requester, g3.id);
    // g4: someone else's group where gone is a member.
    const g4 = await mkGroup(otherOwner, { open: true });
    await ctx.client.joinGroup(gone, g4.id);
    assert.equal(await edgeCountOf(otherOwner, g4.id), 2);

    assert.equal(await ctx.client.deleteAccount(gone), true);

    assert.deepEqual(await roles(older, g1.id), { [admin.user_id]: 0, [older.user_id]: 2 });
    assert.equal(await edgeCountOf(older, g1.id), 2);
    assert.deepEqual(await roles(older, g2.id), { [older.user_id]: 0, [admin.user_id]: 2 });
    assert.equal(await edgeCountOf(older, g2.id), 2);
    assert.deepEqual(await roles(requester, g3.id), {});
    assert.deepEqual((await ctx.client.listUserGroups(requester, requester.user_id)).user_groups, []);
    await expectClientError(ctx.client.joinGroup(requester, g3.id), 404, 5, 'Group not found.');
    assert.deepEqual(await roles(otherOwner, g4.id), { [otherOwner.user_id]: 0 });
    assert.equal(await edgeCountOf(otherOwner, g4.id), 1);
    // The new superadmin can run the group.
    assert.equal(await ctx.client.updateGroup(admin, g1.id, { description: 'new management' }), true);
    assert.equal((await groupById(admin, g1.id)).description, 'new management');
  });
});
