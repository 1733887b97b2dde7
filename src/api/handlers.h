/* Route handlers. Each runs on a worker thread with call->db and answers
 * through call->ex (kz_reply_*). */
#ifndef KZ_API_HANDLERS_H
#define KZ_API_HANDLERS_H

#include "api/api.h"
#include "store/account.h"

/* api/auth.c */
void kz_h_authenticate_device(kz_call_t *call);
void kz_h_authenticate_email(kz_call_t *call);
void kz_h_authenticate_custom(kz_call_t *call);
void kz_h_social_unconfigured(kz_call_t *call);
void kz_h_session_refresh(kz_call_t *call);
void kz_h_session_logout(kz_call_t *call);

/* api/account.c */
void kz_h_account_get(kz_call_t *call);
void kz_h_account_update(kz_call_t *call);
void kz_h_account_delete(kz_call_t *call);
void kz_h_link_device(kz_call_t *call);
void kz_h_link_email(kz_call_t *call);
void kz_h_link_custom(kz_call_t *call);
void kz_h_unlink_device(kz_call_t *call);
void kz_h_unlink_email(kz_call_t *call);
void kz_h_unlink_custom(kz_call_t *call);
void kz_h_users_get(kz_call_t *call);

/* api/account.c: the User message of a stored user (new reference). */
json_t *kz_user_json(const kz_user_t *u);

#endif
