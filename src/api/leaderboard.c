/* Leaderboards and tournaments over REST (Nakama's api_leaderboard.go and
 * api_tournament.go: routes 60-70), the test clock, and the hand-off of the
 * reset scheduler's events to the worker pool.
 *
 * Handlers parse and check the request in Nakama's order with its
 * messages, then call store/leaderboard.h, which holds the rules. Records
 * are answered in the JSON form of LeaderboardRecord: int64 fields as
 * strings, zero values left out, times in RFC 3339. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "api/validate.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "lua/nk_leaderboard.h"
#include "lua/runtime.h"
#include "rank/board.h"
#include "store/account.h"
#include "store/leaderboard.h"

#define MSG_BAD_CURSOR "Cursor is invalid or expired."
#define MSG_BAD_OWNERS "One or more owner IDs are invalid."
#define MSG_BAD_OWNER "Invalid owner ID provided."
#define MSG_NO_RECORD "Invalid input, record score value is required."
#define MSG_BAD_METADATA "Metadata value must be JSON, if provided."
#define MSG_LB_NOT_FOUND "Leaderboard not found."
#define MSG_T_NOT_FOUND "Tournament not found."

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

static void put_int64(json_t *o, const char *key, int64_t v)
{
    if (v == 0) return;
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    json_object_set_new(o, key, json_string(buf));
}

static void put_uint(json_t *o, const char *key, int64_t v)
{
    if (v != 0) json_object_set_new(o, key, json_integer(v));
}

/* The LeaderboardRecord message (new reference). */
static json_t *record_json(const char *board_id, const kz_lb_record_t *r)
{
    json_t *o = json_object();
    kz_json_put_str(o, "leaderboard_id", board_id);
    kz_json_put_str(o, "owner_id", r->owner_id);
    if (r->username) json_object_set_new(o, "username", json_string(r->username));
    put_int64(o, "score", r->score);
    put_int64(o, "subscore", r->subscore);
    put_uint(o, "num_score", r->num_score);
    kz_json_put_str(o, "metadata", r->metadata);
    kz_json_put_time(o, "create_time", r->create_time);
    kz_json_put_time(o, "update_time", r->update_time);
    if (r->expiry > 0) kz_json_put_time(o, "expiry_time", r->expiry * 1000);
    put_int64(o, "rank", r->rank);
    put_uint(o, "max_num_score", r->max_num_score);
    return o;
}

static void put_records(json_t *o, const char *key, const char *board_id, const kz_lb_record_t *v,
                        int n)
{
    if (n == 0) return;
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, record_json(board_id, &v[i]));
    json_object_set_new(o, key, a);
}

/* LeaderboardRecordList / TournamentRecordList (new reference). */
static json_t *list_json(const char *board_id, const kz_lb_list_t *l)
{
    json_t *o = json_object();
    put_records(o, "records", board_id, l->records, l->nrecords);
    put_records(o, "owner_records", board_id, l->owner_records, l->nowner_records);
    kz_json_put_str(o, "next_cursor", l->next_cursor);
    kz_json_put_str(o, "prev_cursor", l->prev_cursor);
    put_int64(o, "rank_count", l->rank_count);
    return o;
}

/* The Tournament message (new reference). */
static json_t *tournament_json(const kz_lb_tournament_t *t)
{
    const kz_board_t *b = t->board;
    json_t *o = json_object();
    kz_json_put_str(o, "id", b->id);
    kz_json_put_str(o, "title", b->title);
    kz_json_put_str(o, "description", b->description);
    put_uint(o, "category", b->category);
    put_uint(o, "sort_order", b->descending ? 1 : 0);
    put_uint(o, "size", t->size);
    put_uint(o, "max_size", b->max_size);
    put_uint(o, "max_num_score", b->max_num_score);
    if (t->can_enter) json_object_set_new(o, "can_enter", json_true());
    put_uint(o, "end_active", t->end_active);
    put_uint(o, "next_reset", t->next_reset);
    kz_json_put_str(o, "metadata", b->metadata);
    kz_json_put_time(o, "create_time", b->create_time * 1000);
    kz_json_put_time(o, "start_time", b->start_time * 1000);
    if (b->end_time > 0) kz_json_put_time(o, "end_time", b->end_time * 1000);
    put_uint(o, "duration", b->duration);
    put_uint(o, "start_active", t->start_active);
    put_uint(o, "prev_reset", t->prev_reset);
    put_uint(o, "operator", b->op + 1);
    if (b->authoritative) json_object_set_new(o, "authoritative", json_true());
    if (b->join_required) json_object_set_new(o, "join_required", json_true());
    return o;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* Parses a whole base-10 integer as Go's strconv.ParseInt(s, 10, bits)
 * does. 0, -1 bad syntax, -2 out of [lo, hi]. */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!*p) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi) return -2;
    *out = v;
    return 0;
}

