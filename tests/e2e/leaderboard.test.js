// Leaderboards through nakama-js (writeLeaderboardRecord,
// listLeaderboardRecords, listLeaderboardRecordsAroundOwner,
// deleteLeaderboardRecord) and raw HTTP where the client cannot go (the
// per-write operator, bad input). The boards are created by a Lua module
// (tests/e2e/modules/leaderboard/boards.lua) that every worker state runs;
// the `lb_call` RPC calls the nk leaderboard functions from a script.
// Resets are reached with the test clock (test.clock_control).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServer } from './lib/fixture.js';
import { E2E_DIR, ApiError } from './lib/server.js';
import { request, uniq, uniqName } from './lib/http.js';

const HTTP_KEY = 'defaulthttpkey';
const ctx = useServer({
  args: ['--runtime.path', path.join(E2E_DIR, 'modules', 'leaderboard'), '--test.clock_control', 'true'],
});

/** A fresh user: {s: session, id, name, device}. */
async function user(prefix = 'lb') {
  const name = uniqName(prefix);
  const device = uniq('device');
  const s = await ctx.client.authenticateDevice(device, true, name);
  return { s, id: s.user_id, name, device };
}

/** A new session for u (after the clock moved past its token's expiry). */
async function relogin(u) {
  u.s = await ctx.client.authenticateDevice(u.device, false);
}

const write = (u, board, score, subscore, metadata) =>
  ctx.client.writeLeaderboardRecord(u.s, board, { score, subscore, metadata });
const list = (u, board, { owners, limit, cursor, expiry } = {}) =>
  ctx.client.listLeaderboardRecords(u.s, board, owners, limit, cursor, expiry);
const around = (u, board, owner, limit, cursor, expiry) =>
  ctx.client.listLeaderboardRecordsAroundOwner(u.s, board, owner, limit, expiry, cursor);

/** Raw REST call as u. */
const rest = (u, method, p, json) => request(ctx.srv, method, p, { auth: { bearer: u.s.token }, json });

/** Calls nk[fn](...args) through the lb_call RPC; the packed results. */
async function nk(u, fn, ...args) {
  const res = await ctx.client.rpc(u.s, 'lb_call', { fn, args, n: args.length });
  return res.payload;
}

/** A Lua array that came back as {} when empty. */
const arr = (v) => (Array.isArray(v) ? v : v && typeof v === 'object' && Object.keys(v).length === 0 ? [] : v);

/** Expects an API error with HTTP status, gRPC code and message. */
async function rejects(promise, status, code, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, status, e.text);
    assert.equal(e.json.code, code, e.text);
    if (message instanceof RegExp) assert.match(e.json.message, message);
    else assert.equal(e.json.message, message);
    return true;
  });
}

function assertError(res, status, code, message) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.code, code, res.text);
  if (message instanceof RegExp) assert.match(res.json.message, message);
  else assert.equal(res.json.message, message);
}

/** Moves the server's clock to real time + ms. */
async function setClock(ms) {
  const res = await request(ctx.srv, 'PUT', `/v2/kizuna/test/clock?offset_ms=${ms}&http_key=${HTTP_KEY}`);
  assert.equal(res.status, 200, res.text);
  return res.json;
}

after(async () => {
  if (ctx.srv && !ctx.srv.exit) await setClock(0);
});

// ------------------------------------------------------------------ operators

