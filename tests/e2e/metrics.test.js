// The Prometheus endpoint: --metrics.prometheus_port serves GET /metrics on
// 127.0.0.1 only, with request counters and latency histograms by route,
// the open-connection and worker-queue gauges and the database histogram.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { useServer } from './lib/fixture.js';
import { startServer, freePort } from './lib/server.js';
import { request, rawAuthDevice, uniq, basicAuth, RawConn, rawRequest, sleep } from './lib/http.js';
import { MetricsScraper, parseMetrics, canConnect, listeningSockets } from './lib/cli.js';

const METRICS_PORT = await freePort();

// The API listens on every address, so the metrics listener staying on
// 127.0.0.1 is a choice of the server, not an inherited default.
const ctx = useServer({ args: ['--metrics.prometheus_port', String(METRICS_PORT), '--socket.address', '0.0.0.0'] });

const REQS = 'kizuna_http_requests_total';
const DUR = 'kizuna_http_request_duration_seconds';

function reqSeries(route, status) {
  return `${REQS}{route="${route}",status="${status}"}`;
}

/** Value of a series, 0 when the series is absent. */
function val(m, series) {
  return m.samples.has(series) ? m.samples.get(series) : 0;
}

/** Check one labelled histogram: buckets ascending and cumulative, +Inf == _count. */
function assertHistogram(m, name, labels) {
  const prefix = labels ? `${name}_bucket{${labels},le="` : `${name}_bucket{le="`;
  const buckets = [...m.samples.entries()]
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, v]) => ({ le: k.slice(prefix.length, -2), v }));
  assert.ok(buckets.length >= 2, `${name} {${labels || ''}} has buckets:\n${m.text}`);
  assert.equal(buckets[buckets.length - 1].le, '+Inf', `the last bucket of ${name} is +Inf`);
  for (let i = 1; i < buckets.length; i++) {
    const a = buckets[i - 1];
    const b = buckets[i];
    if (b.le !== '+Inf') assert.ok(Number(b.le) > Number(a.le), `${name} bucket bounds ascend: ${a.le} then ${b.le}`);
    assert.ok(b.v >= a.v, `${name} buckets are cumulative: le=${a.le} ${a.v} then le=${b.le} ${b.v}`);
  }
  const sel = labels ? `{${labels}}` : '';
  const count = m.samples.get(`${name}_count${sel}`);
  const sum = m.samples.get(`${name}_sum${sel}`);
  assert.equal(count, buckets[buckets.length - 1].v, `${name}_count${sel} equals the +Inf bucket`);
  assert.equal(typeof sum, 'number', `${name}_sum${sel} present`);
  assert.ok(sum >= 0, `${name}_sum${sel} >= 0`);
  return { count, sum, buckets };
}

async function withScraper(fn) {
  const scraper = new MetricsScraper(METRICS_PORT);
  try {
    return await fn(scraper);
  } finally {
    scraper.close();
  }
}

