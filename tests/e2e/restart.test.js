// Accounts and revocations survive a restart on the same data dir / database;
// valid tokens stay valid (signed with the default keys).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.js';
import { request, assertErrorBody, uniq, uniqName, basicAuth, RawConn, rawRequest } from './lib/http.js';

let first;
let second;

after(async () => {
  // Normal path stops both servers inside the test; this only cleans up after a failure.
  for (const s of [second, first]) {
    if (s && !s.exit) await s.kill();
  }
  if (first) first.cleanup();
});

function getAccount(srv, token) {
  return request(srv, 'GET', '/v2/account', { auth: `Bearer ${token}` });
}

function refresh(srv, token) {
  return request(srv, 'POST', '/v2/account/session/refresh', { auth: basicAuth(), json: { token } });
}

test('state survives a graceful restart', async () => {
  first = await startServer();
  const c1 = first.client();

  const deviceId = uniq('device');
  const name = uniqName('persist');
  const keep = await c1.authenticateDevice(deviceId, true, name);
  const revoked = await c1.authenticateDevice(deviceId);
  await c1.updateAccount(keep, { display_name: 'Persistent', timezone: 'Asia/Tokyo' });
  const email = `${uniq('restart')}@example.com`;
  await c1.linkEmail(keep, { email, password: 'password123' });
  assert.equal(await c1.sessionLogout(revoked, revoked.token, revoked.refresh_token), true);

  const otherId = uniq('device');
  const other1 = await c1.authenticateDevice(otherId);
  const other2 = await c1.authenticateDevice(otherId);
  const otherLogout = await request(first, 'POST', '/v2/session/logout', { auth: `Bearer ${other1.token}`, json: {} });
  assert.equal(otherLogout.status, 200, otherLogout.text);

  const before = await c1.getAccount(keep);

  // Open connections must not hold up a graceful shutdown: one idle
  // keep-alive connection and one stalled half-sent request.
  const idle = await new RawConn(first.port).connect();
  await idle.write(rawRequest('GET', '/healthcheck'));
  assert.equal((await idle.readResponse()).status, 200);
  const stalled = await new RawConn(first.port).connect();
  await stalled.write('POST /v2/account/authenticate/device HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{"id"');
  const stopStarted = Date.now();
  try {
    await first.stop();
  } finally {
    idle.destroy();
    stalled.destroy();
  }
  assert.ok(Date.now() - stopStarted < 5000, `graceful stop took ${Date.now() - stopStarted} ms`);
  second = await startServer({ dataDir: first.dataDir, dbAddress: first.dbAddress });
  const c2 = second.client();

  // The kept session still works after the restart.
  const r = await getAccount(second, keep.token);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(await c2.getAccount(keep), before);
  assert.equal(r.json.user.display_name, 'Persistent');
  assert.equal(r.json.email, email);
  const rr = await refresh(second, keep.refresh_token);
  assert.equal(rr.status, 200, rr.text);

  // Revocations are remembered.
  assertErrorBody(await getAccount(second, revoked.token), 401, 16, 'Auth token invalid');
  assertErrorBody(await refresh(second, revoked.refresh_token), 401, 16, 'Refresh token invalid or expired.');
  assertErrorBody(await getAccount(second, other1.token), 401, 16, 'Auth token invalid');
  assertErrorBody(await getAccount(second, other2.token), 401, 16, 'Auth token invalid');
  assertErrorBody(await refresh(second, other2.refresh_token), 401, 16, 'Refresh token invalid or expired.');

  // Logins find the same accounts.
  const again = await c2.authenticateDevice(deviceId, false);
  assert.equal(again.user_id, keep.user_id);
  assert.equal(again.username, name);
  const byEmail = await c2.authenticateEmail(email, 'password123', false);
  assert.equal(byEmail.user_id, keep.user_id);
  const otherAgain = await c2.authenticateDevice(otherId, false);
  assert.equal(otherAgain.user_id, other1.user_id);
  const ok = await getAccount(second, otherAgain.token);
  assert.equal(ok.status, 200, ok.text);

  // New accounts get new usernames that do not clash with the old ones.
  const fresh = await c2.authenticateDevice(uniq('device'));
  assert.equal(fresh.created, true);
  assert.notEqual(fresh.user_id, keep.user_id);

  await second.stop();
});