test('best keeps the better value of each field, on desc and asc boards', async () => {
  const a = await user();
  let r = await write(a, 'desc_best', 10, 5, { lap: 1 });
  assert.equal(r.score, 10);
  assert.equal(r.subscore, 5);
  assert.equal(r.num_score, 1);
  assert.equal(r.rank, 1);
  assert.equal(r.owner_id, a.id);
  assert.equal(r.username, a.name);
  assert.deepEqual(r.metadata, { lap: 1 });
  assert.equal(r.max_num_score, 1000000);
  assert.equal(r.expiry_time, undefined);
  r = await write(a, 'desc_best', 12, 1, { lap: 2 });
  assert.deepEqual([r.score, r.subscore, r.num_score], [12, 5, 2]);
  assert.deepEqual(r.metadata, { lap: 2 });
  r = await write(a, 'desc_best', 3, 2, { lap: 3 });
  assert.deepEqual([r.score, r.subscore, r.num_score], [12, 5, 2], 'worse on both fields: untouched');
  assert.deepEqual(r.metadata, { lap: 2 }, 'an unchanged record keeps its metadata');

  r = await write(a, 'asc_best', 10, 5);
  assert.deepEqual([r.score, r.subscore, r.num_score], [10, 5, 1]);
  r = await write(a, 'asc_best', 12, 1);
  assert.deepEqual([r.score, r.subscore, r.num_score], [10, 1, 2]);
  r = await write(a, 'asc_best', 4, 9);
  assert.deepEqual([r.score, r.subscore, r.num_score], [4, 1, 3]);
});

test('set replaces, incr adds, decr subtracts down to 0', async () => {
  const a = await user();
  for (const board of ['desc_set', 'asc_set']) {
    let r = await write(a, board, 10, 5);
    assert.deepEqual([r.score, r.subscore, r.num_score], [10, 5, 1], board);
    r = await write(a, board, 3, 9);
    assert.deepEqual([r.score, r.subscore, r.num_score], [3, 9, 2], board);
    r = await write(a, board, 3, 9);
    assert.deepEqual([r.score, r.subscore, r.num_score], [3, 9, 2], `${board}: the same values change nothing`);
  }
  for (const board of ['desc_incr', 'asc_incr']) {
    let r = await write(a, board, 10, 5);
    assert.deepEqual([r.score, r.subscore, r.num_score], [10, 5, 1], board);
    r = await write(a, board, 7, 2);
    assert.deepEqual([r.score, r.subscore, r.num_score], [17, 7, 2], board);
    r = await write(a, board, 0, 0);
    assert.deepEqual([r.score, r.subscore, r.num_score], [17, 7, 2], `${board}: zero deltas change nothing`);
  }
  for (const board of ['desc_decr', 'asc_decr']) {
    let r = await write(a, board, 10, 5);
    assert.deepEqual([r.score, r.subscore, r.num_score], [0, 0, 1], `${board}: a first decrement writes 0`);
    const set = await rest(a, 'POST', `/v2/leaderboard/${board}`, { score: '10', subscore: 5, operator: 2 });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual([set.json.score, set.json.subscore], ['10', '5']);
    r = await write(a, board, 4, 1);
    assert.deepEqual([r.score, r.subscore, r.num_score], [6, 4, 3], board);
    r = await write(a, board, 100, 1);
    assert.deepEqual([r.score, r.subscore, r.num_score], [0, 3, 4], `${board}: floored at 0`);
  }
});

test('both sort orders rank by score, subscore, then owner id', async () => {
  const us = [];
  for (let i = 0; i < 4; i++) us.push(await user('order'));
  const byId = [...us].sort((x, y) => (x.id < y.id ? -1 : 1));
  // Two tie on score and subscore; the id breaks it.
  const scores = new Map([[byId[0].id, [5, 1]], [byId[1].id, [5, 1]], [byId[2].id, [5, 2]], [byId[3].id, [9, 0]]]);
  for (const u of us) {
    const [s, ss] = scores.get(u.id);
    await write(u, 'desc_set', s, ss);
    await write(u, 'asc_set', s, ss);
  }
  const desc = await list(us[0], 'desc_set', { limit: 100 });
  const mine = desc.records.filter((r) => scores.has(r.owner_id)).map((r) => r.owner_id);
  assert.deepEqual(mine, [byId[3].id, byId[2].id, byId[1].id, byId[0].id]);
  const asc = await list(us[0], 'asc_set', { limit: 100 });
  const ascMine = asc.records.filter((r) => scores.has(r.owner_id)).map((r) => r.owner_id);
  assert.deepEqual(ascMine, [byId[0].id, byId[1].id, byId[2].id, byId[3].id]);
  for (let i = 0; i < desc.records.length; i++) assert.equal(desc.records[i].rank, i + 1);
  assert.equal(desc.rank_count, desc.records.length);
});

