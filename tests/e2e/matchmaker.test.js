// The matchmaker over the socket: pairing by string property and by numeric
// range, count_multiple, tickets that must not match (region, same session,
// one-sided queries), removal, the per-session ticket limit, tickets dropped
// when a socket closes, parties, the matched hook, and joining the relayed
// match with the token and exchanging data.
//
// The server processes every second (--matchmaker.interval_sec 1). Nothing
// waits for a fixed time: a test waits for the events it expects, and a
// ticket that must not match is checked against a control pair added after
// it, which can only match in a pass that also saw (and skipped) it. Every
// test tags its tickets with a property of its own (+properties.t:<tag>) so
// tests never match each other's tickets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { createSocket, WS_FORMAT } from './lib/socket.js';
import { uniq, makeUntil } from './lib/http.js';

const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
const ctx = useServer({
  args: ['--workers', '2', '--matchmaker.interval_sec', '1',
    '--runtime.path', path.join(E2E_DIR, 'modules', 'matchmaker')],
});

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const until = makeUntil(15000, 10);

/** A nakama-js socket for a fresh user, recording matchmaker events. */
async function player() {
  const { session } = await newDeviceSession(ctx.client);
  const socket = createSocket(ctx.client);
  const p = { session, socket, matched: [], partyTickets: [], data: [], party: [] };
  socket.onmatchmakermatched = (m) => p.matched.push(m);
  socket.onpartymatchmakerticket = (t) => p.partyTickets.push(t);
  socket.onmatchdata = (d) => p.data.push(d);
  socket.onparty = (e) => p.party.push(e);
  await socket.connect(session, true);
  return p;
}

function close(...ps) {
  for (const p of ps) p.socket.disconnect(false);
}

