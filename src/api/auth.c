/* Sign-in: authenticate by device, email or custom id; session refresh and
 * logout. Nakama's rules: `create` defaults to true, `username` applies only
 * when the account is created, and a session is a pair of HS256 tokens
 * sharing one token id. */
#include <string.h>

#include "api/handlers.h"
#include "api/validate.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/password.h"
#include "core/uuid.h"
#include "store/account.h"

/* Signs the token pair for a user and answers the Session message. tid and
 * iat are kept from the original sign-in on refresh (NULL / 0 for a new
 * sign-in). vars is borrowed and may be NULL. */
static void reply_session(kz_call_t *call, const char *uid, const char *username, json_t *vars,
                          bool created, const char *tid, int64_t iat)
{
    const kz_config_t *cfg = call->app->cfg;
    int64_t now = kz_now_sec();
    kz_claims_t c = {0};
    if (tid)
        snprintf(c.tid, sizeof c.tid, "%s", tid);
    else
        kz_uuid_v7_ns(c.tid, kz_now_ns());
    snprintf(c.uid, sizeof c.uid, "%s", uid);
    snprintf(c.usn, sizeof c.usn, "%s", username ? username : "");
    c.vrs = vars;
    c.iat = iat ? iat : now;
    c.exp = now + cfg->session.token_expiry_sec;
    char *token = NULL, *refresh = NULL;
    int rc = kz_jwt_sign(&c, cfg->session.encryption_key, strlen(cfg->session.encryption_key), &token);
    c.exp = now + cfg->session.refresh_token_expiry_sec;
    if (rc == KZ_JWT_OK)
        rc = kz_jwt_sign(&c, cfg->session.refresh_encryption_key,
                         strlen(cfg->session.refresh_encryption_key), &refresh);
    if (rc != KZ_JWT_OK) {
        kz_free(token);
        kz_reply_error(call->ex, KZ_GRPC_INTERNAL, "Error creating the session token.");
        return;
    }
    json_t *o = json_object();
    if (created) json_object_set_new(o, "created", json_true());
    json_object_set_new(o, "token", json_string(token));
    json_object_set_new(o, "refresh_token", json_string(refresh));
    kz_free(token);
    kz_free(refresh);
    kz_reply_json(call->ex, o);
}

/* The shared sign-in path once the identifier is valid: find the owner of
 * (kind, value), or create the account when allowed. For email, password
 * is checked against the stored hash, or hashed for a new account. */
static void sign_in(kz_call_t *call, kz_id_kind_t kind, const char *value, const char *password,
                    json_t *vars)
{
    kz_slice_t q = call->ex->req.query;
    bool create;
    if (kz_query_bool(q, "create", true, &create) != 0) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid value for 'create': expected true or false.");
        return;
    }
    char *username = kz_query_get(q, "username");
    kz_user_t u;
    int rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = kz_store_user_find(call->db, kind, value, &u);
        if (rc == KZ_DB_OK) {
            if (u.disable_time > 0) {
                kz_reply_error(call->ex, KZ_GRPC_PERMISSION_DENIED, "User account banned.");
            } else if (kind == KZ_ID_EMAIL &&
                       !(u.password && kz_password_verify(u.password, password, strlen(password)))) {
                kz_reply_error(call->ex, KZ_GRPC_UNAUTHENTICATED, "Invalid credentials.");
            } else {
                reply_session(call, u.id, u.username, vars, false, NULL, 0);
            }
            kz_user_clear(&u);
            goto out;
        }
        if (rc != KZ_STORE_NOTFOUND) {
            kz_reply_store_error(call, rc);
            goto out;
        }
        if (!create) {
            kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "User account not found.");
            goto out;
        }
        char generated[11];
        const char *name = username;
        if (name && *name) {
            const char *bad = kz_validate_username(name, strlen(name));
            if (bad) {
                kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
                goto out;
            }
        } else {
            kz_random_letters(generated, 10);
            name = generated;
        }
        char hash[KZ_PASSWORD_HASH_MAX] = "";
        if (kind == KZ_ID_EMAIL && kz_password_hash(password, strlen(password), hash) != 0) {
            kz_reply_error(call->ex, KZ_GRPC_INTERNAL, "Error creating user account.");
            goto out;
        }
        char id[37];
        kz_uuid_v4(id);
        bool taken = false;
        rc = kz_store_user_create(call->db, id, name, kind, value, hash, kz_now_ms(), &taken);
        if (rc == KZ_DB_OK) {
            reply_session(call, id, name, vars, true, NULL, 0);
            goto out;
        }
        if (rc != KZ_DB_ECONFLICT) {
            kz_reply_store_error(call, rc);
            goto out;
        }
        if (!taken) {
            kz_reply_error(call->ex, KZ_GRPC_ALREADY_EXISTS, "Username is already in use.");
            goto out;
        }
        /* Someone created this identifier a moment ago: sign in to it. */
    }
    kz_reply_error(call->ex, KZ_GRPC_INTERNAL, "Error creating user account.");