test('the operator can be overridden per write', async () => {
  const a = await user();
  const post = (body) => rest(a, 'POST', '/v2/leaderboard/override', body);
  let res = await post({ score: 10 });
  assert.equal(res.json.score, '10');
  res = await post({ score: 5, operator: 2 });
  assert.equal(res.json.score, '5', 'SET');
  res = await post({ score: '3', operator: 'INCREMENT' });
  assert.equal(res.json.score, '8', 'INCREMENT by name');
  res = await post({ score: 1, operator: 4 });
  assert.equal(res.json.score, '7', 'DECREMENT');
  res = await post({ score: 2, operator: 1 });
  assert.equal(res.json.score, '7', 'BEST keeps 7');
  res = await post({ score: 20, operator: 0 });
  assert.equal(res.json.score, '20', "NO_OVERRIDE: the board's best");
  assert.equal(res.json.num_score, 5);
  res = await post({ score: 1, operator: 9 });
  assert.equal(res.status, 400, res.text);
  res = await post({ score: 1, operator: 'SOMETIMES' });
  assert.equal(res.status, 400, res.text);
});

test('authoritative boards refuse clients; scripts write to them', async () => {
  const a = await user();
  await rejects(write(a, 'authoritative', 5), 403, 7, 'Leaderboard only allows authoritative score submissions.');
  assertError(await rest(a, 'DELETE', '/v2/leaderboard/authoritative'), 403, 7,
    'Leaderboard only allows authoritative score deletions.');
  const res = await ctx.client.rpc(a.s, 'submit_checked', { score: 42 });
  assert.deepEqual(res.payload, { score: 42, rank: 1, metadata: { checked: true } });
  const l = await list(a, 'scripted', { owners: [a.id] });
  assert.equal(l.records.length, 0, 'owner ids alone: owner records only');
  assert.equal(l.owner_records.length, 1);
  assert.equal(l.owner_records[0].score, 42);
  assert.equal(l.owner_records[0].username, a.name);
  assert.deepEqual(l.owner_records[0].metadata, { checked: true });
  assert.equal(l.owner_records[0].rank, 1);
});

// ------------------------------------------------------------------ listing

