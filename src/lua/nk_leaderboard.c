/* nk leaderboard and tournament functions: definitions (create, delete,
 * list, get), records (write, list, around owner, delete), tournament
 * joins and attempts. The runtime acts as the server: writes to
 * authoritative boards are allowed. The rules are store/leaderboard.h's,
 * the same the REST API runs.
 *
 * Tables are Nakama's Lua shapes. A record: leaderboard_id, owner_id,
 * username, score, subscore, num_score, max_num_score, metadata (table),
 * create_time, update_time, expiry_time (unix seconds; nil when the board
 * has no reset), rank. A leaderboard: id, authoritative, operator ("best",
 * "set", "increment", "decrement"), sort_order ("0" asc, "1" desc, a
 * string as in Nakama), metadata, create_time, next_reset, prev_reset. A
 * tournament adds title, description, category, size, max_size,
 * max_num_score, duration, start_active, end_active, can_enter,
 * start_time, end_time, join_required.
 *
 * Errors carry gRPC codes: InvalidArgument (3) for bad arguments and
 * cursors, NotFound (5) for unknown boards, FailedPrecondition (9) for
 * tournament rules, Internal (13) for store failures. */
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "lua/nk_leaderboard.h"
#include "lua/nk_store.h"
#include "store/leaderboard.h"

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

static const char *op_name(int op)
{
    switch (op) {
    case KZ_LB_OP_SET:
        return "set";
    case KZ_LB_OP_INCR:
        return "increment";
    case KZ_LB_OP_DECR:
        return "decrement";
    default:
        return "best";
    }
}

/* The record table of r on board_id. [-0, +1, m] */
static void push_record(lua_State *L, const char *board_id, const kz_lb_record_t *r)
{
    lua_createtable(L, 0, 12);
    kz_nk_set_str0(L, "leaderboard_id", board_id);
    kz_nk_set_str0(L, "owner_id", r->owner_id);
    if (r->username) kz_nk_set_str0(L, "username", r->username);
    kz_nk_set_num(L, "score", (double)r->score);
    kz_nk_set_num(L, "subscore", (double)r->subscore);
    kz_nk_set_num(L, "num_score", (double)r->num_score);
    kz_nk_set_num(L, "max_num_score", (double)r->max_num_score);
    kz_nk_push_json_text(L, r->metadata);
    lua_setfield(L, -2, "metadata");
    kz_nk_set_num(L, "create_time", (double)(r->create_time / 1000));
    kz_nk_set_num(L, "update_time", (double)(r->update_time / 1000));
    if (r->expiry > 0) kz_nk_set_num(L, "expiry_time", (double)r->expiry);
    kz_nk_set_num(L, "rank", (double)r->rank);
}