describe('GET /metrics', () => {
  test('counts requests by route and status, with latency and database histograms', async () => {
    await withScraper(async (scraper) => {
      const srv = ctx.srv;
      const m0 = await scraper.scrape();
      assert.equal(val(m0, reqSeries('AuthenticateDevice', '200')), 0, 'no device sign-in yet');
      const health0 = val(m0, reqSeries('Healthcheck', '200'));
      assert.ok(health0 >= 1, `the harness's readiness probes are counted: ${health0}`);
      const db0 = val(m0, 'kizuna_db_query_duration_seconds_count');

      assert.equal((await request(srv, 'GET', '/healthcheck')).status, 200);
      await rawAuthDevice(srv, uniq('device'), { create: true });
      assert.equal((await request(srv, 'GET', '/v2/account')).status, 401);
      assert.equal((await request(srv, 'GET', '/v2/no-such-route')).status, 404);

      const m = await scraper.scrape();
      for (const line of [
        `${reqSeries('AuthenticateDevice', '200')} 1`,
        `${reqSeries('GetAccount', '401')} 1`,
        `${reqSeries('unmatched', '404')} 1`,
        `${DUR}_bucket{route="AuthenticateDevice",le="+Inf"} 1`,
        `${DUR}_count{route="AuthenticateDevice"} 1`,
        `${DUR}_bucket{route="GetAccount",le="+Inf"} 1`,
      ]) {
        assert.ok(m.lines.includes(line), `expected the line\n  ${line}\nin\n${m.text}`);
      }
      assert.equal(val(m, reqSeries('Healthcheck', '200')), health0 + 1, 'one more healthcheck');
      assert.equal(val(m, reqSeries('GetAccount', '200')), 0, 'no successful GetAccount');

      assert.equal(m.types.get(REQS), 'counter');
      assert.equal(m.types.get(DUR), 'histogram');
      assert.equal(m.types.get('kizuna_connections_open'), 'gauge');
      assert.equal(m.types.get('kizuna_worker_queue_depth'), 'gauge');
      assert.equal(m.types.get('kizuna_db_query_duration_seconds'), 'histogram');

      const auth = assertHistogram(m, DUR, 'route="AuthenticateDevice"');
      assert.equal(auth.count, 1);
      assert.ok(auth.sum > 0 && auth.sum < 10, `one device sign-in took between 0 and 10 s: ${auth.sum}`);
      assertHistogram(m, DUR, 'route="GetAccount"');
      const unmatched = assertHistogram(m, DUR, 'route="unmatched"');
      const unmatchedRequests = [...m.samples.entries()]
        .filter(([k]) => k.startsWith(`${REQS}{route="unmatched",`)).reduce((a, [, v]) => a + v, 0);
      assert.equal(unmatched.count, unmatchedRequests, 'the unmatched histogram counts what the unmatched counters count');

      const open = m.samples.get('kizuna_connections_open');
      assert.ok(Number.isInteger(open) && open >= 0, `kizuna_connections_open is a non-negative integer: ${open}`);
      assert.equal(m.samples.get('kizuna_worker_queue_depth'), 0, 'nothing waits in the worker queue at rest');

      const db = assertHistogram(m, 'kizuna_db_query_duration_seconds', null);
      assert.ok(db.count > 0, `database statements are timed: count ${db.count}`);
      assert.ok(db.count > db0, `a device sign-in runs statements: count ${db0} -> ${db.count}`);
    });
  });

  test('answers 200 text/plain through an ordinary HTTP client', async () => {
    const res = await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/plain(;|$)/, `Content-Type: ${res.headers.get('content-type')}`);
    const m = parseMetrics(text);
    assert.ok(m.samples.has('kizuna_connections_open'), text);
    assert.ok(m.samples.has('kizuna_worker_queue_depth'), text);
    assert.ok(m.samples.get('kizuna_db_query_duration_seconds_count') > 0, text);
  });

  test('process, match and matchmaker figures', async () => {
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text());
    const rss = m.samples.get('process_resident_memory_bytes');
    assert.equal(m.types.get('process_resident_memory_bytes'), 'gauge');
    assert.ok(Number.isInteger(rss) && rss > 1e6 && rss < 4e9, `resident memory in bytes: ${rss}`);
    const fds = m.samples.get('process_open_fds');
    assert.ok(Number.isInteger(fds) && fds >= 3, `open descriptors: ${fds}`);
    // no modules, so no authoritative matches and no ticks
    for (const k of ['kizuna_matches_authoritative', 'kizuna_match_ticks_total', 'kizuna_match_ticks_skipped_total',
      'kizuna_match_ticks_slow_total', 'kizuna_match_tick_run_seconds_total', 'kizuna_matchmaker_tickets',
      'kizuna_matchmaker_matched_total']) {
      assert.equal(m.samples.get(k), 0, k);
    }
    assert.equal(m.types.get('kizuna_match_ticks_total'), 'counter');
    assert.equal(m.types.get('kizuna_matchmaker_tickets'), 'gauge');
  });

  test('a failed sign-in is counted under its own route and status', async () => {
    await withScraper(async (scraper) => {
      const before = val(await scraper.scrape(), reqSeries('AuthenticateDevice', '401'));
      const res = await request(ctx.srv, 'POST', '/v2/account/authenticate/device', {
        auth: basicAuth('not-the-server-key'),
        json: { id: uniq('device') },
      });
      assert.equal(res.status, 401, res.text);
      const m = await scraper.scrape();
      assert.equal(val(m, reqSeries('AuthenticateDevice', '401')), before + 1);
      assert.equal(val(m, reqSeries('AuthenticateDevice', '200')), 1, 'the 200 series is unchanged');
    });
  });

  test('kizuna_connections_open follows client connections', async () => {
    await withScraper(async (scraper) => {
      // Pooled keep-alive connections of this process's fetch may close on
      // their own between two scrapes, so a mismatch is retried a few times;
      // a gauge that does not follow connections never matches.
      let lastErr;
      for (let attempt = 0; attempt < 4; attempt++) {
        const conns = [];
        try {
          const v0 = (await scraper.scrape()).samples.get('kizuna_connections_open');
          for (let i = 0; i < 3; i++) {
            const c = new RawConn(ctx.srv.port);
            conns.push(c);
            await c.connect();
            await c.write(rawRequest('GET', '/healthcheck'));
            assert.equal((await c.readResponse()).status, 200);
          }
          const v1 = (await scraper.scrape()).samples.get('kizuna_connections_open');
          assert.equal(v1 - v0, 3, `three more open connections: ${v0} -> ${v1}`);
          for (const c of conns) c.destroy();
          let v2;
          const deadline = Date.now() + 3000;
          do {
            await sleep(20);
            v2 = (await scraper.scrape()).samples.get('kizuna_connections_open');
          } while (v2 !== v0 && Date.now() < deadline);
          assert.equal(v2, v0, `back to ${v0} once they close: ${v0} -> ${v1} -> ${v2}`);
          return;
        } catch (err) {
          lastErr = err;
          for (const c of conns) c.destroy();
          await sleep(200);
        }
      }
      throw lastErr;
    });
  });

  test('scrapes and other requests to the metrics port are not counted as API requests', async () => {
    await withScraper(async (scraper) => {
      const m0 = await scraper.scrape();
      for (const p of ['/other', '/metrics/extra']) {
        assert.equal((await scraper.get(p)).status, 404);
      }
      await scraper.scrape();
      const m1 = await scraper.scrape();
      const series = (m) => [...m.samples.entries()].filter(([k]) => k.startsWith(`${REQS}{`));
      assert.deepEqual(Object.fromEntries(series(m1)), Object.fromEntries(series(m0)),
        'three scrapes and two 404s on the metrics port moved kizuna_http_requests_total');
      assert.ok(!m1.samples.has(reqSeries('unmatched', '200')),
        `no API request was answered 200 without a route, yet the series exists:\n${m1.lines.filter((l) => l.startsWith(REQS)).join('\n')}`);
    });
  });

  test('the metrics port serves only GET /metrics (other paths 404); the API port does not serve /metrics', async () => {
    await withScraper(async (scraper) => {
      for (const [method, p] of [['GET', '/'], ['GET', '/other'], ['GET', '/metrics/extra'], ['GET', '/healthcheck'],
        ['GET', '/v2/account'], ['POST', '/metrics']]) {
        const res = await scraper.get(p, method);
        assert.equal(res.status, 404, `${method} ${p} on the metrics port: ${res.status} ${res.text}`);
        assert.ok(!res.text.includes('kizuna_'), `${method} ${p} on the metrics port leaks metrics`);
      }
      const unmatched0 = val(await scraper.scrape(), reqSeries('unmatched', '404'));
      const api = await request(ctx.srv, 'GET', '/metrics');
      assert.equal(api.status, 404, `GET /metrics on the API port: ${api.status} ${api.text.slice(0, 200)}`);
      assert.ok(!api.text.includes('kizuna_'), 'the API port does not expose metrics');
      assert.equal(val(await scraper.scrape(), reqSeries('unmatched', '404')), unmatched0 + 1,
        'GET /metrics on the API port is an unmatched 404');
    });
  });

  test('the metrics listener is bound to 127.0.0.1 only', async () => {
    const srv = ctx.srv;
    assert.equal(await canConnect(srv.port, '127.0.0.2'), true, 'the API (socket.address 0.0.0.0) answers on 127.0.0.2');
    assert.equal(await canConnect(METRICS_PORT, '127.0.0.1'), true);
    assert.equal(await canConnect(METRICS_PORT, '127.0.0.2'), false, 'metrics must not answer on 127.0.0.2');
    for (const addrs of Object.values(os.networkInterfaces())) {
      for (const a of addrs || []) {
        if (a.internal || a.family !== 'IPv4') continue;
        assert.equal(await canConnect(srv.port, a.address), true, `the API answers on ${a.address}`);
        assert.equal(await canConnect(METRICS_PORT, a.address), false, `metrics must not answer on ${a.address}`);
      }
    }
    const listening = listeningSockets(srv.child.pid);
    if (listening) {
      assert.deepEqual(listening, [`0.0.0.0:${srv.port}`, `127.0.0.1:${METRICS_PORT}`].sort(),
        'the process listens on the API address and 127.0.0.1:<metrics port>, nothing else');
    }
  });
});

