/* The realtime socket's two wire formats: JSON envelopes in text frames,
 * and protobuf Envelopes (nakama.realtime.Envelope, proto/kizuna/
 * realtime.proto) in binary frames. Handlers build and read the JSON form;
 * a protobuf socket converts at the edge (codec/pbjson.h).
 *
 * An outgoing envelope for many sockets is a kz_rt_out_t: its JSON form,
 * encoded at most once per format, the first time it goes to a socket of
 * that format, and shared by refcount from then on. */
#ifndef KZ_REALTIME_WIRE_H
#define KZ_REALTIME_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/ws.h"

/* Encodes the envelope env (borrowed) as one frame of the format: JSON
 * text, or protobuf binary. NULL only when env does not fit the protobuf
 * Envelope (a server bug: logged). */
kz_frame_t *kz_rt_encode(json_t *env, bool protobuf);

/* The JSON form of a protobuf Envelope in data[0..len), or NULL when the
 * bytes are not one. */
json_t *kz_rt_decode_protobuf(const void *data, size_t len);

/* An outgoing envelope. Made, sent and freed by one thread at a time; the
 * frames it hands out are refcounted and may be queued anywhere. */
typedef struct kz_rt_out {
    json_t *env;
    kz_frame_t *frame[2]; /* [0] JSON, [1] protobuf; made on first use */
} kz_rt_out_t;

/* Takes env (stolen). */
kz_rt_out_t *kz_rt_out(json_t *env);
/* The frame of out in the format (borrowed: retain it to keep it), or NULL
 * when it cannot be encoded. */
kz_frame_t *kz_rt_out_frame(kz_rt_out_t *out, bool protobuf);
/* NULL is a no-op. */
void kz_rt_out_free(kz_rt_out_t *out);

#endif
