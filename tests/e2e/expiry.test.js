// Token expiry with short lifetimes: --session.token_expiry_sec 1 and
// --session.refresh_token_expiry_sec 5. A token is expired once exp <= now
// (whole seconds), so waiting 2.1 s always expires a 1 s token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './lib/fixture.js';
import { request, assertErrorBody, expectClientError, decodeJwt, uniq, basicAuth, sleep } from './lib/http.js';

let deviceId;
let session;
let autoClient;
let autoSession;

const ctx = useServer({
  args: ['--session.token_expiry_sec', '1', '--session.refresh_token_expiry_sec', '5'],
  setup: async () => {
    deviceId = uniq('device');
    session = await ctx.client.authenticateDevice(deviceId);
    autoClient = ctx.srv.client({ autoRefreshSession: true });
    autoSession = await autoClient.authenticateDevice(deviceId);
  },
});

test('lifetimes follow the flags', () => {
  const s = decodeJwt(session.token).payload;
  const r = decodeJwt(session.refresh_token).payload;
  assert.equal(s.exp - s.iat, 1);
  assert.equal(r.exp - r.iat, 5);
});

test('a fresh token works, an expired one is 401 and a refresh brings it back', async () => {
  const fresh = await ctx.client.authenticateDevice(deviceId);
  const ok = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${fresh.token}` });
  // Checkable only when the clock, read after the answer, is still before exp.
  if (Math.floor(Date.now() / 1000) < decodeJwt(fresh.token).payload.exp) {
    assert.equal(ok.status, 200, ok.text);
  }

  await sleep(2100);
  const expired = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${session.token}` });
  assertErrorBody(expired, 401, 16, 'Auth token invalid');
  await expectClientError(ctx.client.getAccount(session), 401, 16, 'Auth token invalid');

  // The refresh token (5 s) is still valid. A renewed token lives until the
  // next whole second after now + 1, which can be only a few milliseconds
  // away; a 401 is accepted only when the clock has passed exp by then, and a
  // fresh refresh is tried again (at most three times, each in a new second).
  let used = 0;
  for (let attempt = 0; attempt < 3 && used === 0; attempt++) {
    const r = await request(ctx.srv, 'POST', '/v2/account/session/refresh', { auth: basicAuth(), json: { token: session.refresh_token } });
    assert.equal(r.status, 200, r.text);
    const renewed = decodeJwt(r.json.token).payload;
    assert.equal(renewed.tid, decodeJwt(session.token).payload.tid);
    assert.equal(renewed.iat, decodeJwt(session.token).payload.iat, 'iat is kept across refresh');
    const now = Math.floor(Date.now() / 1000);
    assert.ok(renewed.exp >= now && renewed.exp <= now + 2, `renewed exp ${renewed.exp} is now + 1 (now ${now})`);
    const again = await request(ctx.srv, 'GET', '/v2/account', { auth: `Bearer ${r.json.token}` });
    if (again.status === 200) {
      used++;
    } else {
      assertErrorBody(again, 401, 16, 'Auth token invalid');
      assert.ok(Date.now() / 1000 >= renewed.exp, `401 before exp ${renewed.exp}`);
    }
  }
  assert.equal(used, 1, 'a renewed token was accepted');
});

test('nakama-js with auto-refresh renews an expired session transparently', async () => {
  // The previous test slept past this session's expiry.
  assert.ok(autoSession.isexpired(Date.now() / 1000), 'session is expired by now');
  const oldToken = autoSession.token;
  // The refreshed token lives until the next whole second after now + 1; if
  // the call lands past that (the clock says so), one more try renews again.
  let account;
  try {
    account = await autoClient.getAccount(autoSession);
  } catch (e) {
    assert.equal(e.status, 401);
    assert.ok(Date.now() / 1000 >= decodeJwt(autoSession.token).payload.exp, 'a 401 only after exp');
    account = await autoClient.getAccount(autoSession);
  }
  assert.equal(account.user.id, autoSession.user_id);
  assert.notEqual(autoSession.token, oldToken, 'the client stored the refreshed token');
});

test('an expired refresh token is rejected', async () => {
  const s = decodeJwt(session.refresh_token).payload;
  const wait = s.exp * 1000 - Date.now() + 150;
  if (wait > 0) await sleep(wait);
  const r = await request(ctx.srv, 'POST', '/v2/account/session/refresh', { auth: basicAuth(), json: { token: session.refresh_token } });
  assertErrorBody(r, 401, 16, 'Refresh token invalid or expired.');
  // Logging in again still works.
  const s2 = await ctx.client.authenticateDevice(deviceId, false);
  assert.equal(s2.user_id, session.user_id);
});
