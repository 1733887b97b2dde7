// Link and unlink device, custom id and email.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { request, assertErrorBody, expectClientError, uniq } from './lib/http.js';

const ctx = useServer();

const LAST_LINK = 'Cannot unlink last account identifier. Check profile exists and is not last link.';
const NOT_FOUND = 'User account not found.';
// Nakama 3.x says "Device ID already in use." for devices (no "is"), while
// custom id and email say "... is already in use."; either form is accepted.
const DEVICE_IN_USE = /^Device ID (is )?already in use\.$/;

function sortedDeviceIds(account) {
  return (account.devices || []).map((d) => d.id).sort();
}

describe('device', () => {
  test('link a second device; it logs into the same account', async () => {
    const c = ctx.client;
    const { id, session } = await newDeviceSession(c);
    const second = uniq('device2');
    assert.equal(await c.linkDevice(session, { id: second }), true);
    const account = await c.getAccount(session);
    assert.deepEqual(sortedDeviceIds(account), [id, second].sort());
    const s2 = await c.authenticateDevice(second, false);
    assert.equal(s2.created, false);
    assert.equal(s2.user_id, session.user_id);
  });

  test('raw link answers 200 {}', async () => {
    const { session } = await newDeviceSession(ctx.client);
    const r = await request(ctx.srv, 'POST', '/v2/account/link/device', { auth: `Bearer ${session.token}`, json: { id: uniq('device') } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
  });

  test('linking your own device again is fine', async () => {
    const c = ctx.client;
    const { id, session } = await newDeviceSession(c);
    assert.equal(await c.linkDevice(session, { id }), true);
    assert.deepEqual(sortedDeviceIds(await c.getAccount(session)), [id]);
  });

  test("linking another user's device is 409", async () => {
    const c = ctx.client;
    const a = await newDeviceSession(c);
    const b = await newDeviceSession(c);
    await expectClientError(c.linkDevice(a.session, { id: b.id }), 409, 6, DEVICE_IN_USE);
    const s = await c.authenticateDevice(b.id, false);
    assert.equal(s.user_id, b.session.user_id, 'the device still belongs to its owner');
    assert.deepEqual(sortedDeviceIds(await c.getAccount(a.session)), [a.id]);
  });

  test('device id validation', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    await expectClientError(c.linkDevice(session, { id: 'short' }), 400, 3, 'Device ID invalid, must be 10-128 bytes.');
    await expectClientError(c.linkDevice(session, { id: 'z'.repeat(129) }), 400, 3, 'Device ID invalid, must be 10-128 bytes.');
    await expectClientError(c.linkDevice(session, { id: '' }), 400, 3, 'Device ID is required.');
    await expectClientError(c.linkDevice(session, { id: 'space in the id' }), 400, 3, 'Device ID invalid, no spaces or control characters allowed.');
    assert.equal((await c.getAccount(session)).devices.length, 1);
  });

  test('unlink one of two devices; it no longer logs in', async () => {
    const c = ctx.client;
    const { id, session } = await newDeviceSession(c);
    const second = uniq('device2');
    await c.linkDevice(session, { id: second });
    assert.equal(await c.unlinkDevice(session, { id: second }), true);
    assert.deepEqual(sortedDeviceIds(await c.getAccount(session)), [id]);
    await expectClientError(c.authenticateDevice(second, false), 404, 5, NOT_FOUND);
    const again = await c.authenticateDevice(id, false);
    assert.equal(again.user_id, session.user_id);
  });

  test('unlinking the last identifier is 403', async () => {
    const c = ctx.client;
    const { id, session } = await newDeviceSession(c);
    await expectClientError(c.unlinkDevice(session, { id }), 403, 7, LAST_LINK);
    assert.deepEqual(sortedDeviceIds(await c.getAccount(session)), [id]);
    assert.equal((await c.authenticateDevice(id, false)).user_id, session.user_id);
  });

  test("unlinking a device you don't own is 403 and leaves it alone", async () => {
    const c = ctx.client;
    const a = await newDeviceSession(c);
    await c.linkCustom(a.session, { id: uniq('custom') }); // a has more than one identifier
    const b = await newDeviceSession(c);
    await expectClientError(c.unlinkDevice(a.session, { id: b.id }), 403, 7, LAST_LINK);
    assert.equal((await c.authenticateDevice(b.id, false)).user_id, b.session.user_id);
  });

  test('unlink without an id is 400', async () => {
    const { session } = await newDeviceSession(ctx.client);
    const r = await request(ctx.srv, 'POST', '/v2/account/unlink/device', { auth: `Bearer ${session.token}`, json: {} });
    assertErrorBody(r, 400, 3);
  });
});

describe('custom id', () => {
  test('link, log in with it, unlink', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    const custom = uniq('custom');
    assert.equal(await c.linkCustom(session, { id: custom }), true);
    assert.equal((await c.getAccount(session)).custom_id, custom);
    const s = await c.authenticateCustom(custom, false);
    assert.equal(s.user_id, session.user_id);
    assert.equal(s.created, false);
    assert.equal(await c.unlinkCustom(session, { id: custom }), true);
    assert.equal((await c.getAccount(session)).custom_id, undefined);
    await expectClientError(c.authenticateCustom(custom, false), 404, 5, NOT_FOUND);
  });

  test("another user's custom id is 409", async () => {
    const c = ctx.client;
    const custom = uniq('custom');
    const owner = await c.authenticateCustom(custom);
    const { session } = await newDeviceSession(c);
    await expectClientError(c.linkCustom(session, { id: custom }), 409, 6, 'Custom ID is already in use.');
    assert.equal((await c.getAccount(session)).custom_id, undefined);
    assert.equal((await c.authenticateCustom(custom, false)).user_id, owner.user_id);
  });

  test('custom id validation', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    await expectClientError(c.linkCustom(session, { id: 'abcde' }), 400, 3, /custom ID.* must be 6-128 bytes\.$/i);
    await expectClientError(c.linkCustom(session, { id: 'k'.repeat(129) }), 400, 3, /custom ID.* must be 6-128 bytes\.$/i);
    await expectClientError(c.linkCustom(session, { id: '' }), 400, 3, 'Custom ID is required.');
    assert.equal((await c.getAccount(session)).custom_id, undefined);
  });

  test('unlinking the only custom id is 403', async () => {
    const c = ctx.client;
    const custom = uniq('custom');
    const s = await c.authenticateCustom(custom);
    await expectClientError(c.unlinkCustom(s, { id: custom }), 403, 7, LAST_LINK);
    assert.equal((await c.getAccount(s)).custom_id, custom);
  });
});

