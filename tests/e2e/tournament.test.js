// Tournaments through nakama-js (listTournaments, joinTournament,
// writeTournamentRecord, listTournamentRecords,
// listTournamentRecordsAroundOwner) and raw HTTP: categories and time
// filters, join_required, max_size, max_num_score, windows that are not
// open yet or over, authoritative tournaments, and a daily tournament's
// periods reached with the test clock. The tournaments are created by
// tests/e2e/modules/leaderboard/boards.lua (t_* ids); `lb_call` runs the nk
// tournament functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServer } from './lib/fixture.js';
import { E2E_DIR, ApiError } from './lib/server.js';
import { request, uniq, uniqName } from './lib/http.js';

const HTTP_KEY = 'defaulthttpkey';
const ctx = useServer({
  args: ['--runtime.path', path.join(E2E_DIR, 'modules', 'leaderboard'), '--test.clock_control', 'true'],
});

async function user(prefix = 'tn') {
  const name = uniqName(prefix);
  const device = uniq('device');
  const s = await ctx.client.authenticateDevice(device, true, name);
  return { s, id: s.user_id, name, device };
}

async function relogin(u) {
  u.s = await ctx.client.authenticateDevice(u.device, false);
}

const write = (u, id, score, subscore, metadata) =>
  ctx.client.writeTournamentRecord(u.s, id, { score, subscore, metadata });
const records = (u, id, { owners, limit, cursor, expiry } = {}) =>
  ctx.client.listTournamentRecords(u.s, id, owners, limit, cursor, expiry);
const tournaments = (u, { cs, ce, st, et, limit, cursor } = {}) =>
  ctx.client.listTournaments(u.s, cs, ce, st, et, limit, cursor);
const rest = (u, method, p, json) => request(ctx.srv, method, p, { auth: { bearer: u.s.token }, json });

async function nk(u, fn, ...args) {
  const res = await ctx.client.rpc(u.s, 'lb_call', { fn, args, n: args.length });
  return res.payload;
}

const arr = (v) => (Array.isArray(v) ? v : v && typeof v === 'object' && Object.keys(v).length === 0 ? [] : v);

async function rejects(promise, status, code, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, status, e.text);
    assert.equal(e.json.code, code, e.text);
    assert.equal(e.json.message, message);
    return true;
  });
}

function assertError(res, status, code, message) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.code, code, res.text);
  assert.equal(res.json.message, message);
}