/* An integer query parameter (a wrapper type): *present false when
 * absent. Answers 400 with the gateway's parse message and returns false
 * when it does not parse in [lo, hi]. */
static bool query_int(kz_call_t *call, const char *key, int64_t lo, int64_t hi, bool unsigned_,
                      bool *present, int64_t *out)
{
    char *v = kz_query_get(call->ex->req.query, key);
    *present = v != NULL;
    if (!v) return true;
    int rc = parse_int(v, lo, hi, out);
    if (rc != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "parsing field \"%s\": strconv.Parse%s: parsing \"%.64s\": %s",
                 key, unsigned_ ? "Uint" : "Int", v,
                 rc == -1 ? "invalid syntax" : "value out of range");
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
    }
    kz_free(v);
    return rc == 0;
}

/* Path parameter i, percent-decoded (owned); NULL (answered 400) on a bad
 * escape. */
static char *path_param(kz_call_t *call, int i)
{
    char *v = kz_url_decode(call->params[i].p, call->params[i].n);
    if (!v)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid escape in the request path.");
    return v;
}

/* Canonical lower-case copy of a UUID; false when s is not one. */
static bool uuid_copy(const char *s, char out[37])
{
    size_t n = strlen(s);
    if (!kz_uuid_valid(s, n)) return false;
    memcpy(out, s, n + 1);
    kz_lower_ascii(out, n);
    return true;
}

/* The repeated owner_ids parameter, canonical (owned array of 37-byte
 * ids in *ids, pointers in *ptrs). False (answered 400) when one is not a
 * UUID. */
static bool query_owners(kz_call_t *call, char (**ids)[37], const char ***ptrs, int *n)
{
    char **raw;
    int m = kz_query_all(call->ex->req.query, "owner_ids", &raw);
    *ids = NULL;
    *ptrs = NULL;
    *n = 0;
    bool ok = m <= KZ_LB_MAX_OWNERS;
    if (m > 0 && ok) {
        *ids = kz_calloc((size_t)m, sizeof **ids);
        *ptrs = kz_calloc((size_t)m, sizeof **ptrs);
        for (int i = 0; i < m && ok; i++) {
            ok = uuid_copy(raw[i], (*ids)[i]);
            (*ptrs)[i] = (*ids)[i];
        }
        *n = m;
    }
    kz_store_strings_free(raw, m);
    if (!ok) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_OWNERS);
        kz_free(*ids);
        kz_free(*ptrs);
        *ids = NULL;
        *ptrs = NULL;
        *n = 0;
    }
    return ok;
}

/* An int64 JSON field (number, integral real or numeric string, as
 * protojson reads them). False (answered 400) otherwise. */
static bool json_int64(kz_call_t *call, json_t *obj, const char *key, int64_t *out)
{
    json_t *v = kz_json_field(obj, key);
    *out = 0;
    if (!v || json_is_null(v)) return true;
    bool ok = false;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        ok = true;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        ok = d >= -9.2233720368547758e18 && d < 9.2233720368547758e18 && d == (double)(int64_t)d;
        if (ok) *out = (int64_t)d;
    } else if (json_is_string(v)) {
        ok = parse_int(json_string_value(v), INT64_MIN, INT64_MAX, out) == 0;
    }
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "Invalid value for field '%s': expected a 64-bit integer.", key);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
    }
    return ok;
}

/* The Operator enum field (number or name): *op is KZ_LB_OP_* or -1 for
 * NO_OVERRIDE. False (answered 400) otherwise. */
