// Group membership changes post system messages to the group's chat
// channel: codes 3 join, 4 add, 5 leave, 6 kick, 7 promote, 8 ban,
// 9 demote, sent by the user the change is about, content {}. Members in
// the channel get them live; they are stored, so the history lists them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, newDeviceSession } from './lib/fixture.js';
import { uniqName, sleep } from './lib/http.js';
import { createSocket } from './lib/socket.js';

const ctx = useServer({ args: ['--workers', '2'] });
const GROUP = 3;

async function user() {
  const name = uniqName('gc');
  const { session } = await newDeviceSession(ctx.client, { username: name });
  const socket = createSocket(ctx.client, { timeoutMs: 3000 });
  const messages = [];
  socket.onchannelmessage = (m) => messages.push(m);
  await socket.connect(session, false, 3000);
  return { s: session, id: session.user_id, name, socket, messages };
}

async function waitCount(list, n) {
  for (let i = 0; i < 150 && list.length < n; i++) await sleep(20);
  assert.equal(list.length, n, `expected ${n} messages, got ${JSON.stringify(list)}`);
}

/** The (code, sender, username, content) of system messages. */
const shape = (m) => ({ code: m.code, sender_id: m.sender_id, username: m.username, content: m.content });

test('every membership change reaches the channel live and is kept in the history', async () => {
  const owner = await user();
  const joiner = await user();
  const added = await user();
  const g = await ctx.client.createGroup(owner.s, { name: uniqName('grp'), open: true });
  const ch = await owner.socket.joinChat(g.id, GROUP, true, false);
  assert.equal(ch.id, `3.${g.id}..`);

  await ctx.client.joinGroup(joiner.s, g.id); // 3 join
  await ctx.client.addGroupUsers(owner.s, g.id, [added.id]); // 4 add
  await ctx.client.promoteGroupUsers(owner.s, g.id, [joiner.id]); // 7 promote
  await ctx.client.demoteGroupUsers(owner.s, g.id, [joiner.id]); // 9 demote
  await ctx.client.kickGroupUsers(owner.s, g.id, [added.id]); // 6 kick
  await ctx.client.banGroupUsers(owner.s, g.id, [joiner.id]); // 8 ban

  const want = [
    { code: 3, sender_id: joiner.id, username: joiner.name, content: {} },
    { code: 4, sender_id: added.id, username: added.name, content: {} },
    { code: 7, sender_id: joiner.id, username: joiner.name, content: {} },
    { code: 9, sender_id: joiner.id, username: joiner.name, content: {} },
    { code: 6, sender_id: added.id, username: added.name, content: {} },
    { code: 8, sender_id: joiner.id, username: joiner.name, content: {} },
  ];
  await waitCount(owner.messages, want.length);
  assert.deepEqual(owner.messages.map(shape), want);
  for (const m of owner.messages) {
    assert.equal(m.channel_id, ch.id);
    assert.equal(m.group_id, g.id);
    assert.equal(m.persistent, true);
  }

  const h = await ctx.client.listChannelMessages(owner.s, ch.id, 100, true);
  assert.deepEqual(h.messages.map(shape), want);
  assert.deepEqual(h.messages.map((m) => m.message_id), owner.messages.map((m) => m.message_id));

  // Leaving: a member that leaves posts 5; the ones still in the channel see it.
  const leaver = await user();
  await ctx.client.joinGroup(leaver.s, g.id);
  await waitCount(owner.messages, 7);
  await ctx.client.leaveGroup(leaver.s, g.id);
  await waitCount(owner.messages, 8);
  assert.deepEqual(owner.messages.slice(6).map(shape), [
    { code: 3, sender_id: leaver.id, username: leaver.name, content: {} },
    { code: 5, sender_id: leaver.id, username: leaver.name, content: {} },
  ]);
  for (const u of [owner, joiner, added, leaver]) u.socket.disconnect(false);
});

test('no message for what changes nothing, nor for join requests to a closed group', async () => {
  const owner = await user();
  const other = await user();
  const g = await ctx.client.createGroup(owner.s, { name: uniqName('grp'), open: false });
  const ch = await owner.socket.joinChat(g.id, GROUP, true, false);
  await ctx.client.joinGroup(other.s, g.id); // a join request: not a member yet
  await ctx.client.kickGroupUsers(owner.s, g.id, [owner.id]); // self: ignored
  await ctx.client.promoteGroupUsers(owner.s, g.id, [owner.id]); // self: ignored
  await ctx.client.addGroupUsers(owner.s, g.id, [other.id]); // accepts the request: 4
  await waitCount(owner.messages, 1);
  await sleep(100);
  assert.deepEqual(owner.messages.map(shape), [{ code: 4, sender_id: other.id, username: other.name, content: {} }]);
  const h = await ctx.client.listChannelMessages(owner.s, ch.id, 100, true);
  assert.deepEqual(h.messages.map((m) => m.code), [4]);
  owner.socket.disconnect(false);
  other.socket.disconnect(false);
});

test('a refused change posts nothing: the message rolls back with it', async () => {
  const owner = await user();
  const a = await user();
  const g = await ctx.client.createGroup(owner.s, { name: uniqName('grp'), open: true });
  const ch = await owner.socket.joinChat(g.id, GROUP, true, false);
  // a is added (and its message written) before the unknown user fails the
  // whole request: nothing of it may remain, live or stored.
  await assert.rejects(ctx.client.addGroupUsers(owner.s, g.id, [a.id, '00000000-0000-4000-8000-000000000001']));
  const members = await ctx.client.listGroupUsers(owner.s, g.id);
  assert.deepEqual(members.group_users.map((u) => u.user.id), [owner.id]);
  await ctx.client.joinGroup(a.s, g.id); // 3: the next message is the first one
  await waitCount(owner.messages, 1);
  await sleep(100);
  assert.deepEqual(owner.messages.map((m) => [m.code, m.sender_id]), [[3, a.id]]);
  const h = await ctx.client.listChannelMessages(owner.s, ch.id, 100, true);
  assert.deepEqual(h.messages.map((m) => [m.code, m.sender_id]), [[3, a.id]]);
  owner.socket.disconnect(false);
  a.socket.disconnect(false);
});
