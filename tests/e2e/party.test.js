// Parties over the socket: create, open joins, closed parties with join
// requests (accept, reject, list), leave with leader hand-over, promote,
// kick, close, data fan-out, update, max_size, disconnect cleanup, and bad
// input. Several nakama-js sockets per test; raw `ws` for exact frames.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { createSocket, JSON_ONLY } from './lib/socket.js';
import { makeUntil, sleep } from './lib/http.js';

// Several I/O threads, so members of one party live on different threads.
const ctx = useServer({ args: ['--workers', '4'] });

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const until = makeUntil(3000);

/** A nakama-js socket for a fresh user, recording party events. */
async function player() {
  const { session } = await newDeviceSession(ctx.client);
  const socket = createSocket(ctx.client);
  const p = { session, socket, party: [], presence: [], data: [], leader: [], close: [], requests: [], update: [] };
  socket.onparty = (e) => p.party.push(e);
  socket.onpartypresence = (e) => p.presence.push(e);
  socket.onpartydata = (e) => p.data.push(e);
  socket.onpartyleader = (e) => p.leader.push(e);
  socket.onpartyclose = (e) => p.close.push(e);
  socket.onpartyjoinrequest = (e) => p.requests.push(e);
  await socket.connect(session, true);
  return p;
}

function close(...ps) {
  for (const p of ps) p.socket.disconnect(false);
}

/** Round trip: every event sent to p before now has arrived. */
async function sync(p) {
  await p.socket.send({ ping: {} });
}

/** The presence a member shows to others, from its `party` message. */
const pres = (party) => ({ user_id: party.self.user_id, session_id: party.self.session_id, username: party.self.username });

