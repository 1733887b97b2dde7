// kizuna-loadtest against the server under test: a short smoke run of every
// kind of step (auth, socket, chat, relayed and authoritative matches, the
// matchmaker, RPCs, storage, scores) that checks correctness only: the tool
// exits 0, every bot finished, no operation failed, and each operation ran
// exactly as often as the scenario says. Never timing.
// The tool is built next to the server binary (KZ_BIN's directory).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useServer } from './lib/fixture.js';
import { REPO_ROOT, serverBinary, startServer, freePort } from './lib/server.js';
import net from 'node:net';

const ctx = useServer({
  args: ['--workers', '2', '--matchmaker.interval_sec', '1',
    '--runtime.path', path.join(REPO_ROOT, 'bench', 'modules')],
});

const TOOL = path.join(path.dirname(serverBinary()), 'kizuna-loadtest');

// 3 profiles x 8 bots (equal weights share the bots evenly).
const SCENARIO = `
name: smoke
bots: 24
arrival: {rate: 100}
duration: 60s
timeout: 15s
profiles:
  - name: chatter
    steps:
      - auth: {type: device}
      - socket:
      - chat_join: {room: "smoke-{run}-{group}", group_size: 4}
      - repeat:
          count: 5
          do:
            - chat_send: {size: 32}
      - chat_leave:
      - storage_write: {collection: smoke, key: "k{bot}", size: 64}
      - storage_read: {collection: smoke, key: "k{bot}"}
      - rpc: {id: echo, payload: '{"bot": {bot}}'}
      - rpc: {id: echo, payload: '{"via": "socket"}', via: socket}
  - name: player
    steps:
      - auth: {type: custom}
      - socket:
      - match: {group_size: 2}
      - repeat:
          count: 10
          do:
            - match_send: {size: 16}
      - match_leave:
      - leaderboard_write: {id: bench_best, score: random}
  - name: competitor
    steps:
      - auth: {type: email}
      - socket:
      - matchmaker: {query: "+properties.run:{run}", min_count: 2, max_count: 2, string_properties: {run: "{run}"}}
      - match_leave:
      - am_match: {create_rpc: lt_am_create, group_size: 4}
      - repeat:
          count: 5
          do:
            - match_send: {size: 16}
      - match_leave:
`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Writes a scenario into a fresh temp dir; returns {dir, file}. */
function scenario(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kz-lt-'));
  const file = path.join(dir, 'scenario.yaml');
  fs.writeFileSync(file, text);
  return { dir, file };
}

const SMALL = (bots, extra = '') => `
name: small
bots: ${bots}
arrival: {rate: 200}
duration: 30s
${extra}
profiles:
  - name: p
    steps:
      - auth:
      - socket:
      - rpc: {id: echo, payload: '{"bot": {bot}}', via: socket}
`;

