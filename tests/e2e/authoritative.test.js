// Authoritative matches (tests/e2e/modules/authoritative): a Lua tic-tac-toe
// created by an RPC and played to the end by two nakama-js clients, join
// attempts the handler rejects, labels and GET /v2/match listing with its
// filters, nk.match_list / match_get / match_signal through RPCs, handler
// errors and a runaway handler ending their own match only, and match
// creation failures.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { E2E_DIR } from './lib/server.js';
import { request, UUID_RE, makeUntil, sleep } from './lib/http.js';
import { createSocket } from './lib/socket.js';

// A short call budget so the runaway-handler test ends quickly.
const ctx = useServer({
  args: ['--workers', '2', '--runtime.path', path.join(E2E_DIR, 'modules', 'authoritative'),
    '--runtime.lua_call_timeout_ms', '1000'],
});

const MATCH_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.kizuna$/;

const until = makeUntil(5000);

/** A nakama-js socket for a fresh user, recording match events. */
async function player() {
  const { session } = await newDeviceSession(ctx.client);
  const socket = createSocket(ctx.client);
  const p = { session, socket, presence: [], data: [] };
  socket.onmatchpresence = (e) => p.presence.push(e);
  socket.onmatchdata = (d) => p.data.push({ ...d, json: d.data && d.data.length ? JSON.parse(Buffer.from(d.data).toString()) : null });
  await socket.connect(session, true);
  return p;
}

const close = (...ps) => ps.forEach((p) => p.socket.disconnect(false));

async function rpc(session, id, input) {
  return (await ctx.client.rpc(session, id, input)).payload;
}

async function create(session, module, params) {
  const r = await rpc(session, 'create_match', { module, params });
  assert.equal(r.error, undefined, `match_create failed: ${r.error}`);
  assert.match(r.match_id, MATCH_ID_RE);
  return r.match_id;
}

