// Friends: POST/GET/DELETE /v2/friend, POST /v2/friend/block,
// GET /v2/friend/friends, and the notifications friend requests send.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { useServer, newDeviceSession } from './lib/fixture.js';
import {
  request, assertErrorBody, expectClientError, uniqName, TIMESTAMP_RE, UUID_RE,
} from './lib/http.js';

const ctx = useServer();

const NIL = '00000000-0000-0000-0000-000000000000';

/** n fresh users: [{s: session, id, name}]. */
async function users(n, prefix = 'fr') {
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

/** Friends of who as [[username, state], ...] in list order. */
async function friendsOf(who, state) {
  const res = await ctx.client.listFriends(who.s, state);
  return res.friends.map((f) => [f.user.username, f.state]);
}

async function befriend(a, b) {
  assert.equal(await ctx.client.addFriends(a.s, [b.id]), true);
  assert.equal(await ctx.client.addFriends(b.s, [a.id]), true);
}

/** who's stored notifications (oldest first). */
async function notificationsOf(who) {
  const res = await ctx.client.listNotifications(who.s, 100);
  return res.notifications;
}

async function edgeCounts(viewer, list) {
  const res = await ctx.client.getUsers(viewer.s, list.map((u) => u.id));
  const byId = new Map(res.users.map((u) => [u.id, u.edge_count || 0]));
  return list.map((u) => byId.get(u.id));
}

describe('invite and accept', () => {
  test('an invite: states 1 and 2, a -2 notification for the invitee only', async () => {
    const [a, b] = await users(2);
    assert.equal(await ctx.client.addFriends(a.s, [b.id]), true);
    assert.deepEqual(await friendsOf(a), [[b.name, 1]]);
    assert.deepEqual(await friendsOf(b), [[a.name, 2]]);
    const nb = await notificationsOf(b);
    assert.equal(nb.length, 1);
    assert.equal(nb[0].code, -2);
    assert.equal(nb[0].subject, `${a.name} wants to add you as a friend`);
    assert.deepEqual(nb[0].content, { username: a.name });
    assert.equal(nb[0].sender_id, a.id);
    assert.equal(nb[0].persistent, true);
    assert.match(nb[0].id, UUID_RE);
    assert.match(nb[0].create_time, TIMESTAMP_RE);
    assert.deepEqual(await notificationsOf(a), []);
    // Invites count on both sides.
    assert.deepEqual(await edgeCounts(a, [a, b]), [1, 1]);
  });

  test('adding back (by username) accepts: both 0, a -3 notification for the inviter', async () => {
    const [a, b] = await users(2);
    await ctx.client.addFriends(a.s, [b.id]);
    assert.equal(await ctx.client.addFriends(b.s, undefined, [a.name]), true);
    assert.deepEqual(await friendsOf(a), [[b.name, 0]]);
    assert.deepEqual(await friendsOf(b), [[a.name, 0]]);
    const na = await notificationsOf(a);
    assert.equal(na.length, 1);
    assert.equal(na[0].code, -3);
    assert.equal(na[0].subject, `${b.name} accepted your friend request`);
    assert.deepEqual(na[0].content, { username: b.name });
    assert.equal(na[0].sender_id, b.id);
    assert.equal((await notificationsOf(b)).length, 1, 'the invitee keeps only the request');
    assert.deepEqual(await edgeCounts(a, [a, b]), [1, 1]);
  });

  test('raw list: exact item shape, state 0 emitted, update_time and metadata', async () => {
    const [a, b] = await users(2);
    await befriend(a, b);
    const r = await raw('GET', '/v2/friend', a);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['friends']);
    assert.equal(r.json.friends.length, 1);
    const f = r.json.friends[0];
    assert.deepEqual(Object.keys(f).sort(), ['metadata', 'state', 'update_time', 'user']);
    assert.equal(f.state, 0);
    assert.equal(f.metadata, '{}');
    assert.match(f.update_time, TIMESTAMP_RE);
    assert.deepEqual(Object.keys(f.user).sort(), ['create_time', 'id', 'lang_tag', 'metadata', 'update_time', 'username']);
    assert.equal(f.user.id, b.id);
    assert.equal(f.user.username, b.name);
  });

  test('metadata goes on the caller\'s side of the relation', async () => {
    const [a, b] = await users(2);
    const md = encodeURIComponent('{"note":"met in game"}');
    const r = await raw('POST', `/v2/friend?ids=${b.id}&metadata=${md}`, a);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    const la = await raw('GET', '/v2/friend', a);
    assert.equal(la.json.friends[0].metadata, '{"note":"met in game"}');
    const lb = await raw('GET', '/v2/friend', b);
    assert.equal(lb.json.friends[0].metadata, '{}');
  });

  test('adding again, or an existing friend, changes nothing', async () => {
    const [a, b] = await users(2);
    await ctx.client.addFriends(a.s, [b.id]);
    await ctx.client.addFriends(a.s, [b.id, b.id], [b.name]);
    assert.deepEqual(await friendsOf(a), [[b.name, 1]]);
    assert.equal((await notificationsOf(b)).length, 1);
    await ctx.client.addFriends(b.s, [a.id]);
    await ctx.client.addFriends(a.s, [b.id]);
    await ctx.client.addFriends(b.s, [a.id]);
    assert.deepEqual(await friendsOf(a), [[b.name, 0]]);
    assert.deepEqual(await friendsOf(b), [[a.name, 0]]);
    assert.equal((await notificationsOf(a)).length, 1);
    assert.equal((await notificationsOf(b)).length, 1);
    assert.deepEqual(await edgeCounts(a, [a, b]), [1, 1]);
  });

  test('several at once, ids and usernames mixed; unknown ones ignored', async () => {
    const [a, b, c, d] = await users(4);
    await ctx.client.addFriends(d.s, [a.id]); // d invited a: a's add accepts it
    assert.equal(await ctx.client.addFriends(a.s, [b.id, crypto.randomUUID(), d.id], [c.name, uniqName('ghost')]), true);
    assert.deepEqual((await friendsOf(a)).sort(), [[b.name, 1], [c.name, 1], [d.name, 0]].sort());
    assert.deepEqual(await edgeCounts(a, [a, b, c, d]), [3, 1, 1, 1]);
  });
});

