// Storage objects: PUT /v2/storage (write), POST /v2/storage (read),
// PUT /v2/storage/delete, GET /v2/storage/{collection}[/{user_id}] (list),
// through nakama-js and raw requests: versions (MD5 of the value as
// written), optimistic concurrency, permissions, all-or-nothing batches,
// stable list cursors, racing writers, and bad input that changes nothing.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { request, assertErrorBody, expectClientError, uniq, TIMESTAMP_RE } from './lib/http.js';

const NIL = '00000000-0000-0000-0000-000000000000';
const REJECT_VERSION = 'Storage write rejected - version check failed.';
const REJECT_PERMISSION = 'Storage write rejected - permission denied.';
const REJECT_DELETE = 'Storage delete rejected - not found, version check failed, or permission denied.';
const NOT_SET = 'Invalid collection or key value supplied. They must be set.';
const BAD_USER = 'Invalid user ID - make sure user ID is a valid UUID.';
const BAD_CURSOR = 'Malformed cursor was used.';
const BAD_LIMIT = 'Invalid limit - limit must be between 1 and 100.';

let alice;
let bob;
let carol;

const ctx = useServer({
  setup: async () => {
    alice = (await newDeviceSession(ctx.client)).session;
    bob = (await newDeviceSession(ctx.client)).session;
    carol = (await newDeviceSession(ctx.client)).session;
  },
});

const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');
const auth = (session) => ({ auth: `Bearer ${session.token}` });

function rawWrite(session, body) {
  return request(ctx.srv, 'PUT', '/v2/storage', { ...auth(session), ...(typeof body === 'string' ? { body } : { json: body }) });
}
function rawRead(session, body) {
  return request(ctx.srv, 'POST', '/v2/storage', { ...auth(session), ...(typeof body === 'string' ? { body } : { json: body }) });
}
function rawDelete(session, body) {
  return request(ctx.srv, 'PUT', '/v2/storage/delete', { ...auth(session), ...(typeof body === 'string' ? { body } : { json: body }) });
}
function rawList(session, path) {
  return request(ctx.srv, 'GET', `/v2/storage/${path}`, auth(session));
}

