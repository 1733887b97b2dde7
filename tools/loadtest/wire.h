/* kizuna-loadtest: the socket envelopes the bots send and read, in both
 * formats of Nakama's realtime socket: JSON (text frames) and protobuf
 * (nakama.realtime.Envelope in binary frames; field numbers from
 * proto/kizuna/realtime.proto, encoded and decoded by hand here so the
 * tool does not depend on the server's generated code).
 *
 * Encoders append one whole envelope to a kz_strbuf_t. The decoder reads
 * what a bot needs out of any server envelope: its cid, its kind, and the
 * few fields the steps use (ids, error code, the first bytes of match
 * data). Match data and chat events - the bulk of the traffic - take a
 * fast path in JSON that does not build a document. */
#ifndef KZ_LOADTEST_WIRE_H
#define KZ_LOADTEST_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "loadtest/scenario.h"

/* A matchmaker property for lt_wire_matchmaker_add (rendered values). */
typedef struct {
    const char *key;
    const char *str; /* string properties */
    double num;      /* numeric properties */
} lt_kv_t;

/* The encoders. cid is a short decimal string ("" or NULL for none). They
 * reset b first. Strings are escaped as needed (JSON). */
void lt_wire_channel_join(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *room, bool persistence);
void lt_wire_channel_send(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *channel_id,
                          const char *content);
void lt_wire_channel_leave(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *channel_id);
void lt_wire_match_create(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *name);
/* match_join by id, or by matchmaker token when token != NULL. */
void lt_wire_match_join(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *match_id, const char *token);
void lt_wire_match_leave(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *match_id);
void lt_wire_match_send(kz_strbuf_t *b, lt_format_t f, const char *match_id, int64_t op_code, const void *data,
                        size_t len);
void lt_wire_matchmaker_add(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *query, int min_count,
                            int max_count, const lt_kv_t *sprops, size_t nsprops, const lt_kv_t *nprops,
                            size_t nnprops);
void lt_wire_rpc(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *id, const char *payload);

typedef enum {
    LT_ENV_BAD,             /* not an envelope we can read */
    LT_ENV_ACK,             /* a cid and no message (empty reply) */
    LT_ENV_ERROR,           /* error (code in .code) */
    LT_ENV_CHANNEL,         /* channel (.id = channel id) */
    LT_ENV_CHANNEL_ACK,     /* channel_message_ack */
    LT_ENV_CHANNEL_MESSAGE, /* channel_message event */
    LT_ENV_MATCH,           /* match (.id = match id) */
    LT_ENV_MATCH_DATA,      /* match_data (.data = its first bytes) */
    LT_ENV_MM_TICKET,       /* matchmaker_ticket (.id = ticket) */
    LT_ENV_MM_MATCHED,      /* matchmaker_matched (.id = match id or "", .text = token or "") */
    LT_ENV_RPC,             /* rpc (.text = payload) */
    LT_ENV_OTHER,           /* any other message (presence events, notifications, ...) */
} lt_env_kind_t;

#define LT_ENV_DATA_MAX 16 /* bytes of match data kept (enough for the tool's stamp) */

typedef struct {
    lt_env_kind_t kind;
    uint32_t cid;    /* 0: none (or not a number) */
    int code;        /* error code */
    char id[192];    /* see the kinds; truncated ids never match anything */
    char text[1536]; /* see the kinds; NUL-terminated, truncated (text_truncated) */
    bool text_truncated;
    uint8_t data[LT_ENV_DATA_MAX];
    size_t data_len; /* bytes in data (<= LT_ENV_DATA_MAX) */
} lt_env_t;

/* Decodes one message (binary: protobuf, else JSON). Returns the kind
 * (also in out->kind). */
lt_env_kind_t lt_wire_decode(const char *msg, size_t len, bool binary, lt_env_t *out);

/* The stamp the tool puts at the start of match data so receivers can
 * measure delivery latency: magic, send time (CLOCK_MONOTONIC ns), and a
 * tag of the machine whose clock that is (receivers on another machine
 * ignore the time). 16 bytes. */
#define LT_STAMP_LEN 16
void lt_stamp_write(uint8_t out[LT_STAMP_LEN], uint64_t mono_ns, uint32_t machine);
/* True when data starts with a stamp of this machine; *sent_ns gets its time. */
bool lt_stamp_read(const uint8_t *data, size_t len, uint32_t machine, uint64_t *sent_ns);
/* A tag of this machine and boot (from the kernel's boot_id). */
uint32_t lt_machine_tag(void);

/* Appends s as a JSON string literal (quotes included) to b. */
void lt_json_str(kz_strbuf_t *b, const char *s);
/* Percent-encodes s for a URL query value into out; -1 if it does not fit. */
int lt_url_encode(const char *s, char *out, size_t cap);

#endif
