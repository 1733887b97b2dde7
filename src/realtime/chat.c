/* Placeholder while this area is being written. */
#include "realtime/envelope.h"

void kz_rt_channel_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "channel_join is not supported by this server yet.");
}

void kz_rt_channel_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "channel_leave is not supported by this server yet.");
}

void kz_rt_channel_message_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "channel_message_send is not supported by this server yet.");
}

void kz_rt_channel_message_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "channel_message_update is not supported by this server yet.");
}

void kz_rt_channel_message_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "channel_message_remove is not supported by this server yet.");
}

void kz_rt_chat_init(void)
{
}
