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

/* api/friends.c */
void kz_h_friends_list(kz_call_t *call);
void kz_h_friends_add(kz_call_t *call);
void kz_h_friends_delete(kz_call_t *call);
void kz_h_friends_block(kz_call_t *call);
void kz_h_friends_of_friends(kz_call_t *call);

/* api/notification.c */
void kz_h_notifications_list(kz_call_t *call);
void kz_h_notifications_delete(kz_call_t *call);

/* api/channel.c */
void kz_h_channel_messages_list(kz_call_t *call);

/* api/groups.c */
void kz_h_groups_list(kz_call_t *call);
void kz_h_group_create(kz_call_t *call);
void kz_h_group_update(kz_call_t *call);
void kz_h_group_delete(kz_call_t *call);
void kz_h_group_add(kz_call_t *call);
void kz_h_group_ban(kz_call_t *call);
void kz_h_group_demote(kz_call_t *call);
void kz_h_group_join(kz_call_t *call);
void kz_h_group_kick(kz_call_t *call);
void kz_h_group_leave(kz_call_t *call);
void kz_h_group_promote(kz_call_t *call);
void kz_h_group_users_list(kz_call_t *call);
void kz_h_user_groups_list(kz_call_t *call);

/* api/storage.c */
void kz_h_storage_read(kz_call_t *call);
void kz_h_storage_write(kz_call_t *call);
void kz_h_storage_delete(kz_call_t *call);
void kz_h_storage_list(kz_call_t *call);

/* api/account.c: the User message of a stored user (new reference). */
json_t *kz_user_json(const kz_user_t *u);

/* api/rpc.c */
void kz_h_rpc(kz_call_t *call);

/* api/match.c */
void kz_h_matches_list(kz_call_t *call);
void kz_h_matchmaker_stats(kz_call_t *call);

/* api/leaderboard.c: leaderboards, tournaments, the test clock */
void kz_h_leaderboard_records_list(kz_call_t *call);
void kz_h_leaderboard_record_write(kz_call_t *call);
void kz_h_leaderboard_record_delete(kz_call_t *call);
void kz_h_leaderboard_records_around_owner(kz_call_t *call);
void kz_h_tournaments_list(kz_call_t *call);
void kz_h_tournament_records_list(kz_call_t *call);
void kz_h_tournament_record_write(kz_call_t *call);
void kz_h_tournament_record_delete(kz_call_t *call);
void kz_h_tournament_join(kz_call_t *call);
void kz_h_tournament_records_around_owner(kz_call_t *call);
void kz_h_test_clock(kz_call_t *call);
/* Starts / stops the leaderboard scheduler, whose events run on app's
 * worker pool (stop before the pool goes). */
int kz_lb_start(kz_app_t *app);
void kz_lb_stop(void);

#endif
