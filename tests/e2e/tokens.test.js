// Session and refresh token format, and rejection of bad bearer tokens.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { useServer } from './lib/fixture.js';
import {
  request, assertErrorBody, decodeJwt, makeJwt, verifyHs256, uniq, uniqName, basicAuth,
  b64urlEncode, UUID_RE, DEFAULT_SESSION_KEY, DEFAULT_REFRESH_KEY,
} from './lib/http.js';

const CLAIMS = ['exp', 'iat', 'tid', 'uid', 'usn', 'vrs'];
const INVALID = 'Auth token invalid';
let session; // nakama-js Session of a fresh account
let account;
let username;

const ctx = useServer({
  setup: async () => {
    username = uniqName('tok');
    session = await ctx.client.authenticateDevice(uniq('device'), true, username, { role: 'tester' });
    account = await ctx.client.getAccount(session);
  },
});

function getAccountWith(authHeader) {
  return request(ctx.srv, 'GET', '/v2/account', { auth: authHeader });
}

describe('token format', () => {
  test('header is HS256 JWT', () => {
    for (const t of [session.token, session.refresh_token]) {
      const { header } = decodeJwt(t);
      assert.equal(header.alg, 'HS256');
      assert.equal(header.typ, 'JWT');
    }
  });

  test('session token claims', () => {
    const { payload } = decodeJwt(session.token);
    const now = Math.floor(Date.now() / 1000);
    for (const k of Object.keys(payload)) assert.ok(CLAIMS.includes(k), `unexpected claim ${k}`);
    assert.match(payload.tid, UUID_RE);
    assert.match(payload.uid, UUID_RE);
    assert.equal(payload.uid, account.user.id);
    assert.equal(payload.usn, username);
    assert.deepEqual(payload.vrs, { role: 'tester' });
    assert.ok(Number.isInteger(payload.exp) && Number.isInteger(payload.iat), 'exp and iat are integer seconds');
    assert.equal(payload.exp - payload.iat, 60, 'default session.token_expiry_sec is 60');
    assert.ok(Math.abs(payload.iat - now) <= 10, `iat ${payload.iat} is about now (${now})`);
  });

  test('refresh token claims', () => {
    const s = decodeJwt(session.token).payload;
    const r = decodeJwt(session.refresh_token).payload;
    for (const k of Object.keys(r)) assert.ok(CLAIMS.includes(k), `unexpected claim ${k}`);
    assert.equal(r.tid, s.tid, 'the pair shares one tid');
    assert.equal(r.uid, s.uid);
    assert.equal(r.usn, s.usn);
    assert.equal(r.iat, s.iat);
    assert.deepEqual(r.vrs, s.vrs);
    assert.equal(r.exp - r.iat, 3600, 'default session.refresh_token_expiry_sec is 3600');
  });

  test('nakama-js reads the claims', () => {
    const s = decodeJwt(session.token).payload;
    assert.equal(session.user_id, account.user.id);
    assert.equal(session.username, username);
    assert.equal(session.expires_at, s.exp);
    assert.equal(session.refresh_expires_at, decodeJwt(session.refresh_token).payload.exp);
    assert.deepEqual(session.vars, { role: 'tester' });
  });

  test('signed with the default keys (session and refresh keys differ)', () => {
    assert.ok(verifyHs256(session.token, DEFAULT_SESSION_KEY), 'session token HMAC with defaultencryptionkey');
    assert.ok(verifyHs256(session.refresh_token, DEFAULT_REFRESH_KEY), 'refresh token HMAC with defaultrefreshencryptionkey');
    assert.ok(!verifyHs256(session.token, DEFAULT_REFRESH_KEY));
    assert.ok(!verifyHs256(session.refresh_token, DEFAULT_SESSION_KEY));
  });

  test('every login gets a different tid', async () => {
    const tids = new Set();
    for (let i = 0; i < 3; i++) {
      const s = await ctx.client.authenticateDevice(uniq('device'));
      tids.add(decodeJwt(s.token).payload.tid);
    }
    tids.add(decodeJwt(session.token).payload.tid);
    assert.equal(tids.size, 4);
  });
});

