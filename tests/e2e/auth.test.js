// Authenticate with device, custom id and email (+ username/password login),
// server key checks and account creation rules.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './lib/fixture.js';
import { makeClient } from './lib/server.js';
import {
  request, expectClientError, assertErrorBody, decodeJwt, uniq, uniqName, basicAuth, randomAlnum,
  UUID_RE, GENERATED_USERNAME_RE,
} from './lib/http.js';

const ctx = useServer();

const NOT_FOUND = 'User account not found.';
const USERNAME_TAKEN = 'Username is already in use.';
const DEVICE_LEN = 'Device ID invalid, must be 10-128 bytes.';
const CUSTOM_LEN = 'Custom ID invalid, must be 6-128 bytes.';
const EMAIL_LEN = 'Invalid email address, must be 10-255 bytes.';
const EMAIL_FORMAT = 'Invalid email address format.';
const PASSWORD_LEN = 'Password must be at least 8 characters long.';
const BAD_CHARS_USERNAME = 'Username invalid, no spaces or control characters allowed.';
const USERNAME_LEN = 'Username invalid, must be 1-128 bytes.';

function authPost(path, body, { auth = basicAuth(), query = '' } = {}) {
  return request(ctx.srv, 'POST', `/v2/account/authenticate/${path}${query}`, { auth, json: body });
}