test('pages of 10 over 25 records, forward and back', async () => {
  const us = [];
  for (let i = 0; i < 25; i++) {
    const u = await user('page');
    us.push(u);
    await write(u, 'paging', 100 + i);
  }
  const a = us[0];
  const p1 = await list(a, 'paging', { limit: 10 });
  assert.deepEqual(p1.records.map((r) => r.score), [124, 123, 122, 121, 120, 119, 118, 117, 116, 115]);
  assert.deepEqual(p1.records.map((r) => r.rank), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(p1.next_cursor);
  assert.equal(p1.prev_cursor, undefined);
  assert.equal(p1.rank_count, 25);
  const p2 = await list(a, 'paging', { limit: 10, cursor: p1.next_cursor });
  assert.deepEqual(p2.records.map((r) => r.score), [114, 113, 112, 111, 110, 109, 108, 107, 106, 105]);
  assert.deepEqual(p2.records.map((r) => r.rank), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  assert.ok(p2.next_cursor && p2.prev_cursor);
  const p3 = await list(a, 'paging', { limit: 10, cursor: p2.next_cursor });
  assert.deepEqual(p3.records.map((r) => r.score), [104, 103, 102, 101, 100]);
  assert.deepEqual(p3.records.map((r) => r.rank), [21, 22, 23, 24, 25]);
  assert.equal(p3.next_cursor, undefined, 'the last page has no next page');
  const back2 = await list(a, 'paging', { limit: 10, cursor: p3.prev_cursor });
  assert.deepEqual(back2.records.map((r) => [r.owner_id, r.rank]), p2.records.map((r) => [r.owner_id, r.rank]));
  const back1 = await list(a, 'paging', { limit: 10, cursor: back2.prev_cursor });
  assert.deepEqual(back1.records.map((r) => [r.owner_id, r.rank]), p1.records.map((r) => [r.owner_id, r.rank]));
  assert.equal(back1.prev_cursor, undefined, 'the first page has no previous page');
  assert.ok(back1.next_cursor);

  // Owner records, sorted the board's way, ranked from the rank cache.
  const owners = await list(a, 'paging', { owners: [us[3].id, us[20].id, us[0].id], limit: 2 });
  assert.deepEqual(owners.records.map((r) => r.score), [124, 123]);
  assert.deepEqual(owners.owner_records.map((r) => [r.owner_id, r.rank]), [[us[20].id, 5], [us[3].id, 22], [us[0].id, 25]]);

  // A cursor belongs to its board.
  await rejects(list(a, 'desc_best', { limit: 10, cursor: p1.next_cursor }), 400, 3, 'Cursor is invalid or expired.');
  // A write between pages never makes the next page repeat a record.
  await write(us[24], 'paging', 1000);
  const again = await list(a, 'paging', { limit: 10, cursor: p1.next_cursor });
  assert.deepEqual(again.records.map((r) => r.score), p2.records.map((r) => r.score));
});

test('around the owner at the top, in the middle and at the bottom', async () => {
  const us = [];
  for (let i = 1; i <= 9; i++) {
    const u = await user('around');
    us.push(u);
    await write(u, 'around', i * 10); // us[8] is rank 1, us[0] rank 9
  }
  const a = us[0];
  let l = await around(a, 'around', us[4].id, 3);
  assert.deepEqual(l.records.map((r) => [r.score, r.rank]), [[60, 4], [50, 5], [40, 6]]);
  assert.ok(l.next_cursor && l.prev_cursor);
  assert.equal(l.rank_count, 9);
  const down = await around(a, 'around', us[4].id, 3, l.next_cursor);
  assert.deepEqual(down.records.map((r) => [r.score, r.rank]), [[30, 7], [20, 8], [10, 9]]);
  l = await around(a, 'around', us[8].id, 3);
  assert.deepEqual(l.records.map((r) => [r.score, r.rank]), [[90, 1], [80, 2], [70, 3]], 'the top shifts down');
  assert.equal(l.prev_cursor, undefined);
  l = await around(a, 'around', us[0].id, 3);
  assert.deepEqual(l.records.map((r) => [r.score, r.rank]), [[30, 7], [20, 8], [10, 9]], 'the bottom shifts up');
  assert.equal(l.next_cursor, undefined);
  l = await around(a, 'around', us[4].id);
  assert.deepEqual(l.records.map((r) => r.score), [50], 'the default limit is 1');
  const stranger = await user();
  l = await around(a, 'around', stranger.id, 5);
  assert.deepEqual(l.records, [], 'no record: an empty window');
});

test('boards without ranks number pages but rank nothing else', async () => {
  const a = await user();
  const b = await user();
  const r = await write(a, 'unranked', 5);
  assert.equal(r.rank, 0);
  await write(b, 'unranked', 7);
  const l = await list(a, 'unranked', { owners: [a.id], limit: 10 });
  assert.deepEqual(l.records.map((x) => x.rank), l.records.map((_, i) => i + 1));
  assert.equal(l.owner_records[0].rank, 0);
  assert.equal(l.rank_count, 0);
  const h = await around(a, 'unranked', a.id, 2);
  assert.ok(h.records.length >= 1);
  assert.ok(h.records.every((x) => x.rank === 0));
});

test('leaderboard_ranks_disable turns ranking off at once and for good', async () => {
  const a = await user();
  const b = await user();
  assert.equal((await write(a, 'rank_off', 5)).rank, 1);
  assert.equal((await write(b, 'rank_off', 9)).rank, 1);
  assert.equal((await list(a, 'rank_off', { owners: [a.id], limit: 10 })).owner_records[0].rank, 2);
  await nk(a, 'leaderboard_ranks_disable', 'rank_off');
  assert.equal((await write(a, 'rank_off', 11)).rank, 0);
  const l = await list(a, 'rank_off', { owners: [a.id], limit: 10 });
  assert.deepEqual(l.records.map((x) => [x.owner_id, x.score, x.rank]), [[a.id, 11, 1], [b.id, 9, 2]]);
  assert.equal(l.owner_records[0].rank, 0);
  assert.equal(l.rank_count, 0);
  // Not a tournament, and an unknown board: errors.
  await rejects(nk(a, 'tournament_ranks_disable', 'rank_off'), 404, 5, /not found/i);
  await rejects(nk(a, 'leaderboard_ranks_disable', 'no_such_board'), 404, 5, /not found/i);
});

test('a user deletes their own record', async () => {
  const a = await user();
  const b = await user();
  await write(a, 'deletable', 5);
  await write(b, 'deletable', 6);
  await ctx.client.apiClient.deleteLeaderboardRecord(a.s.token, 'deletable');
  const l = await list(a, 'deletable', { owners: [a.id, b.id], limit: 10 });
  assert.deepEqual(l.owner_records.map((x) => x.owner_id), [b.id]);
  assert.equal(l.owner_records[0].rank, 1, 'the rank cache followed');
  assert.equal(l.rank_count, 1);
  // Deleting again is fine; an unknown board is not.
  assert.equal((await rest(a, 'DELETE', '/v2/leaderboard/deletable')).status, 200);
  assertError(await rest(a, 'DELETE', '/v2/leaderboard/nope'), 404, 5, 'Leaderboard not found.');
});

// ------------------------------------------------------------------ scripts

test('nk leaderboard functions from a script', async () => {
  const a = await user();
  const b = await user();
  let out = await nk(a, 'leaderboards_get_id', ['desc_best', 't_open', 'nope']);
  const got = arr(out.r1);
  assert.equal(got.length, 1);
  assert.equal(got[0].id, 'desc_best');
  assert.equal(got[0].sort_order, '1');
  assert.equal(got[0].operator, 'best');
  assert.equal(got[0].authoritative, false);
  assert.deepEqual(got[0].metadata, { kind: 'race' });
  out = await nk(a, 'leaderboard_list', 100);
  const ids = arr(out.r1).map((x) => x.id);
  assert.ok(ids.includes('daily') && ids.includes('scripted') && !ids.includes('t_open'), ids.join());

  out = await nk(a, 'leaderboard_record_write', 'scripted', a.id, a.name, 70, 3, { via: 'nk' }, 'set');
  assert.equal(out.r1.score, 70);
  assert.equal(out.r1.subscore, 3);
  assert.deepEqual(out.r1.metadata, { via: 'nk' });
  assert.equal(typeof out.r1.create_time, 'number');
  await nk(a, 'leaderboard_record_write', 'scripted', b.id, b.name, 80);
  out = await nk(a, 'leaderboard_records_list', 'scripted', [a.id], 1);
  assert.equal(out.n, 5);
  assert.equal(arr(out.r1).length, 1);
  assert.equal(out.r1[0].score, 80);
  assert.equal(out.r2[0].owner_id, a.id);
  assert.equal(typeof out.r3, 'string', 'next cursor');
  assert.equal(out.r4, undefined, 'no previous page');
  assert.ok(out.r5 >= 2, 'rank count');
  const next = await nk(a, 'leaderboard_records_list', 'scripted', null, 1, out.r3);
  assert.equal(next.r1[0].rank, 2);
  out = await nk(a, 'leaderboard_records_haystack', 'scripted', a.id, 3);
  assert.ok(arr(out.r1).some((r) => r.owner_id === a.id));
  out = await nk(a, 'leaderboard_records_list_cursor_from_rank', 'scripted', 2);
  const from = await nk(a, 'leaderboard_records_list', 'scripted', null, 1, out.r1);
  assert.equal(from.r1[0].rank, 2);
  await nk(a, 'leaderboard_record_delete', 'scripted', b.id);
  out = await nk(a, 'leaderboard_records_list', 'scripted', [b.id]);
  assert.deepEqual(arr(out.r2), []);

  // Errors a script can catch (strings), and their codes when uncaught.
  const pcall = async (fn, ...args) => (await ctx.client.rpc(a.s, 'lb_pcall', { fn, args, n: args.length })).payload;
  assert.deepEqual(await pcall('leaderboard_record_write', 'nope', a.id, 'x', 1),
    { ok: false, message: 'error writing leaderboard record: leaderboard not found' });
  assert.deepEqual(await pcall('leaderboard_create', 'x', false, 'sideways'),
    { ok: false, message: "expects sort order to be 'asc' or 'desc'" });
  assert.deepEqual(await pcall('leaderboard_create', 'x', false, 'asc', 'best', 'every day'),
    { ok: false, message: 'expects reset schedule to be a valid CRON expression' });
  assert.deepEqual(await pcall('leaderboard_record_write', 'scripted', 'not-a-uuid'),
    { ok: false, message: 'expects owner ID to be a valid identifier' });
  await rejects(nk(a, 'leaderboard_record_write', 'nope', a.id, 'x', 1), 404, 5,
    'error writing leaderboard record: leaderboard not found');
  await rejects(nk(a, 'leaderboard_records_list', 'scripted', null, 5, 'bad-cursor'), 400, 3,
    'error listing leaderboard records: cursor is invalid or expired');
  // A board created by a script is there for clients at once.
  await nk(a, 'leaderboard_create', 'made_later', false, 'asc', 'set');
  const r = await write(a, 'made_later', 3);
  assert.equal(r.rank, 0, 'ranks are off by default');
  await nk(a, 'leaderboard_delete', 'made_later');
  await rejects(write(a, 'made_later', 3), 404, 5, 'Leaderboard not found.');
});

// ------------------------------------------------------------------ bad input

test('bad input gets Nakama codes and messages', async () => {
  const a = await user();
  await rejects(list(a, 'nope', { limit: 5 }), 404, 5, 'Leaderboard not found.');
  await rejects(write(a, 'nope', 1), 404, 5, 'Leaderboard not found.');
  await rejects(list(a, 'desc_best', { limit: 5, cursor: 'bm90IGEgY3Vyc29y' }), 400, 3, 'Cursor is invalid or expired.');
  await rejects(list(a, 'desc_best', { owners: ['not-a-uuid'] }), 400, 3, 'One or more owner IDs are invalid.');
  await rejects(around(a, 'desc_best', 'not-a-uuid', 5), 400, 3, 'Invalid owner ID provided.');
  await rejects(around(a, 'desc_best', a.id, 101), 400, 3, 'Invalid limit - limit must be between 1 and 100.');
  await rejects(around(a, 'nope', a.id, 5), 404, 5, 'Leaderboard not found.');
  assertError(await rest(a, 'GET', '/v2/leaderboard/desc_best?limit=0'), 400, 3,
    'Invalid limit - limit must be between 1 and 1000.');
  assertError(await rest(a, 'GET', '/v2/leaderboard/desc_best?limit=abc'), 400, 3,
    'parsing field "limit": strconv.ParseInt: parsing "abc": invalid syntax');
  assertError(await rest(a, 'POST', '/v2/leaderboard/desc_best', { score: 1, metadata: '[1, 2]' }), 400, 3,
    'Metadata value must be JSON, if provided.');
  assertError(await rest(a, 'POST', '/v2/leaderboard/desc_best', { score: 1, metadata: '{"a":' }), 400, 3,
    'Metadata value must be JSON, if provided.');
  assertError(await rest(a, 'POST', '/v2/leaderboard/desc_best', { score: 'many' }), 400, 3,
    "Invalid value for field 'score': expected a 64-bit integer.");
  const empty = await request(ctx.srv, 'POST', '/v2/leaderboard/desc_best', { auth: { bearer: a.s.token }, body: '' });
  assertError(empty, 400, 3, 'Invalid input, record score value is required.');
  const none = await list(a, 'desc_best', { owners: [a.id], limit: 5 });
  assert.deepEqual(none.owner_records, [], 'nothing was written by the bad requests');
});

// ------------------------------------------------------------------ resets

test('a reset schedule starts a new period at its cron instant', async () => {
  const a = await user('reset');
  const b = await user('reset');
  const r = await write(a, 'daily', 5);
  const expiry = Date.parse(r.expiry_time);
  assert.ok(expiry > Date.now() - 60_000 && expiry % 86_400_000 === 0, `next midnight: ${r.expiry_time}`);
  await write(a, 'daily', 2);
  await write(b, 'daily', 1);
  let l = await list(a, 'daily', { limit: 10 });
  assert.deepEqual(l.records.filter((x) => x.owner_id === a.id).map((x) => x.score), [7]);

  // The test clock: only with the http_key.
  assertError(await request(ctx.srv, 'PUT', '/v2/kizuna/test/clock?offset_ms=1'), 401, 16, /HTTP key|Auth token/);
  assertError(await rest(a, 'PUT', '/v2/kizuna/test/clock?offset_ms=1'), 403, 7, /http_key/);

  try {
    // A minute past the instant: the current period is empty, the old one
    // is still readable with its expiry.
    const moved = await setClock(expiry - Date.now() + 60_000);
    assert.ok(moved.now_ms >= expiry + 59_000, JSON.stringify(moved));
    await relogin(a);
    // The reset callback ran (on a worker, soon after the instant).
    let seen = [];
    for (let i = 0; i < 100 && seen.length === 0; i++) {
      seen = (await ctx.client.readStorageObjects(a.s, {
        object_ids: [{ collection: 'resets', key: 'daily' }],
      })).objects;
      if (seen.length === 0) await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(seen.length, 1, 'the leaderboard_reset callback wrote its record');
    assert.deepEqual(seen[0].value, { id: 'daily', reset: expiry / 1000, mode: 'leaderboard_reset' });
    l = await list(a, 'daily', { limit: 10 });
    assert.deepEqual(l.records, [], 'the new period starts empty');
    assert.equal(l.rank_count, 0);
    const old = await list(a, 'daily', { limit: 10, expiry: String(expiry / 1000) });
    assert.deepEqual(old.records.filter((x) => x.owner_id === a.id || x.owner_id === b.id).map((x) => [x.owner_id, x.score]),
      [[a.id, 7], [b.id, 1]]);
    assert.equal(old.records[0].expiry_time, r.expiry_time);
    // Incr starts again from the new period's first write.
    const r2 = await write(a, 'daily', 3);
    assert.equal(r2.score, 3);
    assert.equal(Date.parse(r2.expiry_time), expiry + 86_400_000);
    assert.equal(r2.rank, 1);
    // A cursor of the old period is refused in the new one.
    const oldPage = await list(a, 'daily', { limit: 1, expiry: String(expiry / 1000) });
    await rejects(list(a, 'daily', { limit: 1, cursor: oldPage.next_cursor }), 400, 3, 'Cursor is invalid or expired.');

    // An hourly board rolls over at the next hour.
    const h1 = await write(a, 'hourly', 11);
    const hourEnd = Date.parse(h1.expiry_time);
    assert.equal(hourEnd % 3_600_000, 0);
    await setClock(hourEnd - Date.now() + 1_000);
    await relogin(a);
    const hl = await list(a, 'hourly', { owners: [a.id] });
    assert.deepEqual(hl.owner_records, []);
    const hOld = await list(a, 'hourly', { owners: [a.id], expiry: String(hourEnd / 1000) });
    assert.equal(hOld.owner_records[0].score, 11);
  } finally {
    await setClock(0);
  }
});