/** Every object of the session's owner in collection (all pages), as "key=value". */
async function ownObjects(session, collection) {
  const out = [];
  let cursor;
  do {
    const page = await ctx.client.listStorageObjects(session, collection, session.user_id, 100, cursor);
    for (const o of page.objects) out.push(`${o.key}=${JSON.stringify(o.value)}@${o.version}`);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** Read one object as session; undefined when not returned. */
async function readOne(session, collection, key, userId) {
  const res = await ctx.client.readStorageObjects(session, { object_ids: [{ collection, key, user_id: userId }] });
  assert.ok(res.objects.length <= 1, JSON.stringify(res));
  return res.objects[0];
}

/** Inserts a row directly (objects the server itself would own). */
function insertRow(row) {
  const now = Date.now();
  const vals = [row.collection, row.key, row.user_id, row.value, md5(row.value)].map((v) => `'${v.replace(/'/g, "''")}'`);
  const sql = `INSERT INTO storage (collection, key, user_id, value, version, read, write, create_time, update_time) VALUES (${vals.join(', ')}, ${row.read}, ${row.write}, ${now}, ${now})`;
  const addr = ctx.srv.dbAddress;
  if (/^postgres(ql)?:\/\//.test(addr)) {
    execFileSync('psql', [addr, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    execFileSync('sqlite3', ['-cmd', '.timeout 5000', addr, sql], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
}

describe('write and read', () => {
  test('write acks: collection, key, MD5 version of the value as sent, owner, whole-second times', async () => {
    const col = uniq('col');
    const value = { level: 3, name: 'ünïcode', items: [1, 2] };
    const acks = await ctx.client.writeStorageObjects(alice, [
      { collection: col, key: 'save', value },
      { collection: col, key: 'pub', value: {}, permission_read: 2, permission_write: 0 },
    ]);
    assert.equal(acks.acks.length, 2);
    const [a, b] = acks.acks;
    assert.equal(a.collection, col);
    assert.equal(a.key, 'save');
    assert.equal(a.user_id, alice.user_id);
    assert.equal(a.version, md5(JSON.stringify(value)));
    assert.match(a.create_time, TIMESTAMP_RE);
    assert.equal(a.update_time, a.create_time);
    assert.equal(b.key, 'pub');
    assert.equal(b.version, md5('{}'));
    assert.deepEqual(Object.keys(a).sort(), ['collection', 'create_time', 'key', 'update_time', 'user_id', 'version']);

    const read = await ctx.client.readStorageObjects(alice, {
      object_ids: [{ collection: col, key: 'save', user_id: alice.user_id }, { collection: col, key: 'pub', user_id: alice.user_id }],
    });
    assert.equal(read.objects.length, 2);
    const s = read.objects.find((o) => o.key === 'save');
    assert.deepEqual(s.value, value);
    assert.equal(s.version, a.version);
    assert.equal(s.user_id, alice.user_id);
    assert.equal(s.collection, col);
    assert.equal(s.permission_read, 1, 'default read permission 1');
    assert.equal(s.permission_write, 1, 'default write permission 1');
    assert.equal(s.create_time, a.create_time);
    assert.equal(s.update_time, a.update_time);
    const p = read.objects.find((o) => o.key === 'pub');
    assert.equal(p.permission_read, 2);
    assert.equal(p.permission_write, 0);
  });

  test('the value is stored byte for byte and its MD5 is the version', async () => {
    const col = uniq('col');
    const value = ' {"b": 1,   "a": [true, null, 1.50e3, "x\\u00e9"]}\n';
    const w = await rawWrite(alice, { objects: [{ collection: col, key: 'k', value }] });
    assert.equal(w.status, 200, w.text);
    assert.equal(w.json.acks[0].version, md5(value));
    const r = await rawRead(alice, { object_ids: [{ collection: col, key: 'k', user_id: alice.user_id }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.objects.length, 1);
    const o = r.json.objects[0];
    assert.equal(o.value, value);
    assert.equal(o.version, md5(value));
    // Exact StorageObject keys: permission_write 1 and read 1 are non-zero, so present.
    assert.deepEqual(Object.keys(o).sort(), ['collection', 'create_time', 'key', 'permission_read', 'permission_write',
      'update_time', 'user_id', 'value', 'version']);
  });

  test('zero permissions are omitted from raw objects; camelCase input accepted', async () => {
    const col = uniq('col');
    const w = await rawWrite(alice, { objects: [{ collection: col, key: 'k', value: '{}', permissionRead: 2, permissionWrite: 0 }] });
    assert.equal(w.status, 200, w.text);
    const r = await rawRead(bob, { objectIds: [{ collection: col, key: 'k', userId: alice.user_id }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.objects.length, 1);
    assert.equal(r.json.objects[0].permission_read, 2);
    assert.equal(r.json.objects[0].permission_write, undefined, 'write 0 omitted');
    // Int32Value accepts numeric strings and integral numbers.
    const w2 = await rawWrite(alice, { objects: [{ collection: col, key: 'k2', value: '{}', permission_read: '2', permission_write: 1.0 }] });
    assert.equal(w2.status, 200, w2.text);
    assert.equal((await readOne(bob, col, 'k2', alice.user_id)).permission_read, 2);
  });

  test('empty batches: {} for write and read, {} for delete', async () => {
    for (const body of [{}, { objects: [] }, { objects: null }]) {
      const w = await rawWrite(alice, body);
      assert.equal(w.status, 200, w.text);
      assert.deepEqual(w.json, {});
    }
    const r = await rawRead(alice, { object_ids: [] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    assert.deepEqual((await ctx.client.readStorageObjects(alice, { object_ids: [] })).objects, []);
    const d = await rawDelete(alice, { object_ids: [] });
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(d.json, {});
  });

  test('missing objects are just absent from a read, in request order otherwise', async () => {
    const col = uniq('col');
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'b', value: { n: 'b' } }, { collection: col, key: 'a', value: { n: 'a' } }]);
    const res = await ctx.client.readStorageObjects(alice, {
      object_ids: [
        { collection: col, key: 'b', user_id: alice.user_id },
        { collection: col, key: 'missing', user_id: alice.user_id },
        { collection: col, key: 'a', user_id: alice.user_id },
        { collection: uniq('nocol'), key: 'a', user_id: alice.user_id },
        { collection: col, key: 'a', user_id: bob.user_id },
      ],
    });
    assert.deepEqual(res.objects.map((o) => o.key), ['b', 'a']);
  });

  test('clients write only their own objects: the same key by another user is another object', async () => {
    const col = uniq('col');
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { who: 'alice' }, permission_read: 2 }]);
    const acks = await ctx.client.writeStorageObjects(bob, [{ collection: col, key: 'k', value: { who: 'bob' }, permission_read: 2 }]);
    assert.equal(acks.acks[0].user_id, bob.user_id);
    assert.deepEqual((await readOne(carol, col, 'k', alice.user_id)).value, { who: 'alice' });
    assert.deepEqual((await readOne(carol, col, 'k', bob.user_id)).value, { who: 'bob' });
    // A user_id in a write body is not a field of WriteStorageObject: ignored.
    const w = await rawWrite(bob, { objects: [{ collection: col, key: 'k', value: '{"who":"mallory"}', user_id: alice.user_id }] });
    assert.equal(w.status, 200, w.text);
    assert.equal(w.json.acks[0].user_id, bob.user_id);
    assert.deepEqual((await readOne(carol, col, 'k', alice.user_id)).value, { who: 'alice' });
  });
});

describe('versions', () => {
  test('"" overwrites, "*" only creates, "<hash>" only updates that version', async () => {
    const col = uniq('col');
    const first = await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { v: 1 }, version: '*' }]);
    const v1 = first.acks[0].version;
    await expectClientError(ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { v: 2 }, version: '*' }]),
      400, 3, REJECT_VERSION);
    await expectClientError(ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { v: 2 }, version: md5('nope') }]),
      400, 3, REJECT_VERSION);
    assert.deepEqual((await readOne(alice, col, 'k', alice.user_id)).value, { v: 1 });
    const second = await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { v: 2 }, version: v1 }]);
    assert.equal(second.acks[0].version, md5('{"v":2}'));
    await expectClientError(ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { v: 3 }, version: v1 }]),
      400, 3, REJECT_VERSION);
    const third = await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { v: 3 }, version: '' }]);
    assert.equal(third.acks[0].version, md5('{"v":3}'));
    assert.equal(third.acks[0].create_time, first.acks[0].create_time, 'create_time kept');
    // A version for an object that does not exist.
    await expectClientError(ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'absent', value: {}, version: v1 }]),
      400, 3, REJECT_VERSION);
    assert.equal(await readOne(alice, col, 'absent', alice.user_id), undefined);
  });

  test('a batch is all or nothing', async () => {
    const col = uniq('col');
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'existing', value: { v: 1 } }]);
    const before = await ownObjects(alice, col);
    await expectClientError(ctx.client.writeStorageObjects(alice, [
      { collection: col, key: 'new1', value: { n: 1 } },
      { collection: col, key: 'existing', value: { v: 2 } },
      { collection: col, key: 'existing', value: { v: 3 }, version: '*' },
      { collection: col, key: 'new2', value: { n: 2 } },
    ]), 400, 3, REJECT_VERSION);
    assert.deepEqual(await ownObjects(alice, col), before);
    // Acks come back in request order, whatever order the rows are written in.
    const acks = await ctx.client.writeStorageObjects(alice, [
      { collection: col, key: 'zz', value: { n: 'zz' } },
      { collection: col, key: 'aa', value: { n: 'aa' } },
      { collection: col, key: 'mm', value: { n: 'mm' } },
    ]);
    assert.deepEqual(acks.acks.map((a) => a.key), ['zz', 'aa', 'mm']);
    assert.deepEqual(acks.acks.map((a) => a.version), [md5('{"n":"zz"}'), md5('{"n":"aa"}'), md5('{"n":"mm"}')]);
  });

  test('racing writers expecting one version: exactly one wins', async () => {
    const col = uniq('race');
    const start = await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'obj', value: { start: true } }]);
    const v0 = start.acks[0].version;
    const N = 12;
    const results = await Promise.allSettled(Array.from({ length: N }, (_, i) =>
      rawWrite(alice, { objects: [{ collection: col, key: 'obj', value: JSON.stringify({ writer: i }), version: v0 }] })));
    const responses = results.map((r) => { assert.equal(r.status, 'fulfilled'); return r.value; });
    const wins = responses.filter((r) => r.status === 200);
    const losses = responses.filter((r) => r.status !== 200);
    assert.equal(wins.length, 1, responses.map((r) => `${r.status} ${r.text}`).join('\n'));
    assert.equal(losses.length, N - 1);
    for (const l of losses) assertErrorBody(l, 400, 3, REJECT_VERSION);
    const final = await readOne(alice, col, 'obj', alice.user_id);
    assert.equal(final.version, wins[0].json.acks[0].version);
    assert.equal(md5(JSON.stringify(final.value)), final.version);

    // Creators racing on "*": one creates, the others are rejected.
    const results2 = await Promise.all(Array.from({ length: N }, (_, i) =>
      rawWrite(bob, { objects: [{ collection: col, key: 'new', value: JSON.stringify({ creator: i }), version: '*' }] })));
    assert.equal(results2.filter((r) => r.status === 200).length, 1, results2.map((r) => r.text).join('\n'));
    for (const l of results2.filter((r) => r.status !== 200)) assertErrorBody(l, 400, 3, REJECT_VERSION);
  });
});