describe('authenticate device', () => {
  test('creates an account on first use, with a generated username', async () => {
    const c = ctx.client;
    const id = uniq('device');
    const session = await c.authenticateDevice(id);
    assert.equal(session.created, true);
    assert.match(session.username, GENERATED_USERNAME_RE);
    assert.match(session.user_id, UUID_RE);
    const account = await c.getAccount(session);
    assert.equal(account.user.id, session.user_id);
    assert.equal(account.user.username, session.username);
    assert.deepEqual(account.devices, [{ id }]);
  });

  test('the same device again logs into the same account, created=false', async () => {
    const c = ctx.client;
    const id = uniq('device');
    const first = await c.authenticateDevice(id, true);
    const second = await c.authenticateDevice(id, true);
    assert.equal(second.created, false);
    assert.equal(second.user_id, first.user_id);
    assert.equal(second.username, first.username);
    assert.notEqual(decodeJwt(second.token).payload.tid, decodeJwt(first.token).payload.tid, 'each login is a new session (new tid)');
    const third = await c.authenticateDevice(id, false);
    assert.equal(third.created, false);
    assert.equal(third.user_id, first.user_id);
  });

  test('raw Session body: created only when true, snake_case refresh_token', async () => {
    const id = uniq('device');
    const r1 = await authPost('device', { id });
    assert.equal(r1.status, 200, r1.text);
    assert.deepEqual(Object.keys(r1.json).sort(), ['created', 'refresh_token', 'token']);
    assert.equal(r1.json.created, true);
    const r2 = await authPost('device', { id });
    assert.equal(r2.status, 200, r2.text);
    assert.deepEqual(Object.keys(r2.json).sort(), ['refresh_token', 'token'], 'created:false is omitted');
    assert.match(r2.headers.get('content-type') || '', /^application\/json/);
  });

  test('generated usernames are 10 ASCII letters and distinct', async () => {
    const names = new Set();
    for (let i = 0; i < 5; i++) {
      const s = await ctx.client.authenticateDevice(uniq('device'));
      assert.match(s.username, GENERATED_USERNAME_RE);
      names.add(s.username);
    }
    assert.equal(names.size, 5);
  });

  test('username is applied on creation only', async () => {
    const c = ctx.client;
    const id = uniq('device');
    const name = uniqName('alice');
    const s1 = await c.authenticateDevice(id, true, name);
    assert.equal(s1.created, true);
    assert.equal(s1.username, name);
    const s2 = await c.authenticateDevice(id, true, uniqName('other'));
    assert.equal(s2.created, false);
    assert.equal(s2.username, name, 'username query ignored for an existing account');
    const account = await c.getAccount(s2);
    assert.equal(account.user.username, name);
  });

  test('a taken username on creation is 409 AlreadyExists and creates nothing', async () => {
    const c = ctx.client;
    const name = uniqName('taken');
    await c.authenticateDevice(uniq('device'), true, name);
    const id2 = uniq('device');
    await expectClientError(c.authenticateDevice(id2, true, name), 409, 6, USERNAME_TAKEN);
    await expectClientError(c.authenticateDevice(id2, false), 404, 5, NOT_FOUND);
  });

  test('create=false with an unknown device is 404 NotFound and creates nothing', async () => {
    const c = ctx.client;
    const id = uniq('device');
    await expectClientError(c.authenticateDevice(id, false), 404, 5, NOT_FOUND);
    await expectClientError(c.authenticateDevice(id, false), 404, 5, NOT_FOUND);
    const s = await c.authenticateDevice(id, true);
    assert.equal(s.created, true);
  });

  test('device id must be 10..128 bytes', async () => {
    const c = ctx.client;
    await expectClientError(c.authenticateDevice('a'.repeat(9)), 400, 3, DEVICE_LEN);
    await expectClientError(c.authenticateDevice('b'.repeat(129)), 400, 3, DEVICE_LEN);
    const s10 = await c.authenticateDevice(randomAlnum(10));
    assert.equal(s10.created, true);
    const id128 = (uniq('d') + 'y'.repeat(128)).slice(0, 128);
    const s128 = await c.authenticateDevice(id128);
    assert.equal(s128.created, true);
    assert.deepEqual((await c.getAccount(s128)).devices, [{ id: id128 }]);
    // 9 and 129 bytes did not create anything.
    await expectClientError(c.authenticateDevice('a'.repeat(9), false), 400, 3, DEVICE_LEN);
  });

  test('device id is required and may not contain whitespace', async () => {
    await expectClientError(ctx.client.authenticateDevice(''), 400, 3, 'Device ID is required.');
    await expectClientError(ctx.client.authenticateDevice('has a space in it'), 400, 3,
      'Device ID invalid, no spaces or control characters allowed.');
    const r = await authPost('device', {});
    assertErrorBody(r, 400, 3, 'Device ID is required.');
  });

  test('username validation on creation', async () => {
    const c = ctx.client;
    await expectClientError(c.authenticateDevice(uniq('device'), true, 'u'.repeat(129)), 400, 3, USERNAME_LEN);
    await expectClientError(c.authenticateDevice(uniq('device'), true, 'bad\u0001name'), 400, 3, BAD_CHARS_USERNAME);
    await expectClientError(c.authenticateDevice(uniq('device'), true, 'bad\tname'), 400, 3, BAD_CHARS_USERNAME);
    const long = ('n' + uniqName('x')).padEnd(128, 'z');
    const s = await c.authenticateDevice(uniq('device'), true, long);
    assert.equal(s.username, long);
  });

  test('vars end up in both tokens and in session.vars', async () => {
    const vars = { plan: 'gold', region: 'eu-west', empty: '' };
    const s = await ctx.client.authenticateDevice(uniq('device'), true, undefined, vars);
    assert.deepEqual(s.vars, vars);
    assert.deepEqual(decodeJwt(s.token).payload.vrs, vars);
    assert.deepEqual(decodeJwt(s.refresh_token).payload.vrs, vars);
  });

  test('no vars: no vrs claim', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    assert.equal('vrs' in decodeJwt(s.token).payload, false);
    assert.equal(s.vars, undefined);
  });
});

