/* Chat channels and message history: see store/message.h. */
#include "store/message.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/account.h"
#include "store/db_internal.h"

/* ------------------------------------------------------------------------ */
/* Channel ids                                                              */

/* Decodes one UTF-8 sequence at s[0..n) into *cp; returns its length, or 0
 * when it is not a valid, shortest-form sequence of a scalar value. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return len;
}

bool kz_channel_room_name_valid(const char *name, size_t len)
{
    if (len < 1 || len > KZ_ROOM_NAME_MAX) return false;
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        unsigned cp;
        size_t k = utf8_next(s + i, len - i, &cp);
        if (k == 0) return false;
        /* Unicode control characters (Go's unicode.IsControl): C0, DEL, C1. */
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;
        i += k;
    }
    return true;
}

/* Copies a UUID lower-cased into out; false when s is not one. */
static bool uuid_lower(const char *s, size_t len, char out[37])
{
    if (!kz_uuid_valid(s, len)) return false;
    for (size_t i = 0; i < 36; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[36] = '\0';
    return true;
}

static void format_id(kz_channel_t *c)
{
    snprintf(c->id, sizeof c->id, "%d.%s.%s.%s", c->mode, c->subject, c->subcontext, c->label);
}

bool kz_channel_room(kz_channel_t *c, const char *name)
{
    memset(c, 0, sizeof *c);
    size_t len = strlen(name);
    if (!kz_channel_room_name_valid(name, len)) return false;
    c->mode = KZ_CHAN_ROOM;
    memcpy(c->label, name, len + 1);
    format_id(c);
    return true;
}

bool kz_channel_group(kz_channel_t *c, const char *group_id)
{
    memset(c, 0, sizeof *c);
    if (!uuid_lower(group_id, strlen(group_id), c->subject)) return false;
    c->mode = KZ_CHAN_GROUP;
    format_id(c);
    return true;
}

bool kz_channel_direct(kz_channel_t *c, const char *user_a, const char *user_b)
{
    memset(c, 0, sizeof *c);
    char a[37], b[37];
    if (!uuid_lower(user_a, strlen(user_a), a) || !uuid_lower(user_b, strlen(user_b), b))
        return false;
    bool a_first = strcmp(a, b) <= 0;
    memcpy(c->subject, a_first ? a : b, 37);
    memcpy(c->subcontext, a_first ? b : a, 37);
    c->mode = KZ_CHAN_DIRECT;
    format_id(c);
    return true;
}

bool kz_channel_parse(kz_channel_t *c, const char *id, size_t len)
{
    memset(c, 0, sizeof *c);
    /* Split into four parts at the first three dots; the label (last part)
     * may itself hold dots. */
    const char *part[4];
    size_t plen[4];
    const char *p = id, *end = id + len;
    for (int i = 0; i < 3; i++) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) return false;
        part[i] = p;
        plen[i] = (size_t)(dot - p);
        p = dot + 1;
    }
    part[3] = p;
    plen[3] = (size_t)(end - p);
    if (plen[0] != 1) return false;
    switch (part[0][0]) {
    case '2':
        if (plen[1] || plen[2] || memchr(part[3], '\0', plen[3])) return false;
        if (!kz_channel_room_name_valid(part[3], plen[3])) return false;
        c->mode = KZ_CHAN_ROOM;
        memcpy(c->label, part[3], plen[3]);
        c->label[plen[3]] = '\0';
        break;
    case '3':
        if (plen[2] || plen[3] || !uuid_lower(part[1], plen[1], c->subject)) return false;
        c->mode = KZ_CHAN_GROUP;
        break;
    case '4':
        if (plen[3] || !uuid_lower(part[1], plen[1], c->subject) ||
            !uuid_lower(part[2], plen[2], c->subcontext) || strcmp(c->subject, c->subcontext) > 0)
            return false;
        c->mode = KZ_CHAN_DIRECT;
        break;
    default:
        return false;
    }
    format_id(c);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

void kz_message_clear(kz_message_t *m)
{
    kz_free(m->username);
    kz_free(m->content);
    m->username = m->content = NULL;
}

void kz_messages_free(kz_message_t *m, int n)
{
    for (int i = 0; i < n; i++)
        kz_message_clear(&m[i]);
    kz_free(m);
}