describe('permissions', () => {
  // read 0/1/2 x {owner, other user} x {read, list own/other, public list}
  for (const read of [0, 1, 2]) {
    test(`read permission ${read}`, async () => {
      const col = uniq(`perm${read}`);
      await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { read }, permission_read: read }]);
      const visible = (o) => o !== undefined;
      // Owner reads: 1 and 2.
      assert.equal(visible(await readOne(alice, col, 'k', alice.user_id)), read >= 1, 'owner read');
      // Another user reads: only 2.
      assert.equal(visible(await readOne(bob, col, 'k', alice.user_id)), read === 2, 'other read');
      // Owner lists own: 1 and 2.
      const ownList = await ctx.client.listStorageObjects(alice, col, alice.user_id, 10);
      assert.equal(ownList.objects.length, read >= 1 ? 1 : 0, 'owner list own');
      // Another user lists the owner's: only 2.
      const otherList = await ctx.client.listStorageObjects(bob, col, alice.user_id, 10);
      assert.equal(otherList.objects.length, read === 2 ? 1 : 0, 'other list');
      // Public listing (no user): only 2, for anyone, the owner included.
      for (const s of [alice, bob]) {
        const pub = await ctx.client.listStorageObjects(s, col, undefined, 10);
        assert.equal(pub.objects.length, read === 2 ? 1 : 0, 'public list');
      }
      if (read === 2) {
        const o = (await ctx.client.listStorageObjects(bob, col, undefined, 10)).objects[0];
        assert.equal(o.user_id, alice.user_id);
        assert.deepEqual(o.value, { read: 2 });
        assert.equal(o.permission_read, 2);
      }
    });
  }

  test('write permission 0: the owner can neither overwrite nor delete', async () => {
    const col = uniq('wp');
    const acks = await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'locked', value: { v: 1 }, permission_write: 0, permission_read: 1 }]);
    const v1 = acks.acks[0].version;
    await expectClientError(ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'locked', value: { v: 2 } }]),
      400, 3, REJECT_PERMISSION);
    await expectClientError(ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'locked', value: { v: 2 }, version: v1 }]),
      400, 3, REJECT_PERMISSION);
    await expectClientError(ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'locked', value: { v: 2 }, version: '*' }]),
      400, 3, REJECT_VERSION);
    await expectClientError(ctx.client.deleteStorageObjects(alice, { object_ids: [{ collection: col, key: 'locked' }] }),
      400, 3, REJECT_DELETE);
    await expectClientError(ctx.client.deleteStorageObjects(alice, { object_ids: [{ collection: col, key: 'locked', version: v1 }] }),
      400, 3, REJECT_DELETE);
    const o = await readOne(alice, col, 'locked', alice.user_id);
    assert.deepEqual(o.value, { v: 1 });
    assert.equal(o.permission_write, 0);
  });

  test('write permission 1: the owner overwrites and deletes', async () => {
    const col = uniq('wp');
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'open', value: { v: 1 }, permission_write: 1 }]);
    const acks = await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'open', value: { v: 2 } }]);
    assert.equal(acks.acks[0].version, md5('{"v":2}'));
    assert.equal(await ctx.client.deleteStorageObjects(alice, { object_ids: [{ collection: col, key: 'open' }] }), true);
    assert.equal(await readOne(alice, col, 'open', alice.user_id), undefined);
  });

  test('another user cannot delete my object (deletes address their own)', async () => {
    const col = uniq('del');
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { mine: true }, permission_read: 2 }]);
    await expectClientError(ctx.client.deleteStorageObjects(bob, { object_ids: [{ collection: col, key: 'k' }] }), 400, 3, REJECT_DELETE);
    // A user_id in a delete id is not a field of DeleteStorageObjectId: ignored.
    const d = await rawDelete(bob, { object_ids: [{ collection: col, key: 'k', user_id: alice.user_id }] });
    assertErrorBody(d, 400, 3, REJECT_DELETE);
    assert.deepEqual((await readOne(carol, col, 'k', alice.user_id)).value, { mine: true });
  });

  test('system-owned objects: read with an empty user id when public; the nil UUID spelled out is refused', async () => {
    const col = uniq('sys');
    insertRow({ collection: col, key: 'pub', user_id: NIL, value: '{"motd":"hi"}', read: 2, write: 0 });
    insertRow({ collection: col, key: 'priv', user_id: NIL, value: '{"secret":1}', read: 1, write: 0 });
    const res = await ctx.client.readStorageObjects(alice, { object_ids: [{ collection: col, key: 'pub' }, { collection: col, key: 'priv' }] });
    assert.equal(res.objects.length, 1);
    assert.equal(res.objects[0].user_id, NIL);
    assert.deepEqual(res.objects[0].value, { motd: 'hi' });
    const r = await rawRead(alice, { object_ids: [{ collection: col, key: 'pub', user_id: '' }] });
    assert.equal(r.json.objects.length, 1, r.text);
    assertErrorBody(await rawRead(alice, { object_ids: [{ collection: col, key: 'pub', user_id: NIL }] }), 400, 3, BAD_USER);
    // Listing the system user's objects shows the public one.
    const list = await ctx.client.listStorageObjects(alice, col, NIL, 10);
    assert.deepEqual(list.objects.map((o) => o.key), ['pub']);
    // A client cannot delete or overwrite them: it only addresses its own.
    await expectClientError(ctx.client.deleteStorageObjects(alice, { object_ids: [{ collection: col, key: 'pub' }] }), 400, 3, REJECT_DELETE);
    assert.equal((await ctx.client.listStorageObjects(bob, col, undefined, 10)).objects.length, 1);
  });
});