describe('email', () => {
  test('link (stored lower-case), log in, unlink', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    const email = `${uniq('Link')}@Example.COM`;
    assert.equal(await c.linkEmail(session, { email, password: 'password123' }), true);
    assert.equal((await c.getAccount(session)).email, email.toLowerCase());
    const s = await c.authenticateEmail(email.toLowerCase(), 'password123', false);
    assert.equal(s.user_id, session.user_id);
    await expectClientError(c.authenticateEmail(email, 'wrong-password', false), 401, 16, 'Invalid credentials.');
    assert.equal(await c.unlinkEmail(session, { email, password: 'password123' }), true);
    assert.equal((await c.getAccount(session)).email, undefined);
    await expectClientError(c.authenticateEmail(email, 'password123', false), 404, 5, NOT_FOUND);
  });

  test("another user's email (in any case) is 409", async () => {
    const c = ctx.client;
    const email = `${uniq('owned')}@example.com`;
    const owner = await c.authenticateEmail(email, 'password123');
    const { session } = await newDeviceSession(c);
    await expectClientError(c.linkEmail(session, { email: email.toUpperCase(), password: 'password456' }), 409, 6, 'Email is already in use.');
    assert.equal((await c.getAccount(session)).email, undefined);
    const again = await c.authenticateEmail(email, 'password123', false);
    assert.equal(again.user_id, owner.user_id, "the owner's password was not replaced");
  });

  test('email validation', async () => {
    const c = ctx.client;
    const { session } = await newDeviceSession(c);
    await expectClientError(c.linkEmail(session, { email: `${uniq('v')}@example.com`, password: 'short' }), 400, 3, 'Password must be at least 8 characters long.');
    await expectClientError(c.linkEmail(session, { email: 'not-an-email-address', password: 'password123' }), 400, 3, 'Invalid email address format.');
    await expectClientError(c.linkEmail(session, { email: 'a@b.co', password: 'password123' }), 400, 3, 'Invalid email address, must be 10-255 bytes.');
    await expectClientError(c.linkEmail(session, { email: '', password: '' }), 400, 3);
    assert.equal((await c.getAccount(session)).email, undefined);
  });

  test('unlinking the only email is 403', async () => {
    const c = ctx.client;
    const email = `${uniq('only')}@example.com`;
    const s = await c.authenticateEmail(email, 'password123');
    await expectClientError(c.unlinkEmail(s, { email, password: 'password123' }), 403, 7, LAST_LINK);
    assert.equal((await c.getAccount(s)).email, email);
  });

  test('unlink down to one identifier, then the last one is refused', async () => {
    const c = ctx.client;
    const { id, session } = await newDeviceSession(c);
    const custom = uniq('custom');
    const email = `${uniq('chain')}@example.com`;
    await c.linkCustom(session, { id: custom });
    await c.linkEmail(session, { email, password: 'password123' });
    await c.unlinkDevice(session, { id });
    await c.unlinkEmail(session, { email, password: 'password123' });
    await expectClientError(c.unlinkCustom(session, { id: custom }), 403, 7, LAST_LINK);
    const a = await c.getAccount(session);
    assert.equal(a.custom_id, custom);
    assert.equal(a.email, undefined);
    assert.equal(a.devices, undefined);
  });
});

test('link and unlink need a session', async () => {
  for (const path of ['/v2/account/link/device', '/v2/account/link/custom', '/v2/account/link/email',
    '/v2/account/unlink/device', '/v2/account/unlink/custom', '/v2/account/unlink/email']) {
    const r = await request(ctx.srv, 'POST', path, { json: { id: uniq('device') } });
    assertErrorBody(r, 401, 16, 'Auth token required');
  }
});