describe('add: bad input', () => {
  test('nothing to add is {}', async () => {
    const [a] = await users(1);
    const r = await raw('POST', '/v2/friend', a);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    assert.equal(await ctx.client.addFriends(a.s, [], []), true);
  });

  test('self, bad ids, empty usernames: InvalidArgument and nothing changes', async () => {
    const [a, b] = await users(2);
    const cases = [
      [`ids=${b.id}&ids=${a.id}`, 'Cannot add self as friend.'],
      [`ids=${a.id.toUpperCase()}`, 'Cannot add self as friend.'],
      [`usernames=${a.name}`, 'Cannot add self as friend.'],
      [`ids=${b.id}&ids=not-a-uuid`, "Invalid user ID 'not-a-uuid'."],
      [`ids=${NIL}`, `Invalid user ID '${NIL}'.`],
      [`ids=${b.id}&usernames=`, 'Username must not be empty.'],
      [`usernames=${uniqName('nobody')}`, 'No valid ID or username was provided.'],
      [`ids=${b.id}&metadata=${encodeURIComponent('[1,2]')}`, 'Metadata must be a valid JSON object.'],
      [`ids=${b.id}&metadata=${encodeURIComponent('{bad')}`, 'Metadata must be a valid JSON object.'],
    ];
    for (const [q, msg] of cases) {
      const r = await raw('POST', `/v2/friend?${q}`, a);
      assertErrorBody(r, 400, 3, msg);
    }
    assert.deepEqual(await friendsOf(a), []);
    assert.deepEqual(await friendsOf(b), []);
    assert.deepEqual(await notificationsOf(b), []);
    await expectClientError(ctx.client.addFriends(a.s, [a.id]), 400, 3, 'Cannot add self as friend.');
  });

  test('an upper-case id is the same user', async () => {
    const [a, b] = await users(2);
    await ctx.client.addFriends(a.s, [b.id.toUpperCase()]);
    assert.deepEqual(await friendsOf(a), [[b.name, 1]]);
  });

  test('needs a session', async () => {
    const r = await request(ctx.srv, 'POST', `/v2/friend?ids=${crypto.randomUUID()}`);
    assertErrorBody(r, 401, 16, 'Auth token required');
  });
});