int kz_store_message_insert(kz_db_t *db, const kz_channel_t *c, const kz_message_t *m)
{
    kz_dbval_t p[] = {KZ_DBTEXT(m->id),
                      KZ_DBINT(m->code),
                      KZ_DBTEXT(m->sender_id),
                      KZ_DBTEXT(m->username ? m->username : ""),
                      KZ_DBINT(c->mode),
                      KZ_DBTEXT(c->subject),
                      KZ_DBTEXT(c->subcontext),
                      KZ_DBTEXT(c->label),
                      KZ_DBTEXT(m->content && *m->content ? m->content : "{}"),
                      KZ_DBINT(m->create_time),
                      KZ_DBINT(m->update_time)};
    return kz_db_exec(
        db,
        "INSERT INTO message (id, code, sender_id, username, stream_mode, stream_subject, "
        "stream_subcontext, stream_label, content, create_time, update_time) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        p, 11, NULL);
}

static kz_message_sink_fn sink;

void kz_store_set_message_sink(kz_message_sink_fn fn)
{
    sink = fn;
}

int kz_store_group_message_post(kz_db_t *db, const char *group_id, int code, const char *user_id,
                                int64_t now_ms)
{
    kz_channel_t c;
    if (!kz_channel_group(&c, group_id)) return KZ_DB_EERROR;
    kz_message_t m = {.code = code, .content = "{}"};
    /* Whole seconds for clients; the id, minted now, keeps the order of
     * the posts within a second. */
    kz_uuid_v7_ns(m.id, kz_now_ns());
    m.create_time = m.update_time = now_ms - now_ms % 1000;
    snprintf(m.sender_id, sizeof m.sender_id, "%s", user_id);
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    kz_dbrows_t *r;
    int rc = kz_db_query(db, "SELECT username FROM users WHERE id = $1", p, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    if (kz_db_next(r) == 1) m.username = kz_db_text_dup(r, 0);
    kz_db_rows_free(r);
    rc = kz_store_message_insert(db, &c, &m);
    if (rc == KZ_DB_OK && sink) sink(&c, &m, db->in_tx);
    kz_free(m.username);
    return rc;
}

int kz_store_message_send(kz_db_t *db, const kz_channel_t *c, const kz_message_t *m, bool persist)
{
    int rc = persist ? kz_store_message_insert(db, c, m) : KZ_DB_OK;
    if (rc == KZ_DB_OK && sink) sink(c, m, db->in_tx);
    return rc;
}

/* The stream condition of every statement on one channel's messages,
 * with the stream in $1..$4. */
#define STREAM_WHERE                                                                               \
    "stream_mode = $1 AND stream_subject = $2 AND stream_subcontext = $3 AND stream_label = $4"

/* Reads the create_time of the one row a RETURNING statement gave. */
static int returning_time(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np,
                          int64_t *create_time)
{
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    if (rc == 1) {
        if (create_time) *create_time = kz_db_int(r, 0);
        rc = KZ_DB_OK;
    } else if (rc == 0) {
        rc = KZ_STORE_NOTFOUND;
    }
    kz_db_rows_free(r);
    return rc;
}

int kz_store_message_update(kz_db_t *db, const kz_channel_t *c, const char *message_id,
                            const char *sender_id, const char *username, const char *content,
                            int64_t now_ms, int64_t *create_time)
{
    kz_dbval_t p[] = {KZ_DBINT(c->mode),   KZ_DBTEXT(c->subject), KZ_DBTEXT(c->subcontext),
                      KZ_DBTEXT(c->label), KZ_DBTEXT(message_id), KZ_DBTEXT(sender_id),
                      KZ_DBTEXT(username), KZ_DBTEXT(content),    KZ_DBINT(now_ms)};
    return returning_time(
        db,
        "UPDATE message SET username = $7, content = $8, update_time = $9 WHERE " STREAM_WHERE
        " AND id = $5 AND sender_id = $6 RETURNING create_time",
        p, 9, create_time);
}

int kz_store_message_remove(kz_db_t *db, const kz_channel_t *c, const char *message_id,
                            const char *sender_id, int64_t *create_time)
{
    kz_dbval_t p[] = {KZ_DBINT(c->mode),   KZ_DBTEXT(c->subject), KZ_DBTEXT(c->subcontext),
                      KZ_DBTEXT(c->label), KZ_DBTEXT(message_id), KZ_DBTEXT(sender_id)};
    return returning_time(db,
                          "DELETE FROM message WHERE " STREAM_WHERE
                          " AND id = $5 AND sender_id = $6 RETURNING create_time",
                          p, 6, create_time);
}

int kz_store_messages_list(kz_db_t *db, const kz_channel_t *c, bool asc,
                           const kz_message_pos_t *from, int limit, kz_message_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    char sql[512];
    const char *cmp = asc ? ">" : "<";
    const char *dir = asc ? "ASC" : "DESC";
    if (from)
        snprintf(
            sql, sizeof sql,
            "SELECT id, code, sender_id, username, content, create_time, update_time FROM message "
            "WHERE " STREAM_WHERE " AND (create_time %s $5 OR (create_time = $5 AND id %s $6)) "
            "ORDER BY create_time %s, id %s LIMIT $7",
            cmp, cmp, dir, dir);
    else
        snprintf(
            sql, sizeof sql,
            "SELECT id, code, sender_id, username, content, create_time, update_time FROM message "
            "WHERE " STREAM_WHERE " ORDER BY create_time %s, id %s LIMIT $5",
            dir, dir);
    kz_dbval_t p[7] = {KZ_DBINT(c->mode), KZ_DBTEXT(c->subject), KZ_DBTEXT(c->subcontext),
                       KZ_DBTEXT(c->label)};
    int np = 4;
    if (from) {
        p[np++] = KZ_DBINT(from->create_time);
        p[np++] = KZ_DBTEXT(from->id ? from->id : "");
    }
    p[np++] = KZ_DBINT(limit);
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    kz_message_t *v = kz_calloc(limit > 0 ? (size_t)limit : 1, sizeof *v);
    int k = 0;
    while (k < limit && (rc = kz_db_next(r)) == 1) {
        kz_message_t *m = &v[k++];
        kz_db_text_id(r, 0, m->id);
        m->code = (int)kz_db_int(r, 1);
        kz_db_text_id(r, 2, m->sender_id);
        m->username = kz_db_text_dup(r, 3);
        m->content = kz_db_text_dup(r, 4);
        m->create_time = kz_db_int(r, 5);
        m->update_time = kz_db_int(r, 6);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        kz_messages_free(v, k);
        return rc;
    }
    *out = v;
    *n = k;
    return KZ_DB_OK;
}

/* Runs a query whose first row's column 0 is an integer; *found tells
 * whether there was a row. */
static int query_first_int(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np, bool *found,
                           int64_t *v)
{
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    *found = rc == 1;
    if (rc == 1) *v = kz_db_int(r, 0);
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_store_message_group_member(kz_db_t *db, const char *group_id, const char *user_id,
                                  bool *member)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBTEXT(user_id)};
    bool found;
    int64_t state = -1;
    int rc =
        query_first_int(db,
                        "SELECT e.state FROM group_edge e JOIN groups g ON g.id = e.source_id "
                        "WHERE e.source_id = $1 AND e.destination_id = $2 AND g.disable_time = 0",
                        p, 2, &found, &state);
    *member = rc == KZ_DB_OK && found && state >= 0 && state <= 2;
    return rc;
}

int kz_store_message_direct_allowed(kz_db_t *db, const char *target_id, const char *caller_id,
                                    bool *allowed)
{
    kz_dbval_t p[] = {KZ_DBTEXT(target_id), KZ_DBTEXT(caller_id)};
    bool found;
    int64_t one = 0;
    /* The nil user (the system) is not someone to chat with. */
    int rc = query_first_int(
        db,
        "SELECT 1 FROM users WHERE id = $1 AND id <> '" KZ_UUID_NIL "' AND NOT EXISTS "
        "(SELECT 1 FROM user_edge WHERE source_id = $1 AND destination_id = $2 AND state = 3)",
        p, 2, &found, &one);
    *allowed = rc == KZ_DB_OK && found;
    return rc;
}