describe('delete', () => {
  test('own objects, optional version check, all or nothing', async () => {
    const col = uniq('del');
    const acks = await ctx.client.writeStorageObjects(alice, [
      { collection: col, key: 'a', value: { a: 1 } },
      { collection: col, key: 'b', value: { b: 1 } },
      { collection: col, key: 'c', value: { c: 1 } },
    ]);
    const [va] = acks.acks.map((x) => x.version);
    const before = await ownObjects(alice, col);
    await expectClientError(ctx.client.deleteStorageObjects(alice, { object_ids: [{ collection: col, key: 'a', version: md5('other') }] }),
      400, 3, REJECT_DELETE);
    await expectClientError(ctx.client.deleteStorageObjects(alice, { object_ids: [{ collection: col, key: 'missing' }] }),
      400, 3, REJECT_DELETE);
    await expectClientError(ctx.client.deleteStorageObjects(alice, {
      object_ids: [{ collection: col, key: 'a', version: va }, { collection: col, key: 'b' }, { collection: col, key: 'missing' }],
    }), 400, 3, REJECT_DELETE);
    assert.deepEqual(await ownObjects(alice, col), before, 'nothing deleted');
    assert.equal(await ctx.client.deleteStorageObjects(alice, {
      object_ids: [{ collection: col, key: 'a', version: va }, { collection: col, key: 'b' }],
    }), true);
    assert.deepEqual((await ownObjects(alice, col)).map((s) => s.split('=')[0]), ['c']);
  });
});