/* An array table of records. [-0, +1, m] */
static void push_records(lua_State *L, const char *board_id, const kz_lb_record_t *v, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_record(L, board_id, &v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_cursor(lua_State *L, const char *c)
{
    if (c && *c)
        lua_pushstring(L, c);
    else
        lua_pushnil(L);
}

/* The fields a leaderboard and a tournament share, on the table on top. */
static void set_board_fields(lua_State *L, const kz_board_t *b)
{
    kz_nk_set_str0(L, "id", b->id);
    kz_nk_set_bool(L, "authoritative", b->authoritative);
    kz_nk_set_str0(L, "operator", op_name(b->op));
    kz_nk_set_str0(L, "sort_order", b->descending ? "1" : "0");
    kz_nk_push_json_text(L, b->metadata);
    lua_setfield(L, -2, "metadata");
    kz_nk_set_num(L, "create_time", (double)b->create_time);
}

/* The leaderboard table of b at now. [-0, +1, m] */
static void push_leaderboard(lua_State *L, const kz_board_t *b, int64_t now)
{
    lua_createtable(L, 0, 8);
    set_board_fields(L, b);
    int64_t next, prev = kz_board_prev_reset(b, now);
    kz_board_period(b, now, NULL, NULL, &next);
    if (next) kz_nk_set_num(L, "next_reset", (double)next);
    if (prev) kz_nk_set_num(L, "prev_reset", (double)prev);
}

/* The tournament table of t. [-0, +1, m] */
static void push_tournament(lua_State *L, const kz_lb_tournament_t *t)
{
    const kz_board_t *b = t->board;
    lua_createtable(L, 0, 22);
    set_board_fields(L, b);
    kz_nk_set_str0(L, "title", b->title);
    kz_nk_set_str0(L, "description", b->description);
    kz_nk_set_num(L, "category", b->category);
    kz_nk_set_num(L, "size", (double)t->size);
    kz_nk_set_num(L, "max_size", (double)b->max_size);
    kz_nk_set_num(L, "max_num_score", (double)b->max_num_score);
    kz_nk_set_num(L, "duration", (double)b->duration);
    kz_nk_set_num(L, "start_active", (double)t->start_active);
    kz_nk_set_num(L, "end_active", (double)t->end_active);
    kz_nk_set_bool(L, "can_enter", t->can_enter);
    if (t->next_reset) kz_nk_set_num(L, "next_reset", (double)t->next_reset);
    if (t->prev_reset) kz_nk_set_num(L, "prev_reset", (double)t->prev_reset);
    kz_nk_set_num(L, "start_time", (double)b->start_time);
    if (b->end_time) kz_nk_set_num(L, "end_time", (double)b->end_time);
    kz_nk_set_bool(L, "join_required", b->join_required);
}

/* ------------------------------------------------------------------------ */
/* Guards                                                                   */

static void free_list(void *p, int n)
{
    (void)n;
    kz_lb_list_free(p);
    kz_free(p);
}

static void free_record(void *p, int n)
{
    (void)n;
    kz_lb_record_clear(p);
    kz_free(p);
}

static void free_tournaments(void *p, int n)
{
    kz_lb_tournaments_free(p, n);
}

static void free_boards(void *p, int n)
{
    kz_boards_free(p, n);
}

static void free_boards_one(void *p, int n)
{
    (void)n;
    kz_board_release(p);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* Raises the Lua error for a store outcome other than KZ_DB_OK; what
 * names the call ("error writing leaderboard record"). */
static int raise_outcome(lua_State *L, int rc, const char *what, bool tournament)
{
    switch (rc) {
    case KZ_LB_NOT_FOUND:
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, "%s: %s not found", what,
                            tournament ? "tournament" : "leaderboard");
    case KZ_LB_BAD_CURSOR:
        return kz_lua_raise(L, KZ_NK_INVALID, "%s: cursor is invalid or expired", what);
    case KZ_LB_NOT_ACTIVE:
        return kz_lua_raise(L, KZ_NK_PRECONDITION, "%s: tournament is not active", what);
    case KZ_LB_ENDED:
        return kz_lua_raise(L, KZ_NK_PRECONDITION, "%s: tournament has ended", what);
    case KZ_LB_FULL:
        return kz_lua_raise(L, KZ_NK_PRECONDITION, "%s: tournament has reached max size", what);
    case KZ_LB_MAX_SCORES:
        return kz_lua_raise(L, KZ_NK_PRECONDITION,
                            "%s: reached allowed max number of score attempts", what);
    case KZ_LB_JOIN_REQUIRED:
        return kz_lua_raise(L, KZ_NK_PRECONDITION,
                            "%s: must join tournament before attempting to write value", what);
    case KZ_LB_AUTHORITATIVE:
        return kz_lua_raise(L, KZ_NK_DENIED, "%s: authoritative board", what);
    default:
        return kz_lua_raise_store(L, rc);
    }
}

/* ------------------------------------------------------------------------ */
/* Arguments                                                                */

/* A required, non-empty board id. */
static const char *board_id_arg(lua_State *L, int idx, bool tournament)
{
    if (lua_type(L, idx) != LUA_TSTRING || lua_objlen(L, idx) == 0)
        kz_lua_raise(L, KZ_NK_INVALID,
                     tournament ? "expects a tournament ID string"
                                : "expects a leaderboard ID string");
    return lua_tostring(L, idx);
}

/* Sort order "asc"/"desc" (and the long forms): true = descending. */
static bool sort_arg(lua_State *L, int idx)
{
    const char *s = kz_nk_optstr(L, idx, "sort order");
    if (!s || strcmp(s, "desc") == 0 || strcmp(s, "descending") == 0) return true;
    if (strcmp(s, "asc") == 0 || strcmp(s, "ascending") == 0) return false;
    kz_lua_raise(L, KZ_NK_INVALID, "expects sort order to be 'asc' or 'desc'");
    return true;
}

/* Operator name -> KZ_LB_OP_*; NULL or "" gives def. */
static int op_arg(lua_State *L, int idx, int def)
{
    const char *s = kz_nk_optstr(L, idx, "operator");
    if (!s || !*s) return def;
    if (strcmp(s, "best") == 0) return KZ_LB_OP_BEST;
    if (strcmp(s, "set") == 0) return KZ_LB_OP_SET;
    if (strcmp(s, "incr") == 0 || strcmp(s, "increment") == 0) return KZ_LB_OP_INCR;
    if (strcmp(s, "decr") == 0 || strcmp(s, "decrement") == 0) return KZ_LB_OP_DECR;
    kz_lua_raise(L, KZ_NK_INVALID, "expects operator to be 'best', 'set', 'decr' or 'incr'");
    return def;
}

/* An integer score argument (JSON-safe range). */
static int64_t score_arg(lua_State *L, int idx, const char *what)
{
    return kz_nk_optint(L, idx, what, 0, -9007199254740991LL, 9007199254740991LL);
}

/* ------------------------------------------------------------------------ */
/* Definitions                                                              */

static int create(lua_State *L, const kz_lb_def_t *d)
{
    kz_db_t *db = kz_lua_db(L);
    char err[200] = "";
    int rc = kz_lb_create(db, d, kz_now_ms(), NULL, err, sizeof err);
    if (rc == KZ_LB_INVALID || rc == KZ_LB_IN_USE) return kz_lua_raise(L, KZ_NK_INVALID, "%s", err);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* nk.leaderboard_create(id, authoritative=false, sort="desc", operator="best",
 * reset_schedule="", metadata=nil, enable_ranks=false) [-0, +0, v] */
static int nk_leaderboard_create(lua_State *L)
{
    kz_lb_def_t d = {.id = board_id_arg(L, 1, false)};
    d.authoritative = kz_nk_optbool(L, 2, "authoritative", false);
    d.descending = sort_arg(L, 3);
    d.op = op_arg(L, 4, KZ_LB_OP_BEST);
    d.reset_schedule = kz_nk_optstr(L, 5, "reset schedule");
    d.metadata = kz_nk_json_object_arg(L, 6, "metadata");
    d.enable_ranks = kz_nk_optbool(L, 7, "enable ranks", false);
    return create(L, &d);
}

/* nk.tournament_create(id, authoritative=true, sort="desc", operator="best",
 * duration, reset_schedule="", metadata=nil, title="", description="",
 * category=0, start_time=0, end_time=0, max_size=0, max_num_score=0,
 * join_required=false, enable_ranks=false) [-0, +0, v] */
static int nk_tournament_create(lua_State *L)
{
    kz_lb_def_t d = {.id = board_id_arg(L, 1, true), .tournament = true};
    d.authoritative = kz_nk_optbool(L, 2, "authoritative", true);
    d.descending = sort_arg(L, 3);
    d.op = op_arg(L, 4, KZ_LB_OP_BEST);
    d.duration = kz_nk_optint(L, 5, "duration", 0, INT32_MIN, INT32_MAX);
    d.reset_schedule = kz_nk_optstr(L, 6, "reset schedule");
    d.title = kz_nk_optstr(L, 8, "title");
    d.description = kz_nk_optstr(L, 9, "description");
    d.category = (int)kz_nk_optint(L, 10, "category", 0, INT32_MIN, INT32_MAX);
    d.start_time = kz_nk_optint(L, 11, "start time", 0, INT32_MIN, 4102444800LL);
    d.end_time = kz_nk_optint(L, 12, "end time", 0, INT32_MIN, 4102444800LL);
    d.max_size = kz_nk_optint(L, 13, "max size", 0, INT32_MIN, INT32_MAX);
    d.max_num_score = kz_nk_optint(L, 14, "max num score", 0, INT32_MIN, INT32_MAX);
    d.join_required = kz_nk_optbool(L, 15, "join required", false);
    d.enable_ranks = kz_nk_optbool(L, 16, "enable ranks", false);
    d.metadata = kz_nk_json_object_arg(L, 7, "metadata"); /* last: it pushes */
    return create(L, &d);
}

static int delete_board(lua_State *L, bool tournament)
{
    const char *id = board_id_arg(L, 1, tournament);
    int rc = kz_lb_delete(kz_lua_db(L), id, tournament);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* nk.leaderboard_delete(id) [-0, +0, v] */
static int nk_leaderboard_delete(lua_State *L)
{
    return delete_board(L, false);
}
/* nk.tournament_delete(id) [-0, +0, v] */
static int nk_tournament_delete(lua_State *L)
{
    return delete_board(L, true);
}

static int ranks_disable(lua_State *L, bool tournament)
{
    const char *id = board_id_arg(L, 1, tournament);
    int rc = kz_lb_ranks_disable(kz_lua_db(L), id, tournament);
    if (rc != KZ_DB_OK) return raise_outcome(L, rc, "error disabling ranks", tournament);
    return 0;
}

/* nk.leaderboard_ranks_disable(id) [-0, +0, v] */
static int nk_leaderboard_ranks_disable(lua_State *L)
{
    return ranks_disable(L, false);
}
/* nk.tournament_ranks_disable(id) [-0, +0, v] */
static int nk_tournament_ranks_disable(lua_State *L)
{
    return ranks_disable(L, true);
}

/* nk.leaderboard_list(limit=10, cursor="") -> leaderboards, cursor [-0, +2, v] */
static int nk_leaderboard_list(lua_State *L)
{
    int limit = (int)kz_nk_optint(L, 1, "limit", 10, 1, 100);
    const char *cursor = kz_nk_optstr(L, 2, "cursor");
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_board_t **v = NULL;
    int n = 0;
    char *next = NULL;
    int rc = kz_lb_leaderboards_list(limit, cursor, &v, &n, &next);
    if (rc != KZ_DB_OK)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects cursor to be valid when provided");
    g->p = v;
    g->n = n;
    g->fn = free_boards;
    kz_nk_guard_t *gc = kz_nk_guard(L);
    gc->p = next;
    gc->fn = kz_nk_free_kz;
    int64_t now = kz_now_sec();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_leaderboard(L, v[i], now);
        lua_rawseti(L, -2, i + 1);
    }
    push_cursor(L, next);
    return 2;
}

/* nk.leaderboards_get_id(ids) -> leaderboards (unknown ids and tournaments
 * left out) [-0, +1, v] */
static int nk_leaderboards_get_id(lua_State *L)
{
    int n;
    char **ids = kz_nk_strings_arg(L, 1, "leaderboard ids", false, &n);
    int64_t now = kz_now_sec();
    lua_createtable(L, n, 0);
    int k = 0;
    for (int i = 0; i < n; i++) {
        kz_board_t *b = kz_boards_get(ids[i]);
        if (b && !b->tournament) {
            kz_nk_guard_t *g = kz_nk_guard(L);
            g->p = b;
            g->n = 1;
            g->fn = free_boards_one;
            push_leaderboard(L, b, now);
            lua_rawseti(L, -3, ++k);
            kz_nk_guard_done(g);
            lua_pop(L, 1);
        } else {
            kz_board_release(b);
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */

/* record_write(id, owner, username?, score=0, subscore=0, metadata?, operator?) */
static int record_write(lua_State *L, bool tournament)
{
    const char *id = board_id_arg(L, 1, tournament);
    char owner[37];
    kz_nk_uuid(L, 2, "owner ID", owner);
    kz_lb_write_t w = {.owner_id = owner};
    w.username = kz_nk_optstr(L, 3, "username");
    w.score = score_arg(L, 4, "score");
    w.subscore = score_arg(L, 5, "subscore");
    w.op = op_arg(L, 7, -1);
    w.metadata = kz_nk_json_object_arg(L, 6, "metadata");
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_lb_record_t *r = kz_calloc(1, sizeof *r);
    g->p = r;
    g->fn = free_record;
    int rc = kz_lb_record_write(kz_lua_db(L), id, tournament, false, &w, kz_now_ms(), r);
    if (rc != KZ_DB_OK)
        return raise_outcome(L, rc,
                             tournament ? "error writing tournament record"
                                        : "error writing leaderboard record",
                             tournament);
    push_record(L, id, r);
    return 1;
}

/* nk.leaderboard_record_write(...) -> record [-0, +1, v] */
static int nk_leaderboard_record_write(lua_State *L)
{
    return record_write(L, false);
}
/* nk.tournament_record_write(...) -> record [-0, +1, v] */
static int nk_tournament_record_write(lua_State *L)
{
    return record_write(L, true);
}

/* records_list(id, owners=nil, limit=0, cursor="", expiry=0) -> records,
 * owner_records, next_cursor, prev_cursor, rank_count */
static int records_list(lua_State *L, bool tournament)
{
    const char *id = board_id_arg(L, 1, tournament);
    int limit = (int)kz_nk_optint(L, 3, "limit", 0, 0, 10000);
    const char *cursor = kz_nk_optstr(L, 4, "cursor");
    int64_t expiry = kz_nk_optint(L, 5, "expiry", 0, 0, 4102444800LL);
    int nowners;
    char **owners = kz_nk_strings_arg(L, 2, "owner IDs", true, &nowners);
    if (nowners > KZ_LB_MAX_OWNERS)
        kz_lua_raise(L, KZ_NK_INVALID, "expects at most %d owner IDs", KZ_LB_MAX_OWNERS);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_lb_list_t *l = kz_calloc(1, sizeof *l);
    g->p = l;
    g->fn = free_list;
    int rc = kz_lb_records_list(kz_lua_db(L), id, tournament, (const char *const *)owners, nowners,
                                limit, cursor, expiry, kz_now_ms(), l);
    if (rc != KZ_DB_OK)
        return raise_outcome(L, rc,
                             tournament ? "error listing tournament records"
                                        : "error listing leaderboard records",
                             tournament);
    push_records(L, id, l->records, l->nrecords);
    push_records(L, id, l->owner_records, l->nowner_records);
    push_cursor(L, l->next_cursor);
    push_cursor(L, l->prev_cursor);
    lua_pushnumber(L, (lua_Number)l->rank_count);
    return 5;
}

/* nk.leaderboard_records_list(...) [-0, +5, v] */
static int nk_leaderboard_records_list(lua_State *L)
{
    return records_list(L, false);
}
/* nk.tournament_records_list(...) [-0, +5, v] */
static int nk_tournament_records_list(lua_State *L)
{
    return records_list(L, true);
}

/* haystack(id, owner, limit=10, cursor="", expiry=0) -> records,
 * next_cursor, prev_cursor, rank_count */
static int haystack(lua_State *L, bool tournament)
{
    const char *id = board_id_arg(L, 1, tournament);
    char owner[37];
    kz_nk_uuid(L, 2, "owner ID", owner);
    int limit = (int)kz_nk_optint(L, 3, "limit", 10, 1, 100);
    const char *cursor = kz_nk_optstr(L, 4, "cursor");
    int64_t expiry = kz_nk_optint(L, 5, "expiry", 0, 0, 4102444800LL);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_lb_list_t *l = kz_calloc(1, sizeof *l);
    g->p = l;
    g->fn = free_list;
    int rc = kz_lb_records_haystack(kz_lua_db(L), id, tournament, owner, limit, cursor, expiry,
                                    kz_now_ms(), l);
    if (rc != KZ_DB_OK)
        return raise_outcome(L, rc,
                             tournament ? "error listing tournament records haystack"
                                        : "error listing leaderboard records haystack",
                             tournament);
    push_records(L, id, l->records, l->nrecords);
    push_cursor(L, l->next_cursor);
    push_cursor(L, l->prev_cursor);
    lua_pushnumber(L, (lua_Number)l->rank_count);
    return 4;
}

/* nk.leaderboard_records_haystack(...) [-0, +4, v] */
static int nk_leaderboard_records_haystack(lua_State *L)
{
    return haystack(L, false);
}
/* nk.tournament_records_haystack(...) [-0, +4, v] */
static int nk_tournament_records_haystack(lua_State *L)
{
    return haystack(L, true);
}

static int record_delete(lua_State *L, bool tournament)
{
    const char *id = board_id_arg(L, 1, tournament);
    char owner[37];
    kz_nk_uuid(L, 2, "owner ID", owner);
    int rc = kz_lb_record_delete(kz_lua_db(L), id, tournament, false, owner, kz_now_ms());
    if (rc != KZ_DB_OK)
        return raise_outcome(L, rc,
                             tournament ? "error deleting tournament record"
                                        : "error deleting leaderboard record",
                             tournament);
    return 0;
}

/* nk.leaderboard_record_delete(id, owner) [-0, +0, v] */
static int nk_leaderboard_record_delete(lua_State *L)
{
    return record_delete(L, false);
}
/* nk.tournament_record_delete(id, owner) [-0, +0, v] */
static int nk_tournament_record_delete(lua_State *L)
{
    return record_delete(L, true);
}

/* nk.leaderboard_records_list_cursor_from_rank(id, rank, expiry=0) ->
 * cursor (nil for rank 1) [-0, +1, v] */
static int nk_leaderboard_records_list_cursor_from_rank(lua_State *L)
{
    const char *id = board_id_arg(L, 1, false);
    int64_t rank = kz_nk_optint(L, 2, "rank", 0, 1, INT32_MAX);
    if (lua_isnoneornil(L, 2)) kz_lua_raise(L, KZ_NK_INVALID, "expects rank to be a number");
    int64_t expiry = kz_nk_optint(L, 3, "expiry", 0, 0, 4102444800LL);
    kz_nk_guard_t *g = kz_nk_guard(L);
    char *c = NULL;
    int rc = kz_lb_cursor_from_rank(id, rank, expiry, kz_now_ms(), &c);
    if (rc == KZ_LB_NO_RANK)
        return kz_lua_raise(L, KZ_NK_NOT_FOUND,
                            "error creating cursor: no ranked record at rank %lld",
                            (long long)(rank - 1));
    if (rc != KZ_DB_OK) return raise_outcome(L, rc, "error creating cursor", false);
    g->p = c;
    g->fn = kz_nk_free_kz;
    push_cursor(L, c);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Tournaments                                                              */

/* nk.tournament_join(id, user_id, username) [-0, +0, v] */
static int nk_tournament_join(lua_State *L)
{
    const char *id = board_id_arg(L, 1, true);
    char owner[37];
    kz_nk_uuid(L, 2, "user ID", owner);
    size_t ulen;
    const char *username = kz_nk_str(L, 3, "username", &ulen);
    if (ulen == 0) kz_lua_raise(L, KZ_NK_INVALID, "expects a username string");
    int rc = kz_lb_tournament_join(kz_lua_db(L), id, owner, username, kz_now_ms());
    if (rc == KZ_LB_FULL)
        return kz_lua_raise(L, KZ_NK_PRECONDITION,
                            "error joining tournament: tournament has reached max size");
    if (rc == KZ_LB_NOT_ACTIVE)
        return kz_lua_raise(L, KZ_NK_PRECONDITION,
                            "error joining tournament: tournament is not active");
    if (rc != KZ_DB_OK) return raise_outcome(L, rc, "error joining tournament", true);
    return 0;
}

/* nk.tournament_add_attempt(id, owner, count) [-0, +0, v] */
static int nk_tournament_add_attempt(lua_State *L)
{
    const char *id = board_id_arg(L, 1, true);
    char owner[37];
    kz_nk_uuid(L, 2, "owner ID", owner);
    if (lua_type(L, 3) != LUA_TNUMBER)
        kz_lua_raise(L, KZ_NK_INVALID, "expects an attempt count number != 0");
    int64_t count = kz_nk_optint(L, 3, "count", 0, INT32_MIN, INT32_MAX);
    if (count == 0) kz_lua_raise(L, KZ_NK_INVALID, "expects an attempt count number != 0");
    int rc = kz_lb_tournament_add_attempt(kz_lua_db(L), id, owner, count, kz_now_ms());
    if (rc != KZ_DB_OK) return raise_outcome(L, rc, "error adding tournament attempts", true);
    return 0;
}

/* An array table of tournaments. [-0, +1, m] */
static void push_tournaments(lua_State *L, const kz_lb_tournament_t *v, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_tournament(L, &v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* nk.tournaments_get_id(ids) -> tournaments [-0, +1, v] */
static int nk_tournaments_get_id(lua_State *L)
{
    int n;
    char **ids = kz_nk_strings_arg(L, 1, "tournament ids", false, &n);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_lb_tournament_t *v = NULL;
    int nv = 0;
    int rc = kz_lb_tournaments_get(kz_lua_db(L), (const char *const *)ids, n, kz_now_ms(), &v, &nv);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = v;
    g->n = nv;
    g->fn = free_tournaments;
    push_tournaments(L, v, nv);
    return 1;
}

/* nk.tournament_list(category_start=0, category_end=0, start_time=nil,
 * end_time=nil, limit=10, cursor="") -> tournaments, cursor [-0, +2, v] */
static int nk_tournament_list(lua_State *L)
{
    int cs = (int)kz_nk_optint(L, 1, "category start", 0, 0, 127);
    int ce = (int)kz_nk_optint(L, 2, "category end", 0, 0, 127);
    if (cs > ce) kz_lua_raise(L, KZ_NK_INVALID, "categoryEnd must be >= categoryStart");
    int64_t st = kz_nk_optint(L, 3, "start time", -1, 0, 4102444800LL);
    int64_t et = kz_nk_optint(L, 4, "end time", -1, 0, 4102444800LL);
    if (st >= 0 && et > 0 && st > et)
        kz_lua_raise(L, KZ_NK_INVALID, "endTime must be >= startTime");
    int limit = (int)kz_nk_optint(L, 5, "limit", 10, 1, 100);
    const char *cursor = kz_nk_optstr(L, 6, "cursor");
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_nk_guard_t *gc = kz_nk_guard(L);
    kz_lb_tournament_t *v = NULL;
    int n = 0;
    char *next = NULL;
    int rc = kz_lb_tournaments_list(kz_lua_db(L), cs, ce, st, et, limit, cursor, kz_now_ms(), &v,
                                    &n, &next);
    if (rc == KZ_LB_BAD_CURSOR)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects cursor to be valid when provided");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = v;
    g->n = n;
    g->fn = free_tournaments;
    gc->p = next;
    gc->fn = kz_nk_free_kz;
    push_tournaments(L, v, n);
    push_cursor(L, next);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Scheduler callbacks                                                      */

const char *kz_nk_board_event_reg(const kz_board_event_t *ev)
{
    switch (ev->kind) {
    case KZ_BOARD_TOURNAMENT_RESET:
        return KZ_LUA_REG_T_RESET;
    case KZ_BOARD_TOURNAMENT_END:
        return KZ_LUA_REG_T_END;
    default:
        return KZ_LUA_REG_LB_RESET;
    }
}

const char *kz_nk_board_event_mode(const kz_board_event_t *ev)
{
    switch (ev->kind) {
    case KZ_BOARD_TOURNAMENT_RESET:
        return "tournament_reset";
    case KZ_BOARD_TOURNAMENT_END:
        return "tournament_end";
    default:
        return "leaderboard_reset";
    }
}

int kz_nk_board_event_args(lua_State *L, kz_db_t *db, const kz_board_event_t *ev)
{
    if (ev->kind == KZ_BOARD_LEADERBOARD_RESET) {
        /* reset: the instant the period that just ended expired. */
        push_leaderboard(L, ev->board, ev->at - 1);
        lua_pushnumber(L, (lua_Number)ev->at);
        return 2;
    }
    /* The tournament as it stood in the period that just ended. */
    kz_lb_tournament_t t = {0};
    kz_nk_guard_t *g = kz_nk_guard(L);
    const char *id = ev->board->id;
    kz_lb_tournament_t *v = NULL;
    int n = 0;
    if (kz_lb_tournaments_get(db, &id, 1, (ev->at - 1) * 1000, &v, &n) == KZ_DB_OK && n == 1) {
        g->p = v;
        g->n = n;
        g->fn = free_tournaments;
        push_tournament(L, &v[0]);
    } else {
        kz_lb_tournaments_free(v, n);
        t.board = ev->board; /* no size: the store could not be read */
        kz_board_period(ev->board, ev->at - 1, &t.start_active, &t.end_active, &t.next_reset);
        push_tournament(L, &t);
    }
    lua_remove(L, -2); /* the guard (its __gc frees v) */
    lua_pushnumber(L, (lua_Number)ev->end_active);
    lua_pushnumber(L, (lua_Number)ev->at);
    return 3;
}

void kz_nk_open_leaderboard(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"leaderboard_create", nk_leaderboard_create},
        {"leaderboard_delete", nk_leaderboard_delete},
        {"leaderboard_ranks_disable", nk_leaderboard_ranks_disable},
        {"tournament_ranks_disable", nk_tournament_ranks_disable},
        {"leaderboard_list", nk_leaderboard_list},
        {"leaderboards_get_id", nk_leaderboards_get_id},
        {"leaderboard_record_write", nk_leaderboard_record_write},
        {"leaderboard_records_list", nk_leaderboard_records_list},
        {"leaderboard_records_haystack", nk_leaderboard_records_haystack},
        {"leaderboard_record_delete", nk_leaderboard_record_delete},
        {"leaderboard_records_list_cursor_from_rank", nk_leaderboard_records_list_cursor_from_rank},
        {"tournament_create", nk_tournament_create},
        {"tournament_delete", nk_tournament_delete},
        {"tournament_join", nk_tournament_join},
        {"tournament_add_attempt", nk_tournament_add_attempt},
        {"tournaments_get_id", nk_tournaments_get_id},
        {"tournament_list", nk_tournament_list},
        {"tournament_record_write", nk_tournament_record_write},
        {"tournament_records_list", nk_tournament_records_list},
        {"tournament_records_haystack", nk_tournament_records_haystack},
        {"tournament_record_delete", nk_tournament_record_delete},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
