/* The matchmaker: a pool of tickets, matched into groups on an interval.
 *
 * A ticket is what one session (matchmaker_add) or one party's leader for
 * all its members (party_matchmaker_add) asks for: a query over the other
 * tickets' properties, a size range for the group (min_count..max_count,
 * a multiple of count_multiple) and its own properties. Tickets are added
 * and removed on I/O threads; one thread processes the pool every
 * matchmaker.interval_sec and delivers matchmaker_matched to every member
 * of every group formed (realtime/matchmaker.c, "The server").
 *
 * Processing (kz_mm_process): a snapshot of the pool is taken under its
 * lock; groups are formed without the lock, from an index built for the
 * snapshot; then, under the lock again, the groups whose tickets are all
 * still there are taken out of the pool. Each ticket that is still active
 * searches, oldest first, for candidates that
 *   - its query accepts, and whose query accepts it (every pair of tickets
 *     in a group accepts each other; with rev_precision off, only the
 *     searcher's query is asked),
 *   - share no session with the group and are not of its own party,
 *   - keep the group size possible for every member's min/max,
 * and the group is formed when it reaches the smallest max_count of its
 * members, or - in the searcher's last active interval (the
 * max_intervals-th), or at once when min_count == max_count - when its
 * size is within every member's range and a multiple of every member's
 * count_multiple (candidates added last are dropped to reach such a size).
 * A ticket that used up its intervals stops searching but stays in the
 * pool: newer tickets can still pick it.
 *
 * Candidates come from an index so that a search does not walk the whole
 * pool: string properties by (field, value), numeric properties sorted by
 * value per field. A search reads the smallest source its MUST clauses
 * allow (a term's posting list, or the combined range of one numeric
 * field) and walks the whole pool only when its query has no MUST term or
 * range. Candidates from a term list or the whole pool come oldest first;
 * from a numeric range, in value order. When the searcher's query has
 * SHOULD clauses that can tell candidates apart, the candidates its query
 * accepts (up to the search bound) are sorted by score - the MUST and
 * SHOULD clauses they match - then age, as Nakama orders its hits. */
#ifndef KZ_REALTIME_MATCHMAKER_H
#define KZ_REALTIME_MATCHMAKER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "realtime/envelope.h"
#include "realtime/mmquery.h"

struct kz_app;

/* One player of a ticket. */
typedef struct kz_mm_member {
    char sid[37];       /* session id */
    char uid[37];       /* user id */
    char username[129];
} kz_mm_member_t;

/* A field of a ticket's document (properties.<key>, ticket, ...). */
typedef struct kz_mm_field {
    char *name; /* owned, "properties.region" */
    const char *str; /* string value (into the ticket's JSON), or NULL */
    size_t len;
    bool has_num;
    double num;
} kz_mm_field_t;

/* A ticket. Immutable once added, except for the fields marked "pool
 * lock"; shared by reference between the pool, a processing snapshot and a
 * delivery. */
typedef struct kz_mm_ticket {
    atomic_int refs;
    char id[37];
    char *party_id; /* owned; NULL for a session's ticket */
    int min_count, max_count, count_multiple;
    int64_t created_ms;
    uint64_t seq;     /* order of creation */
    kz_mmq_t *query;  /* owned */
    json_t *sprops;   /* owned object of strings (never changed after add) */
    json_t *nprops;   /* owned object of numbers */
    int nfields;
    kz_mm_field_t *fields; /* owned, sorted by name */
    int nmembers;
    kz_mm_member_t *members; /* owned */
    /* pool lock */
    int intervals;  /* processing passes it took part in without a match */
    bool removed;   /* no longer in the pool */
    struct kz_mm_ticket *prev, *next; /* the pool's creation-order list */
} kz_mm_ticket_t;

kz_mm_ticket_t *kz_mm_ticket_retain(kz_mm_ticket_t *t);
/* NULL is a no-op. Any thread. */
void kz_mm_ticket_release(kz_mm_ticket_t *t);
/* The mmquery lookup over a ticket (doc is a const kz_mm_ticket_t *). */
void kz_mm_ticket_lookup(const void *doc, const char *field, kz_mmq_vkind_t want, kz_mmq_value_t *v);

/* What a ticket asks for (kz_mm_add copies everything). */
typedef struct kz_mm_spec {
    const char *query; /* empty or NULL: "*" */
    size_t query_len;
    int min_count, max_count, count_multiple;
    const json_t *string_properties;  /* object of strings, or NULL */
    const json_t *numeric_properties; /* object of numbers, or NULL */
    const char *party_id;             /* NULL: a session's ticket */
    const kz_mm_member_t *members;    /* a session's ticket: exactly one */
    int nmembers;
} kz_mm_spec_t;

enum {
    KZ_MM_OK = 0,
    KZ_MM_EQUERY = -1,    /* the query does not parse */
    KZ_MM_ETOO_MANY = -2, /* the session or party has max_tickets tickets */
    KZ_MM_EINVALID = -3,  /* counts or members out of their rules */
    KZ_MM_ENOT_FOUND = -4,
};