describe('bearer token checks', () => {
  test('the real token works', async () => {
    const r = await getAccountWith(`Bearer ${session.token}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.user.id, account.user.id);
  });

  test('missing token is 401 Auth token required', async () => {
    assertErrorBody(await getAccountWith(null), 401, 16, 'Auth token required');
  });

  test('tampered payload is rejected', async () => {
    const [h, , sig] = session.token.split('.');
    const payload = { ...decodeJwt(session.token).payload, usn: 'mallory' };
    const forged = `${h}.${b64urlEncode(JSON.stringify(payload))}.${sig}`;
    assertErrorBody(await getAccountWith(`Bearer ${forged}`), 401, 16, INVALID);
  });

  test('tampered signature is rejected', async () => {
    const parts = session.token.split('.');
    const sig = parts[2];
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    assertErrorBody(await getAccountWith(`Bearer ${parts[0]}.${parts[1]}.${flipped}`), 401, 16, INVALID);
    assertErrorBody(await getAccountWith(`Bearer ${parts[0]}.${parts[1]}.`), 401, 16, INVALID);
  });

  test('alg=none is rejected', async () => {
    const { payload } = decodeJwt(session.token);
    const none = makeJwt({ alg: 'none', typ: 'JWT' }, payload, null, '');
    assertErrorBody(await getAccountWith(`Bearer ${none}`), 401, 16, INVALID);
    // alg=none keeping a valid-looking signature
    const none2 = makeJwt({ alg: 'none', typ: 'JWT' }, payload, null, session.token.split('.')[2]);
    assertErrorBody(await getAccountWith(`Bearer ${none2}`), 401, 16, INVALID);
  });

  test('other algorithms are rejected even with a matching HMAC', async () => {
    const { payload } = decodeJwt(session.token);
    const input = `${b64urlEncode(JSON.stringify({ alg: 'HS512', typ: 'JWT' }))}.${b64urlEncode(JSON.stringify(payload))}`;
    const sig = b64urlEncode(crypto.createHmac('sha512', DEFAULT_SESSION_KEY).update(input).digest());
    assertErrorBody(await getAccountWith(`Bearer ${input}.${sig}`), 401, 16, INVALID);
  });

  test('garbage is rejected', async () => {
    for (const t of ['garbage', 'a.b.c', '...', 'e30.e30.e30', 'x'.repeat(2000)]) {
      assertErrorBody(await getAccountWith(`Bearer ${t}`), 401, 16, INVALID);
    }
  });

  test('a refresh token is not a session token', async () => {
    assertErrorBody(await getAccountWith(`Bearer ${session.refresh_token}`), 401, 16, INVALID);
  });

  test('Basic server key on a bearer route is rejected', async () => {
    assertErrorBody(await getAccountWith(basicAuth()), 401, 16, INVALID);
  });

  test('a token signed with another key is rejected', async () => {
    const { payload } = decodeJwt(session.token);
    const forged = makeJwt({ alg: 'HS256', typ: 'JWT' }, payload, 'not-the-server-key');
    assertErrorBody(await getAccountWith(`Bearer ${forged}`), 401, 16, INVALID);
  });

  test('well-signed but expired tokens are rejected (exp <= now)', async () => {
    const { payload } = decodeJwt(session.token);
    const now = Math.floor(Date.now() / 1000);
    const past = makeJwt({ alg: 'HS256', typ: 'JWT' }, { ...payload, exp: now - 30, iat: now - 90 }, DEFAULT_SESSION_KEY);
    assertErrorBody(await getAccountWith(`Bearer ${past}`), 401, 16, INVALID);
    // exp equal to the current second is already expired.
    const edge = makeJwt({ alg: 'HS256', typ: 'JWT' }, { ...payload, exp: now, iat: now - 60 }, DEFAULT_SESSION_KEY);
    assertErrorBody(await getAccountWith(`Bearer ${edge}`), 401, 16, INVALID);
  });

  test('a well-signed token without exp is rejected', async () => {
    const { payload } = decodeJwt(session.token);
    const { exp, ...noExp } = payload;
    assert.ok(exp);
    const forged = makeJwt({ alg: 'HS256', typ: 'JWT' }, noExp, DEFAULT_SESSION_KEY);
    assertErrorBody(await getAccountWith(`Bearer ${forged}`), 401, 16, INVALID);
  });

  test('the bad tokens changed nothing', async () => {
    const r = await getAccountWith(`Bearer ${session.token}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.user.username, username);
  });
});
