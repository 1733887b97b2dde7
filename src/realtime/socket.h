/* The realtime socket: GET /ws upgrades to a WebSocket carrying Nakama's
 * realtime envelopes. This module authenticates the upgrade, decodes each
 * envelope and dispatches it by message kind; replies echo the envelope's
 * cid. Runs on the I/O thread that owns the socket. */
#ifndef KZ_REALTIME_SOCKET_H
#define KZ_REALTIME_SOCKET_H

#include "api/api.h"
#include "net/http.h"

/* Answers GET /ws: checks the session token (query `token`, or a Bearer
 * header, which wins), `format`, `status` and `lang`, and upgrades the
 * connection; 401 with no upgrade for a missing or bad token. I/O thread. */
void kz_rt_accept(kz_exchange_t *ex, const kz_app_t *app);

/* Sets up the realtime areas (their session close hooks). Once, at start-up. */
void kz_rt_init(void);

#endif
