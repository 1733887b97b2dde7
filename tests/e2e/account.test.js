// GET / PUT / DELETE /v2/account.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, newDeviceSession } from './lib/fixture.js';
import {
  request, assertErrorBody, expectClientError, uniq, uniqName, sleep, TIMESTAMP_RE, UUID_RE,
} from './lib/http.js';

const ctx = useServer();

function getRaw(token) {
  return request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${token}` });
}

function putRaw(token, body) {
  return request(ctx.srv, 'PUT', '/v2/account', { auth: `Bearer ${token}`, json: body });
}

function secondsFromNow(ts) {
  return Math.abs(Date.parse(ts) / 1000 - Date.now() / 1000);
}

describe('get account', () => {
  test('a new device account: exact shape, zero values omitted', async () => {
    const { id, session } = await newDeviceSession(ctx.client);
    const r = await getRaw(session.token);
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    const a = r.json;
    assert.deepEqual(Object.keys(a).sort(), ['devices', 'user', 'wallet']);
    assert.equal(a.wallet, '{}');
    assert.deepEqual(a.devices, [{ id }]);
    assert.deepEqual(Object.keys(a.user).sort(), ['create_time', 'id', 'lang_tag', 'metadata', 'update_time', 'username']);
    assert.match(a.user.id, UUID_RE);
    assert.equal(a.user.id, session.user_id);
    assert.equal(a.user.username, session.username);
    assert.equal(a.user.lang_tag, 'en');
    assert.equal(a.user.metadata, '{}');
    assert.match(a.user.create_time, TIMESTAMP_RE);
    assert.match(a.user.update_time, TIMESTAMP_RE);
    assert.ok(secondsFromNow(a.user.create_time) < 60, `create_time ${a.user.create_time} is about now (UTC)`);
    assert.equal(a.user.update_time, a.user.create_time);
  });

  test('custom and email show up; devices absent when none', async () => {
    const c = ctx.client;
    const custom = uniq('custom');
    const s = await c.authenticateCustom(custom);
    const email = `${uniq('acc')}@example.com`;
    await c.linkEmail(s, { email, password: 'password123' });
    const r = await getRaw(s.token);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.custom_id, custom);
    assert.equal(r.json.email, email);
    assert.equal('devices' in r.json, false);
    assert.equal('password' in r.json, false);
    assert.equal('verify_time' in r.json, false);
    assert.equal('disable_time' in r.json, false);
  });

  test('through nakama-js', async () => {
    const { id, session } = await newDeviceSession(ctx.client);
    const a = await ctx.client.getAccount(session);
    assert.equal(a.user.id, session.user_id);
    assert.deepEqual(a.devices, [{ id }]);
    assert.equal(a.user.online, undefined);
  });
});

describe('update account', () => {
  test('sets fields and bumps update_time', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    const before = await c.getAccount(session);
    await sleep(1100); // timestamps have one-second resolution
    const ok = await c.updateAccount(session, {
      display_name: 'Ada Lovelace',
      avatar_url: 'https://example.com/ada.png',
      lang_tag: 'fr',
      location: 'London',
      timezone: 'Europe/London',
    });
    assert.equal(ok, true);
    const after = await c.getAccount(session);
    assert.equal(after.user.display_name, 'Ada Lovelace');
    assert.equal(after.user.avatar_url, 'https://example.com/ada.png');
    assert.equal(after.user.lang_tag, 'fr');
    assert.equal(after.user.location, 'London');
    assert.equal(after.user.timezone, 'Europe/London');
    assert.equal(after.user.username, before.user.username);
    assert.equal(after.user.create_time, before.user.create_time);
    assert.ok(Date.parse(after.user.update_time) > Date.parse(before.user.update_time),
      `update_time moved: ${before.user.update_time} -> ${after.user.update_time}`);
  });

  test('raw PUT answers 200 {}; unicode survives', async () => {
    const { session } = await newDeviceSession(ctx.client);
    const r = await putRaw(session.token, { display_name: 'Zoë 🎮 名前' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    const a = await getRaw(session.token);
    assert.equal(a.json.user.display_name, 'Zoë 🎮 名前');
  });

  test('present but empty clears a field; absent leaves it', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    await c.updateAccount(session, { display_name: 'Name', location: 'Here', timezone: 'UTC', avatar_url: 'https://x.test/a.png' });
    await c.updateAccount(session, { display_name: '', lang_tag: '' });
    const r = await getRaw(session.token);
    assert.equal('display_name' in r.json.user, false, 'display_name cleared');
    assert.equal('lang_tag' in r.json.user, false, 'lang_tag cleared');
    assert.equal(r.json.user.location, 'Here');
    assert.equal(r.json.user.timezone, 'UTC');
    assert.equal(r.json.user.avatar_url, 'https://x.test/a.png');
  });

  test('lowerCamelCase input is accepted, unknown fields ignored', async () => {
    const { session } = await newDeviceSession(ctx.client);
    const r = await putRaw(session.token, { displayName: 'Camel', avatarUrl: 'https://x.test/c.png', langTag: 'de', somethingElse: 42 });
    assert.equal(r.status, 200, r.text);
    const a = await getRaw(session.token);
    assert.equal(a.json.user.display_name, 'Camel');
    assert.equal(a.json.user.avatar_url, 'https://x.test/c.png');
    assert.equal(a.json.user.lang_tag, 'de');
  });

  test('username change', async () => {
    const c = ctx.client;
    const { id, session } = await newDeviceSession(c);
    const name = uniqName('renamed');
    await c.updateAccount(session, { username: name });
    assert.equal((await c.getAccount(session)).user.username, name);
    const s2 = await c.authenticateDevice(id, false);
    assert.equal(s2.username, name, 'new logins carry the new username');
    const found = await c.getUsers(s2, [], [name]);
    assert.equal(found.users.length, 1);
    assert.equal(found.users[0].id, session.user_id);
  });

  test('a taken username is 400 "Username is already in use." and changes nothing', async () => {
    const c = ctx.client;
    const taken = uniqName('owner');
    await c.authenticateDevice(uniq('device'), true, taken);
    const { session } = await newDeviceSession(c);
    const before = await c.getAccount(session);
    await expectClientError(c.updateAccount(session, { username: taken, display_name: 'Should Not Stick' }), 400, 3, 'Username is already in use.');
    const after = await c.getAccount(session);
    assert.deepEqual(after, before);
  });

  test('an empty username is 400', async () => {
    const { session } = await newDeviceSession(ctx.client);
    await expectClientError(ctx.client.updateAccount(session, { username: '' }), 400, 3, 'Username invalid, must be 1-128 bytes.');
    await expectClientError(ctx.client.updateAccount(session, { username: 'u'.repeat(129) }), 400, 3, 'Username invalid, must be 1-128 bytes.');
    await expectClientError(ctx.client.updateAccount(session, { username: 'tab\tname' }), 400, 3,
      'Username invalid, no spaces or control characters allowed.');
  });

  test('nothing to update is 400 "No fields to update."', async () => {
    const { session } = await newDeviceSession(ctx.client);
    assertErrorBody(await putRaw(session.token, {}), 400, 3, 'No fields to update.');
    await expectClientError(ctx.client.updateAccount(session, {}), 400, 3, 'No fields to update.');
  });

  test('setting the same values again succeeds and changes nothing', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    await c.updateAccount(session, { display_name: 'Same' });
    const before = await c.getAccount(session);
    await sleep(1100);
    await c.updateAccount(session, { display_name: 'Same', username: before.user.username });
    const after = await c.getAccount(session);
    assert.equal(after.user.display_name, 'Same');
    assert.equal(after.user.username, before.user.username);
    assert.equal(after.user.update_time, before.user.update_time, 'no actual change keeps update_time');
  });

  test('needs a session', async () => {
    assertErrorBody(await request(ctx.srv, 'PUT', '/v2/account', { json: { display_name: 'x' } }), 401, 16, 'Auth token required');
  });
});

describe('delete account', () => {
  test('the account is gone and its tokens stop working', async () => {
    const c = ctx.client;
    const name = uniqName('doomed');
    const { id, session } = await newDeviceSession(c, { username: name });
    const watcher = (await newDeviceSession(c)).session;
    const uid = session.user_id;
    assert.equal((await c.getUsers(watcher, [uid])).users.length, 1);

    assert.equal(await c.deleteAccount(session), true);

    await expectClientError(c.authenticateDevice(id, false), 404, 5, 'User account not found.');
    assert.deepEqual((await c.getUsers(watcher, [uid])).users, []);
    assert.deepEqual((await c.getUsers(watcher, [], [name])).users, []);
    const raw = await request(ctx.srv, 'GET', `/v2/user?ids=${uid}`, { auth: `Bearer ${watcher.token}` });
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.json.users === undefined || raw.json.users.length === 0, true, raw.text);

    assertErrorBody(await getRaw(session.token), 401, 16, 'Auth token invalid');
    assertErrorBody(await request(ctx.srv, 'POST', '/v2/account/session/refresh', {
      auth: 'Basic ' + Buffer.from('defaultkey:').toString('base64'), json: { token: session.refresh_token },
    }), 401, 16, 'Refresh token invalid or expired.');

    // The device id and the username are free again.
    const again = await c.authenticateDevice(id, true, name);
    assert.equal(again.created, true);
    assert.notEqual(again.user_id, uid);
    assert.equal(again.username, name);
  });

  test('raw DELETE answers 200 {} and other accounts are untouched', async () => {
    const c = ctx.client;
    const keep = await newDeviceSession(c);
    await c.updateAccount(keep.session, { display_name: 'Keeper' });
    const keepBefore = await c.getAccount(keep.session);
    const gone = await newDeviceSession(c);
    const r = await request(ctx.srv, 'DELETE', '/v2/account', { auth: `Bearer ${gone.session.token}` });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    assert.deepEqual(await c.getAccount(keep.session), keepBefore);
  });

  test('needs a session', async () => {
    assertErrorBody(await request(ctx.srv, 'DELETE', '/v2/account'), 401, 16, 'Auth token required');
  });
});
