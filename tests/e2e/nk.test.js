// The nk functions over the store, called from Lua RPCs
// (tests/e2e/modules/nk/nk_store.lua) through nakama-js's client.rpc, with
// their effects checked through the client's normal API: accounts and
// users, authenticate/link/unlink and session tokens, storage, friends,
// groups, notifications (stored and live), channel messages (live on a
// joined socket and in the history) and wallets (GET /v2/account and the
// ledger). Errors come back as the RPC's error with the code and message
// the nk function raised.
//
// The `nk_call` RPC calls nk[fn](args[1..n]) and returns every result as
// {n, r1, r2, ...}; a JSON null argument is a nil argument. An empty Lua
// table comes back as {} (JSON cannot tell it from an empty array).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { Session } from '@heroiclabs/nakama-js';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { E2E_DIR, ApiError, startServer } from './lib/server.js';
import { uniq, uniqName, sleep, decodeJwt, UUID_RE } from './lib/http.js';
import { createSocket } from './lib/socket.js';
import WebSocket from 'ws';

const ctx = useServer({ args: ['--runtime.path', path.join(E2E_DIR, 'modules', 'nk'), '--workers', '2'] });

const NIL = '00000000-0000-0000-0000-000000000000';

/** A fresh device account: {s: session, id, name}. */
async function user(prefix = 'nk') {
  const name = uniqName(prefix);
  const { id, session } = await newDeviceSession(ctx.client, { username: name });
  return { s: session, id: session.user_id, name, device: id };
}

/** Calls nk[fn](...args) through the nk_call RPC as `as`; the packed results. */
async function nk(as, fn, ...args) {
  const res = await ctx.client.rpc(as.s, 'nk_call', { fn, args, n: args.length });
  return res.payload;
}

/** Expects nk[fn](...args) to fail with HTTP status, gRPC code and message. */
async function nkError(as, status, code, message, fn, ...args) {
  let err;
  try {
    const res = await ctx.client.rpc(as.s, 'nk_call', { fn, args, n: args.length });
    assert.fail(`${fn} should have failed, got ${JSON.stringify(res.payload)}`);
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ApiError)) throw err;
  assert.equal(err.status, status, `HTTP status of ${fn}: ${err.text}`);
  assert.equal(err.json.code, code, `code of ${fn}: ${err.text}`);
  if (message instanceof RegExp) assert.match(err.json.message, message);
  else assert.equal(err.json.message, message);
}

/** A Lua array that may have come back as {} when empty. */
const arr = (v) => (Array.isArray(v) ? v : v && typeof v === 'object' && Object.keys(v).length === 0 ? [] : v);

const randomUuid = () => crypto.randomUUID();