describe('authenticate custom', () => {
  test('create, log in again, create=false', async () => {
    const c = ctx.client;
    const id = uniq('custom');
    const s1 = await c.authenticateCustom(id);
    assert.equal(s1.created, true);
    const s2 = await c.authenticateCustom(id, false);
    assert.equal(s2.created, false);
    assert.equal(s2.user_id, s1.user_id);
    const account = await c.getAccount(s2);
    assert.equal(account.custom_id, id);
    assert.equal(account.devices, undefined, 'no devices key for a custom-only account');
  });

  test('custom id must be 6..128 bytes', async () => {
    const c = ctx.client;
    await expectClientError(c.authenticateCustom('abcde'), 400, 3, CUSTOM_LEN);
    await expectClientError(c.authenticateCustom('c'.repeat(129)), 400, 3, CUSTOM_LEN);
    await expectClientError(c.authenticateCustom(''), 400, 3, 'Custom ID is required.');
    await expectClientError(c.authenticateCustom('with space'), 400, 3, 'Custom ID invalid, no spaces or control characters allowed.');
    const six = uniq('c').replace(/[^a-z0-9]/g, '').slice(-6);
    assert.equal(six.length, 6);
    assert.equal((await c.authenticateCustom(six)).created, true);
    const id128 = (uniq('c') + 'q'.repeat(128)).slice(0, 128);
    assert.equal((await c.authenticateCustom(id128)).created, true);
  });

  test('create=false with an unknown custom id is 404; username taken is 409', async () => {
    const c = ctx.client;
    await expectClientError(c.authenticateCustom(uniq('custom'), false), 404, 5, NOT_FOUND);
    const name = uniqName('cust');
    await c.authenticateCustom(uniq('custom'), true, name);
    await expectClientError(c.authenticateCustom(uniq('custom'), true, name), 409, 6, USERNAME_TAKEN);
  });

  test('username and vars', async () => {
    const name = uniqName('cu');
    const s = await ctx.client.authenticateCustom(uniq('custom'), true, name, { k: 'v' });
    assert.equal(s.username, name);
    assert.deepEqual(s.vars, { k: 'v' });
  });
});