out:
    kz_free(username);
}

/* Reads the body of an authenticate route: the Account* message with `id`
 * (or email/password) and `vars`. Returns the body or NULL (answered). */
static json_t *account_body(kz_call_t *call, json_t **vars)
{
    json_t *body = kz_body_object(call);
    if (!body) return NULL;
    if (kz_json_vars(call, body, "vars", vars) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static void authenticate_id(kz_call_t *call, kz_id_kind_t kind)
{
    json_t *vars = NULL;
    json_t *body = account_body(call, &vars);
    if (!body) return;
    const char *id;
    if (kz_json_string(call, body, "id", &id) == 0) {
        if (!id) id = "";
        const char *bad = kind == KZ_ID_DEVICE ? kz_validate_device_id(id, strlen(id))
                                               : kz_validate_custom_id(id, strlen(id));
        if (bad)
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
        else
            sign_in(call, kind, id, NULL, vars);
    }
    json_decref(vars);
    json_decref(body);
}

void kz_h_authenticate_device(kz_call_t *call)
{
    authenticate_id(call, KZ_ID_DEVICE);
}

void kz_h_authenticate_custom(kz_call_t *call)
{
    authenticate_id(call, KZ_ID_CUSTOM);
}

/* Username + password sign-in, used by the email route when no email is
 * given. Never creates an account. */
static void sign_in_username(kz_call_t *call, const char *username, const char *password, json_t *vars)
{
    kz_user_t u;
    int rc = kz_store_user_find(call->db, KZ_ID_USERNAME, username, &u);
    if (rc == KZ_STORE_NOTFOUND) {
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "User account not found.");
        return;
    }
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        return;
    }
    if (u.disable_time > 0)
        kz_reply_error(call->ex, KZ_GRPC_PERMISSION_DENIED, "User account banned.");
    else if (!u.password || !kz_password_verify(u.password, password, strlen(password)))
        kz_reply_error(call->ex, KZ_GRPC_UNAUTHENTICATED, "Invalid credentials.");
    else
        reply_session(call, u.id, u.username, vars, false, NULL, 0);
    kz_user_clear(&u);
}

/* Validates an email and password pair; answers 400 and returns false when
 * either is bad. email is lower-cased in place. */
static bool check_email_password(kz_call_t *call, char *email, const char *password)
{
    const char *bad = kz_validate_email(email, strlen(email));
    if (!bad) bad = kz_validate_password(password, strlen(password));
    if (bad) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
        return false;
    }
    kz_lower_ascii(email, strlen(email));
    return true;
}

void kz_h_authenticate_email(kz_call_t *call)
{
    json_t *vars = NULL;
    json_t *body = account_body(call, &vars);
    if (!body) return;
    const char *email, *password;
    if (kz_json_string(call, body, "email", &email) == 0 &&
        kz_json_string(call, body, "password", &password) == 0) {
        if (!password) password = "";
        char *username = kz_query_get(call->ex->req.query, "username");
        if (!email || !*email) {
            /* No email: a username + password sign-in, as Nakama allows. */
            const char *bad = kz_validate_password(password, strlen(password));
            if (!bad && !(username && *username))
                bad = "Username is required when email address is not supplied.";
            if (bad)
                kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
            else
                sign_in_username(call, username, password, vars);
        } else {
            char *lower = kz_strdup(email ? email : "");
            if (check_email_password(call, lower, password))
                sign_in(call, KZ_ID_EMAIL, lower, password, vars);
            kz_free(lower);
        }
        kz_free(username);
    }
    json_decref(vars);
    json_decref(body);
}