/** Polls match_signal until the tic-tac-toe has n players (match_join runs at the next tick). */
async function waitPlayers(session, id, n) {
  const end = Date.now() + 5000;
  for (;;) {
    const r = await rpc(session, 'signal_match', { match_id: id, data: 'x' });
    if (JSON.parse(r.result).players === n) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${n} players`);
    await sleep(10);
  }
}

const move = (p, id, position) => p.socket.sendMatchState(id, 2, JSON.stringify({ position }));
const ofOp = (p, op) => p.data.filter((d) => d.op_code === op);

describe('tic-tac-toe', () => {
  test('two players join, play to a win, and the match ends', async () => {
    const [x, o] = await Promise.all([player(), player()]);
    const id = await create(x.session, 'tictactoe', { key: 'k1', mode: 'ranked' });

    const mx = await x.socket.joinMatch(id, undefined, { key: 'k1' });
    assert.equal(mx.match_id, id);
    assert.equal(mx.authoritative, true);
    assert.deepEqual(JSON.parse(mx.label), { mode: 'ranked', open: true, players: 0 });
    assert.equal(mx.size, undefined, 'nobody else is in yet');
    assert.equal(mx.presences, undefined);
    assert.equal(mx.self.user_id, x.session.user_id);
    assert.match(mx.self.session_id, UUID_RE);

    const mo = await o.socket.joinMatch(id, undefined, { key: 'k1' });
    assert.equal(mo.authoritative, true);
    assert.equal(mo.size, 1);
    assert.deepEqual(mo.presences, [mx.self]);
    assert.equal(mo.self.user_id, o.session.user_id);
    await until(() => x.presence.length === 1, 'the join event');
    assert.deepEqual(x.presence[0], { match_id: id, joins: [mo.self] });

    // match_join runs at the next tick: X starts.
    await until(() => ofOp(x, 1).length && ofOp(o, 1).length, 'START to both');
    const start = ofOp(o, 1)[0].json;
    assert.deepEqual(start, {
      marks: { [x.session.user_id]: 'X', [o.session.user_id]: 'O' }, turn: x.session.user_id,
    });
    assert.equal(ofOp(o, 1)[0].match_id, id);
    assert.equal(ofOp(o, 1)[0].presence, undefined, 'no sender: from the server');

    // Out of turn: only O hears about it.
    await move(o, id, 4);
    await until(() => ofOp(o, 4).length === 1, 'REJECTED to O');
    assert.deepEqual(ofOp(o, 4)[0].json, { reason: 'not your turn' });

    const seq = [[x, 0], [o, 3], [x, 1], [o, 3], [o, 4], [x, 2]]; // O's second 3 is taken
    let updates = 0;
    for (const [p, pos] of seq) {
      const rejected = ofOp(p, 4).length;
      await move(p, id, pos);
      await until(() => ofOp(x, 2).length > updates || ofOp(p, 4).length > rejected, `move ${pos}`);
      if (ofOp(p, 4).length > rejected) {
        assert.deepEqual(ofOp(p, 4).at(-1).json, { reason: 'taken' });
      } else {
        updates += 1;
      }
    }
    assert.equal(updates, 5);
    await until(() => ofOp(x, 3).length && ofOp(o, 3).length, 'DONE to both');
    const done = ofOp(o, 3)[0].json;
    assert.deepEqual(done, { board: ['X', 'X', 'X', 'O', 'O', '', '', '', ''], winner: x.session.user_id, draw: false });

    // Updates carry the mover as the sender, in order, to both players.
    const ux = ofOp(x, 2).map((d) => d.json.position);
    assert.deepEqual(ux, [0, 3, 1, 4, 2]);
    assert.deepEqual(ofOp(o, 2).map((d) => d.json.position), [0, 3, 1, 4, 2]);
    assert.equal(ofOp(o, 2)[0].presence.user_id, x.session.user_id);
    assert.equal(ofOp(o, 2)[1].presence.user_id, o.session.user_id);

    // The next tick returns nil: both players are told they left.
    await until(() => x.presence.some((e) => e.leaves) && o.presence.some((e) => e.leaves), 'the end of the match');
    const leaves = o.presence.find((e) => e.leaves);
    assert.deepEqual(leaves.leaves.map((p) => p.user_id).sort(), [x.session.user_id, o.session.user_id].sort());
    const got = await rpc(x.session, 'get_match', { match_id: id });
    assert.deepEqual(got, { found: false, match: {} });
    close(x, o);
  });

  test('a player leaving a running game forfeits it', async () => {
    const [x, o] = await Promise.all([player(), player()]);
    const id = await create(x.session, 'tictactoe', {});
    const mx = await x.socket.joinMatch(id);
    await o.socket.joinMatch(id);
    await until(() => ofOp(x, 1).length, 'START');
    await o.socket.leaveMatch(id);
    await until(() => ofOp(x, 3).length, 'DONE');
    assert.deepEqual(ofOp(x, 3)[0].json, {
      board: ['', '', '', '', '', '', '', '', ''], winner: x.session.user_id, draw: false, forfeit: true,
    });
    assert.equal(x.presence.find((e) => e.leaves).leaves[0].user_id, o.session.user_id);
    await until(() => x.presence.some((e) => e.leaves && e.leaves.some((p) => p.session_id === mx.self.session_id)),
      'the match ending');
    close(x, o);
  });
});

describe('join attempts', () => {
  test('the handler rejects a wrong key and a full match, with its reasons', async () => {
    const [a, b, c, d] = await Promise.all([player(), player(), player(), player()]);
    const id = await create(a.session, 'tictactoe', { key: 'secret' });
    await assert.rejects(a.socket.joinMatch(id, undefined, { key: 'nope' }),
      (e) => e.code === 5 && e.message === 'bad key');
    await assert.rejects(a.socket.joinMatch(id), (e) => e.code === 5 && e.message === 'bad key');
    await a.socket.joinMatch(id, undefined, { key: 'secret' });
    await b.socket.joinMatch(id, undefined, { key: 'secret' });
    await waitPlayers(a.session, id, 2);
    await assert.rejects(c.socket.joinMatch(id, undefined, { key: 'secret' }),
      (e) => e.code === 5 && e.message === 'match full');
    // Joining again while in: the match as it is, nothing changes.
    const again = await a.socket.joinMatch(id, undefined, { key: 'secret' });
    assert.equal(again.size, 1);
    assert.equal(again.presences[0].user_id, b.session.user_id);
    // Unknown matches.
    const unknown = `${crypto.randomUUID()}.kizuna`;
    await assert.rejects(d.socket.joinMatch(unknown), (e) => e.code === 4 && e.message === 'Match not found');
    await assert.rejects(d.socket.joinMatch(`${id.split('.')[0]}.othernode`), (e) => e.code === 4);
    await assert.rejects(d.socket.joinMatch('not-a-uuid.kizuna'), (e) => e.code === 3 && e.message === 'Invalid match ID');
    // Data from a non-member is dropped; the match is unaffected.
    await d.socket.sendMatchState(id, 2, JSON.stringify({ position: 0 }));
    const sig = await rpc(a.session, 'signal_match', { match_id: id, data: 'x' });
    assert.equal(JSON.parse(sig.result).moves, 0);
    close(a, b, c, d);
  });
});

describe('listing', () => {
  test('GET /v2/match filters by label, query, sizes and limit; nk.match_list and match_get agree', async () => {
    const [a, b] = await Promise.all([player(), player()]);
    const mode = `m${Date.now()}`;
    const id1 = await create(a.session, 'tictactoe', { mode });
    const id2 = await create(a.session, 'tictactoe', { mode });
    const id3 = await create(a.session, 'tictactoe', { mode: `${mode}x` });
    await a.socket.joinMatch(id1);
    const auth = { bearer: a.session.token };
    const list = async (q) => {
      const r = await request(ctx.srv, 'GET', `/v2/match?${q}`, { auth });
      assert.equal(r.status, 200, r.text);
      return r.json.matches || [];
    };
    const label0 = JSON.stringify({ mode, open: true, players: 0 });
    // match_join (at the next tick) updates id1's label to players=1.
    let byQuery;
    const end = Date.now() + 5000;
    do {
      byQuery = await list(`limit=100&query=${encodeURIComponent(`+label.mode:${mode} +label.players:1`)}`);
      if (byQuery.length) break;
      await sleep(20);
    } while (Date.now() < end);
    assert.deepEqual(byQuery, [{
      match_id: id1, authoritative: true, label: JSON.stringify({ mode, open: true, players: 1 }),
      size: 1, tick_rate: 10, handler_name: 'tictactoe',
    }]);

    const exact = await list(`limit=100&label=${encodeURIComponent(label0)}`);
    assert.deepEqual(exact.map((m) => m.match_id), [id2]);
    assert.equal(exact[0].size, undefined, 'size 0 is left out');

    const q = `label.mode:${mode} label.mode:${mode}x`; // SHOULD clauses: either
    const both = await list(`limit=100&authoritative=true&query=${encodeURIComponent(q)}`);
    assert.deepEqual(both.map((m) => m.match_id).sort(), [id1, id2, id3].sort());
    const mine = (ms) => ms.filter((m) => [id1, id2, id3].includes(m.match_id)).map((m) => m.match_id).sort();
    assert.deepEqual(mine(await list('limit=100&min_size=1')), [id1]);
    assert.deepEqual(mine(await list('limit=100&max_size=0')), [id2, id3].sort());
    assert.equal((await list(`limit=1&query=${encodeURIComponent(q)}`)).length, 1);
    assert.deepEqual(await list('authoritative=false'), []);
    assert.deepEqual(await list(`query=${encodeURIComponent(`+label.mode:none${mode}`)}`), []);

    const bad = async (qs, message) => {
      const r = await request(ctx.srv, 'GET', `/v2/match?${qs}`, { auth });
      assert.equal(r.status, 400, qs);
      assert.deepEqual(r.json, { code: 3, message });
    };
    await bad('limit=0', 'Invalid limit - limit must be between 1 and 100.');
    await bad('limit=101', 'Invalid limit - limit must be between 1 and 100.');
    await bad('limit=x', "Invalid value for 'limit': expected an integer.");
    await bad('min_size=-1', 'Minimum size must be 0 or above.');
    await bad('min_size=3&max_size=2', 'Maximum size must be greater than or equal to minimum size when both are specified.');
    await bad('authoritative=false&label=x', 'Label filtering is not supported for non-authoritative matches.');
    const badq = await request(ctx.srv, 'GET', `/v2/match?query=${encodeURIComponent('label.mode:/re/')}`, { auth });
    assert.equal(badq.status, 400);
    const noauth = await request(ctx.srv, 'GET', '/v2/match');
    assert.equal(noauth.status, 401);

    // The runtime's view.
    const r = await rpc(a.session, 'list_matches', { args: [100, true, label0] });
    assert.deepEqual(r.matches.map((m) => m.match_id), [id2]);
    assert.deepEqual(r.matches[0], {
      match_id: id2, authoritative: true, label: label0, size: 0, tick_rate: 10, handler_name: 'tictactoe',
    });
    const rq = await rpc(a.session, 'list_matches', { args: [100, null, null, 1, 1, `+label.mode:${mode}`] });
    assert.deepEqual(rq.matches.map((m) => m.match_id), [id1]);
    const one = await rpc(a.session, 'list_matches', { args: [] });
    assert.equal(one.n, 1, 'nk.match_list defaults to limit 1');
    assert.match((await rpc(a.session, 'list_matches', { args: [0] })).error, /limit/);
    const got = await rpc(a.session, 'get_match', { match_id: id1 });
    assert.deepEqual(got, { found: true, match: { ...byQuery[0] } });
    close(a, b);
  });
});

describe('signals', () => {
  test('nk.match_signal runs match_signal and returns its result', async () => {
    const a = await player();
    const id = await create(a.session, 'tictactoe', {});
    const r = await rpc(a.session, 'signal_match', { match_id: id, data: 'hello' });
    assert.deepEqual(JSON.parse(r.result), { data: 'hello', players: 0, moves: 0, match_id: id, node: 'kizuna', mode: 'match' });
    const unknown = await rpc(a.session, 'signal_match', { match_id: `${crypto.randomUUID()}.kizuna`, data: 'x' });
    assert.match(unknown.error, /match not found/);
    const bad = await rpc(a.session, 'signal_match', { match_id: 'nope', data: 'x' });
    assert.match(bad.error, /valid match id/);

    // A kick through a signal: the players hear it and are out.
    await a.socket.joinMatch(id);
    await waitPlayers(a.session, id, 1);
    const k = await rpc(a.session, 'signal_match', { match_id: id, data: 'kick' });
    assert.equal(k.result, 'kicked');
    await until(() => a.presence.some((e) => e.leaves), 'the kick');
    assert.equal(a.presence.find((e) => e.leaves).leaves[0].user_id, a.session.user_id);
    await waitPlayers(a.session, id, 0); // match_leave at the next tick
    const listed = await request(ctx.srv, 'GET', `/v2/match?limit=100&min_size=1`, { auth: { bearer: a.session.token } });
    assert.ok(!(listed.json.matches || []).some((m) => m.match_id === id), 'the kicked player is not counted');

    // match_signal returning nil state ends the match.
    const t = await create(a.session, 'ticker', { name: 'stopper' });
    assert.equal((await rpc(a.session, 'signal_match', { match_id: t, data: 'stop' })).result, 'stopping');
    assert.deepEqual(await rpc(a.session, 'get_match', { match_id: t }), { found: false, match: {} });
    close(a);
  });
});

describe('errors', () => {
  test('a handler error ends its match (players told) while another match keeps ticking', async () => {
    const [a, b] = await Promise.all([player(), player()]);
    const crashy = await create(a.session, 'ticker', { name: 'crashy' });
    const steady = await create(a.session, 'ticker', { name: 'steady' });
    await a.socket.joinMatch(crashy);
    await b.socket.joinMatch(steady);
    await a.socket.sendMatchState(crashy, 99, 'x');
    await until(() => a.presence.some((e) => e.leaves), 'the crashed match');
    const ev = a.presence.find((e) => e.leaves);
    assert.deepEqual(ev, { match_id: crashy, leaves: [{ user_id: a.session.user_id, session_id: ev.leaves[0].session_id, username: a.session.username }] });
    assert.deepEqual(await rpc(a.session, 'get_match', { match_id: crashy }), { found: false, match: {} });
    const t1 = Number((await rpc(a.session, 'signal_match', { match_id: steady, data: 'tick' })).result);
    let t2 = t1;
    const end = Date.now() + 5000;
    while (t2 <= t1 && Date.now() < end) {
      await sleep(20);
      t2 = Number((await rpc(a.session, 'signal_match', { match_id: steady, data: 'tick' })).result);
    }
    assert.ok(t2 > t1, `the other match keeps ticking (${t1} -> ${t2})`);
    assert.equal(b.presence.length, 0, 'nothing happened to the other match');
    close(a, b);
  });

  test('a runaway match_loop is stopped by the call budget and ends its match only', async () => {
    const [a, b] = await Promise.all([player(), player()]);
    const runaway = await create(a.session, 'ticker', { name: 'runaway' });
    const steady = await create(a.session, 'ticker', { name: 'steady2' });
    await a.socket.joinMatch(runaway);
    await b.socket.joinMatch(steady);
    await a.socket.sendMatchState(runaway, 98, '');
    await until(() => a.presence.some((e) => e.leaves), 'the runaway match ending', 8000);
    assert.deepEqual(await rpc(a.session, 'get_match', { match_id: runaway }), { found: false, match: {} });
    const got = await rpc(b.session, 'get_match', { match_id: steady });
    assert.equal(got.found, true);
    assert.equal(got.match.size, 1);
    close(a, b);
  });

  test('match_create fails for a missing module, a module without all seven functions, and a bad match_init', async () => {
    const { session } = await newDeviceSession(ctx.client);
    const missing = await rpc(session, 'create_match', { module: 'nosuch', params: {} });
    assert.match(missing.error, /nosuch/);
    const broken = await rpc(session, 'create_match', { module: 'broken', params: {} });
    assert.match(broken.error, /match module broken has no match_signal function/);
    const badinit = await rpc(session, 'create_match', { module: 'badinit', params: {} });
    assert.match(badinit.error, /tick rate/);
  });
});
