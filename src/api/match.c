/* GET /v2/match (ListMatches): the matches running on this node. The
 * authoritative ones (realtime/authoritative.c) filtered by label, size and
 * a query over the JSON label, then - when authoritative is not true and
 * neither label nor query is given - the relayed ones (realtime/match.c)
 * filtered by size.
 *
 * GET /v2/matchmaker/stats (GetMatchmakerStats): the matchmaker's pool
 * (realtime/matchmaker.c). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "realtime/authoritative.h"
#include "realtime/match.h"
#include "realtime/matchmaker.h"

/* Optional Int32Value query parameter: false (answered 400) when present
 * and not an integer. */
static bool query_int(kz_call_t *call, const char *key, bool *present, int *out)
{
    char *v = kz_query_get(call->ex->req.query, key);
    *present = v != NULL;
    bool ok = true;
    if (v) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        ok = *v && !*end && !errno && n >= INT32_MIN && n <= INT32_MAX;
        for (const char *p = v; ok && *p; p++)
            ok = (*p >= '0' && *p <= '9') || (p == v && (*p == '-' || *p == '+'));
        if (ok) *out = (int)n;
    }
    if (!ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "Invalid value for '%s': expected an integer.", key);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
    }
    kz_free(v);
    return ok;
}

void kz_h_matches_list(kz_call_t *call)
{
    kz_slice_t q = call->ex->req.query;
    kz_am_filter_t f = {.limit = 10, .authoritative = -1, .min_size = -1, .max_size = -1};
    bool has_limit, has_min, has_max;
    int limit = 10, min = 0, max = 0;
    if (!query_int(call, "limit", &has_limit, &limit) || !query_int(call, "min_size", &has_min, &min) ||
        !query_int(call, "max_size", &has_max, &max))
        return;
    char *auth = kz_query_get(q, "authoritative");
    if (auth) {
        bool b = false;
        if (kz_query_bool(q, "authoritative", false, &b) != 0) {
            kz_free(auth);
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid value for 'authoritative': expected a boolean.");
            return;
        }
        f.authoritative = b ? 1 : 0;
        kz_free(auth);
    }
    char *label = kz_query_get(q, "label");
    char *query = kz_query_get(q, "query");
    const char *bad = NULL;
    if (has_limit && (limit < 1 || limit > 100))
        bad = "Invalid limit - limit must be between 1 and 100.";
    else if (label && f.authoritative == 0)
        bad = "Label filtering is not supported for non-authoritative matches.";
    else if (query && f.authoritative == 0)
        bad = "Query filtering is not supported for non-authoritative matches.";
    else if (has_min && min < 0)
        bad = "Minimum size must be 0 or above.";
    else if (has_max && max < 0)
        bad = "Maximum size must be 0 or above.";
    else if (has_min && has_max && min > max)
        bad = "Maximum size must be greater than or equal to minimum size when both are specified.";
    if (bad) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
        goto out;
    }
    if (has_limit) f.limit = limit;
    if (has_min) f.min_size = min;
    if (has_max) f.max_size = max;
    f.label = label;
    f.query = query;
    char err[256];
    json_t *list = kz_match_list(&f, err, sizeof err);
    if (!list) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, err);
        goto out;
    }
    /* Zero scalars are left out of REST output (the wrappers stay). */
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *m = json_array_get(list, i);
        if (json_integer_value(json_object_get(m, "size")) == 0) json_object_del(m, "size");
    }
    json_t *o = json_object();
    if (json_array_size(list))
        json_object_set_new(o, "matches", list);
    else
        json_decref(list);
    kz_reply_json(call->ex, o);
out:
    kz_free(label);
    kz_free(query);
}

void kz_h_matchmaker_stats(kz_call_t *call)
{
    kz_mm_pool_t *pool = kz_mm_server_pool();
    kz_mm_pool_stats_t *st = kz_calloc(1, sizeof *st);
    if (pool) kz_mm_pool_stats(pool, st);
    json_t *o = json_object();
    char ts[32];
    if (st->tickets) json_object_set_new(o, "ticket_count", json_integer(st->tickets));
    if (st->oldest_create_ms) {
        kz_rfc3339(st->oldest_create_ms, ts);
        json_object_set_new(o, "oldest_ticket_create_time", json_string(ts));
    }
    if (st->ncompletions) {
        json_t *a = json_array();
        for (int i = 0; i < st->ncompletions; i++) {
            json_t *c = json_object();
            kz_rfc3339(st->completions[i].create_ms, ts);
            json_object_set_new(c, "create_time", json_string(ts));
            kz_rfc3339(st->completions[i].complete_ms, ts);
            json_object_set_new(c, "complete_time", json_string(ts));
            json_array_append_new(a, c);
        }
        json_object_set_new(o, "completions", a);
    }
    kz_free(st);
    kz_reply_json(call->ex, o);
}
