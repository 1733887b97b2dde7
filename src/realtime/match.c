/* Placeholder while this area is being written. */
#include "realtime/envelope.h"

void kz_rt_match_create(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "match_create is not supported by this server yet.");
}

void kz_rt_match_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "match_join is not supported by this server yet.");
}

void kz_rt_match_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "match_leave is not supported by this server yet.");
}

void kz_rt_match_data_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "match_data_send is not supported by this server yet.");
}

void kz_rt_match_init(void)
{
}
