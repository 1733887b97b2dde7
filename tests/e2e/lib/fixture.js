// One server per test file: started in before(), stopped (exit code 0
// required) in after(). opts.setup(ctx) runs in the same hook once the
// server is up: node 20 does not wait for one root-level async before() hook
// before starting the next, so a file must not add its own.
import { before, after } from 'node:test';
import { startServer } from './server.js';
import { uniq } from './http.js';

export function useServer(opts = {}) {
  const { setup, ...serverOpts } = opts;
  const ctx = { srv: null, client: null };
  before(async () => {
    ctx.srv = await startServer(serverOpts);
    ctx.client = ctx.srv.client();
    if (setup) await setup(ctx);
  });
  after(async () => {
    if (!ctx.srv) return;
    try {
      await ctx.srv.stop();
    } finally {
      ctx.srv.cleanup();
    }
  });
  return ctx;
}

/** Create a fresh device account through the official client. */
export async function newDeviceSession(client, { username, vars } = {}) {
  const id = uniq('device');
  const session = await client.authenticateDevice(id, true, username, vars);
  return { id, session };
}