describe('authenticate email', () => {
  test('sign up with mixed case, sign in lower-case; stored lower-case', async () => {
    const c = ctx.client;
    const local = uniq('Upper').replace(/-/g, '');
    const email = `${local}@Example.com`;
    const s1 = await c.authenticateEmail(email, 'password123');
    assert.equal(s1.created, true);
    const s2 = await c.authenticateEmail(email.toLowerCase(), 'password123', false);
    assert.equal(s2.created, false);
    assert.equal(s2.user_id, s1.user_id);
    const s3 = await c.authenticateEmail(email.toUpperCase(), 'password123', false);
    assert.equal(s3.user_id, s1.user_id);
    const account = await c.getAccount(s1);
    assert.equal(account.email, email.toLowerCase());
  });

  test('wrong password is 401 Invalid credentials, even with create=true', async () => {
    const c = ctx.client;
    const email = `${uniq('pw')}@example.com`;
    await c.authenticateEmail(email, 'correct-horse');
    await expectClientError(c.authenticateEmail(email, 'wrong-horse'), 401, 16, 'Invalid credentials.');
    await expectClientError(c.authenticateEmail(email, 'wrong-horse', false), 401, 16, 'Invalid credentials.');
    const ok = await c.authenticateEmail(email, 'correct-horse', false);
    assert.equal(ok.created, false);
  });

  test('create=false with an unknown email is 404', async () => {
    await expectClientError(ctx.client.authenticateEmail(`${uniq('nobody')}@example.com`, 'password123', false), 404, 5, NOT_FOUND);
  });

  test('email and password validation', async () => {
    const c = ctx.client;
    await expectClientError(c.authenticateEmail(`${uniq('short')}@example.com`, 'seven77'), 400, 3, PASSWORD_LEN);
    await expectClientError(c.authenticateEmail('a@b.co', 'password123'), 400, 3, EMAIL_LEN);
    await expectClientError(c.authenticateEmail('notanemail.example.com', 'password123'), 400, 3, EMAIL_FORMAT);
    await expectClientError(c.authenticateEmail('x x@example.com', 'password123'), 400, 3,
      'Invalid email address, no spaces or control characters allowed.');
    const domain = '@example.com';
    const tooLong = 'l'.repeat(256 - domain.length) + domain;
    assert.equal(tooLong.length, 256);
    await expectClientError(c.authenticateEmail(tooLong, 'password123'), 400, 3, EMAIL_LEN);
    const longest = (uniq('m').replace(/-/g, '') + 'm'.repeat(255)).slice(0, 255 - domain.length) + domain;
    assert.equal(longest.length, 255);
    assert.equal((await c.authenticateEmail(longest, 'password123')).created, true);
    const shortest = `${randomAlnum(3)}@ab.cde`;
    assert.equal(shortest.length, 10);
    assert.equal((await c.authenticateEmail(shortest, '12345678')).created, true, 'an 8-character password is enough');
    const r = await authPost('email', { email: '', password: '' });
    assertErrorBody(r, 400, 3);
  });

  test('username + password login when email is empty', async () => {
    const c = ctx.client;
    const name = uniqName('login');
    const email = `${uniq('byname')}@example.com`;
    const created = await c.authenticateEmail(email, 'hunter2hunter2', true, name);
    assert.equal(created.username, name);

    const ok = await authPost('email', { password: 'hunter2hunter2' }, { query: `?username=${encodeURIComponent(name)}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.created, undefined);
    assert.equal(decodeJwt(ok.json.token).payload.uid, created.user_id);
    assert.equal(decodeJwt(ok.json.token).payload.usn, name);

    // create=true is ignored for username login: an unknown name is never created.
    const bad = await authPost('email', { password: 'hunter2hunter2' }, { query: `?username=${uniqName('ghost')}&create=true` });
    assertErrorBody(bad, 404, 5, NOT_FOUND);
    const wrong = await authPost('email', { password: 'not-the-password' }, { query: `?username=${encodeURIComponent(name)}` });
    assertErrorBody(wrong, 401, 16, 'Invalid credentials.');
    const short = await authPost('email', { password: 'short' }, { query: `?username=${encodeURIComponent(name)}` });
    assertErrorBody(short, 400, 3, PASSWORD_LEN);
    const noName = await authPost('email', { password: 'hunter2hunter2' });
    assertErrorBody(noName, 400, 3, 'Username is required when email address is not supplied.');
  });

  test('username login to an account without a password is 401', async () => {
    const name = uniqName('nopw');
    await ctx.client.authenticateDevice(uniq('device'), true, name);
    const r = await authPost('email', { password: 'whatever-password' }, { query: `?username=${name}` });
    assertErrorBody(r, 401, 16, 'Invalid credentials.');
  });

  test('email username on creation and duplicate username', async () => {
    const c = ctx.client;
    const name = uniqName('em');
    const s = await c.authenticateEmail(`${uniq('eu')}@example.com`, 'password123', true, name);
    assert.equal(s.username, name);
    await expectClientError(c.authenticateEmail(`${uniq('eu')}@example.com`, 'password123', true, name), 409, 6, USERNAME_TAKEN);
  });
});

describe('server key', () => {
  test('missing Authorization is 401 Server key required', async () => {
    const r = await authPost('device', { id: uniq('device') }, { auth: null });
    assertErrorBody(r, 401, 16, 'Server key required');
  });

  test('wrong server key is 401 Server key invalid', async () => {
    const r = await authPost('device', { id: uniq('device') }, { auth: basicAuth('wrongkey') });
    assertErrorBody(r, 401, 16, 'Server key invalid');
    const c = makeClient(ctx.srv.port, { serverKey: 'notthekey' });
    await expectClientError(c.authenticateDevice(uniq('device')), 401, 16, 'Server key invalid');
    await expectClientError(c.authenticateCustom(uniq('custom')), 401, 16, 'Server key invalid');
    await expectClientError(c.authenticateEmail(`${uniq('k')}@example.com`, 'password123'), 401, 16, 'Server key invalid');
  });

  test('a Bearer token or garbage instead of Basic is Server key invalid', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    for (const auth of [`Bearer ${s.token}`, 'Basic !!!notbase64!!!', 'Basic', 'garbage']) {
      const r = await authPost('device', { id: uniq('device') }, { auth });
      assertErrorBody(r, 401, 16, 'Server key invalid');
    }
  });

  test('only the user part of Basic auth is checked', async () => {
    const r = await authPost('device', { id: uniq('device') }, { auth: basicAuth('defaultkey', 'any-password') });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.created, true);
  });

  test('nothing is created when the key is wrong', async () => {
    const id = uniq('device');
    await authPost('device', { id }, { auth: basicAuth('wrongkey') });
    await expectClientError(ctx.client.authenticateDevice(id, false), 404, 5, NOT_FOUND);
  });
});