/** Error thrown by a nakama-js request. */
async function rejects(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

/** A raw JSON socket. */
function raw(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ctx.srv.port}/ws?lang=en&status=false&token=${encodeURIComponent(token)}`);
    const messages = [];
    const waiters = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      const w = waiters.shift();
      if (w) w(m); else messages.push(m);
    });
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.next = (ms = 3000) => new Promise((res, rej) => {
      if (messages.length) return res(messages.shift());
      const t = setTimeout(() => rej(new Error('no message')), ms);
      waiters.push((m) => { clearTimeout(t); res(m); });
    });
    ws.call = async (cid, msg) => {
      ws.send(JSON.stringify({ cid, ...msg }));
      return ws.next();
    };
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

describe('create and join', () => {
  test('party_create replies the party with the creator as leader and only member', async () => {
    const a = await player();
    const party = await a.socket.createParty(true, 4);
    assert.match(party.party_id, /^[0-9a-f-]{36}\.kizuna$/);
    assert.match(party.party_id.split('.')[0], UUID_RE);
    assert.equal(party.open, true);
    assert.equal(party.max_size, 4);
    assert.equal(party.self.user_id, a.session.user_id);
    assert.equal(party.self.username, a.session.username);
    assert.match(party.self.session_id, UUID_RE);
    assert.deepEqual(party.leader, party.self);
    assert.deepEqual(party.presences, [party.self]);
    assert.equal(party.label, '{}');
    const closed = await a.socket.createParty(false, 2);
    assert.notEqual(closed.party_id, party.party_id);
    assert.equal(closed.open, undefined);
    close(a);
  });

  test('an open party: the joiner gets `party`, the members the join, data flows', async () => {
    const [a, b, c] = await Promise.all([player(), player(), player()]);
    const pa = await a.socket.createParty(true, 3);
    const id = pa.party_id;
    assert.deepEqual(Object.keys(await b.socket.joinParty(id)), ['cid'], 'an empty ack');
    await until(() => b.party.length === 1, 'b party');
    const pb = b.party[0];
    assert.equal(pb.party_id, id);
    assert.deepEqual(pb.leader, pa.self);
    assert.deepEqual(pb.presences, [pa.self, pb.self]);
    assert.equal(pb.self.user_id, b.session.user_id);
    await until(() => a.presence.length === 1, 'a sees b');
    assert.deepEqual(a.presence[0], { party_id: id, joins: [pres(pb)] });

    await c.socket.joinParty(id);
    await until(() => c.party.length === 1 && a.presence.length === 2 && b.presence.length === 1, 'c join');
    assert.deepEqual(c.party[0].presences.map((x) => x.user_id), [a.session.user_id, b.session.user_id, c.session.user_id]);
    assert.deepEqual(b.presence[0].joins, [pres(c.party[0])]);

    // Data to everyone else, with the sender's presence.
    await b.socket.sendPartyData(id, 7, 'hello');
    await until(() => a.data.length === 1 && c.data.length === 1, 'data');
    const { data, ...rest } = a.data[0];
    assert.deepEqual(rest, { party_id: id, presence: pres(pb), op_code: 7 });
    assert.equal(Buffer.from(data).toString(), 'hello');
    assert.deepEqual(c.data[0], a.data[0]);
    await sync(b);
    assert.equal(b.data.length, 0, 'no echo to the sender');

    // Full: max_size 3.
    const d = await player();
    const err = await rejects(d.socket.joinParty(id));
    assert.equal(err.code, undefined); // RUNTIME_EXCEPTION (0) is omitted
    assert.match(err.message, /party full/);
    // Already a member.
    assert.match((await rejects(b.socket.joinParty(id))).message, /already a member/);
    close(a, b, c, d);
  });

  test('a closed party queues requests for the leader, who lists, accepts and rejects them', async () => {
    const [a, b, c, x] = await Promise.all([player(), player(), player(), player()]);
    const pa = await a.socket.createParty(false, 2);
    const id = pa.party_id;
    await b.socket.joinParty(id);
    await until(() => a.requests.length === 1, 'request event');
    assert.equal(a.requests[0].party_id, id);
    assert.equal(a.requests[0].presences.length, 1);
    assert.equal(a.requests[0].presences[0].user_id, b.session.user_id);
    const bp = a.requests[0].presences[0];
    assert.match((await rejects(b.socket.joinParty(id))).message, /duplicate join request/);
    await c.socket.joinParty(id);
    await until(() => a.requests.length === 2, 'second request');
    // Only max_size requests may wait.
    assert.match((await rejects(x.socket.joinParty(id))).message, /too many join requests/);

    const list = await a.socket.listPartyJoinRequests(id);
    assert.deepEqual(list.presences.map((p) => p.user_id), [b.session.user_id, c.session.user_id]);
    assert.equal(list.party_id, id);
    // Not the leader.
    assert.match((await rejects(c.socket.listPartyJoinRequests(id))).message, /party leader only/);
    assert.match((await rejects(c.socket.acceptPartyMember(id, bp))).message, /party leader only/);

    // Reject c, accept b.
    const cp = a.requests[1].presences[0];
    await a.socket.removePartyMember(id, cp);
    await a.socket.acceptPartyMember(id, bp);
    await until(() => b.party.length === 1 && a.presence.length === 1, 'accepted');
    assert.deepEqual(b.party[0].presences.map((p) => p.user_id), [a.session.user_id, b.session.user_id]);
    assert.deepEqual(a.presence[0].joins, [bp]);
    assert.equal((await a.socket.listPartyJoinRequests(id)).presences, undefined);
    await sync(c);
    assert.equal(c.party.length, 0);
    // Accepting someone who did not ask fails.
    assert.match((await rejects(a.socket.acceptPartyMember(id, cp))).message, /join request not found/);
    close(a, b, c, x);
  });
});

describe('bounds', () => {
  test('concurrent joins from several threads fill the party exactly to max_size', async () => {
    const ps = await Promise.all(Array.from({ length: 9 }, () => player()));
    const [a, ...rest] = ps;
    const party = await a.socket.createParty(true, 4);
    const results = await Promise.allSettled(rest.map((p) => p.socket.joinParty(party.party_id)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    assert.equal(ok, 3);
    for (const r of results.filter((x) => x.status === 'rejected')) assert.match(r.reason.message, /party full/);
    await until(() => a.presence.length === 3, 'three joins');
    const joined = rest.filter((p, i) => results[i].status === 'fulfilled');
    await until(() => joined.every((p) => p.party.length === 1), 'party events');
    // The last one to join sees everyone; the leader sees each join once.
    const ids = a.presence.map((e) => e.joins[0].user_id).sort();
    assert.deepEqual(ids, joined.map((p) => p.session.user_id).sort());
    assert.equal(Math.max(...joined.map((p) => p.party[0].presences.length)), 4);
    close(...ps);
  });

  test('max_size 0 to 256 is accepted, anything else refused', async () => {
    const a = await player();
    assert.equal((await a.socket.createParty(false, 256)).max_size, 256);
    const err = await rejects(a.socket.createParty(true, -1));
    assert.equal(err.code, 3);
    close(a);
  });
});

describe('leader actions', () => {
  test('promote, leader leaving hands over to the oldest member, kick, close', async () => {
    const [a, b, c, d] = await Promise.all([player(), player(), player(), player()]);
    const pa = await a.socket.createParty(true, 4);
    const id = pa.party_id;
    for (const p of [b, c, d]) {
      await p.socket.joinParty(id);
      await until(() => p.party.length === 1, 'joined');
    }
    const [pb, pc, pd] = [b, c, d].map((p) => pres(p.party[0]));
    await until(() => a.presence.length === 3, 'joins seen');

    // Only the leader promotes; everyone hears of the new leader.
    assert.match((await rejects(b.socket.promotePartyMember(id, pc))).message, /party leader only/);
    await a.socket.promotePartyMember(id, pc);
    await until(() => [a, b, c, d].every((p) => p.leader.length === 1), 'leader events');
    for (const p of [a, b, c, d]) assert.deepEqual(p.leader[0], { party_id: id, presence: pc });
    assert.match((await rejects(a.socket.closeParty(id))).message, /party leader only/);

    // The leader leaves: the oldest remaining member (a) leads.
    await c.socket.leaveParty(id);
    await until(() => [a, b, d].every((p) => p.leader.length === 2 && p.presence.some((e) => e.leaves)), 'hand-over');
    for (const p of [a, b, d]) {
      assert.deepEqual(p.leader[1], { party_id: id, presence: pres(pa) });
      assert.deepEqual(p.presence.find((e) => e.leaves), { party_id: id, leaves: [pc] });
    }

    // Kick b: b gets party_close, the others the leave; b cannot send any more.
    assert.match((await rejects(a.socket.removePartyMember(id, pres(pa)))).message, /cannot remove self/);
    await a.socket.removePartyMember(id, pb);
    await until(() => b.close.length === 1, 'kicked');
    assert.deepEqual(b.close[0], { party_id: id });
    await until(() => d.presence.filter((e) => e.leaves).length === 2, 'd sees the kick');
    assert.deepEqual(d.presence.filter((e) => e.leaves)[1].leaves, [pb]);
    // nakama-js sends party data without a cid: nothing reaches the others.
    await b.socket.sendPartyData(id, 1, 'x');
    await sync(b);
    await sync(d);
    assert.equal(d.data.length, 0);

    // Close: everyone left gets party_close; the party is gone.
    await a.socket.closeParty(id);
    await until(() => a.close.length === 1 && d.close.length === 1, 'closed');
    assert.deepEqual(d.close[0], { party_id: id });
    assert.match((await rejects(b.socket.joinParty(id))).message, /party not found/);
    close(a, b, c, d);
  });

  test('the last member leaving ends the party; a disconnect leaves and withdraws requests', async () => {
    const [a, b, c] = await Promise.all([player(), player(), player()]);
    const p1 = await a.socket.createParty(true, 2);
    await a.socket.leaveParty(p1.party_id);
    assert.match((await rejects(b.socket.joinParty(p1.party_id))).message, /party not found/);

    const p2 = await a.socket.createParty(false, 3);
    await b.socket.joinParty(p2.party_id);
    await until(() => a.requests.length === 1, 'request');
    await a.socket.acceptPartyMember(p2.party_id, a.requests[0].presences[0]);
    await c.socket.joinParty(p2.party_id);
    await until(() => a.requests.length === 2 && b.party.length === 1, 'second request');
    c.socket.disconnect(false);
    await sleep(100);
    assert.equal((await a.socket.listPartyJoinRequests(p2.party_id)).presences, undefined, 'request withdrawn');

    // The leader disconnects: b leads and sees the leave.
    a.socket.disconnect(false);
    await until(() => b.leader.length === 1 && b.presence.some((e) => e.leaves), 'hand-over on disconnect');
    assert.equal(b.leader[0].presence.user_id, b.session.user_id);
    assert.equal(b.presence.find((e) => e.leaves).leaves[0].user_id, a.session.user_id);
    assert.deepEqual(await b.socket.listPartyJoinRequests(p2.party_id), { party_id: p2.party_id });
    close(b);
  });
});

describe('raw frames', { skip: JSON_ONLY }, () => {
  test('update, exact acks and events, bad input', async () => {
    const [ta, tb] = await Promise.all([newDeviceSession(ctx.client), newDeviceSession(ctx.client)]);
    const [a, b] = await Promise.all([raw(ta.session.token), raw(tb.session.token)]);
    const created = await a.call('1', { party_create: { open: true, maxSize: 2, label: '{"mode":"duo"}', hidden: true } });
    const id = created.party.party_id;
    assert.equal(created.cid, '1');
    assert.equal(created.party.label, '{"mode":"duo"}');
    assert.equal(created.party.hidden, true);
    assert.deepEqual(await b.call('2', { party_join: { partyId: id } }), { cid: '2' });
    const ev = await b.next();
    assert.equal(ev.party.party_id, id);
    assert.equal(ev.cid, undefined);
    assert.deepEqual(Object.keys((await a.next()).party_presence_event).sort(), ['joins', 'party_id']);

    // Update by the leader: the others get party_update.
    assert.deepEqual(await a.call('3', { party_update: { party_id: id, label: '{"m":1}', open: false } }), { cid: '3' });
    assert.deepEqual(await b.next(), { party_update: { party_id: id, label: '{"m":1}' } });
    assert.deepEqual(await b.call('4', { party_update: { party_id: id, open: true } }),
      { cid: '4', error: { message: 'Error updating party: party leader only' } });

    // Data with op code as a string and binary data.
    assert.deepEqual(await b.call('5', { party_data_send: { party_id: id, op_code: '9', data: 'AAEC' } }), { cid: '5' });
    const pd = (await a.next()).party_data;
    assert.equal(pd.op_code, '9');
    assert.equal(pd.data, 'AAEC');

    // Data from a non-member is an error.
    const [tc] = [await newDeviceSession(ctx.client)];
    const c = await raw(tc.session.token);
    assert.deepEqual(await c.call('c1', { party_data_send: { party_id: id, op_code: 1 } }),
      { cid: 'c1', error: { message: 'Error sending party data: not a party member' } });
    c.close();

    // Bad input.
    assert.deepEqual(await a.call('6', { party_create: { open: true, max_size: 257 } }),
      { cid: '6', error: { code: 3, message: 'Invalid party max size, must be 1-256' } });
    assert.equal((await a.call('7', { party_create: { max_size: 2, label: '[1]' } })).error.code, 3);
    assert.equal((await a.call('8', { party_join: { party_id: 'nope' } })).error.code, 3);
    assert.equal((await a.call('9', { party_join: {} })).error.code, 3);
    const other = `${id.split('.')[0]}.othernode`;
    assert.match((await a.call('10', { party_join: { party_id: other } })).error.message, /party not found/);
    assert.deepEqual(await a.call('11', { party_leave: { party_id: other } }), { cid: '11' });
    // Unknown fields close the socket, as protobuf JSON parsing does.
    a.send(JSON.stringify({ cid: '12', party_close: { party_id: id, bogus: 1 } }));
    assert.equal((await a.closed).code, 1000);
    // a's disconnect hands the party to b.
    const lead = await b.next();
    const rest = [lead, await b.next()];
    assert.ok(rest.some((m) => m.party_leader && m.party_leader.presence.user_id === tb.session.user_id));
    assert.ok(rest.some((m) => m.party_presence_event && m.party_presence_event.leaves));
    b.close();
  });
});
