/* Live notifications: pushing notifications to the open sockets of their
 * recipients as a `notifications` event (no cid), one envelope per
 * recipient carrying all of that recipient's notifications, encoded once
 * and shared by the recipient's sessions.
 *
 * A notification must reach sockets only once it is committed. Code that
 * writes notifications inside a transaction defers them (kz_rt_notify_defer,
 * a per-thread outbox); the transaction's commit flushes the outbox and its
 * rollback discards it, so an attempt that rolled back and ran again never
 * pushes twice. Outside a transaction, kz_rt_notify pushes at once.
 * Every function may run on any thread (workers in practice). */
#ifndef KZ_REALTIME_NOTIFY_H
#define KZ_REALTIME_NOTIFY_H

#include <jansson.h>

#include "store/notification.h"

/* Pushes n[0..count) now, grouped by recipient (n->user_id). A notification
 * with no sender goes out with the nil UUID as sender_id, as Nakama does.
 * Recipients with no open socket cost one registry look-up. */
void kz_rt_notify(const kz_notification_t *n, int count);

/* Keeps copies of n[0..count) in this thread's outbox until
 * kz_rt_notify_flush (after commit) or kz_rt_notify_discard (rollback). */
void kz_rt_notify_defer(const kz_notification_t *n, int count);
/* Pushes and empties this thread's outbox. */
void kz_rt_notify_flush(void);
/* Empties this thread's outbox without pushing. */
void kz_rt_notify_discard(void);
/* Number of notifications in this thread's outbox. */
int kz_rt_notify_pending(void);

/* The `notifications` message of n[0..count) (all for one recipient):
 * {"notifications":[{id, subject, content, code, sender_id, create_time,
 * persistent}]} with empty/zero fields omitted. */
json_t *kz_rt_notifications_json(const kz_notification_t *const *n, int count);

#endif