async function rejects(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

// @heroiclabs/nakama-js-protobuf's MatchmakerAdd predates count_multiple:
// its adapter drops the field, so tests that need it run in the JSON pass.
const NEEDS_COUNT_MULTIPLE = WS_FORMAT === 'json' ? false : 'count_multiple: the protobuf adapter has no such field';

const tagged = (tag, extra = '') => `+properties.t:${tag}${extra ? ' ' + extra : ''}`;

/** matchmaker_add with every field (nakama-js 2.8 has no count_multiple). */
async function addRaw(p, fields) {
  const r = await p.socket.send({ matchmaker_add: fields });
  return r.matchmaker_ticket.ticket;
}

/** The sorted user ids of a matched event. */
const userIds = (m) => m.users.map((u) => u.presence.user_id).sort();

describe('matchmaker', () => {
  test('pairs by string property; other regions and one-sided queries stay', async () => {
    const t = uniq('t');
    const [a, b, c, d, e] = await Promise.all([player(), player(), player(), player(), player()]);
    const eu = tagged(t, '+properties.region:eu');
    // c is in the us; d accepts anyone but is refused by e's query and a/b's.
    const tc = await c.socket.addMatchmaker(tagged(t, '+properties.region:us'), 2, 2, { t, region: 'us' });
    const td = await d.socket.addMatchmaker(tagged(t), 2, 2, { t, region: 'asia' });
    const ta = await a.socket.addMatchmaker(eu, 2, 2, { t, region: 'eu' }, { skill: 10 });
    const tb = await b.socket.addMatchmaker(eu, 2, 2, { t, region: 'eu' });
    for (const x of [ta, tb, tc, td]) assert.match(x.ticket, UUID_RE);
    await until(() => a.matched.length && b.matched.length, 'a and b matched');

    const ma = a.matched[0];
    const mb = b.matched[0];
    assert.equal(ma.ticket, ta.ticket);
    assert.equal(mb.ticket, tb.ticket);
    assert.equal(typeof ma.token, 'string');
    assert.equal(ma.token, mb.token);
    assert.equal(ma.match_id, undefined);
    assert.deepEqual(userIds(ma), [a.session.user_id, b.session.user_id].sort());
    assert.equal(ma.self.presence.user_id, a.session.user_id);
    assert.equal(ma.self.presence.username, a.session.username);
    assert.match(ma.self.presence.session_id, UUID_RE);
    assert.deepEqual(ma.self.string_properties, { t, region: 'eu' });
    assert.deepEqual(ma.self.numeric_properties, { skill: 10 });
    assert.equal(mb.self.presence.user_id, b.session.user_id);
    const aAsSeenByB = mb.users.find((u) => u.presence.user_id === a.session.user_id);
    assert.deepEqual(aAsSeenByB.numeric_properties, { skill: 10 });

    // e (asia) wants the asia, d accepts anyone: mutual, they pair; c never did.
    const te = await e.socket.addMatchmaker(tagged(t, '+properties.region:asia'), 2, 2, { t, region: 'asia' });
    await until(() => e.matched.length && d.matched.length, 'd and e matched');
    assert.equal(e.matched[0].ticket, te.ticket);
    assert.equal(d.matched[0].ticket, td.ticket);
    assert.deepEqual(userIds(e.matched[0]), [d.session.user_id, e.session.user_id].sort());
    assert.equal(c.matched.length, 0);
    assert.equal(a.matched.length, 1);
    // c's ticket is still there: removing it succeeds (once)
    await c.socket.removeMatchmaker(tc.ticket);
    const err = await rejects(c.socket.removeMatchmaker(tc.ticket));
    assert.equal(err.code, 3);
    assert.equal(err.message, 'Matchmaker ticket not found');
    close(a, b, c, d, e);
  });

  test('pairs by numeric range', async () => {
    const t = uniq('t');
    const [a, far, b] = await Promise.all([player(), player(), player()]);
    await a.socket.addMatchmaker(tagged(t, '+properties.skill:>=100 +properties.skill:<=200'), 2, 2, { t }, { skill: 150 });
    await far.socket.addMatchmaker(tagged(t, '+properties.skill:>=900'), 2, 2, { t }, { skill: 950 });
    await b.socket.addMatchmaker(tagged(t, '+properties.skill:>=120 +properties.skill:<=300'), 2, 2, { t }, { skill: 180 });
    await until(() => a.matched.length && b.matched.length, 'a and b matched');
    assert.deepEqual(userIds(a.matched[0]), [a.session.user_id, b.session.user_id].sort());
    assert.equal(far.matched.length, 0);
    close(a, far, b);
  });

  test('count_multiple: four players make one group of four', { skip: NEEDS_COUNT_MULTIPLE }, async () => {
    const t = uniq('t');
    const ps = await Promise.all([player(), player(), player(), player()]);
    await Promise.all(ps.map((p) => addRaw(p, {
      min_count: 2, max_count: 4, count_multiple: 2, query: tagged(t), string_properties: { t },
    })));
    await until(() => ps.every((p) => p.matched.length), 'all four matched');
    const ids = ps.map((p) => p.session.user_id).sort();
    for (const p of ps) {
      assert.equal(p.matched.length, 1);
      assert.deepEqual(userIds(p.matched[0]), ids);
    }
    assert.equal(new Set(ps.map((p) => p.matched[0].token)).size, 1);
    close(...ps);
  });

  test('a session is never matched with itself', async () => {
    const t = uniq('t');
    const [a, b] = await Promise.all([player(), player()]);
    const t1 = await a.socket.addMatchmaker(tagged(t), 2, 2, { t });
    const t2 = await a.socket.addMatchmaker(tagged(t), 2, 2, { t });
    assert.notEqual(t1.ticket, t2.ticket);
    await b.socket.addMatchmaker(tagged(t), 2, 2, { t });
    await until(() => a.matched.length && b.matched.length, 'a and b matched');
    assert.equal(a.matched[0].ticket, t1.ticket); // the oldest
    assert.deepEqual(userIds(b.matched[0]), [a.session.user_id, b.session.user_id].sort());
    await a.socket.removeMatchmaker(t2.ticket); // still waiting
    close(a, b);
  });

  test('removed tickets and closed sockets leave the pool', async () => {
    const t = uniq('t');
    const [gone, closing, b, c] = await Promise.all([player(), player(), player(), player()]);
    const tg = await gone.socket.addMatchmaker(tagged(t), 2, 2, { t });
    await closing.socket.addMatchmaker(tagged(t), 2, 2, { t });
    await gone.socket.removeMatchmaker(tg.ticket);
    // The server's close of `closing` is seen by a match partner (its leave
    // event); the matchmaker's close hook runs in the same step.
    const m = await closing.socket.createMatch();
    await gone.socket.joinMatch(m.match_id);
    let left = false;
    gone.socket.onmatchpresence = (e) => { if (e.leaves) left = true; };
    closing.socket.disconnect(false);
    await until(() => left, 'the close reached the server');
    // Both were older than b: had they stayed, b would have matched one.
    await b.socket.addMatchmaker(tagged(t), 2, 2, { t });
    await c.socket.addMatchmaker(tagged(t), 2, 2, { t });
    await until(() => b.matched.length && c.matched.length, 'b and c matched');
    assert.deepEqual(userIds(b.matched[0]), [b.session.user_id, c.session.user_id].sort());
    assert.equal(gone.matched.length, 0);
    // only the owner may remove a ticket
    const tb2 = await b.socket.addMatchmaker(tagged(uniq('x')), 2, 2, {});
    const err = await rejects(c.socket.removeMatchmaker(tb2.ticket));
    assert.equal(err.code, 3);
    await b.socket.removeMatchmaker(tb2.ticket);
    close(gone, b, c);
  });

  test('at most 3 tickets per session', async () => {
    const t = uniq('t');
    const a = await player();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await a.socket.addMatchmaker(tagged(t), 2, 2, { t })).ticket);
    const err = await rejects(a.socket.addMatchmaker(tagged(t), 2, 2, { t }));
    assert.equal(err.code, undefined); // RUNTIME_EXCEPTION (0) is left out of the JSON
    assert.equal(err.message, 'Error adding to matchmaker');
    await a.socket.removeMatchmaker(ids[0]);
    await a.socket.addMatchmaker(tagged(t), 2, 2, { t });
    close(a);
  });

  test('bad input', async () => {
    const a = await player();
    const cases = [
      [{ min_count: 1, max_count: 2, query: '*' }, 3, 'Invalid minimum count, must be >= 2'],
      [{ min_count: 3, max_count: 2, query: '*' }, 3, 'Invalid maximum count, must be >= minimum count'],
      [{ min_count: 2, max_count: 2, query: 'properties.region:e*' }, undefined, 'Error adding to matchmaker'],
      [{ min_count: 2, max_count: 2, query: 'region' }, undefined, 'Error adding to matchmaker'],
      [{ min_count: 2, max_count: 2, query: '+properties.r:/x/' }, undefined, 'Error adding to matchmaker'],
    ];
    if (WS_FORMAT === 'json') {
      cases.push(
        [{ min_count: 2, max_count: 4, count_multiple: 0, query: '*' }, 3, 'Invalid count multiple, must be >= 1'],
        [{ min_count: 2, max_count: 5, count_multiple: 2, query: '*' }, 3, 'Invalid count multiple for maximum count, must divide'],
        [{ min_count: 3, max_count: 4, count_multiple: 2, query: '*' }, 3, 'Invalid count multiple for minimum count, must divide'],
      );
    }
    for (const [fields, code, message] of cases) {
      const err = await rejects(a.socket.send({ matchmaker_add: fields }));
      assert.equal(err.code, code, JSON.stringify(fields));
      assert.equal(err.message, message, JSON.stringify(fields));
    }
    let err = await rejects(a.socket.send({ matchmaker_remove: { ticket: '' } }));
    assert.equal(err.code, 3);
    err = await rejects(a.socket.joinMatch(undefined, 'not.a.token'));
    assert.equal(err.code, 3);
    assert.equal(err.message, 'Invalid match token');
    close(a);
  });

  test('both players join the relayed match with the token and exchange data', async () => {
    const t = uniq('t');
    const [a, b] = await Promise.all([player(), player()]);
    await a.socket.addMatchmaker(tagged(t), 2, 2, { t });
    await b.socket.addMatchmaker(tagged(t), 2, 2, { t });
    await until(() => a.matched.length && b.matched.length, 'a and b matched');
    const token = a.matched[0].token;
    const ma = await a.socket.joinMatch(undefined, token);
    assert.match(ma.match_id, /^[0-9a-f-]{36}\.$/);
    assert.equal(ma.self.user_id, a.session.user_id);
    const mb = await b.socket.joinMatch(undefined, b.matched[0].token);
    assert.equal(mb.match_id, ma.match_id);
    assert.deepEqual((mb.presences || []).map((p) => p.user_id), [a.session.user_id]);
    await a.socket.sendMatchState(ma.match_id, 7, 'hello');
    await until(() => b.data.length, 'b got the data');
    assert.equal(b.data[0].op_code, 7);
    assert.equal(new TextDecoder().decode(b.data[0].data), 'hello');
    assert.equal(b.data[0].presence.user_id, a.session.user_id);
    await b.socket.sendMatchState(mb.match_id, 8, 'back');
    await until(() => a.data.length, 'a got the data');
    assert.equal(a.data[0].op_code, 8);
    close(a, b);
  });

  test('party tickets hold the whole party', async () => {
    const t = uniq('t');
    const [leader, member, solo] = await Promise.all([player(), player(), player()]);
    const party = await leader.socket.createParty(true, 4);
    await member.socket.joinParty(party.party_id);
    await until(() => member.party.length, 'member joined');
    // only the leader may add the party
    let err = await rejects(member.socket.addMatchmakerParty(party.party_id, tagged(t), 3, 3, { t }));
    assert.match(err.message, /leader/);
    const pt = await leader.socket.addMatchmakerParty(party.party_id, tagged(t), 3, 3, { t }, { skill: 5 });
    assert.equal(pt.party_id, party.party_id);
    assert.match(pt.ticket, UUID_RE);
    await until(() => member.partyTickets.length, 'member told of the ticket');
    assert.equal(member.partyTickets[0].ticket, pt.ticket);
    await solo.socket.addMatchmaker(tagged(t), 3, 3, { t });
    await until(() => [leader, member, solo].every((p) => p.matched.length), 'all three matched');
    const ids = [leader, member, solo].map((p) => p.session.user_id).sort();
    for (const p of [leader, member, solo]) assert.deepEqual(userIds(p.matched[0]), ids);
    assert.equal(leader.matched[0].ticket, pt.ticket);
    assert.equal(member.matched[0].ticket, pt.ticket);
    assert.equal(member.matched[0].self.party_id, party.party_id);
    assert.equal(solo.matched[0].self.party_id, undefined);
    assert.equal(leader.matched[0].token, solo.matched[0].token);

    // a membership change cancels the party's tickets
    const pt2 = await leader.socket.addMatchmakerParty(party.party_id, tagged(uniq('y')), 3, 3, {});
    await member.socket.leaveParty(party.party_id);
    err = await rejects(leader.socket.removeMatchmakerParty(party.party_id, pt2.ticket));
    assert.equal(err.message, 'Matchmaker ticket not found');
    const pt3 = await leader.socket.addMatchmakerParty(party.party_id, tagged(uniq('y')), 2, 2, {});
    await leader.socket.removeMatchmakerParty(party.party_id, pt3.ticket);
    close(leader, member, solo);
  });

  test('the matched hook returns a match id', async () => {
    const t = uniq('t');
    const [a, b] = await Promise.all([player(), player()]);
    await a.socket.addMatchmaker(tagged(t), 2, 2, { t, mode: 'hooked', region: 'eu' }, { skill: 3 });
    await b.socket.addMatchmaker(tagged(t), 2, 2, { t, mode: 'hooked', region: 'us' }, { skill: 4 });
    await until(() => a.matched.length && b.matched.length, 'a and b matched');
    const expected = 'matchmaker:2:' + [
      `${a.session.username}/eu/3/kizuna/nil`,
      `${b.session.username}/us/4/kizuna/nil`,
    ].sort().join(',');
    assert.equal(a.matched[0].match_id, expected);
    assert.equal(b.matched[0].match_id, expected);
    assert.equal(a.matched[0].token, undefined);
    close(a, b);
  });
});