describe('list', () => {
  test('pages in (key, user) order with an opaque cursor; default limit 1', async () => {
    const col = uniq('list');
    await ctx.client.writeStorageObjects(alice, ['k1', 'k3', 'k5'].map((key) => ({ collection: col, key, value: { key }, permission_read: 2 })));
    await ctx.client.writeStorageObjects(bob, ['k2', 'k3', 'k4'].map((key) => ({ collection: col, key, value: { key }, permission_read: 2 })));
    await ctx.client.writeStorageObjects(bob, [{ collection: col, key: 'k0', value: {}, permission_read: 1 }]);
    const [lo, hi] = [alice.user_id, bob.user_id].sort();
    const expected = ['k1', 'k2', `k3/${lo}`, `k3/${hi}`, 'k4', 'k5'];
    const label = (o) => (o.key === 'k3' ? `k3/${o.user_id}` : o.key);

    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const page = await ctx.client.listStorageObjects(carol, col, undefined, 4, cursor);
      seen.push(...page.objects.map(label));
      cursor = page.cursor;
      if (cursor) assert.match(cursor, /^[A-Za-z0-9_-]+$/, 'base64url without padding');
      pages++;
    } while (cursor);
    assert.deepEqual(seen, expected);
    assert.equal(pages, 2);

    // Without a limit: one object and a cursor.
    const r = await rawList(carol, encodeURIComponent(col));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.objects.length, 1);
    assert.equal(r.json.objects[0].key, 'k1');
    assert.equal(typeof r.json.cursor, 'string');
    // The last page has no cursor; an empty listing is {}.
    const last = await rawList(carol, `${encodeURIComponent(col)}?limit=100`);
    assert.equal(last.json.objects.length, 6);
    assert.equal(last.json.cursor, undefined);
    const empty = await rawList(carol, `${encodeURIComponent(uniq('none'))}?limit=100`);
    assert.equal(empty.status, 200, empty.text);
    assert.deepEqual(empty.json, {});
  });

  test('own and other listings, and the /{collection}/{user_id} route', async () => {
    const col = uniq('list');
    await ctx.client.writeStorageObjects(alice, [
      { collection: col, key: 'a', value: {}, permission_read: 2 },
      { collection: col, key: 'b', value: {}, permission_read: 1 },
      { collection: col, key: 'c', value: {}, permission_read: 0 },
      { collection: col, key: 'd', value: {}, permission_read: 2 },
    ]);
    const keys = (res) => (res.objects || []).map((o) => o.key);
    assert.deepEqual(keys(await ctx.client.listStorageObjects(alice, col, alice.user_id, 100)), ['a', 'b', 'd']);
    assert.deepEqual(keys(await ctx.client.listStorageObjects(bob, col, alice.user_id, 100)), ['a', 'd']);
    const r = await rawList(bob, `${col}/${alice.user_id}?limit=100`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(keys(r.json), ['a', 'd']);
    const own = await rawList(alice, `${col}/${alice.user_id.toUpperCase()}?limit=1`);
    assert.equal(own.status, 200, own.text);
    assert.deepEqual(keys(own.json), ['a']);
    // The cursor of the path route continues the same listing through the query route.
    const next = await ctx.client.listStorageObjects(alice, col, alice.user_id, 1, own.json.cursor);
    assert.deepEqual(keys(next), ['b']);
  });

  test('a cursor resumes strictly after its position while objects change', async () => {
    const col = uniq('stable');
    await ctx.client.writeStorageObjects(alice, ['a', 'c', 'e', 'g', 'i', 'k'].map((key) => ({ collection: col, key, value: { key }, permission_read: 2 })));
    const p1 = await ctx.client.listStorageObjects(bob, col, undefined, 2);
    assert.deepEqual(p1.objects.map((o) => o.key), ['a', 'c']);
    // Before the position: insert, update, delete; the last returned object deleted; after it: insert and delete.
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'b', value: {}, permission_read: 2 }, { collection: col, key: 'a', value: { changed: true }, permission_read: 2 }]);
    await ctx.client.deleteStorageObjects(alice, { object_ids: [{ collection: col, key: 'c' }, { collection: col, key: 'g' }] });
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'd', value: {}, permission_read: 2 }]);
    const p2 = await ctx.client.listStorageObjects(bob, col, undefined, 2, p1.cursor);
    assert.deepEqual(p2.objects.map((o) => o.key), ['d', 'e']);
    // An object made private after the position disappears; one made public appears.
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'i', value: {}, permission_read: 1 }, { collection: col, key: 'j', value: {}, permission_read: 2 }]);
    const p3 = await ctx.client.listStorageObjects(bob, col, undefined, 2, p2.cursor);
    assert.deepEqual(p3.objects.map((o) => o.key), ['j', 'k']);
    assert.equal(p3.cursor, undefined);
  });

  test('a cursor only works for the listing it came from', async () => {
    const col = uniq('cur');
    const other = uniq('cur');
    for (const c of [col, other]) {
      await ctx.client.writeStorageObjects(alice, ['a', 'b', 'c'].map((key) => ({ collection: c, key, value: {}, permission_read: 2 })));
    }
    const page = await ctx.client.listStorageObjects(bob, col, undefined, 1);
    assert.ok(page.cursor);
    await expectClientError(ctx.client.listStorageObjects(bob, other, undefined, 1, page.cursor), 400, 3, BAD_CURSOR);
    await expectClientError(ctx.client.listStorageObjects(bob, col, alice.user_id, 1, page.cursor), 400, 3, BAD_CURSOR);
    const own = await ctx.client.listStorageObjects(alice, col, alice.user_id, 1);
    await expectClientError(ctx.client.listStorageObjects(alice, col, undefined, 1, own.cursor), 400, 3, BAD_CURSOR);
    await expectClientError(ctx.client.listStorageObjects(alice, col, bob.user_id, 1, own.cursor), 400, 3, BAD_CURSOR);
    // The same listing by another caller: a position only, permissions apply.
    const byBob = await ctx.client.listStorageObjects(bob, col, alice.user_id, 5, own.cursor);
    assert.deepEqual(byBob.objects.map((o) => o.key), ['b', 'c']);
    for (const bad of ['garbage!', 'e30', Buffer.from('[1,2]').toString('base64url'), Buffer.from('{"c":1}').toString('base64url'), 'x'.repeat(4200)]) {
      assertErrorBody(await rawList(bob, `${col}?cursor=${encodeURIComponent(bad)}`), 400, 3, BAD_CURSOR);
    }
  });
});

