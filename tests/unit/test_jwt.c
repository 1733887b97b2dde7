/* Unit tests for core/jwt: known-answer signing, verification and every
 * rejection path. The expected tokens below were computed independently
 * with Python's hmac/hashlib/base64 when this test was written. */
#include "core/alloc.h"
#include "core/jwt.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#define KEY "kizuna-test-signing-key"
#define TID "4f0e5a43-1b8e-4a5c-9e0d-0d6a2b7c9f11"
#define UID "0b6f1ce9-55a5-4e66-8d4f-8e4a1c2d3b4a"
#define EXP 1893456000LL
#define IAT 1700000000LL
#define NOW 1800000000LL

/* payload {"tid":TID,"uid":UID,"usn":"alice","vrs":{"a":"1","b":"two words"},
 *          "exp":1893456000,"iat":1700000000} */
static const char T_FULL[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiI0ZjBlNWE0My0xYjhlLTRhNWMtOWUwZC0wZDZhMmI3YzlmMTEiLCJ1aWQiOiIwYjZmMWNlOS01NWE1LT"
    "RlNjYtOGQ0Zi04ZTRhMWMyZDNiNGEiLCJ1c24iOiJhbGljZSIsInZycyI6eyJhIjoiMSIsImIiOiJ0d28gd29yZHMi"
    "fSwiZXhwIjoxODkzNDU2MDAwLCJpYXQiOjE3MDAwMDAwMDB9."
    "t_y8GXOr68TYpJq9aqSonbrN274Sqy49JTwyE6ksjdM";

/* payload {"tid":TID,"uid":UID,"exp":1893456000} */
static const char T_MIN[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiI0ZjBlNWE0My0xYjhlLTRhNWMtOWUwZC0wZDZhMmI3YzlmMTEiLCJ1aWQiOiIwYjZmMWNlOS01NWE1LT"
    "RlNjYtOGQ0Zi04ZTRhMWMyZDNiNGEiLCJleHAiOjE4OTM0NTYwMDB9."
    "5kHSI9PTg4rv3jOah4Nl8VgUbniV9ADoxvMNrT6xjnE";

/* T_MIN's payload signed with a 100-byte key of 'K' (longer than the
 * SHA-256 block, so the key is hashed first). */
static const char T_MIN_LONGKEY_SIG[] = "ml9ErNHdP1WZ90JV5K-syOK4-ZKsthnNe3yTORXCKYs";

/* Written the way Go's encoding/json writes it in Nakama: <, > and &
 * escaped as \u003c \u003e \u0026, é as \u00e9. usn is "<b> é", vrs {"k":"v&w"}. */
static const char T_GO[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiI0ZjBlNWE0My0xYjhlLTRhNWMtOWUwZC0wZDZhMmI3YzlmMTEiLCJ1aWQiOiIwYjZmMWNlOS01NWE1LT"
    "RlNjYtOGQ0Zi04ZTRhMWMyZDNiNGEiLCJ1c24iOiJcdTAwM2NiXHUwMDNlIFx1MDBlOSIsInZycyI6eyJrIjoidlx1"
    "MDAyNncifSwiZXhwIjoxODkzNDU2MDAwLCJpYXQiOjE3MDAwMDAwMDB9."
    "OvOdNXRRxcD4oYwz3OULR9lMvBSNtgi3QGw4RyUijY4";

/* Header {"alg":"HS512","typ":"JWT"}, a valid HS256 MAC under KEY. */
static const char T_HS512[] =
    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiI0ZjBlNWE0My0xYjhlLTRhNWMtOWUwZC0wZDZhMmI3YzlmMTEiLCJ1aWQiOiIwYjZmMWNlOS01NWE1LT"
    "RlNjYtOGQ0Zi04ZTRhMWMyZDNiNGEiLCJleHAiOjE4OTM0NTYwMDB9."
    "gMQq-De4xinr_wLtAdPIrJebDLPptdbOYh6JaUniBnw";

/* Header {"alg":"none"}, empty signature. */
static const char T_NONE[] =
    "eyJhbGciOiJub25lIn0."
    "eyJ0aWQiOiI0ZjBlNWE0My0xYjhlLTRhNWMtOWUwZC0wZDZhMmI3YzlmMTEiLCJ1aWQiOiIwYjZmMWNlOS01NWE1LT"
    "RlNjYtOGQ0Zi04ZTRhMWMyZDNiNGEiLCJleHAiOjE4OTM0NTYwMDB9.";

/* Header {"alg":"hs256","typ":"JWT"}, a valid HS256 MAC under KEY. */
static const char T_LOWER[] =
    "eyJhbGciOiJoczI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiI0ZjBlNWE0My0xYjhlLTRhNWMtOWUwZC0wZDZhMmI3YzlmMTEiLCJ1aWQiOiIwYjZmMWNlOS01NWE1LT"
    "RlNjYtOGQ0Zi04ZTRhMWMyZDNiNGEiLCJleHAiOjE4OTM0NTYwMDB9."
    "4drTVXowtiHCxWhq4JoO3I1WhBAIs3B9NHpFErj7zrY";

static int verify(const char *tok, kz_claims_t *c)
{
    return kz_jwt_verify(tok, strlen(tok), KEY, strlen(KEY), NOW, c);
}

/* Builds header.payload.sig from raw JSON texts, MAC'd with key, without
 * going through kz_jwt_sign (the MAC primitive is pinned by the known-answer
 * tests). Owned result, kz_free. */
static char *make_token(const char *header, const char *payload, const char *key)
{
    char *h = kz_b64url_encode(header, strlen(header));
    char *p = kz_b64url_encode(payload, strlen(payload));
    char *input = kz_asprintf("%s.%s", h, p);
    unsigned char mac[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, strlen(input));
    crypto_auth_hmacsha256_final(&st, mac);
    char *s = kz_b64url_encode(mac, sizeof mac);
    char *tok = kz_asprintf("%s.%s", input, s);
    kz_free(h);
    kz_free(p);
    kz_free(input);
    kz_free(s);
    return tok;
}

static int verify_payload(const char *payload)
{
    char *tok = make_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, KEY);
    kz_claims_t c;
    int rc = verify(tok, &c);
    kz_claims_clear(&c);
    kz_free(tok);
    return rc;
}

static void fill_claims(kz_claims_t *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->tid, TID);
    strcpy(c->uid, UID);
    c->exp = EXP;
}

static void assert_cleared(const kz_claims_t *c)
{
    cr_assert_eq(c->vrs, NULL);
    cr_assert_eq(c->uid[0], '\0');
    cr_assert_eq(c->tid[0], '\0');
    cr_assert_eq(c->exp, 0);
}

/* ------------------------------------------------------------------------ */

Test(jwt, sign_known_answer_full)
{
    kz_claims_t c;
    fill_claims(&c);
    strcpy(c.usn, "alice");
    c.iat = IAT;
    c.vrs = json_object();
    /* inserted out of order: the token lists them sorted */
    json_object_set_new(c.vrs, "b", json_string("two words"));
    json_object_set_new(c.vrs, "a", json_string("1"));
    char *tok = NULL;
    cr_assert_eq(kz_jwt_sign(&c, KEY, strlen(KEY), &tok), KZ_JWT_OK);
    cr_assert_str_eq(tok, T_FULL);
    kz_free(tok);
    kz_claims_clear(&c);
}

Test(jwt, sign_known_answer_minimal_omits_empty_claims)
{
    kz_claims_t c;
    fill_claims(&c);
    c.vrs = json_object(); /* empty: omitted like NULL */
    char *tok = NULL;
    cr_assert_eq(kz_jwt_sign(&c, KEY, strlen(KEY), &tok), KZ_JWT_OK);
    cr_assert_str_eq(tok, T_MIN);
    kz_free(tok);
    kz_claims_clear(&c);
}

Test(jwt, sign_long_key)
{
    char key[100];
    memset(key, 'K', sizeof key);
    kz_claims_t c;
    fill_claims(&c);
    char *tok = NULL;
    cr_assert_eq(kz_jwt_sign(&c, key, sizeof key, &tok), KZ_JWT_OK);
    const char *dot = strrchr(tok, '.');
    cr_assert_str_eq(dot + 1, T_MIN_LONGKEY_SIG);
    kz_claims_t out;
    cr_assert_eq(kz_jwt_verify(tok, strlen(tok), key, sizeof key, NOW, &out), KZ_JWT_OK);
    cr_assert_eq(kz_jwt_verify(tok, strlen(tok), key, 64, NOW, &out), KZ_JWT_ESIG);
    kz_free(tok);
}

Test(jwt, verify_known_answer)
{
    kz_claims_t c;
    cr_assert_eq(verify(T_FULL, &c), KZ_JWT_OK);
    cr_assert_str_eq(c.tid, TID);
    cr_assert_str_eq(c.uid, UID);
    cr_assert_str_eq(c.usn, "alice");
    cr_assert_eq(c.exp, EXP);
    cr_assert_eq(c.iat, IAT);
    cr_assert(json_is_object(c.vrs));
    cr_assert_eq(json_object_size(c.vrs), 2);
    cr_assert_str_eq(json_string_value(json_object_get(c.vrs, "a")), "1");
    cr_assert_str_eq(json_string_value(json_object_get(c.vrs, "b")), "two words");
    kz_claims_clear(&c);
    assert_cleared(&c);

    cr_assert_eq(verify(T_MIN, &c), KZ_JWT_OK);
    cr_assert_str_eq(c.usn, "");
    cr_assert_eq(c.vrs, NULL);
    cr_assert_eq(c.iat, 0);
    kz_claims_clear(&c);
}

Test(jwt, verify_go_escaped_payload)
{
    kz_claims_t c;
    cr_assert_eq(verify(T_GO, &c), KZ_JWT_OK);
    cr_assert_str_eq(c.usn, "<b> \xc3\xa9");
    cr_assert_str_eq(json_string_value(json_object_get(c.vrs, "k")), "v&w");
    kz_claims_clear(&c);
}

Test(jwt, round_trip_with_vars)
{
    kz_claims_t c;
    fill_claims(&c);
    strcpy(c.usn, "Zo\xc3\xab \"quoted\" \\ / \x01"); /* escaping */
    c.iat = 42;
    c.vrs = json_pack("{s:s, s:s, s:s}", "region", "eu", "tier", "gold", "empty", "");
    char *tok = NULL;
    cr_assert_eq(kz_jwt_sign(&c, KEY, strlen(KEY), &tok), KZ_JWT_OK);

    kz_claims_t out;
    cr_assert_eq(verify(tok, &out), KZ_JWT_OK);
    cr_assert_str_eq(out.tid, c.tid);
    cr_assert_str_eq(out.uid, c.uid);
    cr_assert_str_eq(out.usn, c.usn);
    cr_assert_eq(out.exp, EXP);
    cr_assert_eq(out.iat, 42);
    cr_assert(json_equal(out.vrs, c.vrs));
    kz_claims_clear(&out);
    kz_claims_clear(&c);
    kz_free(tok);
}

Test(jwt, round_trip_max_username)
{
    kz_claims_t c;
    fill_claims(&c);
    memset(c.usn, 'u', 128);
    c.usn[128] = '\0';
    char *tok = NULL;
    cr_assert_eq(kz_jwt_sign(&c, KEY, strlen(KEY), &tok), KZ_JWT_OK);
    kz_claims_t out;
    cr_assert_eq(verify(tok, &out), KZ_JWT_OK);
    cr_assert_eq(strlen(out.usn), 128);
    kz_free(tok);
}

Test(jwt, sign_rejects_unencodable_claims)
{
    kz_claims_t c;
    fill_claims(&c);
    c.vrs = json_pack("{s:s, s:i}", "ok", "v", "bad", 1);
    char *tok = (char *)"sentinel";
    cr_assert_eq(kz_jwt_sign(&c, KEY, strlen(KEY), &tok), KZ_JWT_EMALFORMED);
    cr_assert_eq(tok, NULL);
    kz_claims_clear(&c);

    fill_claims(&c);
    strcpy(c.usn, "bad\xff utf8");
    cr_assert_eq(kz_jwt_sign(&c, KEY, strlen(KEY), &tok), KZ_JWT_EMALFORMED);
    cr_assert_eq(tok, NULL);
}

/* ------------------------------------------------------------------------ */
/* Rejections                                                               */
/* ------------------------------------------------------------------------ */

Test(jwt, tampered_payload_is_esig)
{
    char tok[sizeof T_FULL];
    memcpy(tok, T_FULL, sizeof tok);
    /* flip one character in the middle of the payload segment */
    size_t i = strlen("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.") + 40;
    tok[i] = tok[i] == 'A' ? 'B' : 'A';
    kz_claims_t c;
    cr_assert_eq(verify(tok, &c), KZ_JWT_ESIG);
    assert_cleared(&c);
}

Test(jwt, tampered_signature_is_esig)
{
    char tok[sizeof T_FULL];
    memcpy(tok, T_FULL, sizeof tok);
    size_t i = strlen(tok) - 10;
    tok[i] = tok[i] == 'A' ? 'B' : 'A';
    kz_claims_t c;
    cr_assert_eq(verify(tok, &c), KZ_JWT_ESIG);

    /* a signature of the wrong length (the first 30 bytes of the MAC) */
    memcpy(tok, T_FULL, sizeof tok);
    tok[strlen(tok) - 3] = '\0';
    cr_assert_eq(verify(tok, &c), KZ_JWT_ESIG);

    /* very short and empty signatures (must not be read as 32 bytes) */
    const char *payload = "{\"tid\":\"" TID "\",\"uid\":\"" UID "\",\"exp\":1893456000}";
    char *good = make_token("{\"alg\":\"HS256\"}", payload, KEY);
    char *cut = strrchr(good, '.') + 1;
    strcpy(cut, "AAAA");
    cr_assert_eq(verify(good, &c), KZ_JWT_ESIG);
    cut[0] = '\0';
    cr_assert_eq(verify(good, &c), KZ_JWT_ESIG);
    kz_free(good);

    /* a signature of the right length but not base64url */
    memcpy(tok, T_FULL, sizeof tok);
    tok[strlen(tok) - 10] = '+';
    cr_assert_eq(verify(tok, &c), KZ_JWT_EMALFORMED);
}

Test(jwt, wrong_key_is_esig)
{
    kz_claims_t c;
    cr_assert_eq(kz_jwt_verify(T_FULL, strlen(T_FULL), "other-key", 9, NOW, &c), KZ_JWT_ESIG);
    cr_assert_eq(kz_jwt_verify(T_FULL, strlen(T_FULL), KEY, strlen(KEY) - 1, NOW, &c), KZ_JWT_ESIG);
    cr_assert_eq(kz_jwt_verify(T_FULL, strlen(T_FULL), "", 0, NOW, &c), KZ_JWT_ESIG);
    assert_cleared(&c);
}

Test(jwt, alg_none_is_ealg)
{
    kz_claims_t c;
    cr_assert_eq(verify(T_NONE, &c), KZ_JWT_EALG);
    assert_cleared(&c);
}

Test(jwt, other_algs_are_ealg)
{
    kz_claims_t c;
    cr_assert_eq(verify(T_HS512, &c), KZ_JWT_EALG);
    cr_assert_eq(verify(T_LOWER, &c), KZ_JWT_EALG);

    const char *payload = "{\"tid\":\"" TID "\",\"uid\":\"" UID "\",\"exp\":1893456000}";
    const char *headers[] = {
        "{\"typ\":\"JWT\"}",                   /* missing alg */
        "{\"alg\":null}",                      /* not a string */
        "{\"alg\":256}",                       /* not a string */
        "{\"alg\":\"HS256 \"}",                /* trailing space */
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",  /* none with a valid MAC */
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", /* asymmetric */
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *tok = make_token(headers[i], payload, KEY);
        cr_assert_eq(verify(tok, &c), KZ_JWT_EALG, "header %s", headers[i]);
        kz_free(tok);
    }

    /* a header without "typ" is fine: only alg matters */
    char *tok = make_token("{\"alg\":\"HS256\"}", payload, KEY);
    cr_assert_eq(verify(tok, &c), KZ_JWT_OK);
    kz_claims_clear(&c);
    kz_free(tok);
}

Test(jwt, bad_header_is_emalformed)
{
    const char *payload = "{\"tid\":\"" TID "\",\"uid\":\"" UID "\",\"exp\":1893456000}";
    const char *headers[] = {"", "[]", "\"HS256\"", "{\"alg\":\"HS256\"",
                             "{\"alg\":\"HS256\",\"alg\":\"none\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *tok = make_token(headers[i], payload, KEY);
        kz_claims_t c;
        cr_assert_eq(verify(tok, &c), KZ_JWT_EMALFORMED, "header %s", headers[i]);
        kz_free(tok);
    }
}

Test(jwt, expiry)
{
    kz_claims_t c;
    cr_assert_eq(kz_jwt_verify(T_FULL, strlen(T_FULL), KEY, strlen(KEY), EXP, &c), KZ_JWT_EEXPIRED);
    assert_cleared(&c);
    cr_assert_eq(kz_jwt_verify(T_FULL, strlen(T_FULL), KEY, strlen(KEY), EXP + 1000, &c),
                 KZ_JWT_EEXPIRED);
    cr_assert_eq(kz_jwt_verify(T_FULL, strlen(T_FULL), KEY, strlen(KEY), EXP - 1, &c), KZ_JWT_OK);
    kz_claims_clear(&c);

    /* an expired token with a bad MAC is a signature failure, not expiry */
    cr_assert_eq(kz_jwt_verify(T_FULL, strlen(T_FULL), "x", 1, EXP + 1000, &c), KZ_JWT_ESIG);
}

Test(jwt, payload_claims_are_checked)
{
#define P(rest) "{\"tid\":\"" TID "\",\"uid\":\"" UID "\"" rest "}"
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000")), KZ_JWT_OK);
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"usn\":null,\"vrs\":null,\"iat\":null")),
                 KZ_JWT_OK);
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"extra\":[1,2]")), KZ_JWT_OK);
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"vrs\":{}")), KZ_JWT_OK);

    /* exp: missing, null, float, string, too large */
    cr_assert_eq(verify_payload(P("")), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":null")), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":1.8934560e9")), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":\"1893456000\"")), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":99999999999999999999")), KZ_JWT_EMALFORMED);
    /* iat of the wrong type */
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"iat\":\"1\"")), KZ_JWT_EMALFORMED);
    /* usn: not a string, 129 bytes */
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"usn\":5")), KZ_JWT_EMALFORMED);
    char big[300];
    snprintf(big, sizeof big, P(",\"exp\":1893456000,\"usn\":\"%0129d\""), 0);
    cr_assert_eq(verify_payload(big), KZ_JWT_EMALFORMED);
    snprintf(big, sizeof big, P(",\"exp\":1893456000,\"usn\":\"%0128d\""), 0);
    cr_assert_eq(verify_payload(big), KZ_JWT_OK);
    /* usn with an escaped NUL */
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"usn\":\"a\\u0000b\"")), KZ_JWT_EMALFORMED);
    /* vrs: non-string value, array, string */
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"vrs\":{\"a\":\"x\",\"b\":1}")),
                 KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"vrs\":{\"a\":{\"b\":\"c\"}}")),
                 KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"vrs\":{\"a\":null}")), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"vrs\":[\"a\"]")), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"vrs\":\"a\"")), KZ_JWT_EMALFORMED);
    /* duplicate claim */
    cr_assert_eq(verify_payload(P(",\"exp\":1893456000,\"exp\":1893456001")), KZ_JWT_EMALFORMED);
