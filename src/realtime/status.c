/* Placeholder while this area is being written. */
#include "realtime/envelope.h"

void kz_rt_status_follow(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "status_follow is not supported by this server yet.");
}

void kz_rt_status_unfollow(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "status_unfollow is not supported by this server yet.");
}

void kz_rt_status_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "status_update is not supported by this server yet.");
}

void kz_rt_status_init(void)
{
}