describe('block', () => {
  test('block: my row 3, theirs gone; blocked users cannot add me', async () => {
    const [a, b] = await users(2);
    await befriend(a, b);
    assert.equal(await ctx.client.blockFriends(a.s, [b.id]), true);
    assert.deepEqual(await friendsOf(a), [[b.name, 3]]);
    assert.deepEqual(await friendsOf(b), []);
    assert.deepEqual(await edgeCounts(a, [a, b]), [1, 0]);
    // b adding a: accepted as a request, silently nothing.
    assert.equal(await ctx.client.addFriends(b.s, [a.id]), true);
    assert.deepEqual(await friendsOf(b), []);
    assert.deepEqual(await friendsOf(a), [[b.name, 3]]);
    // a adding b: the block stays.
    await ctx.client.addFriends(a.s, [b.id]);
    assert.deepEqual(await friendsOf(a), [[b.name, 3]]);
    // Only the acceptance from befriend() ever reached a.
    assert.deepEqual((await notificationsOf(a)).map((n) => n.code), [-3]);
    assert.deepEqual((await notificationsOf(b)).map((n) => n.code), [-2]);
  });

  test('blocking someone unrelated, by username; both may block', async () => {
    const [a, b] = await users(2);
    await ctx.client.blockFriends(a.s, undefined, [b.name]);
    await ctx.client.blockFriends(b.s, [a.id]);
    assert.deepEqual(await friendsOf(a), [[b.name, 3]]);
    assert.deepEqual(await friendsOf(b), [[a.name, 3]]);
    // Deleting lifts only one's own block.
    await ctx.client.deleteFriends(a.s, [b.id]);
    assert.deepEqual(await friendsOf(a), []);
    assert.deepEqual(await friendsOf(b), [[a.name, 3]]);
    await ctx.client.addFriends(a.s, [b.id]);
    assert.deepEqual(await friendsOf(a), []);
    await ctx.client.deleteFriends(b.s, [a.id]);
    await befriend(a, b);
    assert.deepEqual(await friendsOf(a), [[b.name, 0]]);
  });

  test('an invite is replaced by the block', async () => {
    const [a, b] = await users(2);
    await ctx.client.addFriends(b.s, [a.id]);
    await ctx.client.blockFriends(a.s, [b.id]);
    assert.deepEqual(await friendsOf(a), [[b.name, 3]]);
    assert.deepEqual(await friendsOf(b), []);
    assert.deepEqual(await edgeCounts(a, [a, b]), [1, 0]);
  });

  test('bad input', async () => {
    const [a, b] = await users(2);
    assertErrorBody(await raw('POST', `/v2/friend/block?ids=${a.id}`, a), 400, 3, 'Cannot block self.');
    assertErrorBody(await raw('POST', `/v2/friend/block?usernames=${a.name}`, a), 400, 3, 'Cannot block self.');
    assertErrorBody(await raw('POST', '/v2/friend/block?ids=123', a), 400, 3, "Invalid user ID '123'.");
    assertErrorBody(await raw('POST', `/v2/friend/block?usernames=${uniqName('nobody')}`, a), 400, 3,
      'No valid ID or username was provided.');
    assertErrorBody(await raw('POST', `/v2/friend/block?ids=${b.id}&usernames=`, a), 400, 3, 'Username must not be empty.');
    const none = await raw('POST', '/v2/friend/block', a);
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.json, {});
    // An unknown id is skipped.
    const ghost = await raw('POST', `/v2/friend/block?ids=${crypto.randomUUID()}`, a);
    assert.equal(ghost.status, 200, ghost.text);
    assert.deepEqual(await friendsOf(a), []);
    assert.deepEqual(await friendsOf(b), []);
  });
});

