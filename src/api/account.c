/* The caller's account (get, update, delete), linking and unlinking sign-in
 * identifiers, and looking up other users. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "api/handlers.h"
#include "api/validate.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/password.h"
#include "core/uuid.h"
#include "store/account.h"

json_t *kz_user_json(const kz_user_t *u)
{
    json_t *o = json_object();
    kz_json_put_str(o, "id", u->id);
    kz_json_put_str(o, "username", u->username);
    kz_json_put_str(o, "display_name", u->display_name);
    kz_json_put_str(o, "avatar_url", u->avatar_url);
    kz_json_put_str(o, "lang_tag", u->lang_tag);
    kz_json_put_str(o, "location", u->location);
    kz_json_put_str(o, "timezone", u->timezone);
    kz_json_put_str(o, "metadata", u->metadata);
    kz_json_put_str(o, "facebook_id", u->facebook_id);
    kz_json_put_str(o, "google_id", u->google_id);
    kz_json_put_str(o, "gamecenter_id", u->gamecenter_id);
    kz_json_put_str(o, "steam_id", u->steam_id);
    if (u->edge_count) json_object_set_new(o, "edge_count", json_integer(u->edge_count));
    kz_json_put_time(o, "create_time", u->create_time);
    kz_json_put_time(o, "update_time", u->update_time);
    kz_json_put_str(o, "facebook_instant_game_id", u->facebook_instant_game_id);
    kz_json_put_str(o, "apple_id", u->apple_id);
    return o;
}

/* Loads the caller's user row; answers 404 / 500 and returns false when it
 * cannot. */
static bool load_self(kz_call_t *call, kz_user_t *u)
{
    int rc = kz_store_user_find(call->db, KZ_ID_USER, call->session.uid, u);
    if (rc == KZ_DB_OK) return true;
    if (rc == KZ_STORE_NOTFOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "User account not found.");
    else
        kz_reply_store_error(call, rc);
    return false;
}

void kz_h_account_get(kz_call_t *call)
{
    kz_user_t u;
    if (!load_self(call, &u)) return;
    char **devices;
    int ndevices;
    int rc = kz_store_user_devices(call->db, u.id, &devices, &ndevices);
    if (rc != KZ_DB_OK) {
        kz_user_clear(&u);
        kz_reply_store_error(call, rc);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "user", kz_user_json(&u));
    kz_json_put_str(o, "wallet", u.wallet);
    kz_json_put_str(o, "email", u.email);
    if (ndevices) {
        json_t *arr = json_array();
        for (int i = 0; i < ndevices; i++) {
            json_t *d = json_object();
            json_object_set_new(d, "id", json_string(devices[i]));
            json_array_append_new(arr, d);
        }
        json_object_set_new(o, "devices", arr);
    }
    kz_json_put_str(o, "custom_id", u.custom_id);
    kz_json_put_time(o, "verify_time", u.verify_time);
    kz_json_put_time(o, "disable_time", u.disable_time);
    kz_store_strings_free(devices, ndevices);
    kz_user_clear(&u);
    kz_reply_json(call->ex, o);
}

void kz_h_account_update(kz_call_t *call)
{
    static const char *const columns[] = {"username", "display_name", "avatar_url",
                                          "lang_tag", "location",     "timezone"};
    json_t *body = kz_body_object(call);
    if (!body) return;
    kz_account_update_t upd[6];
    int n = 0;
    for (int i = 0; i < 6; i++) {
        const char *v;
        if (kz_json_string(call, body, columns[i], &v) != 0) goto out;
        if (!v) continue; /* absent or null: unchanged */
        if (i == 0) {
            const char *bad = *v ? kz_validate_username(v, strlen(v)) : "Username invalid, must be 1-128 bytes.";
            if (bad) {
                kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
                goto out;
            }
        } else if (strlen(v) > 512) {
            char msg[96];
            snprintf(msg, sizeof msg, "Invalid value for field '%s': at most 512 bytes.", columns[i]);
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
            goto out;
        }
        /* Present but empty clears the field (lang_tag is never NULL: empty). */
        const char *value = *v ? v : (i == 3 ? "" : NULL);
        upd[n++] = (kz_account_update_t){columns[i], value};
    }
    if (n == 0) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "No fields to update.");
        goto out;
    }
    int rc = kz_store_account_update(call->db, call->session.uid, upd, n, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_DB_ECONFLICT)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Username is already in use.");
    else if (rc == KZ_STORE_NOTFOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "User account not found.");
    else
        kz_reply_store_error(call, rc);
out:
    json_decref(body);
}

void kz_h_account_delete(kz_call_t *call)
{
    if (strcmp(call->session.uid, KZ_UUID_NIL) == 0) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Cannot delete the system user.");
        return;
    }
    int rc = kz_store_user_delete(call->db, call->session.uid);
    if (rc == KZ_DB_OK || rc == KZ_STORE_NOTFOUND) {
        /* Tokens of a deleted account must stop working at once. */
        int64_t expire_ms = (kz_now_sec() + call->app->cfg->session.refresh_token_expiry_sec + 1) * 1000;
        rc = kz_sessions_revoke_user(call->app->sessions, call->db, call->session.uid, expire_ms);
    }
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else
        kz_reply_store_error(call, rc);
}