function run(args) {
  return new Promise((resolve) => {
    const child = spawn(TOOL, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

describe('kizuna-loadtest', () => {
  test('a smoke run of every step kind: all bots finish, nothing fails', async () => {
    assert.ok(fs.existsSync(TOOL), `${TOOL} is built`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kz-lt-'));
    try {
      const file = path.join(dir, 'smoke.yaml');
      fs.writeFileSync(file, SCENARIO);
      const json = path.join(dir, 'report.json');
      const html = path.join(dir, 'report.html');
      const r = await run(['run', file, '--host', '127.0.0.1', '--port', String(ctx.srv.port),
        '--processes', '2', '--report-json', json, '--report-html', html, '--quiet']);
      assert.equal(r.code, 0, `exit ${r.code} ${r.signal}:\n${r.out}`);
      const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
      const c = rep.summary.counters;
      assert.equal(c.bots_started, 24, JSON.stringify(c));
      assert.equal(c.bots_finished, 24);
      assert.equal(c.bots_failed, 0);
      const ops = rep.summary.ops;
      const count = (op) => (ops[op] ? ops[op].count : 0);
      for (const [op, o] of Object.entries(ops)) assert.equal(o.errors, 0, `${op}: ${JSON.stringify(o.reasons)}`);
      assert.equal(count('auth'), 24);
      assert.equal(count('socket_open'), 24);
      assert.equal(count('chat_join'), 8);
      assert.equal(count('chat_send'), 40);
      assert.equal(count('chat_leave'), 8);
      assert.equal(count('storage_write'), 8);
      assert.equal(count('storage_read'), 8);
      assert.equal(count('rpc'), 16);
      assert.equal(count('leaderboard_write'), 8);
      assert.equal(count('matchmaker_add'), 8);
      assert.equal(count('matchmaker_matched'), 8);
      assert.equal(count('am_create'), 2);
      // relayed: 8 players; matchmaker: 8 token joins; authoritative: 8
      assert.equal(count('match_join'), 24);
      assert.equal(count('match_leave'), 24);
      assert.equal(count('socket'), 0, 'no socket closed unexpectedly');
      // (how many messages others received depends on who had joined yet)
      const page = fs.readFileSync(html, 'utf8');
      assert.match(page, /^<!DOCTYPE html>/i);
      assert.match(page, /<svg/);
      assert.doesNotMatch(page, /<script/i);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad scenario is refused with its file and line, exit status 2', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kz-lt-'));
    try {
      const file = path.join(dir, 'bad.yaml');
      fs.writeFileSync(file, 'name: bad\nbots: 2\nduration: 1s\nprofiles:\n  - name: p\n    steps:\n      - fly: {}\n');
      const r = await run(['run', file, '--port', String(ctx.srv.port), '--quiet']);
      assert.equal(r.code, 2, r.out);
      assert.match(r.out, /bad\.yaml:7/);
      assert.match(r.out, /fly/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('distributed: an agent and local workers share the bots', async () => {
    const port = await freePort();
    const agent = spawn(TOOL, ['agent', '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let agentOut = '';
    agent.stdout.on('data', (d) => { agentOut += d; });
    agent.stderr.on('data', (d) => { agentOut += d; });
    const { dir, file } = scenario(SMALL(12));
    try {
      // the agent listens once it has started
      for (let i = 0; ; i++) {
        const ok = await new Promise((resolve) => {
          const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
          c.on('error', () => resolve(false));
        });
        if (ok) break;
        assert.ok(i < 200, `the agent did not listen:\n${agentOut}`);
        await sleep(25);
      }
      const json = path.join(dir, 'report.json');
      const r = await run(['run', file, '--port', String(ctx.srv.port), '--agents', `127.0.0.1:${port}`, '--local',
        '--processes', '1', '--report-json', json, '--quiet']);
      assert.equal(r.code, 0, `exit ${r.code}:\n${r.out}\nagent:\n${agentOut}`);
      const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
      assert.equal(rep.info.agents, 1);
      assert.ok(rep.info.processes >= 2, `processes: ${rep.info.processes}`);
      assert.equal(rep.summary.counters.bots_finished, 12);
      assert.equal(rep.summary.counters.bots_failed, 0);
      assert.equal(rep.summary.ops.rpc.count, 12);
      assert.equal(rep.summary.ops.rpc.errors, 0);
    } finally {
      agent.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("soak: the server's memory and connections are sampled and judged", async () => {
    const mport = await freePort();
    const srv = await startServer({ args: ['--metrics.prometheus_port', String(mport),
      '--runtime.path', path.join(REPO_ROOT, 'bench', 'modules')] });
    const { dir, file } = scenario(`
name: soak
bots: 6
arrival: {rate: 100}
duration: 3s
soak: {metrics_url: "http://127.0.0.1:${mport}/metrics", every: 500ms}
profiles:
  - name: idler
    steps:
      - auth:
      - socket:
      - wait: {for: end}
`);
    try {
      const json = path.join(dir, 'report.json');
      const r = await run(['run', file, '--port', String(srv.port), '--report-json', json, '--quiet']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /soak/i);
      const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
      assert.equal(rep.summary.counters.bots_finished, 6);
      const samples = rep.soak.samples;
      assert.ok(samples.length >= 2, `samples: ${JSON.stringify(samples)}`);
      for (const [t, rss, conns] of samples) {
        assert.ok(Number.isInteger(t) && t >= 0);
        assert.ok(rss > 1e6 && rss < 4e9, `rss ${rss}`);
        assert.ok(conns >= 0);
      }
      assert.equal(rep.soak.failures, 0);
      assert.equal(typeof rep.soak.verdict.text, 'string');
      await srv.stop();
    } finally {
      if (!srv.exit) await srv.kill();
      srv.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