static bool json_operator(kz_call_t *call, json_t *obj, int *op)
{
    static const char *const names[] = {"NO_OVERRIDE", "BEST", "SET", "INCREMENT", "DECREMENT"};
    json_t *v = kz_json_field(obj, "operator");
    *op = -1;
    if (!v || json_is_null(v)) return true;
    int e = -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 4)
        e = (int)json_integer_value(v);
    else if (json_is_string(v))
        for (int i = 0; i < 5; i++)
            if (strcmp(json_string_value(v), names[i]) == 0) e = i;
    if (e < 0) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid value for field 'operator': expected an Operator.");
        return false;
    }
    *op = e - 1;
    return true;
}

/* True when s is one JSON text that is an object (Nakama: json.Valid and
 * a leading '{'). */
static bool json_object_textual(const char *s)
{
    json_error_t jerr;
    json_t *v = json_loads(s, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
    bool ok = json_is_object(v);
    json_decref(v);
    return ok;
}

/* Reads the write body (the `record` message): false when answered. */
static bool write_body(kz_call_t *call, json_t **body, kz_lb_write_t *w)
{
    *body = NULL;
    size_t i = 0;
    const kz_http_req_t *req = &call->ex->req;
    while (i < req->body_len && (req->body[i] == ' ' || req->body[i] == '\n' ||
                                 req->body[i] == '\r' || req->body[i] == '\t'))
        i++;
    if (i == req->body_len) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_NO_RECORD);
        return false;
    }
    *body = kz_body_object(call);
    if (!*body) return false;
    if (!json_int64(call, *body, "score", &w->score) ||
        !json_int64(call, *body, "subscore", &w->subscore) ||
        kz_json_string(call, *body, "metadata", &w->metadata) != 0 ||
        !json_operator(call, *body, &w->op))
        return false;
    if (w->metadata && *w->metadata && !json_object_textual(w->metadata)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_METADATA);
        return false;
    }
    w->owner_id = call->session.uid;
    w->username = call->session.usn;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Leaderboards                                                             */

/* GET /v2/leaderboard/{leaderboard_id} and GET /v2/tournament/{id}. */
static void list_records(kz_call_t *call, bool tournament)
{
    char *id = path_param(call, 0);
    char(*ids)[37] = NULL;
    const char **owners = NULL;
    int nowners = 0;
    char *cursor = NULL;
    kz_lb_list_t list = {0};
    if (!id) return;
    bool has_limit, has_expiry;
    int64_t limit = 0, expiry = 0;
    /* Nakama checks the owners first on tournaments, the limit first on
     * leaderboards. */
    if (tournament && !query_owners(call, &ids, &owners, &nowners)) goto out;
    if (!query_int(call, "limit", INT32_MIN, INT32_MAX, false, &has_limit, &limit)) goto out;
    cursor = kz_query_get(call->ex->req.query, "cursor");
    bool has_cursor = cursor && *cursor;
    if (has_limit) {
        int max = tournament ? 100 : 1000;
        if (limit < 1 || limit > max) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                           tournament ? "Invalid limit - limit must be between 1 and 100."
                                      : "Invalid limit - limit must be between 1 and 1000.");
            goto out;
        }
    }
    if (!tournament && !query_owners(call, &ids, &owners, &nowners)) goto out;
    if (!has_limit) {
        if (tournament)
            limit = nowners == 0 || !has_cursor ? 10 : 0;
        else
            limit = nowners == 0 || has_cursor ? 1 : 0;
    }
    if (!query_int(call, "expiry", INT64_MIN, INT64_MAX, false, &has_expiry, &expiry)) goto out;
    int rc = kz_lb_records_list(call->db, id, tournament, owners, nowners, (int)limit, cursor,
                                expiry, kz_now_ms(), &list);
    if (rc == KZ_DB_OK)
        kz_reply_json(call->ex, list_json(id, &list));
    else if (rc == KZ_LB_NOT_FOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND,
                       tournament ? MSG_T_NOT_FOUND : MSG_LB_NOT_FOUND);
    else if (rc == KZ_LB_ENDED)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "Tournament has ended.");
    else if (rc == KZ_LB_BAD_CURSOR)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_CURSOR);
    else
        kz_reply_store_error(call, rc);
out:
    kz_lb_list_free(&list);
    kz_free(cursor);
    kz_free(owners);
    kz_free(ids);
    kz_free(id);
}