/* ------------------------------------------------------------------------ */
/* Link and unlink                                                          */

/* Reads and validates the identifier of a link/unlink body. For email,
 * *password receives the password (validated when need_password). Returns
 * an owned identifier (email lower-cased) or NULL (answered). */
static char *identifier_from_body(kz_call_t *call, kz_id_kind_t kind, bool need_password,
                                  char **password)
{
    json_t *body = kz_body_object(call);
    if (!body) return NULL;
    char *out = NULL;
    const char *v, *pw = NULL;
    const char *field = kind == KZ_ID_EMAIL ? "email" : "id";
    if (kz_json_string(call, body, field, &v) != 0) goto done;
    if (kind == KZ_ID_EMAIL && kz_json_string(call, body, "password", &pw) != 0) goto done;
    if (!v) v = "";
    if (!pw) pw = "";
    const char *bad = kind == KZ_ID_DEVICE   ? kz_validate_device_id(v, strlen(v))
                      : kind == KZ_ID_CUSTOM ? kz_validate_custom_id(v, strlen(v))
                      : need_password        ? kz_validate_link_email(v, strlen(v), pw, strlen(pw))
                                             : kz_validate_email(v, strlen(v));
    if (bad) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
        goto done;
    }
    out = kz_strdup(v);
    if (kind == KZ_ID_EMAIL) kz_lower_ascii(out, strlen(out));
    if (password) *password = kz_strdup(pw);
done:
    json_decref(body);
    return out;
}

static void link_identifier(kz_call_t *call, kz_id_kind_t kind)
{
    static const char *const in_use[] = {[KZ_ID_DEVICE] = "Device ID is already in use.",
                                         [KZ_ID_CUSTOM] = "Custom ID is already in use.",
                                         [KZ_ID_EMAIL] = "Email is already in use."};
    char *password = NULL;
    char *value = identifier_from_body(call, kind, true, &password);
    if (!value) return;
    char hash[KZ_PASSWORD_HASH_MAX] = "";
    if (kind == KZ_ID_EMAIL && kz_password_hash(password, strlen(password), hash) != 0) {
        kz_reply_error(call->ex, KZ_GRPC_INTERNAL, "Error linking.");
        goto out;
    }
    int rc = kz_store_link(call->db, call->session.uid, kind, value, hash, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_DB_ECONFLICT)
        kz_reply_error(call->ex, KZ_GRPC_ALREADY_EXISTS, in_use[kind]);
    else if (rc == KZ_STORE_NOTFOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "User account not found.");
    else
        kz_reply_store_error(call, rc);
out:
    if (password) sodium_memzero(password, strlen(password));
    kz_free(password);
    kz_free(value);
}

static void unlink_identifier(kz_call_t *call, kz_id_kind_t kind)
{
    char *value = identifier_from_body(call, kind, false, NULL);
    if (!value) return;
    int rc = kz_store_unlink(call->db, call->session.uid, kind, value, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_STORE_LAST_LINK)
        kz_reply_error(call->ex, KZ_GRPC_PERMISSION_DENIED,
                       "Cannot unlink last account identifier. Check profile exists and is not last link.");
    else
        kz_reply_store_error(call, rc);
    kz_free(value);
}

void kz_h_link_device(kz_call_t *call) { link_identifier(call, KZ_ID_DEVICE); }
void kz_h_link_email(kz_call_t *call) { link_identifier(call, KZ_ID_EMAIL); }
void kz_h_link_custom(kz_call_t *call) { link_identifier(call, KZ_ID_CUSTOM); }
void kz_h_unlink_device(kz_call_t *call) { unlink_identifier(call, KZ_ID_DEVICE); }
void kz_h_unlink_email(kz_call_t *call) { unlink_identifier(call, KZ_ID_EMAIL); }
void kz_h_unlink_custom(kz_call_t *call) { unlink_identifier(call, KZ_ID_CUSTOM); }

/* ------------------------------------------------------------------------ */
/* Users                                                                    */

#define KZ_MAX_USERS_PER_GET 1000

void kz_h_users_get(kz_call_t *call)
{
    kz_slice_t q = call->ex->req.query;
    char **ids, **names;
    int nids = kz_query_all(q, "ids", &ids);
    int nnames = kz_query_all(q, "usernames", &names);
    kz_user_t *users = NULL;
    int n = 0;
    if (nids + nnames > KZ_MAX_USERS_PER_GET) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Too many users requested, at most 1000.");
        goto out;
    }
    for (int i = 0; i < nids; i++) {
        if (!kz_uuid_valid(ids[i], strlen(ids[i]))) {
            char msg[160];
            snprintf(msg, sizeof msg, "ID '%.100s' is not a valid system ID.", ids[i]);
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
            goto out;
        }
        kz_lower_ascii(ids[i], strlen(ids[i]));
    }
    int rc = kz_store_users_get(call->db, ids, nids, names, nnames, &users, &n);
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        goto out;
    }
    json_t *o = json_object();
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, kz_user_json(&users[i]));
        json_object_set_new(o, "users", arr);
    }
    kz_reply_json(call->ex, o);
out:
    for (int i = 0; i < n; i++) kz_user_clear(&users[i]);
    kz_free(users);
    kz_store_strings_free(ids, nids);
    kz_store_strings_free(names, nnames);
}