async function setClock(ms) {
  const res = await request(ctx.srv, 'PUT', `/v2/kizuna/test/clock?offset_ms=${ms}&http_key=${HTTP_KEY}`);
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// ------------------------------------------------------------------ listing

test('the list shows current and future tournaments with their fields', async () => {
  const a = await user();
  const l = await tournaments(a);
  const ids = l.tournaments.map((t) => t.id);
  assert.deepEqual(ids, ['t_attempts', 't_auth', 't_daily', 't_future', 't_join', 't_open'], 'ended ones left out');
  const open = l.tournaments.find((t) => t.id === 't_open');
  assert.equal(open.title, 'Open');
  assert.equal(open.description, 'anyone');
  assert.equal(open.category, 1);
  assert.equal(open.sort_order, 1);
  assert.equal(open.duration, 3600);
  assert.equal(open.max_size, 2147483647);
  assert.equal(open.can_enter, true);
  assert.deepEqual(open.metadata, { prize: 'gold' });
  const start = Date.parse(open.start_time) / 1000;
  assert.equal(open.end_active, start + 3600);
  assert.equal(open.end_time, undefined);
  const future = l.tournaments.find((t) => t.id === 't_future');
  assert.equal(future.can_enter, undefined, 'not open yet');
  assert.ok(future.end_time);
  assert.equal(future.end_active, Date.parse(future.start_time) / 1000 + 600);
});

test('category and time filters, limit and cursor', async () => {
  const a = await user();
  let l = await tournaments(a, { cs: 2, ce: 2 });
  assert.deepEqual(l.tournaments.map((t) => t.id), ['t_attempts', 't_join']);
  l = await tournaments(a, { cs: 4, ce: 4 });
  assert.deepEqual(l.tournaments, [], 'the ended one only shows with time filters');
  const future = (await tournaments(a, { cs: 3, ce: 3 })).tournaments[0];
  const futureStart = Date.parse(future.start_time) / 1000;
  l = await tournaments(a, { st: futureStart });
  assert.deepEqual(l.tournaments.map((t) => t.id), ['t_future'], 'starting at or after');
  l = await tournaments(a, { et: 0 });
  assert.deepEqual(l.tournaments.map((t) => t.id), ['t_attempts', 't_auth', 't_daily', 't_join', 't_open'],
    'end_time 0: the ones that never end');
  l = await tournaments(a, { st: 0, et: Math.floor(Date.now() / 1000) });
  assert.deepEqual(l.tournaments.map((t) => t.id), ['t_ended'], 'ended before now');
  l = await tournaments(a, { limit: 4 });
  assert.equal(l.tournaments.length, 4);
  assert.ok(l.cursor);
  const rest2 = await tournaments(a, { limit: 4, cursor: l.cursor });
  assert.deepEqual(rest2.tournaments.map((t) => t.id), ['t_join', 't_open']);
  assert.equal(rest2.cursor, undefined);
  assertError(await rest(a, 'GET', '/v2/tournament?category_end=128'), 400, 3,
    'Tournament category end must be >=0 and <128.');
  assertError(await rest(a, 'GET', '/v2/tournament?category_start=5&category_end=4'), 400, 3,
    'Tournament category end must be greater than category start.');
  assertError(await rest(a, 'GET', '/v2/tournament?start_time=100&end_time=50'), 400, 3,
    'Tournament end time must be greater than start time.');
  assertError(await rest(a, 'GET', '/v2/tournament?limit=101'), 400, 3, 'Limit must be between 1 and 100.');
});

// ------------------------------------------------------------------ records

test('records, owner records and around the owner', async () => {
  const us = [];
  for (let i = 0; i < 5; i++) us.push(await user('open'));
  for (let i = 0; i < 5; i++) {
    const r = await write(us[i], 't_open', (i + 1) * 10, 0, { try: i });
    assert.equal(r.score, (i + 1) * 10);
    assert.equal(r.num_score, 1);
    assert.equal(r.leaderboard_id, 't_open');
    assert.equal(r.expiry_time, undefined, 'no reset and no end: no expiry');
  }
  const r = await write(us[0], 't_open', 5);
  assert.equal(r.score, 10, 'best keeps 10');
  assert.equal(r.num_score, 2, 'every attempt counts');
  assert.equal(r.rank, 5);
  const l = await records(us[0], 't_open', { limit: 2 });
  assert.deepEqual(l.records.map((x) => [x.score, x.rank]), [[50, 1], [40, 2]]);
  assert.ok(l.next_cursor);
  const raw = await rest(us[0], 'GET', '/v2/tournament/t_open?limit=2');
  assert.equal(raw.json.rank_count, '5', 'nakama-js leaves rank_count out of tournament lists');
  const p2 = await records(us[0], 't_open', { limit: 2, cursor: l.next_cursor });
  assert.deepEqual(p2.records.map((x) => [x.score, x.rank]), [[30, 3], [20, 4]]);
  const own = await records(us[0], 't_open', { owners: [us[0].id, us[4].id] });
  assert.deepEqual(own.owner_records.map((x) => [x.owner_id, x.rank]), [[us[4].id, 1], [us[0].id, 5]]);
  assert.equal(own.records.length, 5, 'owner ids without a cursor still list a page (limit 10)');
  const ar = await ctx.client.listTournamentRecordsAroundOwner(us[0].s, 't_open', us[2].id, 3);
  assert.deepEqual(ar.records.map((x) => [x.score, x.rank]), [[40, 2], [30, 3], [20, 4]]);
  // The POST binding writes too; a user deletes their own record.
  const post = await rest(us[1], 'POST', '/v2/tournament/t_open', { score: 99 });
  assert.equal(post.json.score, '99');
  assert.equal((await rest(us[1], 'DELETE', '/v2/tournament/t_open')).status, 200);
  const after = await records(us[0], 't_open', { owners: [us[1].id] });
  assert.deepEqual(after.owner_records, []);
});

test('join_required and max_size', async () => {
  const [a, b, c] = [await user('join'), await user('join'), await user('join')];
  await rejects(write(a, 't_join', 5), 400, 9, 'Must join tournament before attempting to write value.');
  assert.equal(await ctx.client.joinTournament(a.s, 't_join'), true);
  assert.equal(await ctx.client.joinTournament(a.s, 't_join'), true, 'joining again is fine');
  let l = await records(a, 't_join', { owners: [a.id] });
  assert.equal(l.owner_records[0].score, 0);
  assert.equal(l.owner_records[0].num_score, 0);
  let r = await write(a, 't_join', 5);
  assert.deepEqual([r.score, r.num_score], [5, 1]);
  r = await write(a, 't_join', 5);
  assert.deepEqual([r.score, r.num_score], [10, 2], 'incr');
  await ctx.client.joinTournament(b.s, 't_join');
  await rejects(ctx.client.joinTournament(c.s, 't_join'), 400, 3,
    'Tournament cannot be joined as it has reached its max size.');
  await rejects(write(c, 't_join', 5), 400, 9, 'Must join tournament before attempting to write value.');
  const t = (await tournaments(a, { cs: 2, ce: 2 })).tournaments.find((x) => x.id === 't_join');
  assert.equal(t.size, 2);
  assert.equal(t.max_size, 2);
  assert.equal(t.can_enter, undefined, 'full');
  const raw = await rest(a, 'GET', '/v2/tournament?category_start=2&category_end=2');
  assert.equal(raw.json.tournaments.find((x) => x.id === 't_join').join_required, true);
  await rejects(ctx.client.joinTournament(a.s, 'nope'), 404, 5, 'Tournament not found.');
});

test('max_num_score and extra attempts from a script', async () => {
  const a = await user('tries');
  for (const [score, best] of [[30, 30], [20, 20], [25, 20]]) {
    const r = await write(a, 't_attempts', score);
    assert.equal(r.score, best, 'asc best');
    assert.equal(r.max_num_score, 3);
  }
  await rejects(write(a, 't_attempts', 1), 400, 9, 'Reached allowed max number of score attempts.');
  await nk(a, 'tournament_add_attempt', 't_attempts', a.id, 1);
  const r = await write(a, 't_attempts', 1);
  assert.deepEqual([r.score, r.num_score, r.max_num_score], [1, 4, 4]);
  await rejects(write(a, 't_attempts', 0), 400, 9, 'Reached allowed max number of score attempts.');
});

test('windows not open yet or over, authoritative tournaments, unknown ids', async () => {
  const a = await user('window');
  await rejects(write(a, 't_future', 5), 400, 9, 'Tournament is not active and cannot accept new scores.');
  await rejects(write(a, 't_ended', 5), 404, 5, 'Tournament not found or has ended.');
  await rejects(records(a, 't_ended', { limit: 5 }), 404, 5, 'Tournament has ended.');
  await rejects(write(a, 'nope', 5), 404, 5, 'Tournament not found.');
  await rejects(records(a, 'nope'), 404, 5, 'Tournament not found.');
  await rejects(write(a, 'desc_best', 5), 404, 5, 'Tournament not found.'); // a leaderboard is not a tournament
  await rejects(write(a, 't_auth', 5), 403, 7, 'Tournament only allows authoritative score submissions.');
  assertError(await rest(a, 'DELETE', '/v2/tournament/t_auth'), 403, 7,
    'Tournament only allows authoritative score deletions.');
  const out = await nk(a, 'tournament_record_write', 't_auth', a.id, a.name, 77);
  assert.equal(out.r1.score, 77);
  assert.equal(out.r1.leaderboard_id, 't_auth');
  const l = await records(a, 't_auth', { owners: [a.id] });
  assert.equal(l.owner_records[0].score, 77);
  assertError(await rest(a, 'GET', '/v2/tournament/t_open?limit=101'), 400, 3,
    'Invalid limit - limit must be between 1 and 100.');
  assertError(await rest(a, 'GET', '/v2/tournament/t_open?owner_ids=x'), 400, 3, 'One or more owner IDs are invalid.');
  assertError(await rest(a, 'PUT', '/v2/tournament/t_open', { score: 1, metadata: '"text"' }), 400, 3,
    'Metadata value must be JSON, if provided.');
});

test('nk tournament functions from a script', async () => {
  const a = await user('nkt');
  let out = await nk(a, 'tournaments_get_id', ['t_open', 'desc_best', 'nope', 't_open']);
  const got = arr(out.r1);
  assert.equal(got.length, 1);
  assert.equal(got[0].id, 't_open');
  assert.equal(got[0].title, 'Open');
  assert.equal(got[0].category, 1);
  assert.equal(got[0].duration, 3600);
  assert.equal(got[0].can_enter, true);
  assert.deepEqual(got[0].metadata, { prize: 'gold' });
  out = await nk(a, 'tournament_list', 2, 2);
  assert.deepEqual(arr(out.r1).map((t) => t.id), ['t_attempts', 't_join']);
  out = await nk(a, 'tournament_record_write', 't_open', a.id, a.name, 1000, 0, { via: 'nk' });
  assert.equal(out.r1.score, 1000);
  out = await nk(a, 'tournament_records_list', 't_open', [a.id], 1);
  assert.equal(out.r1[0].owner_id, a.id);
  assert.equal(out.r2[0].rank, 1);
  out = await nk(a, 'tournament_records_haystack', 't_open', a.id, 2);
  assert.equal(arr(out.r1)[0].owner_id, a.id);
  await nk(a, 'tournament_create', 't_made', false, 'desc', 'best', 60);
  const l = await tournaments(a, { cs: 0, ce: 0 });
  assert.ok(l.tournaments.some((t) => t.id === 't_made'), 'created by a script, listed at once');
  await nk(a, 'tournament_delete', 't_made');
  const e = (await ctx.client.rpc(a.s, 'lb_pcall', { fn: 'tournament_create', args: ['t_bad', false, 'desc', 'best', 0], n: 5 })).payload;
  assert.deepEqual(e, { ok: false, message: 'tournament duration must be greater than zero' });
  await assert.rejects(nk(a, 'tournament_record_write', 't_join', a.id, a.name, 1), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 400);
    assert.equal(err.json.code, 9);
    assert.equal(err.json.message, 'error writing tournament record: must join tournament before attempting to write value');
    return true;
  });
});

