/* Placeholder while this area is being written. */
#include "realtime/envelope.h"

void kz_rt_party_create(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_create is not supported by this server yet.");
}

void kz_rt_party_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_join is not supported by this server yet.");
}

void kz_rt_party_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_leave is not supported by this server yet.");
}

void kz_rt_party_promote(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_promote is not supported by this server yet.");
}

void kz_rt_party_accept(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_accept is not supported by this server yet.");
}

void kz_rt_party_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_remove is not supported by this server yet.");
}

void kz_rt_party_close(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_close is not supported by this server yet.");
}

void kz_rt_party_join_request_list(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_join_request_list is not supported by this server yet.");
}

void kz_rt_party_data_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_data_send is not supported by this server yet.");
}

void kz_rt_party_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "party_update is not supported by this server yet.");
}

void kz_rt_party_init(void)
{
}