#undef P

    /* uid / tid missing or not UUIDs */
    cr_assert_eq(verify_payload("{\"tid\":\"" TID "\",\"exp\":1893456000}"), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload("{\"uid\":\"" UID "\",\"exp\":1893456000}"), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload("{\"tid\":\"" TID "\",\"uid\":\"not-a-uuid\",\"exp\":1893456000}"),
                 KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload("{\"tid\":\"" TID "\",\"uid\":\"" UID "0\",\"exp\":1893456000}"),
                 KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload("{\"tid\":7,\"uid\":\"" UID "\",\"exp\":1893456000}"),
                 KZ_JWT_EMALFORMED);
    /* payload not an object / not JSON */
    cr_assert_eq(verify_payload("[1]"), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload("not json"), KZ_JWT_EMALFORMED);
    cr_assert_eq(verify_payload(""), KZ_JWT_EMALFORMED);
}

Test(jwt, shape_is_checked)
{
    kz_claims_t c;
    const char *bad[] = {
        "",
        "garbage",
        ".",
        "..",
        "...",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.e30.e30",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9==.e30.AAAA", /* padding */
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 .e30.AAAA",  /* space */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(verify(bad[i], &c), KZ_JWT_EMALFORMED, "token '%s'", bad[i]);

    /* four parts built from a valid token */
    char *four = kz_asprintf("%s.%s", T_FULL, "AAAA");
    cr_assert_eq(verify(four, &c), KZ_JWT_EMALFORMED);
    kz_free(four);

    cr_assert_eq(kz_jwt_verify(NULL, 10, KEY, strlen(KEY), NOW, &c), KZ_JWT_EMALFORMED);
}

Test(jwt, huge_token_is_emalformed)
{
    /* a real token padded with an (ignored by nobody) long extra claim */
    char *huge = kz_malloc(KZ_JWT_MAX_LEN + 2);
    memset(huge, 'A', KZ_JWT_MAX_LEN + 1);
    huge[10] = '.';
    huge[20] = '.';
    huge[KZ_JWT_MAX_LEN + 1] = '\0';
    kz_claims_t c;
    cr_assert_eq(kz_jwt_verify(huge, KZ_JWT_MAX_LEN + 1, KEY, strlen(KEY), NOW, &c),
                 KZ_JWT_EMALFORMED);
    kz_free(huge);

    /* a correctly signed token just over the bound */
    char *pad = kz_malloc(KZ_JWT_MAX_LEN);
    memset(pad, 'p', KZ_JWT_MAX_LEN - 1);
    pad[KZ_JWT_MAX_LEN - 1] = '\0';
    char *payload = kz_asprintf(
        "{\"tid\":\"" TID "\",\"uid\":\"" UID "\",\"exp\":1893456000,\"x\":\"%s\"}", pad);
    char *tok = make_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, KEY);
    cr_assert_gt(strlen(tok), KZ_JWT_MAX_LEN);
    cr_assert_eq(verify(tok, &c), KZ_JWT_EMALFORMED);
    kz_free(tok);
    kz_free(payload);
    kz_free(pad);
}