// ------------------------------------------------------------------ periods

test('a daily tournament: its window, its size per period, with the test clock', async () => {
  const [a, b] = [await user('daily'), await user('daily')];
  const t = (await tournaments(a, { cs: 6, ce: 6 })).tournaments[0];
  const nextReset = t.next_reset; // the current period's end: the next midnight
  assert.equal(nextReset % 86400, 0);
  try {
    // Ten minutes into the next window (00:00-02:00).
    await setClock((nextReset + 600) * 1000 - Date.now());
    await relogin(a);
    await relogin(b);
    const r = await write(a, 't_daily', 5);
    assert.equal(Date.parse(r.expiry_time) / 1000, nextReset + 86400);
    await rejects(write(b, 't_daily', 5), 400, 9, 'Tournament has reached max size.');
    let cur = (await tournaments(a, { cs: 6, ce: 6 })).tournaments[0];
    assert.equal(cur.size, 1);
    assert.equal(cur.start_active, nextReset);
    assert.equal(cur.end_active, nextReset + 7200);
    assert.equal(cur.can_enter, undefined, 'full');
    // Three hours in: the window closed until the next midnight.
    await setClock((nextReset + 3 * 3600) * 1000 - Date.now());
    await relogin(b);
    await rejects(write(b, 't_daily', 5), 400, 9, 'Tournament is not active and cannot accept new scores.');
    // The next day: a new period, its size starts from zero.
    await setClock((nextReset + 86400 + 60) * 1000 - Date.now());
    await relogin(a);
    await relogin(b);
    const r2 = await write(b, 't_daily', 7);
    assert.equal(Date.parse(r2.expiry_time) / 1000, nextReset + 2 * 86400);
    cur = (await tournaments(a, { cs: 6, ce: 6 })).tournaments[0];
    assert.equal(cur.size, 1);
    const now = await records(a, 't_daily', { limit: 10 });
    assert.deepEqual(now.records.map((x) => x.owner_id), [b.id]);
    const old = await records(a, 't_daily', { limit: 10, expiry: String(nextReset + 86400) });
    assert.deepEqual(old.records.map((x) => [x.owner_id, x.score]), [[a.id, 5]]);
  } finally {
    await setClock(0);
  }
});