void kz_h_leaderboard_records_list(kz_call_t *call)
{
    list_records(call, false);
}
void kz_h_tournament_records_list(kz_call_t *call)
{
    list_records(call, true);
}

/* POST /v2/leaderboard/{id}, PUT|POST /v2/tournament/{id}. */
static void write_record(kz_call_t *call, bool tournament)
{
    char *id = path_param(call, 0);
    if (!id) return;
    json_t *body;
    kz_lb_write_t w = {0};
    kz_lb_record_t r = {0};
    if (!write_body(call, &body, &w)) goto out;
    int rc = kz_lb_record_write(call->db, id, tournament, true, &w, kz_now_ms(), &r);
    switch (rc) {
    case KZ_DB_OK:
        kz_reply_json(call->ex, record_json(id, &r));
        break;
    case KZ_LB_NOT_FOUND:
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND,
                       tournament ? MSG_T_NOT_FOUND : MSG_LB_NOT_FOUND);
        break;
    case KZ_LB_ENDED:
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "Tournament not found or has ended.");
        break;
    case KZ_LB_AUTHORITATIVE:
        kz_reply_error(call->ex, KZ_GRPC_PERMISSION_DENIED,
                       tournament ? "Tournament only allows authoritative score submissions."
                                  : "Leaderboard only allows authoritative score submissions.");
        break;
    case KZ_LB_FULL:
        kz_reply_error(call->ex, KZ_GRPC_FAILED_PRECONDITION, "Tournament has reached max size.");
        break;
    case KZ_LB_MAX_SCORES:
        kz_reply_error(call->ex, KZ_GRPC_FAILED_PRECONDITION,
                       "Reached allowed max number of score attempts.");
        break;
    case KZ_LB_JOIN_REQUIRED:
        kz_reply_error(call->ex, KZ_GRPC_FAILED_PRECONDITION,
                       "Must join tournament before attempting to write value.");
        break;
    case KZ_LB_NOT_ACTIVE:
        kz_reply_error(call->ex, KZ_GRPC_FAILED_PRECONDITION,
                       "Tournament is not active and cannot accept new scores.");
        break;
    default:
        kz_reply_store_error(call, rc);
    }
out:
    kz_lb_record_clear(&r);
    json_decref(body);
    kz_free(id);
}

void kz_h_leaderboard_record_write(kz_call_t *call)
{
    write_record(call, false);
}
void kz_h_tournament_record_write(kz_call_t *call)
{
    write_record(call, true);
}

/* DELETE /v2/leaderboard/{id}, DELETE /v2/tournament/{id}. */
static void delete_record(kz_call_t *call, bool tournament)
{
    char *id = path_param(call, 0);
    if (!id) return;
    int rc = kz_lb_record_delete(call->db, id, tournament, true, call->session.uid, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_LB_NOT_FOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND,
                       tournament ? MSG_T_NOT_FOUND : MSG_LB_NOT_FOUND);
    else if (rc == KZ_LB_AUTHORITATIVE)
        kz_reply_error(call->ex, KZ_GRPC_PERMISSION_DENIED,
                       tournament ? "Tournament only allows authoritative score deletions."
                                  : "Leaderboard only allows authoritative score deletions.");
    else
        kz_reply_store_error(call, rc);
    kz_free(id);
}

void kz_h_leaderboard_record_delete(kz_call_t *call)
{
    delete_record(call, false);
}
void kz_h_tournament_record_delete(kz_call_t *call)
{
    delete_record(call, true);
}