describe('--metrics.prometheus_port 0', () => {
  test('the process listens on the API port only', async () => {
    const srv = await startServer({ args: ['--metrics.prometheus_port', '0'] });
    try {
      assert.equal((await request(srv, 'GET', '/healthcheck')).status, 200);
      const listening = listeningSockets(srv.child.pid);
      if (listening) assert.deepEqual(listening, [`127.0.0.1:${srv.port}`], 'only the API listener, no metrics listener');
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('after the server that had metrics stops, a server with port 0 leaves the old port closed', async () => {
    const mport = await freePort();
    let srv = await startServer({ args: ['--metrics.prometheus_port', String(mport)] });
    const { dataDir, dbAddress } = srv;
    try {
      assert.equal(await canConnect(mport), true, 'metrics on while configured');
      await srv.stop();
      srv = await startServer({ dataDir, dbAddress, args: ['--metrics.prometheus_port', '0'] });
      assert.equal((await request(srv, 'GET', '/healthcheck')).status, 200);
      assert.equal(await canConnect(mport), false, `nothing listens on the old metrics port ${mport}`);
    } finally {
      if (!srv.exit) await srv.stop();
      srv.cleanup();
      fs.rmSync(dataDir, { recursive: true, force: true }); // the first server's dir
    }
  });

  test('a later flag overrides an earlier one: --metrics.prometheus_port P ... --metrics.prometheus_port 0', async () => {
    const mport = await freePort();
    const srv = await startServer({ args: ['--metrics.prometheus_port', String(mport), '--metrics.prometheus_port', '0'] });
    try {
      assert.equal(await canConnect(mport), false);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});

describe('metrics port conflicts', () => {
  test('start-up fails when the metrics port is already in use by another kizuna', async () => {
    // ctx.srv holds METRICS_PORT. A second server asking for it must not
    // start (and must not share it: scrapes would hit either process).
    let srv;
    let err;
    try {
      srv = await startServer({ args: ['--metrics.prometheus_port', String(METRICS_PORT)] });
    } catch (e) {
      err = e;
    }
    if (srv) {
      const listening = listeningSockets(srv.child.pid);
      await srv.stop();
      srv.cleanup();
      assert.fail(`a second server started with the metrics port ${METRICS_PORT} that another server holds; it listens on ${JSON.stringify(listening)}`);
    }
    assert.match(err.message, /exited during startup \(code [1-9]/, err.message);
    assert.match(err.message, new RegExp(`${METRICS_PORT}`), err.message);
  });
});
