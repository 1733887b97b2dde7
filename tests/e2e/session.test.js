// Session refresh and logout (revocation).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './lib/fixture.js';
import {
  request, assertErrorBody, expectClientError, decodeJwt, uniq, uniqName, basicAuth, sleep,
} from './lib/http.js';
import { Session } from '@heroiclabs/nakama-js';

const ctx = useServer();

const REFRESH_INVALID = 'Refresh token invalid or expired.';
const AUTH_INVALID = 'Auth token invalid';

function refreshRaw(body, auth = basicAuth()) {
  return request(ctx.srv, 'POST', '/v2/account/session/refresh', { auth, json: body });
}

function logoutRaw(token, body) {
  return request(ctx.srv, 'POST', '/v2/session/logout', { auth: token ? `Bearer ${token}` : null, json: body });
}

async function accountStatus(token) {
  const r = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${token}` });
  return r;
}

async function assertTokenWorks(token, msg) {
  const r = await accountStatus(token);
  assert.equal(r.status, 200, `${msg || 'token should work'}: ${r.status} ${r.text}`);
  return r.json;
}

async function assertTokenRevoked(token) {
  assertErrorBody(await accountStatus(token), 401, 16, AUTH_INVALID);
}

async function assertRefreshRejected(refreshToken) {
  assertErrorBody(await refreshRaw({ token: refreshToken }), 401, 16, REFRESH_INVALID);
}

describe('session refresh', () => {
  test('issues new tokens with the same tid and iat', async () => {
    const c = ctx.client;
    const s = await c.authenticateDevice(uniq('device'), true, uniqName('ref'));
    const before = decodeJwt(s.token).payload;
    const beforeRefresh = decodeJwt(s.refresh_token).payload;
    const oldToken = s.token;
    const oldRefresh = s.refresh_token;
    await sleep(1100); // so that exp moves to a later second
    const r = await refreshRaw({ token: s.refresh_token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['refresh_token', 'token'], 'created is false and omitted');
    assert.notEqual(r.json.token, oldToken);
    assert.notEqual(r.json.refresh_token, oldRefresh);
    const after = decodeJwt(r.json.token).payload;
    const afterRefresh = decodeJwt(r.json.refresh_token).payload;
    assert.equal(after.tid, before.tid);
    assert.equal(after.iat, before.iat);
    assert.equal(after.uid, before.uid);
    assert.equal(after.usn, before.usn);
    assert.ok(after.exp > before.exp, 'fresh exp');
    assert.equal(afterRefresh.tid, beforeRefresh.tid);
    assert.equal(afterRefresh.iat, beforeRefresh.iat);
    assert.ok(afterRefresh.exp > beforeRefresh.exp);
    await assertTokenWorks(r.json.token);
    // Refreshing does not revoke the previous session token.
    await assertTokenWorks(oldToken, 'the old session token stays valid');
  });

  test('through nakama-js: session updated in place, created false', async () => {
    const c = ctx.client;
    const id = uniq('device');
    const s = await c.authenticateDevice(id, true);
    assert.equal(s.created, true);
    const uid = s.user_id;
    const refreshed = await c.sessionRefresh(s, { mode: 'refreshed' });
    assert.equal(refreshed.user_id, uid);
    assert.deepEqual(refreshed.vars, { mode: 'refreshed' });
    const account = await c.getAccount(refreshed);
    assert.equal(account.user.id, uid);
    // A session restored from stored tokens refreshes too.
    const restored = Session.restore(refreshed.token, refreshed.refresh_token);
    const again = await c.sessionRefresh(restored);
    assert.equal(again.created, false);
    assert.equal(again.user_id, uid);
  });

  test('vars: replaced when given, kept when absent', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'), true, undefined, { a: '1' });
    const replaced = await refreshRaw({ token: s.refresh_token, vars: { b: '2' } });
    assert.equal(replaced.status, 200, replaced.text);
    assert.deepEqual(decodeJwt(replaced.json.token).payload.vrs, { b: '2' });
    assert.deepEqual(decodeJwt(replaced.json.refresh_token).payload.vrs, { b: '2' });
    const kept = await refreshRaw({ token: replaced.json.refresh_token });
    assert.equal(kept.status, 200, kept.text);
    assert.deepEqual(decodeJwt(kept.json.token).payload.vrs, { b: '2' });
    const fromOriginal = await refreshRaw({ token: s.refresh_token });
    assert.equal(fromOriginal.status, 200, fromOriginal.text);
    assert.deepEqual(decodeJwt(fromOriginal.json.token).payload.vrs, { a: '1' });
  });

  test('carries the current username', async () => {
    const c = ctx.client;
    const s = await c.authenticateDevice(uniq('device'), true, uniqName('before'));
    const newName = uniqName('after');
    await c.updateAccount(s, { username: newName });
    const r = await refreshRaw({ token: s.refresh_token });
    assert.equal(r.status, 200, r.text);
    assert.equal(decodeJwt(r.json.token).payload.usn, newName);
  });

  test('empty or missing token is 400 Refresh token is required.', async () => {
    assertErrorBody(await refreshRaw({ token: '' }), 400, 3, 'Refresh token is required.');
    assertErrorBody(await refreshRaw({}), 400, 3, 'Refresh token is required.');
  });

  test('a session token is not a refresh token', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    assertErrorBody(await refreshRaw({ token: s.token }), 401, 16, REFRESH_INVALID);
    const wrong = Session.restore(s.token, s.token);
    await expectClientError(ctx.client.sessionRefresh(wrong), 401, 16, REFRESH_INVALID);
  });

  test('garbage and tampered refresh tokens are rejected', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    const [h, p, sig] = s.refresh_token.split('.');
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    for (const t of ['garbage', 'a.b.c', `${h}.${p}.${flipped}`, `${h}.${p}.`]) {
      assertErrorBody(await refreshRaw({ token: t }), 401, 16, REFRESH_INVALID);
    }
  });

  test('refresh needs the server key, not a bearer token', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    assertErrorBody(await refreshRaw({ token: s.refresh_token }, null), 401, 16, 'Server key required');
    assertErrorBody(await refreshRaw({ token: s.refresh_token }, `Bearer ${s.token}`), 401, 16, 'Server key invalid');
    assertErrorBody(await refreshRaw({ token: s.refresh_token }, basicAuth('wrongkey')), 401, 16, 'Server key invalid');
  });
});

describe('session logout', () => {
  test('revokes the given session and refresh token, not other sessions', async () => {
    const c = ctx.client;
    const id = uniq('device');
    const s1 = await c.authenticateDevice(id);
    const s2 = await c.authenticateDevice(id);
    const ok = await c.sessionLogout(s1, s1.token, s1.refresh_token);
    assert.equal(ok, true);
    await assertTokenRevoked(s1.token);
    await assertRefreshRejected(s1.refresh_token);
    await expectClientError(c.getAccount(s1), 401, 16, AUTH_INVALID);
    await assertTokenWorks(s2.token, 'another session of the same user still works');
    const r = await refreshRaw({ token: s2.refresh_token });
    assert.equal(r.status, 200, r.text);
  });

  test('raw logout answers 200 {}', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    const r = await logoutRaw(s.token, { token: s.token, refresh_token: s.refresh_token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    await assertTokenRevoked(s.token);
  });

  test('a refreshed pair shares the tid: logging out revokes the refreshed tokens too', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    const r = await refreshRaw({ token: s.refresh_token });
    assert.equal(r.status, 200, r.text);
    const out = await logoutRaw(s.token, { token: s.token, refresh_token: s.refresh_token });
    assert.equal(out.status, 200, out.text);
    await assertTokenRevoked(s.token);
    await assertTokenRevoked(r.json.token);
    await assertRefreshRejected(r.json.refresh_token);
  });

  test('logout with no tokens revokes every session of the user only', async () => {
    const c = ctx.client;
    const id = uniq('device');
    const a1 = await c.authenticateDevice(id);
    const a2 = await c.authenticateDevice(id);
    const other = await c.authenticateDevice(uniq('device'));
    const r = await logoutRaw(a1.token, {});
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    await assertTokenRevoked(a1.token);
    await assertTokenRevoked(a2.token);
    await assertRefreshRejected(a1.refresh_token);
    await assertRefreshRejected(a2.refresh_token);
    await assertTokenWorks(other.token, "another user's session is untouched");
    // Logging in again right away (same second) gives a working session.
    const fresh = await c.authenticateDevice(id, false);
    await assertTokenWorks(fresh.token, 'a login after logout-all works');
    const rr = await refreshRaw({ token: fresh.refresh_token });
    assert.equal(rr.status, 200, rr.text);
  });

  test('nakama-js logout without tokens is logout-all', async () => {
    const c = ctx.client;
    const id = uniq('device');
    const a1 = await c.authenticateDevice(id);
    const a2 = await c.authenticateDevice(id);
    assert.equal(await c.sessionLogout(a1, undefined, undefined), true);
    await assertTokenRevoked(a1.token);
    await assertTokenRevoked(a2.token);
  });

  test('refresh_token only (camelCase input accepted)', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    const r = await logoutRaw(s.token, { refreshToken: s.refresh_token });
    assert.equal(r.status, 200, r.text);
    await assertRefreshRejected(s.refresh_token);
  });

  test("another user's tokens are 400 and revoke nothing", async () => {
    const c = ctx.client;
    const me = await c.authenticateDevice(uniq('device'));
    const them = await c.authenticateDevice(uniq('device'));
    assertErrorBody(await logoutRaw(me.token, { token: them.token }), 400, 3, 'Session token invalid.');
    assertErrorBody(await logoutRaw(me.token, { refresh_token: them.refresh_token }), 400, 3, 'Refresh token invalid.');
    assertErrorBody(await logoutRaw(me.token, { token: 'garbage' }), 400, 3, 'Session token invalid.');
    assertErrorBody(await logoutRaw(me.token, { refresh_token: me.token }), 400, 3, 'Refresh token invalid.');
    await assertTokenWorks(me.token);
    await assertTokenWorks(them.token);
    const r = await refreshRaw({ token: them.refresh_token });
    assert.equal(r.status, 200, r.text);
  });

  test('logout needs a bearer token', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    assertErrorBody(await logoutRaw(null, { token: s.token }), 401, 16, 'Auth token required');
    const r = await request(ctx.srv, 'POST', '/v2/session/logout', { auth: basicAuth(), json: { token: s.token } });
    assertErrorBody(r, 401, 16, AUTH_INVALID);
    await assertTokenWorks(s.token);
  });

  test('a revoked token cannot log out again', async () => {
    const s = await ctx.client.authenticateDevice(uniq('device'));
    const r = await logoutRaw(s.token, { token: s.token });
    assert.equal(r.status, 200, r.text);
    assertErrorBody(await logoutRaw(s.token, {}), 401, 16, AUTH_INVALID);
  });
});