/* GET /v2/leaderboard/{id}/owner/{owner_id}, GET /v2/tournament/{id}/owner/{owner_id}. */
static void around_owner(kz_call_t *call, bool tournament)
{
    char *id = path_param(call, 0);
    char *owner = id ? path_param(call, 1) : NULL;
    char *cursor = NULL;
    kz_lb_list_t list = {0};
    char oid[37];
    bool has_limit, has_expiry;
    int64_t limit = 0, expiry = 0;
    if (!owner) goto out;
    if (!query_int(call, "limit", 0, UINT32_MAX, true, &has_limit, &limit)) goto out;
    if (!has_limit) {
        limit = tournament ? 100 : 1;
    } else if (limit < 1 || limit > 100) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid limit - limit must be between 1 and 100.");
        goto out;
    }
    if (!uuid_copy(owner, oid)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_OWNER);
        goto out;
    }
    if (!query_int(call, "expiry", INT64_MIN, INT64_MAX, false, &has_expiry, &expiry)) goto out;
    cursor = kz_query_get(call->ex->req.query, "cursor");
    int rc = kz_lb_records_haystack(call->db, id, tournament, oid, (int)limit, cursor, expiry,
                                    kz_now_ms(), &list);
    if (rc == KZ_DB_OK)
        kz_reply_json(call->ex, list_json(id, &list));
    else if (rc == KZ_LB_NOT_FOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND,
                       tournament ? MSG_T_NOT_FOUND : MSG_LB_NOT_FOUND);
    else if (rc == KZ_LB_BAD_CURSOR)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_CURSOR);
    else
        kz_reply_store_error(call, rc);
out:
    kz_lb_list_free(&list);
    kz_free(cursor);
    kz_free(owner);
    kz_free(id);
}

void kz_h_leaderboard_records_around_owner(kz_call_t *call)
{
    around_owner(call, false);
}
void kz_h_tournament_records_around_owner(kz_call_t *call)
{
    around_owner(call, true);
}

/* ------------------------------------------------------------------------ */
/* Tournaments                                                              */

/* GET /v2/tournament: category, time filters, limit, cursor. */
void kz_h_tournaments_list(kz_call_t *call)
{
    bool has;
    int64_t cat_start = 0, cat_end = 127, start_time = -1, end_time = -1, limit = 100, v;
    char *cursor = NULL, *next = NULL;
    kz_lb_tournament_t *ts = NULL;
    int n = 0;
    if (!query_int(call, "category_start", 0, UINT32_MAX, true, &has, &v)) return;
    if (has) cat_start = v;
    if (!query_int(call, "category_end", 0, UINT32_MAX, true, &has, &v)) return;
    if (has) {
        cat_end = v;
        if (cat_end >= 128) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                           "Tournament category end must be >=0 and <128.");
            return;
        }
        if (cat_end < cat_start) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                           "Tournament category end must be greater than category start.");
            return;
        }
    }
    if (!query_int(call, "start_time", 0, UINT32_MAX, true, &has, &v)) return;
    if (has) start_time = v;
    if (!query_int(call, "end_time", 0, UINT32_MAX, true, &has, &v)) return;
    if (has) {
        end_time = v;
        if (end_time != 0 && end_time < start_time) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                           "Tournament end time must be greater than start time.");
            return;
        }
    }
    if (!query_int(call, "limit", INT32_MIN, INT32_MAX, false, &has, &v)) return;
    if (has) {
        limit = v;
        if (limit < 1 || limit > 100) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Limit must be between 1 and 100.");
            return;
        }
    }
    cursor = kz_query_get(call->ex->req.query, "cursor");
    int rc = kz_lb_tournaments_list(call->db, (int)cat_start, (int)cat_end, start_time, end_time,
                                    (int)limit, cursor, kz_now_ms(), &ts, &n, &next);
    if (rc == KZ_DB_OK) {
        json_t *o = json_object();
        if (n > 0) {
            json_t *a = json_array();
            for (int i = 0; i < n; i++)
                json_array_append_new(a, tournament_json(&ts[i]));
            json_object_set_new(o, "tournaments", a);
        }
        kz_json_put_str(o, "cursor", next);
        kz_reply_json(call->ex, o);
    } else if (rc == KZ_LB_BAD_CURSOR) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_CURSOR);
    } else {
        kz_reply_store_error(call, rc);
    }
    kz_lb_tournaments_free(ts, n);
    kz_free(next);
    kz_free(cursor);
}

/* POST /v2/tournament/{id}/join. */
void kz_h_tournament_join(kz_call_t *call)
{
    char *id = path_param(call, 0);
    if (!id) return;
    int rc = kz_lb_tournament_join(call->db, id, call->session.uid, call->session.usn, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_LB_NOT_FOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, MSG_T_NOT_FOUND);
    else if (rc == KZ_LB_FULL)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Tournament cannot be joined as it has reached its max size.");
    else if (rc == KZ_LB_NOT_ACTIVE)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Tournament is not active and cannot accept new joins.");
    else
        kz_reply_store_error(call, rc);
    kz_free(id);
}