Test(jwt, not_nul_terminated)
{
    /* the token followed by bytes that would break it if they were read */
    size_t n = strlen(T_FULL);
    char *buf = kz_malloc(n + 8);
    memcpy(buf, T_FULL, n);
    memcpy(buf + n, ".AAAA!!!", 8);
    kz_claims_t c;
    cr_assert_eq(kz_jwt_verify(buf, n, KEY, strlen(KEY), NOW, &c), KZ_JWT_OK);
    cr_assert_str_eq(c.uid, UID);
    kz_claims_clear(&c);
    /* one byte short: the signature no longer decodes to the MAC */
    cr_assert_neq(kz_jwt_verify(buf, n - 1, KEY, strlen(KEY), NOW, &c), KZ_JWT_OK);
    kz_free(buf);

    /* exact-size heap copy without a terminator (ASan catches overreads) */
    char *exact = kz_malloc(n);
    memcpy(exact, T_FULL, n);
    cr_assert_eq(kz_jwt_verify(exact, n, KEY, strlen(KEY), NOW, &c), KZ_JWT_OK);
    kz_claims_clear(&c);
    kz_free(exact);
}

/* ------------------------------------------------------------------------ */
/* base64url                                                                */
/* ------------------------------------------------------------------------ */

Test(jwt, b64url_known_answers)
{
    const struct {
        const char *bin;
        size_t len;
        const char *b64;
    } kat[] = {
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg"},
        {"\xfb\xff\xbf", 3, "-_-_"},
        {"\x00\x01", 2, "AAE"},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        char *e = kz_b64url_encode(kat[i].bin, kat[i].len);
        cr_assert_str_eq(e, kat[i].b64);
        kz_free(e);
        size_t n = 99;
        unsigned char *d = kz_b64url_decode(kat[i].b64, strlen(kat[i].b64), &n);
        cr_assert_not_null(d, "decode %s", kat[i].b64);
        cr_assert_eq(n, kat[i].len);
        cr_assert_eq(memcmp(d, kat[i].bin, n), 0);
        cr_assert_eq(d[n], 0);
        kz_free(d);
    }
}

Test(jwt, b64url_rejects_non_canonical)
{
    const char *bad[] = {
        "Zg==", /* padding */
        "+/+/", /* standard alphabet */
        "Z",    /* impossible length */
        "Zh",   /* non-zero unused bits */
        "Zm9",  /* non-zero unused bits */
        "Zm 9v", "Zm9v\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = 99;
        cr_assert_null(kz_b64url_decode(bad[i], strlen(bad[i]), &n), "'%s'", bad[i]);
    }
    /* length bounds the read */
    size_t n;
    unsigned char *d = kz_b64url_decode("Zm9v====", 4, &n);
    cr_assert_not_null(d);
    cr_assert_eq(n, 3);
    kz_free(d);
}