describe('delete', () => {
  test('removes both rows of friends and of invites; counts follow', async () => {
    const [a, b, c, d] = await users(4);
    await befriend(a, b);
    await ctx.client.addFriends(a.s, [c.id]);
    await ctx.client.addFriends(d.s, [a.id]);
    assert.deepEqual(await edgeCounts(a, [a, b, c, d]), [3, 1, 1, 1]);
    assert.equal(await ctx.client.deleteFriends(a.s, [b.id, d.id], [c.name]), true);
    assert.deepEqual(await friendsOf(a), []);
    assert.deepEqual(await friendsOf(b), []);
    assert.deepEqual(await friendsOf(c), []);
    assert.deepEqual(await friendsOf(d), []);
    assert.deepEqual(await edgeCounts(a, [a, b, c, d]), [0, 0, 0, 0]);
  });

  test('the invitee declines', async () => {
    const [a, b] = await users(2);
    await ctx.client.addFriends(a.s, [b.id]);
    await ctx.client.deleteFriends(b.s, undefined, [a.name]);
    assert.deepEqual(await friendsOf(a), []);
    assert.deepEqual(await friendsOf(b), []);
  });

  test('bad input', async () => {
    const [a, b] = await users(2);
    await befriend(a, b);
    assertErrorBody(await raw('DELETE', `/v2/friend?ids=${a.id}`, a), 400, 3, 'Cannot delete self.');
    assertErrorBody(await raw('DELETE', `/v2/friend?usernames=${a.name}`, a), 400, 3, 'Cannot delete self.');
    assertErrorBody(await raw('DELETE', `/v2/friend?ids=${b.id}&ids=zzz`, a), 400, 3, "Invalid user ID 'zzz'.");
    assertErrorBody(await raw('DELETE', '/v2/friend?usernames=', a), 400, 3, 'Username must not be empty.');
    // Unknown users only, or nothing at all: {} and no change.
    for (const q of [`?usernames=${uniqName('nobody')}`, `?ids=${crypto.randomUUID()}`, '']) {
      const r = await raw('DELETE', `/v2/friend${q}`, a);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, {});
    }
    assert.deepEqual(await friendsOf(a), [[b.name, 0]]);
  });
});

describe('list', () => {
  /** me with friends b and f (0), an invite sent to c (1), one from d (2), e blocked (3). */
  async function mixed() {
    const [me, b, c, d, e, f] = await users(6, 'ls');
    await befriend(me, b);
    await befriend(me, f);
    await ctx.client.addFriends(me.s, [c.id]);
    await ctx.client.addFriends(d.s, [me.id]);
    await ctx.client.blockFriends(me.s, [e.id]);
    return { me, b, c, d, e, f };
  }

  test('ordered by state, then by when; state filters', async () => {
    const { me, b, c, d, e, f } = await mixed();
    assert.deepEqual(await friendsOf(me), [[b.name, 0], [f.name, 0], [c.name, 1], [d.name, 2], [e.name, 3]]);
    assert.deepEqual(await friendsOf(me, 0), [[b.name, 0], [f.name, 0]]);
    assert.deepEqual(await friendsOf(me, 1), [[c.name, 1]]);
    assert.deepEqual(await friendsOf(me, 2), [[d.name, 2]]);
    assert.deepEqual(await friendsOf(me, 3), [[e.name, 3]]);
    // Edges count whatever their state.
    assert.deepEqual(await edgeCounts(me, [me]), [5]);
  });

  test('pages with the cursor; the last page has none', async () => {
    const { me, b, c, d, e, f } = await mixed();
    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const res = await ctx.client.listFriends(me.s, undefined, 2, cursor);
      seen.push(...res.friends.map((x) => x.user.username));
      cursor = res.cursor;
      pages += 1;
      assert.ok(pages <= 3, 'too many pages');
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [b.name, f.name, c.name, d.name, e.name]);
    // With a filter.
    const p1 = await ctx.client.listFriends(me.s, 0, 1);
    assert.deepEqual(p1.friends.map((x) => x.user.username), [b.name]);
    assert.equal(typeof p1.cursor, 'string');
    const p2 = await ctx.client.listFriends(me.s, 0, 1, p1.cursor);
    assert.deepEqual(p2.friends.map((x) => x.user.username), [f.name]);
    assert.equal(p2.cursor, undefined);
    // Exactly limit entries left: no cursor.
    const exact = await raw('GET', '/v2/friend?limit=5', me);
    assert.equal(exact.json.friends.length, 5);
    assert.equal('cursor' in exact.json, false);
  });

  test('a cursor only continues its own listing', async () => {
    const { me } = await mixed();
    const zero = await ctx.client.listFriends(me.s, 0, 1);
    const all = await ctx.client.listFriends(me.s, undefined, 1);
    await expectClientError(ctx.client.listFriends(me.s, 1, 1, zero.cursor), 400, 3, 'Cursor is invalid.');
    await expectClientError(ctx.client.listFriends(me.s, undefined, 1, zero.cursor), 400, 3, 'Cursor is invalid.');
    await expectClientError(ctx.client.listFriends(me.s, 0, 1, all.cursor), 400, 3, 'Cursor is invalid.');
    for (const bad of ['garbage!', 'eyJ4IjoxfQ', Buffer.from('[1,2]').toString('base64url')]) {
      assertErrorBody(await raw('GET', `/v2/friend?cursor=${encodeURIComponent(bad)}`, me), 400, 3, 'Cursor is invalid.');
    }
  });

  test('bad state and limit', async () => {
    const [a] = await users(1);
    for (const s of ['4', '-1', '100']) {
      assertErrorBody(await raw('GET', `/v2/friend?state=${s}`, a), 400, 3, 'Invalid state - state must be between 0 and 3.');
    }
    for (const l of ['0', '1001', '-5']) {
      assertErrorBody(await raw('GET', `/v2/friend?limit=${l}`, a), 400, 3, 'Invalid limit - limit must be between 1 and 1000.');
    }
    assertErrorBody(await raw('GET', '/v2/friend?limit=ten', a), 400, 3);
    assertErrorBody(await raw('GET', '/v2/friend?state=x', a), 400, 3);
    assertErrorBody(await raw('GET', '/v2/friend?limit=99999999999', a), 400, 3);
    assertErrorBody(await raw('GET', '/v2/friend?limit=%205', a), 400, 3);
    assertErrorBody(await raw('GET', '/v2/friend?limit=5x', a), 400, 3);
    const ok = await raw('GET', '/v2/friend?limit=1000&state=0', a);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, {});
  });
});