/* ------------------------------------------------------------------------ */
/* Test clock                                                               */

/* PUT /v2/kizuna/test/clock?offset_ms=N (http_key; only with
 * test.clock_control): sets the offset every kz_now_* reading carries, and
 * lets the scheduler see the new time at once. */
void kz_h_test_clock(kz_call_t *call)
{
    if (!call->app->cfg->test.clock_control) {
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "Not Found");
        return;
    }
    if (!call->http_key) {
        kz_reply_error(call->ex, KZ_GRPC_PERMISSION_DENIED,
                       "The test clock needs the runtime http_key.");
        return;
    }
    bool has;
    int64_t off = 0;
    if (!query_int(call, "offset_ms", INT64_MIN / 4, INT64_MAX / 4, false, &has, &off)) return;
    if (!has) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "offset_ms is required.");
        return;
    }
    kz_clock_set_offset_ms(off);
    kz_boards_scheduler_wake();
    kz_log_info("test clock: offset %lld ms, now %lld ms", (long long)off, (long long)kz_now_ms());
    json_t *o = json_object();
    json_object_set_new(o, "offset_ms", json_integer(off));
    json_object_set_new(o, "now_ms", json_integer(kz_now_ms()));
    kz_reply_json(call->ex, o);
}

/* ------------------------------------------------------------------------ */
/* Scheduler events -> worker pool                                          */

/* One scheduler event on its way to a worker. */
typedef struct board_job {
    kz_job_t job;        /* first member */
    kz_board_event_t ev; /* ev.board holds a reference */
} board_job_t;

/* The arguments of a scheduler event's Lua callback. */
typedef struct event_args {
    kz_db_t *db;
    const kz_board_event_t *ev;
} event_args_t;

static int push_event_args(lua_State *L, void *arg)
{
    event_args_t *a = arg;
    return kz_nk_board_event_args(L, a->db, a->ev);
}

/* Runs the Lua callback registered for ev, if any, on worker w. */
static void run_event(kz_worker_t *w, const kz_board_event_t *ev)
{
    kz_log_debug("leaderboard %s: %s at %lld", ev->board->id, kz_nk_board_event_mode(ev), (long long)ev->at);
    kz_lua_ctx_t ctx = {.mode = kz_nk_board_event_mode(ev)};
    event_args_t a = {w->db, ev};
    kz_lua_error_t err;
    if (kz_lua_callback(&w->lua, w->db, &ctx, kz_nk_board_event_reg(ev), push_event_args, NULL, &a, &err) == KZ_LUA_ERROR)
        kz_log_warn("leaderboard %s: the %s callback raised: %s", ev->board->id, kz_nk_board_event_mode(ev),
                    err.message);
}

static void board_job_run(kz_job_t *job, void *worker_ctx)
{
    board_job_t *bj = (board_job_t *)job;
    kz_worker_t *w = worker_ctx;
    kz_worker_set_current(w);
    run_event(w, &bj->ev);
    kz_worker_set_current(NULL);
}

static void board_job_done(kz_job_t *job)
{
    board_job_t *bj = (board_job_t *)job;
    kz_board_release(bj->ev.board);
    kz_free(bj);
}

/* kz_board_event_fn: hands the event to a worker (the scheduler thread
 * never runs Lua or touches the store). */
static void on_board_event(const kz_board_event_t *ev, void *arg)
{
    kz_app_t *app = arg;
    board_job_t *bj = kz_calloc(1, sizeof *bj);
    bj->job.run = board_job_run;
    bj->job.done = board_job_done;
    bj->ev = *ev;
    kz_board_retain(bj->ev.board);
    if (!kz_pool_submit(app->pool, &bj->job)) {
        kz_log_warn("leaderboard %s: the worker pool is full, a %s callback is dropped",
                    ev->board->id,
                    ev->kind == KZ_BOARD_TOURNAMENT_END ? "tournament end" : "reset");
        board_job_done(&bj->job);
    }
}

int kz_lb_start(kz_app_t *app)
{
    return kz_boards_scheduler_start(on_board_event, app);
}

void kz_lb_stop(void)
{
    kz_boards_scheduler_stop();
}