async function waitFor(pred, what) {
  for (let i = 0; i < 200; i++) {
    if (pred()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

// ------------------------------------------------------------------ accounts

test('account_get_id and accounts_get_id return Nakama account tables', async () => {
  const a = await user();
  const b = await user();
  const r = await nk(a, 'account_get_id', a.id);
  assert.equal(r.n, 1);
  const acc = r.r1;
  assert.equal(acc.user_id, a.id);
  assert.equal(acc.username, a.name);
  assert.equal(acc.user.user_id, a.id);
  assert.equal(acc.user.username, a.name);
  assert.equal(acc.user.online, false);
  assert.deepEqual(acc.wallet, {});
  assert.deepEqual(acc.metadata, {});
  assert.deepEqual(acc.devices, [{ id: a.device }]);
  assert.equal(acc.lang_tag, 'en');
  assert.equal(typeof acc.create_time, 'number');
  const account = await ctx.client.getAccount(a.s);
  assert.equal(acc.create_time, Date.parse(account.user.create_time) / 1000);
  assert.equal(acc.email, undefined);
  assert.equal(acc.custom_id, undefined);

  const many = await nk(a, 'accounts_get_id', [b.id, a.id, randomUuid()]);
  const ids = many.r1.map((x) => x.user_id).sort();
  assert.deepEqual(ids, [a.id, b.id].sort());
  for (const x of many.r1) assert.equal(x.devices.length, 1);
  assert.deepEqual(arr((await nk(a, 'accounts_get_id', [])).r1), []);

  // From the context: a script reading the caller's own account.
  const who = await ctx.client.rpc(a.s, 'whoami', {});
  assert.deepEqual(who.payload, { user_id: a.id, username: a.name, wallet: {}, devices: 1 });
});

test('account errors: bad and unknown user ids', async () => {
  const a = await user();
  await nkError(a, 400, 3, 'expects user ID to be a valid identifier', 'account_get_id', 'not-a-uuid');
  await nkError(a, 400, 3, 'expects user ID to be a string', 'account_get_id', null);
  await nkError(a, 404, 5, 'User account not found.', 'account_get_id', randomUuid());
  await nkError(a, 400, 3, 'expects each of user IDs to be a valid identifier', 'accounts_get_id', [a.id, 'x']);
  await nkError(a, 400, 3, 'expects user IDs to be a table of strings', 'accounts_get_id', 'x');
  await nkError(a, 404, 5, 'User account not found.', 'account_update_id', randomUuid(), null, null, 'Someone');
  await nkError(a, 404, 5, 'User account not found.', 'account_delete_id', randomUuid());
  await nkError(a, 400, 3, 'Cannot delete the system user.', 'account_delete_id', NIL);

  // A script sees the error as a string under pcall (uncaught, it keeps
  // its code, as nkError above shows).
  const p = await ctx.client.rpc(a.s, 'nk_pcall', { fn: 'account_get_id', args: [randomUuid()], n: 1 });
  assert.deepEqual(p.payload, {
    ok: false, kind: 'string', message: 'User account not found.', joined: 'failed: User account not found.',
  });
});

test('account_update_id changes what GET /v2/account shows', async () => {
  const a = await user();
  const other = await user();
  const newName = uniqName('renamed');
  const r = await nk(a, 'account_update_id', a.id, { level: 7, title: 'knight' }, newName, 'Sir A', 'Europe/Paris',
    'Paris', 'fr', 'https://example.com/a.png');
  assert.equal(r.n, 0);
  const account = await ctx.client.getAccount(a.s);
  assert.equal(account.user.username, newName);
  assert.equal(account.user.display_name, 'Sir A');
  assert.equal(account.user.timezone, 'Europe/Paris');
  assert.equal(account.user.location, 'Paris');
  assert.equal(account.user.lang_tag, 'fr');
  assert.equal(account.user.avatar_url, 'https://example.com/a.png');
  assert.deepEqual(JSON.parse(account.user.metadata), { level: 7, title: 'knight' });

  // nil and "" leave fields alone.
  await nk(a, 'account_update_id', a.id, null, '', null, null, null, null, 'https://example.com/b.png');
  const again = await ctx.client.getAccount(a.s);
  assert.equal(again.user.username, newName);
  assert.equal(again.user.display_name, 'Sir A');
  assert.equal(again.user.avatar_url, 'https://example.com/b.png');

  await nkError(a, 409, 6, 'Username is already in use.', 'account_update_id', a.id, null, other.name);
  await nkError(a, 400, 3, 'expects metadata to be a table of key-value pairs', 'account_update_id', a.id, [1, 2]);
  await nkError(a, 400, 3, 'expects metadata to be a table', 'account_update_id', a.id, 'x');
  assert.equal((await ctx.client.getAccount(a.s)).user.username, newName);
});

test('account_delete_id removes the account and what it owns', async () => {
  const a = await user();
  const victim = await user();
  await nk(a, 'storage_write', [{ collection: 'c', key: 'k', user_id: victim.id, value: { x: 1 } }]);
  await nk(a, 'wallet_update', victim.id, { gold: 5 }, null, true);
  const r = await nk(a, 'account_delete_id', victim.id, false);
  assert.equal(r.n, 0);
  // Its tokens are revoked at once, as DELETE /v2/account does.
  await assert.rejects(ctx.client.getAccount(victim.s), (e) => e instanceof ApiError && e.status === 401);
  assert.deepEqual(arr((await nk(a, 'storage_read', [{ collection: 'c', key: 'k', user_id: victim.id }])).r1), []);
  await nkError(a, 404, 5, 'User account not found.', 'wallet_ledger_list', victim.id);
  await nkError(a, 404, 5, 'User account not found.', 'account_get_id', victim.id);
});

test('users_get_id, users_get_username and users_get_random', async () => {
  const a = await user();
  const b = await user();
  const c = await user();
  const byId = await nk(a, 'users_get_id', [a.id, b.id, randomUuid()]);
  assert.deepEqual(byId.r1.map((u) => u.user_id).sort(), [a.id, b.id].sort());
  const ub = byId.r1.find((u) => u.user_id === b.id);
  assert.equal(ub.username, b.name);
  assert.deepEqual(ub.metadata, {});
  assert.equal(ub.edge_count, 0);
  assert.equal(ub.online, false);
  assert.equal(ub.devices, undefined, 'users have no account fields');
  assert.deepEqual(arr((await nk(a, 'users_get_id', null, ['fb1'])).r1), []);

  const byName = await nk(a, 'users_get_username', [c.name, 'nobody-' + uniq('x')]);
  assert.deepEqual(byName.r1.map((u) => u.user_id), [c.id]);

  const random = await nk(a, 'users_get_random', 2);
  assert.equal(random.r1.length, 2);
  for (const u of random.r1) {
    assert.match(u.user_id, UUID_RE);
    assert.notEqual(u.user_id, NIL);
  }
  assert.notEqual(random.r1[0].user_id, random.r1[1].user_id);
  assert.deepEqual(arr((await nk(a, 'users_get_random')).r1), []);
  await nkError(a, 400, 3, 'expects count to be a whole number from 0 to 1000', 'users_get_random', 1001);
});

// -------------------------------------------------------------- authenticate

test('authenticate_device/custom/email create or find accounts the client can sign in to', async () => {
  const admin = await user();
  const device = uniq('nkdevice');
  const name = uniqName('made');
  let r = await nk(admin, 'authenticate_device', device, name);
  assert.equal(r.n, 3);
  assert.match(r.r1, UUID_RE);
  assert.equal(r.r2, name);
  assert.equal(r.r3, true);
  const session = await ctx.client.authenticateDevice(device, false);
  assert.equal(session.user_id, r.r1);
  assert.equal(session.username, name);
  r = await nk(admin, 'authenticate_device', device, 'ignored_name');
  assert.deepEqual([r.r1, r.r2, r.r3], [session.user_id, name, false]);
  await nkError(admin, 404, 5, 'User account not found.', 'authenticate_device', uniq('nkdevice'), null, false);
  await nkError(admin, 400, 3, 'Device ID invalid, must be 10-128 bytes.', 'authenticate_device', 'short');

  const custom = uniq('custom');
  r = await nk(admin, 'authenticate_custom', custom);
  assert.equal(r.r3, true);
  assert.match(r.r2, /^[A-Za-z]{10}$/, 'a generated username');
  assert.equal((await ctx.client.authenticateCustom(custom, false)).user_id, r.r1);
  await nkError(admin, 409, 6, 'Username is already in use.', 'authenticate_custom', uniq('custom'), name);

  const email = `${uniqName('mail')}@example.com`;
  r = await nk(admin, 'authenticate_email', email.toUpperCase(), 'password123', null, true);
  assert.equal(r.r3, true);
  const emailUser = r.r1;
  const es = await ctx.client.authenticateEmail(email, 'password123', false);
  assert.equal(es.user_id, emailUser);
  r = await nk(admin, 'authenticate_email', email, 'password123');
  assert.deepEqual([r.r1, r.r3], [emailUser, false]);
  await nkError(admin, 401, 16, 'Invalid credentials.', 'authenticate_email', email, 'wrongpassword');
  await nkError(admin, 400, 3, 'Password must be at least 8 characters long.', 'authenticate_email', email, 'short');
  // No email: a username + password sign-in.
  r = await nk(admin, 'authenticate_email', '', 'password123', r.r2);
  assert.deepEqual([r.r1, r.r3], [emailUser, false]);
  await nkError(admin, 400, 3, 'expects username string when email is not supplied', 'authenticate_email', null,
    'password123');
});

test('authenticate_token_generate makes session tokens the server accepts', async () => {
  const a = await user();
  const before = Math.floor(Date.now() / 1000);
  let r = await nk(a, 'authenticate_token_generate', a.id, a.name, 0, { role: 'admin', tier: 'gold' });
  assert.equal(r.n, 2);
  const { header, payload } = decodeJwt(r.r1);
  assert.equal(header.alg, 'HS256');
  assert.equal(payload.uid, a.id);
  assert.equal(payload.usn, a.name);
  assert.deepEqual(payload.vrs, { role: 'admin', tier: 'gold' });
  assert.match(payload.tid, UUID_RE);
  assert.equal(payload.exp, r.r2);
  assert.ok(r.r2 >= before + 60 && r.r2 <= Math.floor(Date.now() / 1000) + 60, `default expiry: ${r.r2}`);
  const s = Session.restore(r.r1, '');
  const account = await ctx.client.getAccount(s);
  assert.equal(account.user.id, a.id);
  const who = await ctx.client.rpc(s, 'whoami', {});
  assert.equal(who.payload.user_id, a.id);

  const exp = Math.floor(Date.now() / 1000) + 3600;
  r = await nk(a, 'authenticate_token_generate', a.id, '', exp);
  assert.equal(r.r2, exp);
  assert.equal(decodeJwt(r.r1).payload.exp, exp);
  assert.match(decodeJwt(r.r1).payload.usn, /^[A-Za-z]{10}$/);

  await nkError(a, 400, 3, 'expects user ID to be a valid identifier', 'authenticate_token_generate', 'x', 'n');
  await nkError(a, 400, 3, 'vars values must be strings', 'authenticate_token_generate', a.id, 'n', 0, { k: 1 });
  await nkError(a, 400, 3, 'expects exp to be in the future', 'authenticate_token_generate', a.id, 'n', 1000);
});

test('link and unlink devices, custom ids and emails', async () => {
  const a = await user();
  const other = await user();
  const dev2 = uniq('linked');
  const custom = uniq('lcustom');
  const email = `${uniqName('link')}@example.com`;
  assert.equal((await nk(a, 'link_device', a.id, dev2)).n, 0);
  await nk(a, 'link_custom', a.id, custom);
  await nk(a, 'link_email', a.id, email, 'password123');
  let account = await ctx.client.getAccount(a.s);
  assert.deepEqual(account.devices.map((d) => d.id).sort(), [a.device, dev2].sort());
  assert.equal(account.custom_id, custom);
  assert.equal(account.email, email);
  assert.equal((await ctx.client.authenticateEmail(email, 'password123', false)).user_id, a.id);
  assert.equal((await ctx.client.authenticateDevice(dev2, false)).user_id, a.id);

  await nkError(a, 409, 6, 'Device ID is already in use.', 'link_device', other.id, dev2);
  await nkError(a, 409, 6, 'Custom ID is already in use.', 'link_custom', other.id, custom);
  await nkError(a, 409, 6, 'Email is already in use.', 'link_email', other.id, email, 'password123');
  await nkError(a, 404, 5, 'User account not found.', 'link_device', randomUuid(), uniq('dev'));
  await nkError(a, 400, 3, 'Custom ID invalid, must be 6-128 bytes.', 'link_custom', a.id, 'abc');

  // Without the value, unlink_custom and unlink_email take the user's own.
  await nk(a, 'unlink_custom', a.id);
  await nk(a, 'unlink_email', a.id, email.toUpperCase());
  await nk(a, 'unlink_device', a.id, dev2);
  account = await ctx.client.getAccount(a.s);
  assert.deepEqual(account.devices, [{ id: a.device }]);
  assert.equal(account.custom_id, undefined);
  assert.equal(account.email, undefined);
  const last = 'Cannot unlink last account identifier. Check profile exists and is not last link.';
  await nkError(a, 403, 7, last, 'unlink_device', a.id, a.device);
  await nkError(a, 403, 7, last, 'unlink_custom', a.id);
});

// ------------------------------------------------------------------- storage

test('storage_write is authoritative and clients read what it wrote', async () => {
  const a = await user();
  const b = await user();
  const coll = uniqName('coll');
  const r = await nk(a, 'storage_write', [
    { collection: coll, key: 'profile', user_id: a.id, value: { hp: 10, tags: ['x', 'y'] }, permission_read: 2,
      permission_write: 0 },
    { collection: coll, key: 'config', value: { motd: 'hello' }, permission_read: 2 },
    { collection: coll, key: 'secret', user_id: b.id, value: { pin: 1234 }, permission_read: 0 },
  ]);
  const acks = r.r1;
  assert.equal(acks.length, 3);
  assert.deepEqual(acks.map((x) => [x.collection, x.key, x.user_id]), [
    [coll, 'profile', a.id], [coll, 'config', NIL], [coll, 'secret', b.id]]);
  for (const x of acks) assert.match(x.version, /^[0-9a-f]{32}$/);

  const seen = await ctx.client.readStorageObjects(b.s, { object_ids: [
    { collection: coll, key: 'profile', user_id: a.id },
    { collection: coll, key: 'secret', user_id: b.id },
  ] });
  assert.equal(seen.objects.length, 1, 'permission_read 0 hides the secret from its owner');
  assert.deepEqual(seen.objects[0].value, { hp: 10, tags: ['x', 'y'] });
  assert.equal(seen.objects[0].version, acks[0].version);
  assert.equal(seen.objects[0].permission_write, 0);
  // permission_write 0: the owner cannot overwrite what the server wrote.
  await assert.rejects(ctx.client.writeStorageObjects(a.s, [{ collection: coll, key: 'profile', value: { hp: 99 } }]),
    (e) => e instanceof ApiError && e.status === 400 && /permission denied/.test(e.json.message));

  // The runtime reads everything, system objects included.
  const read = await nk(a, 'storage_read', [
    { collection: coll, key: 'secret', user_id: b.id },
    { collection: coll, key: 'config' },
    { collection: coll, key: 'nothing', user_id: a.id },
  ]);
  assert.equal(read.r1.length, 2);
  const [secret, config] = read.r1;
  assert.deepEqual([secret.user_id, secret.value, secret.permission_read, secret.permission_write],
    [b.id, { pin: 1234 }, 0, 1]);
  assert.deepEqual([config.user_id, config.key, config.value], [NIL, 'config', { motd: 'hello' }]);
  assert.equal(typeof config.create_time, 'number');
  assert.ok(Math.abs(config.update_time - Date.now() / 1000) < 60);

  // Versions: a stale version rejects the whole batch.
  await nkError(a, 400, 3, 'Storage write rejected - version check failed.', 'storage_write', [
    { collection: coll, key: 'fresh', user_id: a.id, value: { n: 1 } },
    { collection: coll, key: 'profile', user_id: a.id, value: { hp: 1 }, version: 'deadbeef' },
  ]);
  assert.deepEqual(arr((await nk(a, 'storage_read', [{ collection: coll, key: 'fresh', user_id: a.id }])).r1), []);
  const ok = await nk(a, 'storage_write', [
    { collection: coll, key: 'profile', user_id: a.id, value: { hp: 11 }, version: acks[0].version }]);
  assert.notEqual(ok.r1[0].version, acks[0].version);
  await nkError(a, 400, 3, 'Storage write rejected - version check failed.', 'storage_write', [
    { collection: coll, key: 'config', value: { motd: 'again' }, version: '*' }]);

  // Bad input.
  await nkError(a, 404, 5, /^User account not found: [0-9a-f-]{36}\.$/, 'storage_write', [
    { collection: coll, key: 'k', user_id: randomUuid(), value: {} }]);
  await nkError(a, 400, 3, 'expects user_id to be a valid ID', 'storage_write', [
    { collection: coll, key: 'k', user_id: 'bad', value: {} }]);
  await nkError(a, 400, 3, 'expects value to be a table', 'storage_write', [{ collection: coll, key: 'k', value: 'x' }]);
  await nkError(a, 400, 3, 'expects key to be a non-empty string', 'storage_write', [{ collection: coll, value: {} }]);
  await nkError(a, 400, 3, 'expects permission_read to be an integer from 0 to 2', 'storage_write', [
    { collection: coll, key: 'k', value: {}, permission_read: 3 }]);
  await nkError(a, 400, 3, 'expects a valid set of objects', 'storage_write', ['x']);
});

test('storage_list pages with cursors; storage_delete removes objects', async () => {
  const a = await user();
  const b = await user();
  const coll = uniqName('list');
  const objects = [];
  for (const k of ['k1', 'k2', 'k3']) objects.push({ collection: coll, key: k, user_id: a.id, value: { k }, permission_read: 2 });
  objects.push({ collection: coll, key: 'k1', user_id: b.id, value: { k: 'b' }, permission_read: 1 });
  await nk(a, 'storage_write', objects);

  // One owner, two per page.
  let r = await nk(a, 'storage_list', a.id, coll, 2);
  assert.deepEqual(r.r1.map((o) => o.key), ['k1', 'k2']);
  assert.equal(typeof r.r2, 'string');
  r = await nk(a, 'storage_list', a.id, coll, 2, r.r2);
  assert.deepEqual(r.r1.map((o) => o.key), ['k3']);
  assert.equal(r.r2, undefined, 'no cursor after the last page');

  // Every owner, as the server; and as b (the caller's permissions apply).
  r = await nk(a, 'storage_list', '', coll, 10);
  assert.equal(r.r1.length, 4);
  r = await nk(a, 'storage_list', null, coll, 10, null, b.id);
  assert.deepEqual(r.r1.map((o) => `${o.key}:${o.user_id === a.id ? 'a' : 'b'}`).sort(), ['k1:a', 'k2:a', 'k3:a']);
  r = await nk(a, 'storage_list', b.id, coll, 10, null, b.id);
  assert.deepEqual(r.r1.map((o) => o.value.k), ['b']);

  // The client sees the same objects.
  const listed = await ctx.client.listStorageObjects(b.s, coll, a.id, 10);
  assert.deepEqual(listed.objects.map((o) => o.key), ['k1', 'k2', 'k3']);

  await nkError(a, 400, 3, 'Malformed cursor was used.', 'storage_list', a.id, coll, 2, 'bogus');
  await nkError(a, 400, 3, 'expects collection to be a non-empty string', 'storage_list', a.id, '', 2);

  // Delete: a wrong version rejects all; without versions they go.
  await nkError(a, 400, 3, 'Storage delete rejected - not found, version check failed, or permission denied.',
    'storage_delete', [{ collection: coll, key: 'k1', user_id: a.id }, { collection: coll, key: 'k2', user_id: a.id,
      version: 'deadbeef' }]);
  assert.equal((await nk(a, 'storage_list', a.id, coll, 10)).r1.length, 3);
  await nk(a, 'storage_delete', [{ collection: coll, key: 'k1', user_id: a.id }, { collection: coll, key: 'k2', user_id: a.id }]);
  const left = await ctx.client.listStorageObjects(a.s, coll, a.id, 10);
  assert.deepEqual(left.objects.map((o) => o.key), ['k3']);

  // All of it from one script call.
  const round = await ctx.client.rpc(a.s, 'storage_roundtrip', {});
  assert.deepEqual(round.payload, { acks: 2, read: [1, 2, 2], versions_match: true, listed: 2, after: 0 });
});

// ------------------------------------------------------------------- friends

test('friends_add, friends_list, friends_block and friends_delete', async () => {
  const a = await user();
  const b = await user();
  const c = await user();
  // a invites b (by id) and c (by username).
  assert.equal((await nk(a, 'friends_add', a.id, a.name, [b.id], [c.name], { since: 2024 })).n, 0);
  const bList = await ctx.client.listFriends(b.s);
  assert.deepEqual(bList.friends.map((f) => [f.user.id, f.state]), [[a.id, 2]]);
  let r = await nk(a, 'friends_list', a.id);
  assert.deepEqual(r.r1.map((f) => [f.user.user_id, f.state]).sort(), [[b.id, 1], [c.id, 1]].sort());
  assert.deepEqual(r.r1[0].metadata, { since: 2024 });
  assert.equal(typeof r.r1[0].update_time, 'number');
  assert.equal(r.r2, undefined);

  // b accepts: both sides are friends.
  await nk(a, 'friends_add', b.id, b.name, [a.id]);
  assert.deepEqual((await ctx.client.listFriends(a.s, 0)).friends.map((f) => f.user.id), [b.id]);
  r = await nk(a, 'friends_list', b.id, 10, 0);
  assert.deepEqual(r.r1.map((f) => [f.user.user_id, f.user.username, f.state]), [[a.id, a.name, 0]]);

  // Paging one at a time.
  r = await nk(a, 'friends_list', a.id, 1);
  assert.equal(r.r1.length, 1);
  const first = r.r1[0].user.user_id;
  r = await nk(a, 'friends_list', a.id, 1, null, r.r2);
  assert.equal(r.r1.length, 1);
  assert.notEqual(r.r1[0].user.user_id, first);
  await nkError(a, 400, 3, 'Cursor is invalid.', 'friends_list', a.id, 1, 0, r.r2 || 'bad');

  // c blocks a; a deletes b.
  await nk(a, 'friends_block', c.id, c.name, [a.id]);
  assert.deepEqual((await ctx.client.listFriends(c.s, 3)).friends.map((f) => f.user.id), [a.id]);
  await nk(a, 'friends_delete', a.id, a.name, [b.id]);
  assert.deepEqual((await ctx.client.listFriends(b.s)).friends, []);
  assert.deepEqual(arr((await nk(a, 'friends_list', a.id)).r1), []);

  await nkError(a, 400, 3, 'cannot add self as friend', 'friends_add', a.id, a.name, [a.id]);
  await nkError(a, 400, 3, 'cannot block self', 'friends_block', a.id, a.name, null, [a.name]);
  await nkError(a, 400, 3, 'no valid ID or username was provided', 'friends_add', a.id, a.name, null, ['nobody_' + uniq('x')]);
  await nkError(a, 404, 5, 'User account not found.', 'friends_add', randomUuid(), 'ghost', [a.id]);
  await nkError(a, 404, 5, 'User account not found.', 'friends_list', randomUuid());
  await nkError(a, 400, 3, 'expects state to be a whole number from -1 to 3', 'friends_list', a.id, 10, 4);
});

// -------------------------------------------------------------------- groups

test('group_create, group_update, groups_get_id, groups_list and group_delete', async () => {
  const a = await user();
  const name = uniqName('guild');
  const r = await nk(a, 'group_create', a.id, name, null, 'de', 'A guild', 'https://g/x.png', true, { rank: 1 }, 50);
  const g = r.r1;
  assert.match(g.id, UUID_RE);
  assert.deepEqual([g.name, g.creator_id, g.lang_tag, g.description, g.avatar_url, g.open, g.edge_count, g.max_count],
    [name, a.id, 'de', 'A guild', 'https://g/x.png', true, 1, 50]);
  assert.deepEqual(g.metadata, { rank: 1 });
  const listed = await ctx.client.listGroups(a.s, name);
  assert.deepEqual(listed.groups.map((x) => x.id), [g.id]);
  const mine = await ctx.client.listUserGroups(a.s, a.id);
  assert.deepEqual(mine.user_groups.map((x) => [x.group.id, x.state]), [[g.id, 0]]);

  const renamed = uniqName('renamed');
  await nk(a, 'group_update', g.id, null, renamed, null, null, 'New text', null, false, { rank: 2 }, 20);
  const got = await nk(a, 'groups_get_id', [g.id, randomUuid()]);
  assert.equal(got.r1.length, 1);
  assert.deepEqual([got.r1[0].name, got.r1[0].description, got.r1[0].open, got.r1[0].max_count, got.r1[0].metadata],
    [renamed, 'New text', false, 20, { rank: 2 }]);
  assert.deepEqual((await ctx.client.listGroups(a.s, renamed)).groups.map((x) => x.name), [renamed]);

  const byName = await nk(a, 'groups_list', renamed);
  assert.deepEqual(byName.r1.map((x) => x.id), [g.id]);
  assert.equal(byName.r2, undefined);

  // As a caller that is not an admin: refused.
  const b = await user();
  await nkError(a, 404, 5, "Group not found or you're not allowed to update.", 'group_update', g.id, b.id, 'x');
  await nkError(a, 409, 6, 'Group name is in use.', 'group_create', b.id, renamed);
  await nkError(a, 404, 5, 'Group not found.', 'group_update', randomUuid(), null, 'x');
  await nkError(a, 400, 3, 'expects group name not be empty', 'group_create', a.id, '');
  await nkError(a, 404, 5, 'User account not found.', 'group_create', randomUuid(), uniqName('g'));
  await nkError(a, 400, 3, 'expects max count to be a whole number from 1 to 2147483647', 'group_create', a.id,
    uniqName('g'), null, null, null, null, false, null, 0);
  await nkError(a, 400, 3, 'name filter cannot be combined with any other filter', 'groups_list', 'x', 'en');

  await nk(a, 'group_delete', g.id);
  assert.deepEqual((await ctx.client.listGroups(a.s, renamed)).groups, []);
  await nkError(a, 404, 5, 'Group not found.', 'group_delete', g.id);
});

test('group membership: join, add, kick, leave and the listings', async () => {
  const owner = await user();
  const b = await user();
  const c = await user();
  const d = await user();
  const g = (await nk(owner, 'group_create', owner.id, uniqName('open'), null, null, null, null, true)).r1;
  await nk(owner, 'group_user_join', g.id, b.id, b.name);
  await nk(owner, 'group_users_add', g.id, [c.id]);
  let users = await ctx.client.listGroupUsers(owner.s, g.id);
  assert.deepEqual(users.group_users.map((x) => [x.user.id, x.state]),
    [[owner.id, 0], [b.id, 2], [c.id, 2]]);

  let r = await nk(owner, 'group_users_list', g.id, 2);
  assert.deepEqual(r.r1.map((x) => [x.user.user_id, x.state]), [[owner.id, 0], [b.id, 2]]);
  r = await nk(owner, 'group_users_list', g.id, 2, null, r.r2);
  assert.deepEqual(r.r1.map((x) => x.user.user_id), [c.id]);
  assert.equal(r.r2, undefined);
  r = await nk(owner, 'group_users_list', g.id, 10, 2);
  assert.deepEqual(r.r1.map((x) => x.user.username).sort(), [b.name, c.name].sort());

  r = await nk(owner, 'user_groups_list', b.id);
  assert.deepEqual(r.r1.map((x) => [x.group.id, x.state, x.group.edge_count]), [[g.id, 2, 3]]);

  // b is a member, not an admin: b's add is refused; the system's is not.
  await nkError(owner, 404, 5, 'Group not found or permission denied.', 'group_users_add', g.id, [d.id], b.id);
  await nk(owner, 'group_users_add', g.id, [d.id], owner.id);
  await nk(owner, 'group_users_kick', g.id, [c.id, d.id]);
  await nk(owner, 'group_user_leave', g.id, b.id, b.name);
  users = await ctx.client.listGroupUsers(owner.s, g.id);
  assert.deepEqual(users.group_users.map((x) => x.user.id), [owner.id]);
  assert.deepEqual(arr((await nk(owner, 'user_groups_list', c.id)).r1), []);

  await nkError(owner, 400, 3, 'Cannot leave group when you are the last superadmin.', 'group_user_leave', g.id,
    owner.id, owner.name);
  await nkError(owner, 404, 5, 'Group not found.', 'group_user_join', randomUuid(), b.id, b.name);
  await nkError(owner, 404, 5, 'User account not found.', 'group_user_join', g.id, randomUuid(), 'ghost');
  await nkError(owner, 404, 5, 'One or more users not found.', 'group_users_add', g.id, [randomUuid()]);
  await nkError(owner, 400, 3, 'expects each of user IDs to be a valid identifier', 'group_users_kick', g.id, ['x']);
  await nkError(owner, 404, 5, 'Group not found.', 'group_users_list', randomUuid());
  await nkError(owner, 400, 3, 'Cursor is invalid.', 'user_groups_list', b.id, 10, null, 'bogus');

  // A closed group: joining makes a join request (state 3).
  const closed = (await nk(owner, 'group_create', owner.id, uniqName('closed'))).r1;
  assert.equal(closed.open, false);
  assert.equal(closed.max_count, 100);
  await nk(owner, 'group_user_join', closed.id, b.id, b.name);
  r = await nk(owner, 'group_users_list', closed.id, 100, 3);
  assert.deepEqual(r.r1.map((x) => x.user.user_id), [b.id]);
});

// ------------------------------------------------------------- notifications

test('notification_send and notifications_send store and push notifications', async () => {
  const a = await user();
  const b = await user();
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  const live = [];
  socket.onnotification = (n) => live.push(n);
  await socket.connect(b.s, false, 3000);
  try {
    // online: an open socket on this node.
    const online = await nk(a, 'users_get_id', [a.id, b.id]);
    assert.deepEqual(online.r1.map((u) => [u.user_id, u.online]).sort(), [[a.id, false], [b.id, true]].sort());
    assert.equal((await nk(a, 'account_get_id', b.id)).r1.user.online, true);

    await nk(a, 'notification_send', b.id, 'Reward', { coins: 5 }, 101, a.id, true);
    await nk(a, 'notification_send', b.id, 'Ephemeral', {}, 102);
    await waitFor(() => live.length === 2, 'two live notifications');
    assert.deepEqual(live.map((n) => [n.subject, n.code, n.sender_id, n.persistent || false]),
      [['Reward', 101, a.id, true], ['Ephemeral', 102, NIL, false]]);
    assert.deepEqual(live[0].content, { coins: 5 });

    await nk(a, 'notifications_send', [
      { user_id: b.id, subject: 'One', content: { i: 1 }, code: 201, persistent: true },
      { user_id: a.id, subject: 'Two', content: { i: 2 }, code: 202, persistent: true, sender_id: b.id },
    ]);
    await waitFor(() => live.length === 3, 'the batch notification');
    assert.equal(live[2].subject, 'One');
    const stored = await ctx.client.listNotifications(b.s, 10);
    assert.deepEqual(stored.notifications.map((n) => [n.subject, n.code, n.content]),
      [['Reward', 101, { coins: 5 }], ['One', 201, { i: 1 }]]);
    const storedA = await ctx.client.listNotifications(a.s, 10);
    assert.deepEqual(storedA.notifications.map((n) => [n.subject, n.sender_id]), [['Two', b.id]]);

    await nkError(a, 400, 3, 'expects code number to be a positive integer', 'notification_send', b.id, 's', {}, 0);
    await nkError(a, 400, 3, 'expects subject to be a non-empty string', 'notification_send', b.id, '', {}, 1);
    await nkError(a, 400, 3, 'expects content to be a table', 'notification_send', b.id, 's', 'x', 1);
    await nkError(a, 404, 5, /^User account not found: /, 'notification_send', randomUuid(), 's', {}, 1, null, true);
    // A batch with one bad recipient sends nothing.
    await nkError(a, 404, 5, /^User account not found: /, 'notifications_send', [
      { user_id: b.id, subject: 'Never', content: {}, code: 1, persistent: true },
      { user_id: randomUuid(), subject: 'Never', content: {}, code: 1, persistent: true }]);
    assert.equal((await ctx.client.listNotifications(b.s, 10)).notifications.length, 2);
  } finally {
    socket.disconnect(false);
  }
});

// ---------------------------------------------------------------------- chat

test('channel_message_send reaches sockets joined to the channel', async () => {
  const a = await user();
  const b = await user();
  const room = uniqName('room');
  const id = (await nk(a, 'channel_id_build', '', room, 1)).r1;
  assert.equal(id, `2...${room}`);
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  const messages = [];
  socket.onchannelmessage = (m) => messages.push(m);
  await socket.connect(b.s, false, 3000);
  try {
    const ch = await socket.joinChat(room, 1, true, false);
    assert.equal(ch.id, id);
    const r = await nk(a, 'channel_message_send', id, { text: 'hello' }, a.id, a.name, true);
    const ack = r.r1;
    assert.equal(ack.channelId, id);
    assert.match(ack.messageId, UUID_RE);
    assert.equal(ack.code, 0);
    assert.equal(ack.username, a.name);
    assert.equal(ack.persistent, true);
    assert.equal(typeof ack.createTime, 'number');
    await waitFor(() => messages.length === 1, 'the channel message');
    const m = messages[0];
    assert.deepEqual([m.channel_id, m.message_id, m.sender_id, m.username, m.room_name], [id, ack.messageId, a.id,
      a.name, room]);
    assert.deepEqual(m.content, { text: 'hello' });

    // A system message that is not kept: live only.
    await nk(a, 'channel_message_send', id, { text: 'psst' });
    await waitFor(() => messages.length === 2, 'the second message');
    assert.equal(messages[1].sender_id, NIL);
    assert.deepEqual(messages[1].content, { text: 'psst' });
    const history = await ctx.client.listChannelMessages(b.s, id, 10, true);
    assert.deepEqual(history.messages.map((x) => x.message_id), [ack.messageId]);

    await nkError(a, 400, 3, 'Invalid channel identifier', 'channel_message_send', 'nope', {});
    await nkError(a, 400, 3, 'expects message content to be a table of key-value pairs', 'channel_message_send', id,
      [1, 2]);
    await nkError(a, 400, 3, 'expects sender ID to be a valid identifier', 'channel_message_send', id, {}, 'bad');
  } finally {
    socket.disconnect(false);
  }

  // Direct and group channel ids.
  const [lo, hi] = [a.id, b.id].sort();
  assert.equal((await nk(a, 'channel_id_build', a.id, b.id, 2)).r1, `4.${lo}.${hi}.`);
  assert.equal((await nk(a, 'channel_id_build', b.id, a.id, 2)).r1, `4.${lo}.${hi}.`);
  const gid = randomUuid();
  assert.equal((await nk(a, 'channel_id_build', null, gid, 3)).r1, `3.${gid}..`);
  await nkError(a, 400, 3, 'expects channel type to be a whole number from 1 to 3', 'channel_id_build', '', room, 4);
  await nkError(a, 400, 3, 'Invalid channel target.', 'channel_id_build', '', 'x'.repeat(65), 1);
  await nkError(a, 400, 3, 'expects a sender ID for a direct channel', 'channel_id_build', '', b.id, 2);
  await nkError(a, 404, 5, 'User account not found.', 'channel_id_build', a.id, randomUuid(), 2);
});

// -------------------------------------------------------------------- wallet

test('wallet_update changes the balances GET /v2/account shows', async () => {
  const a = await user();
  let r = await nk(a, 'wallet_update', a.id, { gold: 100, gems: 5 }, { reason: 'signup' }, true);
  assert.equal(r.n, 2);
  assert.deepEqual(r.r1, { gold: 100, gems: 5 });
  assert.deepEqual(r.r2, {});
  assert.deepEqual(JSON.parse((await ctx.client.getAccount(a.s)).wallet), { gems: 5, gold: 100 });

  r = await nk(a, 'wallet_update', a.id, { gold: -30 });
  assert.deepEqual([r.r1, r.r2], [{ gold: 70, gems: 5 }, { gold: 100, gems: 5 }]);

  // Going negative fails with nothing changed.
  await nkError(a, 400, 9, `Wallet update rejected: negative balance for 'gold' of user ${a.id}.`, 'wallet_update',
    a.id, { gold: -71, gems: 1 });
  assert.deepEqual(JSON.parse((await ctx.client.getAccount(a.s)).wallet), { gems: 5, gold: 70 });
  const whoami = await ctx.client.rpc(a.s, 'whoami', {});
  assert.deepEqual(whoami.payload.wallet, { gems: 5, gold: 70 });

  // A script's purchase: spend under pcall, re-raise as its own error.
  const bought = await ctx.client.rpc(a.s, 'buy', { item: 'sword', price: 50 });
  assert.deepEqual(bought.payload, { gold: 20, before: 70 });
  let err;
  try {
    await ctx.client.rpc(a.s, 'buy', { item: 'castle', price: 500 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ApiError);
  assert.equal(err.status, 400);
  assert.equal(err.json.code, 9);
  assert.equal(err.json.message, `cannot afford castle: Wallet update rejected: negative balance for 'gold' of user ${a.id}.`);
  assert.deepEqual(JSON.parse((await ctx.client.getAccount(a.s)).wallet), { gems: 5, gold: 20, sword: 1 });

  await nkError(a, 404, 5, /^User account not found: /, 'wallet_update', randomUuid(), { gold: 1 });
  await nkError(a, 400, 3, 'expects changeset values to be whole numbers', 'wallet_update', a.id, { gold: 1.5 });
  await nkError(a, 400, 3, 'expects changeset values to be whole numbers', 'wallet_update', a.id, { gold: 'x' });
  await nkError(a, 400, 3, 'expects changeset keys to be strings', 'wallet_update', a.id, [5]);
  await nkError(a, 400, 3, 'expects user ID to be a valid identifier', 'wallet_update', 'bad', { gold: 1 });
});

test('wallets_update is all or nothing; wallet_ledger_list pages the ledger', async () => {
  const a = await user();
  const b = await user();
  let r = await nk(a, 'wallets_update', [
    { user_id: a.id, changeset: { gold: 10 }, metadata: { n: 1 } },
    { user_id: b.id, changeset: { gold: 3 } },
  ], true);
  assert.deepEqual(r.r1, [
    { user_id: a.id, updated: { gold: 10 }, previous: {} },
    { user_id: b.id, updated: { gold: 3 }, previous: {} },
  ]);
  await nkError(a, 400, 9, `Wallet update rejected: negative balance for 'gold' of user ${b.id}.`, 'wallets_update', [
    { user_id: a.id, changeset: { gold: -1 } },
    { user_id: b.id, changeset: { gold: -4 } },
  ], true);
  assert.deepEqual(JSON.parse((await ctx.client.getAccount(a.s)).wallet), { gold: 10 });
  assert.deepEqual(JSON.parse((await ctx.client.getAccount(b.s)).wallet), { gold: 3 });
  await nkError(a, 400, 3, 'expects changeset to be supplied', 'wallets_update', [{ user_id: a.id }]);

  for (let i = 1; i <= 3; i++) await nk(a, 'wallet_update', a.id, { gold: i }, { step: i }, true);
  await nk(a, 'wallet_update', a.id, { gold: 100 }); // not recorded

  r = await nk(a, 'wallet_ledger_list', a.id, 2);
  assert.deepEqual(r.r1.map((x) => x.changeset), [{ gold: 10 }, { gold: 1 }]);
  assert.deepEqual(r.r1.map((x) => x.metadata), [{ n: 1 }, { step: 1 }]);
  for (const x of r.r1) {
    assert.match(x.id, UUID_RE);
    assert.equal(x.user_id, a.id);
    assert.equal(typeof x.create_time, 'number');
  }
  assert.notEqual(r.r2, '');
  r = await nk(a, 'wallet_ledger_list', a.id, 2, r.r2);
  assert.deepEqual(r.r1.map((x) => x.changeset), [{ gold: 2 }, { gold: 3 }]);
  assert.equal(r.r2, '', 'an empty cursor after the last page, as in Nakama');
  r = await nk(a, 'wallet_ledger_list', b.id);
  assert.deepEqual(r.r1.map((x) => x.changeset), [{ gold: 3 }]);
  assert.deepEqual(JSON.parse((await ctx.client.getAccount(a.s)).wallet), { gold: 116 });

  await nkError(a, 400, 3, 'Cursor is invalid.', 'wallet_ledger_list', b.id, 2, (await nk(a, 'wallet_ledger_list', a.id,
    1)).r2);
  await nkError(a, 400, 3, 'expects limit to be a whole number from 0 to 100', 'wallet_ledger_list', a.id, 101);
});

// ------------------------------------------------------------ memory budget

test('nk functions stopped by the memory budget midway free what they held', async () => {
  // A 1 MiB budget and calls that fill it to just below the edge, so the
  // budget runs out at every point of the call, inside the nk functions
  // too. The state is discarded each time; whatever the store handed back
  // must still be freed (an ASan build fails the server's exit on a leak).
  const srv = await startServer({ args: ['--runtime.path', path.join(E2E_DIR, 'modules', 'nk'),
    '--runtime.lua_memory_mb', '1', '--workers', '1', '--database.max_open_conns', '1'] });
  try {
    const client = srv.client();
    const s = await client.authenticateDevice(uniq('oomdevice'), true, uniqName('oom'));
    const me = s.user_id;
    await client.rpc(s, 'nk_call', { fn: 'storage_write', n: 1, args: [[
      { collection: 'oom', key: 'a', user_id: me, value: { text: 'x'.repeat(2000) } }]] });
    await client.rpc(s, 'nk_call', { fn: 'wallet_update', n: 4, args: [me, { gold: 1 }, null, true] });
    const calls = [
      { fn: 'account_get_id', args: [me] },
      { fn: 'storage_read', args: [[{ collection: 'oom', key: 'a', user_id: me }]] },
      { fn: 'users_get_random', args: [10] },
      { fn: 'wallet_ledger_list', args: [me] },
      { fn: 'wallet_update', args: [me, { gold: 0 }] },
    ];
    const probe = async (call, fill) => {
      try {
        await client.rpc(s, 'oom_probe', { fill, fn: call.fn, args: call.args, n: call.args.length });
        return true;
      } catch (e) {
        assert.ok(e instanceof ApiError, String(e));
        assert.equal(e.json.message, 'Lua call exceeded its memory budget (1 MiB).');
        return false;
      }
    };
    for (const call of calls) {
      // The first fill that fails, to within 50, then every fill around it.
      let edge = 0;
      while (await probe(call, edge)) edge += 50;
      assert.ok(edge > 0, `${call.fn} fails even with nothing filled`);
      const outcomes = [];
      for (let fill = edge - 60; fill <= edge; fill++) outcomes.push(await probe(call, fill));
      assert.ok(outcomes.includes(true) && outcomes.includes(false), `${call.fn}: ${outcomes}`);
    }
    // A fresh state works normally afterwards.
    const r = await client.rpc(s, 'nk_call', { fn: 'account_get_id', args: [me], n: 1 });
    assert.equal(r.payload.r1.user_id, me);
    await srv.stop();
  } catch (e) {
    await srv.kill();
    throw e;
  } finally {
    srv.cleanup();
  }
});

// ------------------------------------------------------------ second batch

test('group_users_ban, promote and demote follow the roles', async () => {
  const owner = await user();
  const b = await user();
  const c = await user();
  const g = (await nk(owner, 'group_create', owner.id, uniqName('roles'), null, null, null, null, true)).r1;
  await nk(owner, 'group_users_add', g.id, [b.id, c.id]);
  await nk(owner, 'group_users_promote', g.id, [b.id], owner.id);
  let users = await ctx.client.listGroupUsers(owner.s, g.id);
  assert.deepEqual(users.group_users.map((x) => [x.user.id, x.state]), [[owner.id, 0], [b.id, 1], [c.id, 2]]);
  // The system promotes without a caller; b (admin) cannot promote to its own rank's peer above it.
  await nk(owner, 'group_users_promote', g.id, [b.id]);
  users = await ctx.client.listGroupUsers(owner.s, g.id);
  assert.deepEqual(users.group_users.map((x) => [x.user.id, x.state]).sort(),
    [[owner.id, 0], [b.id, 0], [c.id, 2]].sort());
  await nk(owner, 'group_users_demote', g.id, [b.id], owner.id);
  await nk(owner, 'group_users_demote', g.id, [b.id], owner.id);
  users = await ctx.client.listGroupUsers(owner.s, g.id);
  assert.deepEqual(users.group_users.map((x) => [x.user.id, x.state]).sort(),
    [[owner.id, 0], [b.id, 2], [c.id, 2]].sort());
  // c, a member, may not ban; the owner may: c is then banned (state 4), not a member.
  await nkError(owner, 404, 5, 'Group not found or permission denied.', 'group_users_ban', g.id, [b.id], c.id);
  await nk(owner, 'group_users_ban', g.id, [c.id], owner.id);
  const r = await nk(owner, 'group_users_list', g.id, 10, 4);
  assert.deepEqual(r.r1.map((x) => [x.user.user_id, x.state]), [[c.id, 4]]);
  assert.equal((await nk(owner, 'groups_get_id', [g.id])).r1[0].edge_count, 2);
  // A banned user cannot join again.
  await nk(owner, 'group_user_join', g.id, c.id, c.name);
  assert.deepEqual(arr((await nk(owner, 'user_groups_list', c.id)).r1), []);
  await nkError(owner, 400, 3, 'expects user IDs to be a table', 'group_users_promote', g.id, 'x');
  await nkError(owner, 400, 3, 'expects group ID to be a valid identifier', 'group_users_demote', 'x', [b.id]);
  await nkError(owner, 404, 5, 'Group not found or permission denied.', 'group_users_ban', randomUuid(), [b.id],
    owner.id);
});

test('friends_of_friends_list pages the friends of friends', async () => {
  const a = await user();
  const b = await user();
  const c = await user();
  const d = await user();
  // a <-> b, b <-> c, b <-> d: c and d are friends of a's friend b.
  for (const [x, y] of [[a, b], [b, c], [b, d]]) {
    await nk(x, 'friends_add', x.id, x.name, [y.id]);
    await nk(y, 'friends_add', y.id, y.name, [x.id]);
  }
  let r = await nk(a, 'friends_of_friends_list', a.id, 1);
  assert.equal(r.r1.length, 1);
  assert.equal(r.r1[0].referrer, b.id);
  const first = r.r1[0].user.user_id;
  assert.equal(typeof r.r2, 'string');
  r = await nk(a, 'friends_of_friends_list', a.id, 1, r.r2);
  assert.deepEqual([first, r.r1[0].user.user_id].sort(), [c.id, d.id].sort());
  assert.equal(r.r2, undefined);
  r = await nk(a, 'friends_of_friends_list', a.id);
  assert.deepEqual(r.r1.map((x) => x.user.username).sort(), [c.name, d.name].sort());
  await nkError(a, 400, 3, 'Cursor is invalid.', 'friends_of_friends_list', a.id, 10, 'bogus');
  await nkError(a, 404, 5, 'User account not found.', 'friends_of_friends_list', randomUuid());
  await nkError(a, 400, 3, 'expects limit to be a whole number from 1 to 1000', 'friends_of_friends_list', a.id, 0);
});

test('notifications_list, notifications_delete and notifications_delete_id', async () => {
  const a = await user();
  const b = await user();
  for (let i = 1; i <= 3; i++) await nk(a, 'notification_send', b.id, `N${i}`, { i }, 100 + i, a.id, true);
  let r = await nk(a, 'notifications_list', b.id, 2);
  assert.deepEqual(r.r1.map((n) => [n.subject, n.code, n.sender_id, n.user_id, n.persistent]),
    [['N1', 101, a.id, b.id, true], ['N2', 102, a.id, b.id, true]]);
  assert.deepEqual(r.r1[0].content, { i: 1 });
  assert.equal(typeof r.r1[0].create_time, 'number');
  const ids = r.r1.map((n) => n.id);
  r = await nk(a, 'notifications_list', b.id, 2, r.r2);
  assert.deepEqual(r.r1.map((n) => n.subject), ['N3']);
  assert.equal(r.r2, undefined);
  const third = r.r1[0].id;

  // Deleting with the wrong owner changes nothing.
  await nk(a, 'notifications_delete', [{ user_id: a.id, notification_id: ids[0] }]);
  assert.equal((await nk(a, 'notifications_list', b.id)).r1.length, 3);
  await nk(a, 'notifications_delete', [{ user_id: b.id, notification_id: ids[0] }]);
  await nk(a, 'notifications_delete_id', [ids[1]], b.id);
  const left = await ctx.client.listNotifications(b.s, 10);
  assert.deepEqual(left.notifications.map((n) => n.id), [third]);

  await nkError(a, 400, 3, 'expects notification_id to be a valid identifier', 'notifications_delete',
    [{ user_id: b.id, notification_id: 'x' }]);
  await nkError(a, 400, 3, 'expects a valid set of notifications', 'notifications_delete', 'x');
  await nkError(a, 400, 3, 'expects a user ID', 'notifications_delete_id', [third]);
  await nkError(a, 400, 3, 'Cursor is invalid.', 'notifications_list', b.id, 10, 'bogus');
  await nkError(a, 404, 5, 'User account not found.', 'notifications_list', randomUuid());
  assert.equal((await nk(a, 'notifications_list', b.id)).r1.length, 1);
});

test('channel_message_update, channel_message_remove and channel_messages_list', async () => {
  const a = await user();
  const b = await user();
  const room = uniqName('room');
  const id = `2...${room}`;
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  const messages = [];
  socket.onchannelmessage = (m) => messages.push(m);
  await socket.connect(b.s, false, 3000);
  try {
    await socket.joinChat(room, 1, true, false);
    const sent = [];
    for (let i = 1; i <= 3; i++) sent.push((await nk(a, 'channel_message_send', id, { i }, a.id, a.name, true)).r1);
    await waitFor(() => messages.length === 3, 'three messages');

    const up = (await nk(a, 'channel_message_update', id, sent[0].messageId, { i: 10 }, a.id, a.name, true)).r1;
    assert.deepEqual([up.channelId, up.messageId, up.code, up.username, up.persistent],
      [id, sent[0].messageId, 1, a.name, true]);
    assert.equal(up.createTime, sent[0].createTime);
    await waitFor(() => messages.length === 4, 'the update');
    assert.deepEqual([messages[3].message_id, messages[3].code, messages[3].content],
      [sent[0].messageId, 1, { i: 10 }]);

    const rm = (await nk(a, 'channel_message_remove', id, sent[1].messageId, a.id, a.name, true)).r1;
    assert.deepEqual([rm.messageId, rm.code], [sent[1].messageId, 2]);
    await waitFor(() => messages.length === 5, 'the removal');
    assert.deepEqual([messages[4].message_id, messages[4].code], [sent[1].messageId, 2]);

    // The history: what the client lists, and the runtime's own listing with cursors.
    const history = await ctx.client.listChannelMessages(b.s, id, 10, true);
    assert.deepEqual(history.messages.map((x) => [x.message_id, x.content]),
      [[sent[0].messageId, { i: 10 }], [sent[2].messageId, { i: 3 }]]);
    let r = await nk(a, 'channel_messages_list', id, 1);
    assert.deepEqual(r.r1.map((x) => [x.message_id, x.code, x.sender_id, x.username, x.room_name, x.channel_id]),
      [[sent[0].messageId, 0, a.id, a.name, room, id]]); // the stored code stays (as in Nakama)
    assert.deepEqual(r.r1[0].content, { i: 10 });
    assert.equal(r.r3, undefined);
    r = await nk(a, 'channel_messages_list', id, 1, true, r.r2);
    assert.deepEqual(r.r1.map((x) => x.message_id), [sent[2].messageId]);
    assert.equal(r.r2, undefined);
    r = await nk(a, 'channel_messages_list', id, 1, true, r.r3); // back again
    assert.deepEqual(r.r1.map((x) => x.message_id), [sent[0].messageId]);
    r = await nk(a, 'channel_messages_list', id, 10, false);
    assert.deepEqual(r.r1.map((x) => x.message_id), [sent[2].messageId, sent[0].messageId]);

    // Someone else's message, or one that is gone: NotFound, nothing sent.
    await nkError(a, 404, 5, 'Message not found.', 'channel_message_update', id, sent[2].messageId, { x: 1 }, b.id,
      b.name, true);
    await nkError(a, 404, 5, 'Message not found.', 'channel_message_remove', id, sent[1].messageId, a.id, a.name,
      true);
    await nkError(a, 400, 3, 'expects message ID to be a valid identifier', 'channel_message_update', id, 'x');
    await nkError(a, 400, 3, 'Invalid channel identifier', 'channel_message_remove', 'nope', sent[2].messageId);
    await nkError(a, 400, 3, 'Cursor is invalid or expired.', 'channel_messages_list', id, 10, false,
      (await nk(a, 'channel_messages_list', id, 1)).r2);
    await nkError(a, 400, 3, 'Invalid channel identifier', 'channel_messages_list', 'nope');
    assert.equal(messages.length, 5);
  } finally {
    socket.disconnect(false);
  }
});

test('session_disconnect closes a socket; session_logout revokes tokens', async () => {
  const a = await user();
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  let closed = false;
  socket.ondisconnect = () => { closed = true; };
  await socket.connect(a.s, false, 3000);
  const me = JSON.parse((await socket.rpc('my_session', '')).payload);
  assert.match(me.session_id, UUID_RE);
  await nk(a, 'session_disconnect', randomUuid()); // unknown: no error
  await nkError(a, 400, 3, 'expects session ID to be a valid identifier', 'session_disconnect', 'x');
  await nk(a, 'session_disconnect', me.session_id);
  await waitFor(() => closed, 'the socket to close');

  // One token pair: that session is refused at once, another one works.
  const b = await user();
  const other = await ctx.client.authenticateDevice(b.device, false);
  await nkError(a, 400, 3, 'Session token invalid.', 'session_logout', b.id, 'garbage');
  await nkError(a, 400, 3, 'Session token invalid.', 'session_logout', a.id, b.s.token); // not a's
  await nk(a, 'session_logout', b.id, b.s.token, b.s.refresh_token);
  await assert.rejects(ctx.client.getAccount(b.s), (e) => e.status === 401);
  assert.equal((await ctx.client.getAccount(other)).user.id, b.id);
  // Every token of the user.
  await nk(a, 'session_logout', b.id);
  await assert.rejects(ctx.client.getAccount(other), (e) => e.status === 401);
  assert.equal((await ctx.client.getAccount(a.s)).user.id, a.id);

  // account_delete_id revokes live tokens too.
  const c = await user();
  await nk(a, 'account_delete_id', c.id);
  await assert.rejects(ctx.client.getAccount(c.s), (e) => e.status === 401);
});

test('jwt_generate, bcrypt_hash/compare, get_config and event', async () => {
  const a = await user();
  const probe = (await ctx.client.rpc(a.s, 'crypto_probe', {})).payload;
  assert.deepEqual([probe.prefix, probe.len, probe.ok, probe.bad], ['$2b$10$', 60, true, false]);
  // The well-known HS256 example token (jwt.io), keys sorted.
  const [h, p, sig] = probe.jwt.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url')), { alg: 'HS256', typ: 'JWT' });
  assert.deepEqual(JSON.parse(Buffer.from(p, 'base64url')), { iat: 1516239022, name: 'John Doe', sub: '1234567890' });
  const want = crypto.createHmac('sha256', 'secret').update(`${h}.${p}`).digest('base64url');
  assert.equal(sig, want);
  assert.equal((await nk(a, 'jwt_generate', 'HS256', 'k', {})).r1.split('.')[1], 'e30');
  await nkError(a, 400, 3, 'unsupported signing method: RS256', 'jwt_generate', 'RS256', 'k', {});
  await nkError(a, 400, 3, 'expects claims to be a table', 'jwt_generate', 'HS256', 'k', 'x');

  // A published $2a$ test vector (crypt_blowfish's): "U*U" at cost 5.
  const vector = '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW';
  assert.equal((await nk(a, 'bcrypt_compare', vector, 'U*U')).r1, true);
  assert.equal((await nk(a, 'bcrypt_compare', vector, 'U*V')).r1, false);
  const mine = (await nk(a, 'bcrypt_hash', 'password')).r1;
  assert.equal((await nk(a, 'bcrypt_compare', mine, 'password')).r1, true);
  assert.equal((await nk(a, 'bcrypt_compare', mine, 'Password')).r1, false);
  await nkError(a, 400, 3, 'hash is not a bcrypt hash', 'bcrypt_compare', 'plain', 'password');
  await nkError(a, 400, 3, 'password length exceeds 72 bytes', 'bcrypt_hash', 'x'.repeat(73));

  const cfg = (await nk(a, 'get_config')).r1;
  assert.equal(cfg.name, 'kizuna');
  assert.equal(cfg.runtime.path, path.join(E2E_DIR, 'modules', 'nk'));
  assert.equal(typeof cfg.session.token_expiry_sec, 'number');
  assert.equal(typeof cfg.socket.port, 'number');
  const text = JSON.stringify(cfg);
  for (const secret of ['encryption_key', 'server_key', 'http_key', 'database']) assert.ok(!text.includes(secret));

  assert.equal((await nk(a, 'event', 'level_up', { level: '2' }, 1700000000, true)).n, 0);
  assert.equal((await nk(a, 'event', 'ping')).n, 0);
  await nkError(a, 400, 3, 'expects properties to be a table of string values', 'event', 'x', { level: 2 });
  await nkError(a, 400, 3, 'expects event name to be non-empty', 'event', '');
});

// ------------------------------------------------------ third batch of nk

/** A raw JSON socket (sees every frame, cid or not): send(obj), next() -> the next frame. */
function rawSocket(token, status) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ctx.srv.port}/ws?status=${status}&token=${encodeURIComponent(token)}`);
    ws.frames = [];
    ws.on('message', (data) => ws.frames.push(JSON.parse(data.toString())));
    ws.closed = new Promise((res) => ws.on('close', () => res()));
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

/** Waits for a frame of ws matching pred, removes it and the frames before it; returns it. */
async function frame(ws, pred, what) {
  await waitFor(() => ws.frames.some(pred), what);
  const i = ws.frames.findIndex(pred);
  const f = ws.frames[i];
  ws.frames.splice(0, i + 1);
  return f;
}

test('status_follow and status_unfollow act for a session on its own thread', async () => {
  const a = await user();
  const b = await user();
  const c = await user();
  const ws = await rawSocket(a.s.token, false);
  const sb = createSocket(ctx.client, { timeoutMs: 3000 });
  const sc = createSocket(ctx.client, { timeoutMs: 3000 });
  await sb.connect(b.s, true, 3000);
  await sc.connect(c.s, true, 3000);
  try {
    await sb.updateStatus('hi');
    ws.send(JSON.stringify({ cid: '1', rpc: { id: 'my_session', payload: '' } }));
    const sid = JSON.parse((await frame(ws, (f) => f.cid === '1', 'my_session')).rpc.payload).session_id;
    assert.match(sid, UUID_RE);

    // Unknown users and the session's own user are skipped; b's presence arrives without a cid.
    await nk(a, 'status_follow', sid, [b.id, randomUuid(), a.id]);
    const st = await frame(ws, (f) => f.status, 'the status envelope');
    assert.equal(st.cid, undefined);
    assert.deepEqual(st.status.presences.map(({ session_id: s, ...p }) => p),
      [{ user_id: b.id, username: b.name, status: 'hi' }]);
    await sb.updateStatus('bye');
    const ev = await frame(ws, (f) => f.status_presence_event, "b's status change");
    assert.deepEqual([ev.status_presence_event.joins[0].status, ev.status_presence_event.leaves[0].status], ['bye', 'hi']);
    assert.equal(ev.status_presence_event.joins[0].user_id, b.id);

    // Unfollow b, then follow c: the tasks run in order on a's thread, so once c's
    // presence has arrived b is no longer followed.
    await nk(a, 'status_unfollow', sid, [b.id, randomUuid()]);
    await nk(a, 'status_follow', sid, [c.id]);
    const st2 = await frame(ws, (f) => f.status, "c's presence");
    assert.deepEqual(st2.status.presences.map((p) => [p.user_id, p.status]), [[c.id, '']]);
    await sb.updateStatus('unseen');
    await sc.updateStatus('seen');
    const ev2 = await frame(ws, (f) => f.status_presence_event, "c's status change");
    assert.equal(ev2.status_presence_event.joins[0].user_id, c.id);
    assert.ok(!ws.frames.concat([ev2]).some((f) => JSON.stringify(f).includes('unseen')));

    // A follow of users with no online session sends nothing; unknown sessions are no error.
    await nk(a, 'status_follow', randomUuid(), [b.id]);
    await nk(a, 'status_unfollow', randomUuid(), [b.id]);
    await nk(a, 'status_follow', sid, []);
    await nkError(a, 400, 3, 'expects session ID to be a valid identifier', 'status_follow', 'x', [b.id]);
    await nkError(a, 400, 3, 'expects user IDs to be a table', 'status_follow', sid, b.id);
    await nkError(a, 400, 3, 'expects each of user IDs to be a valid identifier', 'status_unfollow', sid, ['nope']);
  } finally {
    ws.close();
    sb.disconnect(false);
    sc.disconnect(false);
  }
});

test('users_get_friend_status and friend_metadata_update', async () => {
  const a = await user();
  const b = await user();
  const c = await user();
  const d = await user();
  await nk(a, 'friends_add', a.id, a.name, [b.id]);
  await nk(a, 'friends_block', a.id, a.name, [c.id]);
  let r = await nk(a, 'users_get_friend_status', a.id, [c.id, b.id, d.id, randomUuid()]);
  assert.deepEqual(arr(r.r1).map((f) => [f.user.user_id, f.user.username, f.state]), [[b.id, b.name, 1], [c.id, c.name, 3]]);
  assert.equal(typeof r.r1[0].update_time, 'number');
  assert.deepEqual(arr((await nk(b, 'users_get_friend_status', b.id, [a.id])).r1).map((f) => f.state), [2]);
  assert.deepEqual(arr((await nk(a, 'users_get_friend_status', a.id, [d.id])).r1), []);

  await nk(a, 'friend_metadata_update', a.id, b.id, { note: 'met at the fair', level: 3 });
  r = await nk(a, 'users_get_friend_status', a.id, [b.id]);
  assert.deepEqual(r.r1[0].metadata, { note: 'met at the fair', level: 3 });
  r = await nk(a, 'friends_list', a.id, 10, 1);
  assert.deepEqual(r.r1.map((f) => [f.user.user_id, f.metadata]), [[b.id, { note: 'met at the fair', level: 3 }]]);
  // The other side's edge is its own.
  assert.deepEqual((await nk(b, 'users_get_friend_status', b.id, [a.id])).r1[0].metadata, {});

  await nkError(a, 404, 5, 'Friend not found.', 'friend_metadata_update', a.id, d.id, { x: 1 });
  await nkError(a, 400, 3, 'expects metadata to be a table', 'friend_metadata_update', a.id, b.id, 'x');
  await nkError(a, 400, 3, 'expects friend user ID to be a valid identifier', 'friend_metadata_update', a.id, 'x', {});
  await nkError(a, 404, 5, 'User account not found.', 'users_get_friend_status', randomUuid(), [b.id]);
  await nkError(a, 400, 3, 'expects each of user IDs to be a valid identifier', 'users_get_friend_status', a.id, ['x']);
});

test('notifications_get_id, notifications_update and notification_send_all', async () => {
  const a = await user();
  const b = await user();
  await nk(a, 'notification_send', b.id, 'First', { i: 1 }, 11, a.id, true);
  await nk(a, 'notification_send', b.id, 'Second', { i: 2 }, 12, null, true);
  await nk(a, 'notification_send', a.id, 'Mine', { i: 3 }, 13, null, true);
  const nb = (await ctx.client.listNotifications(b.s, 10)).notifications;
  const na = (await ctx.client.listNotifications(a.s, 10)).notifications;
  assert.equal(nb.length, 2);
  const ids = [nb[1].id, na[0].id, nb[0].id, randomUuid()];

  let r = await nk(a, 'notifications_get_id', ids);
  assert.deepEqual(arr(r.r1).map((n) => [n.subject, n.user_id, n.code, n.sender_id]).sort(),
    [['First', b.id, 11, a.id], ['Mine', a.id, 13, NIL], ['Second', b.id, 12, NIL]]);
  r = await nk(a, 'notifications_get_id', ids, b.id);
  assert.deepEqual(r.r1.map((n) => [n.id, n.subject, n.content, n.persistent]),
    [[nb[0].id, 'First', { i: 1 }, true], [nb[1].id, 'Second', { i: 2 }, true]]);
  assert.equal(typeof r.r1[0].create_time, 'number');
  assert.deepEqual(arr((await nk(a, 'notifications_get_id', [nb[0].id], a.id)).r1), []);
  await nkError(a, 400, 3, 'expects each of notification IDs to be a valid identifier', 'notifications_get_id', ['x']);

  await nk(a, 'notifications_update', [
    { id: nb[0].id, subject: 'First (edited)', content: { i: 10 } },
    { id: nb[1].id, sender: a.id },
  ]);
  let list = (await ctx.client.listNotifications(b.s, 10)).notifications;
  assert.deepEqual(list.map((n) => [n.subject, n.content, n.sender_id, n.code]),
    [['First (edited)', { i: 10 }, a.id, 11], ['Second', { i: 2 }, a.id, 12]]);
  // All or nothing: an unknown id changes nothing.
  const ghost = randomUuid();
  await nkError(a, 404, 5, `Notification not found: ${ghost}.`, 'notifications_update',
    [{ id: nb[0].id, subject: 'Never' }, { id: ghost, subject: 'Never' }]);
  await nkError(a, 400, 3, 'expects subject to be a non-empty string', 'notifications_update', [{ id: nb[0].id, subject: '' }]);
  await nkError(a, 400, 3, 'expects content to be a table', 'notifications_update', [{ id: nb[0].id, content: 'x' }]);
  await nkError(a, 400, 3, 'expects id to be a string', 'notifications_update', [{ subject: 'x' }]);
  list = (await ctx.client.listNotifications(b.s, 10)).notifications;
  assert.equal(list[0].subject, 'First (edited)');

  // send_all: every user gets the persistent one, live when online.
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  const live = [];
  socket.onnotification = (n) => live.push(n);
  await socket.connect(b.s, false, 3000);
  try {
    const subject = uniqName('all');
    await nk(a, 'notification_send_all', subject, { k: 1 }, 21, true);
    await waitFor(() => live.some((n) => n.subject === subject), 'the live broadcast');
    for (const who of [a, b]) {
      const got = (await ctx.client.listNotifications(who.s, 10)).notifications.filter((n) => n.subject === subject);
      assert.deepEqual(got.map((n) => [n.code, n.content, n.sender_id]), [[21, { k: 1 }, undefined]]); // the system
    }
    const eph = uniqName('eph');
    await nk(a, 'notification_send_all', eph, {}, 22);
    await waitFor(() => live.some((n) => n.subject === eph), 'the live ephemeral broadcast');
    assert.equal((await ctx.client.listNotifications(b.s, 100)).notifications.filter((n) => n.subject === eph).length, 0);
    await nkError(a, 400, 3, 'expects code number to be a positive integer', 'notification_send_all', 's', {}, 0);
    await nkError(a, 400, 3, 'expects subject to be a non-empty string', 'notification_send_all', '', {}, 1);
    await nkError(a, 400, 3, 'expects content to be a table', 'notification_send_all', 's', 'x', 1);
  } finally {
    socket.disconnect(false);
  }
});

test('groups_get_random picks existing groups', async () => {
  const a = await user();
  const mine = [];
  for (let i = 0; i < 3; i++) mine.push((await nk(a, 'group_create', a.id, uniqName('rnd'))).r1.id);
  const all = arr((await nk(a, 'groups_get_random', 1000)).r1);
  for (const id of mine) assert.ok(all.some((g) => g.id === id), `group ${id} in the random pick`);
  assert.equal(new Set(all.map((g) => g.id)).size, all.length);
  const two = arr((await nk(a, 'groups_get_random', 2)).r1);
  assert.equal(two.length, 2);
  assert.ok(two.every((g) => typeof g.name === 'string' && typeof g.edge_count === 'number'));
  assert.deepEqual(arr((await nk(a, 'groups_get_random')).r1), []);
  await nkError(a, 400, 3, 'expects count to be a whole number from 0 to 1000', 'groups_get_random', -1);
});

test('users_ban_id stops authentication and revokes sessions; users_unban_id lifts it', async () => {
  const a = await user();
  const c = await user();
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  let closed = false;
  socket.ondisconnect = () => { closed = true; };
  await socket.connect(c.s, false, 3000);
  await nk(a, 'users_ban_id', [c.id, randomUuid()]);
  await waitFor(() => closed, "the banned user's socket to close");
  await assert.rejects(ctx.client.getAccount(c.s), (e) => e.status === 401);
  await assert.rejects(ctx.client.authenticateDevice(c.device, false), (e) => e.status === 403);
  await assert.rejects(ctx.client.sessionRefresh(c.s), (e) => e.status === 401 || e.status === 403);
  assert.equal(typeof (await nk(a, 'account_get_id', c.id)).r1.disable_time, 'number');
  assert.equal((await ctx.client.getAccount(a.s)).user.id, a.id);

  await nk(a, 'users_unban_id', [c.id]);
  const again = await ctx.client.authenticateDevice(c.device, false);
  assert.equal((await ctx.client.getAccount(again)).user.id, c.id);
  assert.equal((await nk(a, 'account_get_id', c.id)).r1.disable_time, undefined);
  await nk(a, 'users_ban_id', []);
  await nkError(a, 400, 3, 'expects each of user IDs to be a valid identifier', 'users_ban_id', ['x']);
  await nkError(a, 400, 3, 'expects user IDs to be a table of strings', 'users_unban_id', 'x');
});

test('wallet_ledger_update changes an item\'s metadata', async () => {
  const a = await user();
  await nk(a, 'wallet_update', a.id, { coins: 10 }, { why: 'gift' }, true);
  const items = (await nk(a, 'wallet_ledger_list', a.id)).r1;
  assert.equal(items.length, 1);
  const r = await nk(a, 'wallet_ledger_update', items[0].id, { why: 'refund', n: 2 });
  assert.deepEqual(r.r1.metadata, { why: 'refund', n: 2 });
  assert.deepEqual([r.r1.id, r.r1.user_id, r.r1.changeset, r.r1.create_time],
    [items[0].id, a.id, { coins: 10 }, items[0].create_time]);
  assert.ok(r.r1.update_time >= items[0].update_time);
  assert.deepEqual((await nk(a, 'wallet_ledger_list', a.id)).r1[0].metadata, { why: 'refund', n: 2 });
  await nkError(a, 404, 5, 'Wallet ledger item not found.', 'wallet_ledger_update', randomUuid(), {});
  await nkError(a, 400, 3, 'expects metadata to be a table', 'wallet_ledger_update', items[0].id, 'x');
  await nkError(a, 400, 3, 'expects ledger item ID to be a valid identifier', 'wallet_ledger_update', 'x', {});
});
