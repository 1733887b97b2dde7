/* kizuna-loadtest bots: one virtual player running its profile's steps.
 *
 * A bot is a state machine driven by libkzclient callbacks and one timer:
 * nothing blocks. It holds at most one HTTP connection (keep-alive, closed
 * after a few idle seconds) and one WebSocket, and has at most one request
 * in flight: socket requests carry a cid and the bot waits for the reply
 * with that cid (bounded by the scenario's timeout); events (match data,
 * chat messages, presence) are counted whenever they arrive.
 *
 * Every result goes into the process's lt_stats_t: per op successes with
 * their latency and errors with a reason; the first error ends the bot (a
 * failed bot). A bot that completes its steps closes its socket cleanly
 * and counts as finished; so does a bot still busy when the run ends
 * (lt_bot_stop). */
#ifndef KZ_LOADTEST_BOT_H
#define KZ_LOADTEST_BOT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "loadtest/scenario.h"
#include "loadtest/stats.h"

typedef struct lt_bot lt_bot_t;

/* What every bot of a process shares. The runner fills it before the first
 * bot starts and keeps it alive until the last bot is released. */
typedef struct lt_ctx {
    uv_loop_t *loop;
    const lt_scenario_t *scn; /* borrowed */
    lt_stats_t *stats;        /* borrowed: where results go */
    char run_id[LT_RUN_ID_LEN + 1];
    char basic_auth[300];     /* "Basic " + base64(server_key + ":") */
    char **sources;           /* source addresses (bot i uses sources[i % n]); may be empty */
    size_t nsources;
    uint32_t machine;         /* lt_machine_tag() */
    int64_t start_ms;         /* uv_now() of the run start */
    int64_t end_ms;           /* uv_now() of the run end */
    bool stopping;            /* the run is ending: bots start nothing new */
    uint32_t *wrr_rank;       /* per wrr slot: its rank among its profile's slots */
    uint32_t *profile_slots;  /* per profile: slots in the wrr period */
    bool **http_later;        /* per profile, per top-level step: an HTTP step follows */
    uint64_t rng;             /* xorshift state (random scores) */
    lt_bot_t *head;           /* bots not yet released */
    int64_t alive;            /* bots not yet released */
    int64_t running;          /* bots started and not yet ended */
    void (*on_bot_end)(struct lt_ctx *ctx); /* optional: a bot ended (finished or failed) */
    void *user;               /* for the runner */
} lt_ctx_t;

/* Fills ctx's derived fields (auth header, ranks, machine tag, rng) from
 * ctx->scn and run_id. 0, or -1 when the server key is too long. */
int lt_ctx_init(lt_ctx_t *ctx);
void lt_ctx_deinit(lt_ctx_t *ctx);

/* Starts bot `index` (global) now: counts bots_started and begins its
 * first step. The bot is owned by ctx (released when it has ended and its
 * connections are closed). */
lt_bot_t *lt_bot_start(lt_ctx_t *ctx, int64_t index);

/* The run is over: a bot still running ends as finished, closing its socket
 * with 1000. No-op for a bot that has ended. */
void lt_bot_stop(lt_bot_t *b);

/* Releases a bot at once whatever it is doing (its close handshake
 * included); used after the stop grace period. */
void lt_bot_kill(lt_bot_t *b);

/* The bot after b in ctx's list of bots not yet released (NULL at the end). */
lt_bot_t *lt_bot_next(const lt_bot_t *b);

/* The bot's {group} in a step with the given group size: its index among
 * the bots of its profile, divided by group_size (so groups of a profile
 * are filled by bots of that profile only). */
int64_t lt_bot_group(const lt_ctx_t *ctx, int64_t index, int group_size);

#endif