void kz_h_social_unconfigured(kz_call_t *call)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s is not available: this server has no credentials configured for the provider.",
             call->route->name);
    kz_reply_error(call->ex, KZ_GRPC_FAILED_PRECONDITION, msg);
}

void kz_h_session_refresh(kz_call_t *call)
{
    const kz_config_t *cfg = call->app->cfg;
    json_t *vars = NULL;
    json_t *body = account_body(call, &vars);
    if (!body) return;
    const char *token;
    kz_claims_t c = {0};
    kz_user_t u = {0};
    if (kz_json_string(call, body, "token", &token) != 0) goto out;
    if (!token || !*token) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Refresh token is required.");
        goto out;
    }
    const char *key = cfg->session.refresh_encryption_key;
    if (kz_jwt_verify(token, strlen(token), key, strlen(key), kz_now_sec(), &c) != KZ_JWT_OK ||
        kz_sessions_revoked(call->app->sessions, c.tid, c.uid)) {
        kz_reply_error(call->ex, KZ_GRPC_UNAUTHENTICATED, "Refresh token invalid or expired.");
        goto out;
    }
    int rc = kz_store_user_find(call->db, KZ_ID_USER, c.uid, &u);
    if (rc == KZ_STORE_NOTFOUND) {
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "User account not found.");
    } else if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
    } else if (u.disable_time > 0) {
        kz_reply_error(call->ex, KZ_GRPC_PERMISSION_DENIED, "User account banned.");
    } else {
        /* New vars replace the old ones; absent vars keep them. */
        reply_session(call, u.id, u.username, vars ? vars : c.vrs, false, c.tid, c.iat);
    }
out:
    kz_user_clear(&u);
    kz_claims_clear(&c);
    json_decref(vars);
    json_decref(body);
}

/* Checks a token named in a logout request: it must be ours, well signed,
 * unexpired and belong to the caller. Copies its tid into tid. */
static bool logout_token(kz_call_t *call, const char *token, const char *key, char tid[37])
{
    kz_claims_t c = {0};
    bool ok = kz_jwt_verify(token, strlen(token), key, strlen(key), kz_now_sec(), &c) == KZ_JWT_OK &&
              strcmp(c.uid, call->session.uid) == 0;
    if (ok) memcpy(tid, c.tid, 37);
    kz_claims_clear(&c);
    return ok;
}

void kz_h_session_logout(kz_call_t *call)
{
    const kz_config_t *cfg = call->app->cfg;
    json_t *body = kz_body_object(call);
    if (!body) return;
    const char *token, *refresh;
    if (kz_json_string(call, body, "token", &token) != 0 ||
        kz_json_string(call, body, "refresh_token", &refresh) != 0)
        goto out;
    /* A revoked pair must stay refused until its refresh token would have
     * expired, whichever of the two was named. */
    int64_t expire_ms = (kz_now_sec() + cfg->session.refresh_token_expiry_sec + 1) * 1000;
    char tid_a[37] = "", tid_b[37] = "";
    if (token && *token && !logout_token(call, token, cfg->session.encryption_key, tid_a)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Session token invalid.");
        goto out;
    }
    if (refresh && *refresh && !logout_token(call, refresh, cfg->session.refresh_encryption_key, tid_b)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Refresh token invalid.");
        goto out;
    }
    int rc = KZ_DB_OK;
    if (!*tid_a && !*tid_b) {
        rc = kz_sessions_revoke_user(call->app->sessions, call->db, call->session.uid, expire_ms);
    } else {
        if (*tid_a) rc = kz_sessions_revoke(call->app->sessions, call->db, tid_a, call->session.uid, expire_ms);
        if (rc == KZ_DB_OK && *tid_b && strcmp(tid_a, tid_b) != 0)
            rc = kz_sessions_revoke(call->app->sessions, call->db, tid_b, call->session.uid, expire_ms);
    }
    if (rc != KZ_DB_OK)
        kz_reply_store_error(call, rc);
    else
        kz_reply_empty(call->ex);
out:
    json_decref(body);
}