typedef struct kz_mm_pool kz_mm_pool_t;

/* A pool allowing max_tickets tickets per session (or party), each active
 * for max_intervals processing passes. */
kz_mm_pool_t *kz_mm_pool_new(int max_tickets, int max_intervals);
void kz_mm_pool_free(kz_mm_pool_t *p);
/* With rev_precision (the default) a group forms only when every ticket's
 * query accepts every other ticket; without it, only the searcher's query
 * must accept the others (Nakama's default). Set before processing. */
void kz_mm_pool_set_rev_precision(kz_mm_pool_t *p, bool on);

/* Adds a ticket created at now_ms; its id goes to id. Thread-safe. */
int kz_mm_add(kz_mm_pool_t *p, const kz_mm_spec_t *spec, int64_t now_ms, char id[37]);
/* Removes a ticket of session sid (party_id NULL) or of the party. KZ_MM_ENOT_FOUND when
 * there is no such ticket for that owner. */
int kz_mm_remove(kz_mm_pool_t *p, const char *ticket, const char *sid, const char *party_id);
/* Removes every ticket of the session (not its parties' tickets) or of
 * the party; returns how many. */
int kz_mm_remove_session(kz_mm_pool_t *p, const char *sid);
int kz_mm_remove_party(kz_mm_pool_t *p, const char *party_id);
/* Tickets in the pool. */
int kz_mm_count(kz_mm_pool_t *p);

/* GET /v2/matchmaker/stats: the tickets waiting, the oldest one's creation
 * time (0 when none), and the last KZ_MM_COMPLETIONS matched tickets
 * (creation and completion times, unix ms; newest first). */
#define KZ_MM_COMPLETIONS 100
typedef struct kz_mm_completion {
    int64_t create_ms, complete_ms;
} kz_mm_completion_t;
typedef struct kz_mm_pool_stats {
    int tickets;
    int64_t oldest_create_ms;
    int ncompletions;
    kz_mm_completion_t completions[KZ_MM_COMPLETIONS];
} kz_mm_pool_stats_t;
void kz_mm_pool_stats(kz_mm_pool_t *p, kz_mm_pool_stats_t *out);
/* Tickets matched since the pool was made. */
long long kz_mm_matched_total(kz_mm_pool_t *p);

/* A group formed by processing: its tickets, retained, searcher first. */
typedef struct kz_mm_group {
    int n;
    kz_mm_ticket_t **t;
} kz_mm_group_t;

typedef struct kz_mm_stats {
    int tickets;        /* in the snapshot */
    int groups;         /* formed and taken out */
    int matched;        /* tickets in those groups */
    int discarded;      /* groups dropped: a ticket was removed meanwhile */
    double snapshot_ms; /* copying the pool (under its lock) */
    double index_ms;    /* building the index */
    double match_ms;    /* forming groups */
    double commit_ms;   /* taking the groups out (under the lock) */
    double total_ms;
} kz_mm_stats_t;

/* One processing pass. The groups formed are handed to on_matched (any
 * number, possibly zero; called once, without the lock, on the calling
 * thread), which may keep the array and the tickets: it owns them and
 * frees them with kz_mm_groups_free. stats may be NULL. */
typedef void (*kz_mm_matched_fn)(kz_mm_group_t *groups, int n, void *arg);
void kz_mm_process(kz_mm_pool_t *p, kz_mm_matched_fn on_matched, void *arg, kz_mm_stats_t *stats);
void kz_mm_groups_free(kz_mm_group_t *groups, int n);

/* Matchmaker tokens: HS256 JWTs {"mid": match_id, "exp": exp} signed with
 * key. kz_mm_token_sign returns an owned string; kz_mm_token_verify checks
 * the signature (constant time), the shape and exp > now, and copies mid
 * into mid (at most midlen-1 bytes). */
char *kz_mm_token_sign(const char *mid, int64_t exp, const char *key);
bool kz_mm_token_verify(const char *token, size_t len, const char *key, int64_t now, char *mid, size_t midlen);

/* ---- The server ---- */

/* Starts the processing thread for app (config matchmaker.*), and
 * registers the close hook that drops a session's tickets. Returns 0 or
 * -1. */
int kz_mm_start(struct kz_app *app);
/* Stops and joins the thread; drops every ticket. Safe when not started. */
void kz_mm_stop(void);
/* The server's pool (NULL when not started). */
kz_mm_pool_t *kz_mm_server_pool(void);

/* Socket handlers: matchmaker_add -> matchmaker_ticket; matchmaker_remove
 * -> empty ack. */
void kz_rt_matchmaker_add(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_matchmaker_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
/* For party_matchmaker_add (realtime/party.c): v[0..6) are the read
 * MatchmakerAdd fields (min_count, max_count, query, string_properties,
 * numeric_properties, count_multiple). Fills spec (without members and
 * party) and *nprops (owned by the caller); on bad input replies on ws
 * (parse error or BAD_INPUT) and returns false. */
bool kz_rt_mm_read_add(kz_ws_t *ws, const char *cid, json_t **v, kz_mm_spec_t *spec, json_t **nprops);

#endif