describe('friends of friends', () => {
  test('friends of my friends who are not mine, not me, not blocked', async () => {
    const [me, b, c, d, e, f] = await users(6, 'fof');
    await befriend(me, b);
    await befriend(me, c);
    await befriend(b, c); // my friend already
    await befriend(b, d); // in, via b
    await befriend(b, e);
    await ctx.client.blockFriends(e.s, [me.id]); // e blocked me: out
    await befriend(b, f);
    await befriend(c, f); // f: via b and via c
    const res = await ctx.client.listFriendsOfFriends(me.s);
    const got = res.friends_of_friends.map((x) => [x.referrer, x.user.username]);
    // Ordered by referrer id, then user id.
    const want = [[b, d], [b, f], [c, f]]
      .sort(([r1, u1], [r2, u2]) => (r1.id === r2.id ? u1.id.localeCompare(u2.id) : r1.id.localeCompare(r2.id)))
      .map(([r, u]) => [r.id, u.name]);
    assert.deepEqual(got, want);
    assert.equal(res.cursor, undefined);
    // Paging one at a time gives the same sequence.
    const paged = [];
    let cursor;
    do {
      const p = await ctx.client.listFriendsOfFriends(me.s, 1, cursor);
      paged.push(...p.friends_of_friends.map((x) => [x.referrer, x.user.username]));
      cursor = p.cursor;
    } while (cursor && paged.length < 10);
    assert.deepEqual(paged, want);
    // Raw shape.
    const r = await raw('GET', '/v2/friend/friends', me);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['friends_of_friends']);
    assert.deepEqual(Object.keys(r.json.friends_of_friends[0]).sort(), ['referrer', 'user']);
    assert.match(r.json.friends_of_friends[0].user.create_time, TIMESTAMP_RE);
    // Blocking d and befriending f leaves nobody.
    await ctx.client.blockFriends(me.s, [d.id]);
    await befriend(me, f);
    const none = await raw('GET', '/v2/friend/friends', me);
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.json, {});
  });

  test('default limit 10, bounds 1..100, bad cursors', async () => {
    const [me, hub, ...others] = await users(13, 'fl');
    await befriend(me, hub);
    for (const o of others) await befriend(hub, o);
    const first = await ctx.client.listFriendsOfFriends(me.s);
    assert.equal(first.friends_of_friends.length, 10);
    assert.equal(typeof first.cursor, 'string');
    const rest = await ctx.client.listFriendsOfFriends(me.s, 100, first.cursor);
    assert.equal(rest.friends_of_friends.length, 1);
    assert.equal(rest.cursor, undefined);
    for (const l of ['0', '101']) {
      assertErrorBody(await raw('GET', `/v2/friend/friends?limit=${l}`, me), 400, 3, 'Invalid limit - limit must be between 1 and 100.');
    }
    // A friend-list cursor is not a friends-of-friends one.
    const friendCursor = (await ctx.client.listFriends(hub.s, undefined, 1)).cursor;
    assert.equal(typeof friendCursor, 'string');
    for (const bad of ['%%%', 'bm90IGpzb24', friendCursor]) {
      assertErrorBody(await raw('GET', `/v2/friend/friends?cursor=${encodeURIComponent(bad)}`, me), 400, 3, 'Cursor is invalid.');
    }
  });
});