describe('bad input changes nothing', () => {
  let col;
  let snapshot;

  async function unchanged() {
    assert.deepEqual(await ownObjects(alice, col), snapshot, 'stored objects unchanged');
  }

  test('setup', async () => {
    col = uniq('bad');
    await ctx.client.writeStorageObjects(alice, [{ collection: col, key: 'k', value: { v: 1 } }]);
    snapshot = await ownObjects(alice, col);
    assert.equal(snapshot.length, 1);
  });

  test('write: malformed JSON and wrong types', async () => {
    for (const body of ['{"objects": [', '{"objects": [{"collection": "x",}]}', 'nope', '[]', '"objects"']) {
      assertErrorBody(await rawWrite(alice, body), 400, 3);
    }
    const good = { collection: col, key: 'k', value: '{"v":2}' };
    for (const objects of [
      'x', 5, { collection: col }, [1], [null], [[good]],
      [{ ...good, collection: 5 }], [{ ...good, key: ['k'] }], [{ ...good, value: { v: 2 } }], [{ ...good, version: 1 }],
      [{ ...good, permission_read: 'abc' }], [{ ...good, permission_read: 1.5 }], [{ ...good, permission_write: true }],
      [{ ...good, permission_read: 4294967297 }], [good, { ...good, key: 7 }],
    ]) {
      assertErrorBody(await rawWrite(alice, { objects }), 400, 3);
    }
    await unchanged();
  });

  test('write: Nakama rules and messages', async () => {
    const good = { collection: col, key: 'k', value: '{"v":2}' };
    const cases = [
      [{ ...good, collection: '' }, NOT_SET],
      [{ ...good, key: '' }, NOT_SET],
      [{ ...good, value: '' }, NOT_SET],
      [{ key: 'k', value: '{}' }, NOT_SET],
      [{ ...good, permission_read: 3 }, 'Invalid Read permission supplied. It must be either 0, 1 or 2.'],
      [{ ...good, permission_read: -1 }, 'Invalid Read permission supplied. It must be either 0, 1 or 2.'],
      [{ ...good, permission_write: 2 }, 'Invalid Write permission supplied. It must be either 0 or 1.'],
      [{ ...good, permission_write: -1 }, 'Invalid Write permission supplied. It must be either 0 or 1.'],
      [{ ...good, collection: 'c'.repeat(129) }, /at most 128 bytes/],
      [{ ...good, key: 'k'.repeat(129) }, /at most 128 bytes/],
    ];
    for (const v of ['[]', '[1]', '1', '"x"', 'null', 'true', '{', '{"a":}', '{"a":1}x', '{"a":1} {}', "{'a':1}", '{"a":01}',
      '{"a":1.}', '{"a":"\\q"}', '{"a" 1}', '{"a":1,}', ' [{}]', '{"a":[1,]}', '{"a":"x\u0001"}', 'x{}']) {
      cases.push([{ ...good, value: v }, 'Value must be a JSON object.']);
    }
    for (const [obj, msg] of cases) {
      // Alone, and after a valid object in the same batch: nothing is written.
      assertErrorBody(await rawWrite(alice, { objects: [obj] }), 400, 3, msg);
      assertErrorBody(await rawWrite(alice, { objects: [good, obj] }), 400, 3, msg);
    }
    await unchanged();
    // Bounds are inclusive; numbers of any size are JSON; whitespace around the object is fine.
    const edge = await rawWrite(bob, { objects: [
      { collection: 'c'.repeat(128), key: 'k'.repeat(128), value: '{"big": 1e400, "n": 123456789012345678901234567890}' },
      { collection: uniq('ws'), key: 'k', value: ' \t\r\n{}\n' },
    ] });
    assert.equal(edge.status, 200, edge.text);
  });

  test('read: wrong types, missing names, bad user ids', async () => {
    for (const body of ['{"object_ids": [', '{"object_ids": 5}', '{"object_ids": [5]}', '{"object_ids": [{"collection": 1, "key": "k"}]}',
      '{"object_ids": [{"collection": "c", "key": "k", "user_id": 7}]}']) {
      assertErrorBody(await rawRead(alice, body), 400, 3);
    }
    const id = { collection: col, key: 'k', user_id: alice.user_id };
    assertErrorBody(await rawRead(alice, { object_ids: [{ ...id, collection: '' }] }), 400, 3, NOT_SET);
    assertErrorBody(await rawRead(alice, { object_ids: [id, { ...id, key: '' }] }), 400, 3, NOT_SET);
    for (const user_id of ['not-a-uuid', '123', `${alice.user_id}x`, NIL]) {
      assertErrorBody(await rawRead(alice, { object_ids: [{ ...id, user_id }] }), 400, 3, BAD_USER);
    }
    // Upper-case UUIDs are accepted.
    const r = await rawRead(alice, { object_ids: [{ ...id, user_id: alice.user_id.toUpperCase() }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.objects.length, 1);
  });

  test('delete: wrong types and missing names', async () => {
    for (const body of ['{"object_ids": [', '{"object_ids": "k"}', '{"object_ids": [null]}', '{"object_ids": [{"collection": "c", "key": 1}]}',
      `{"object_ids": [{"collection": "${col}", "key": "k", "version": 5}]}`]) {
      assertErrorBody(await rawDelete(alice, body), 400, 3);
    }
    assertErrorBody(await rawDelete(alice, { object_ids: [{ collection: col, key: 'k' }, { collection: col }] }), 400, 3, NOT_SET);
    assertErrorBody(await rawDelete(alice, { object_ids: [{ key: 'k' }] }), 400, 3, NOT_SET);
    await unchanged();
  });

  test('list: limits, user ids, cursors', async () => {
    for (const limit of ['0', '101', '-1', '2147483647']) {
      assertErrorBody(await rawList(alice, `${col}?limit=${limit}`), 400, 3, BAD_LIMIT);
    }
    for (const limit of ['abc', '1.5', '', '99999999999', '%201']) {
      assertErrorBody(await rawList(alice, `${col}?limit=${limit}`), 400, 3, /^parsing field "limit": strconv.ParseInt: parsing /);
    }
    for (const user of ['nope', '1234', NIL.slice(1)]) {
      assertErrorBody(await rawList(alice, `${col}?user_id=${user}`), 400, 3, BAD_USER);
      assertErrorBody(await rawList(alice, `${col}/${user}`), 400, 3, BAD_USER);
    }
    // Collections no stored object can have: empty, not an error.
    for (const c of ['%00x', '%ff%fe', 'x%00']) {
      const r = await rawList(alice, `${c}?limit=10`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, {});
    }
    await unchanged();
  });

  test('no session: 401', async () => {
    const paths = [['PUT', '/v2/storage'], ['POST', '/v2/storage'], ['PUT', '/v2/storage/delete'], ['GET', `/v2/storage/${col}`], ['GET', `/v2/storage/${col}/${alice.user_id}`]];
    for (const [method, path] of paths) {
      const r = await request(ctx.srv, method, path, method === 'GET' ? {} : { json: {} });
      assertErrorBody(r, 401, 16);
    }
    await unchanged();
  });
});
