/* Request input helpers of api/input.c: JSON fields and query strings. */
#include <criterion/criterion.h>
#include <string.h>

#include "api/api.h"
#include "core/alloc.h"
#include "store/account.h"

static kz_slice_t sl(const char *s)
{
    return (kz_slice_t){s, strlen(s)};
}

Test(input, url_decode)
{
    char *s = kz_url_decode("a%20b+c%2Fd%c3%a9", 17);
    cr_assert_str_eq(s, "a b c/d\xc3\xa9");
    kz_free(s);
    cr_assert_null(kz_url_decode("bad%2", 5));
    cr_assert_null(kz_url_decode("bad%zz", 6));
    cr_assert_null(kz_url_decode("%", 1));
    s = kz_url_decode("", 0);
    cr_assert_str_eq(s, "");
    kz_free(s);
}

Test(input, query_get_snake_and_camel)
{
    kz_slice_t q = sl("create=false&user_name=x&refreshToken=abc&username=Al%20Ice");
    char *v = kz_query_get(q, "username");
    cr_assert_str_eq(v, "Al Ice");
    kz_free(v);
    v = kz_query_get(q, "refresh_token");
    cr_assert_str_eq(v, "abc");
    kz_free(v);
    cr_assert_null(kz_query_get(q, "missing"));
    v = kz_query_get(sl("flag"), "flag");
    cr_assert_str_eq(v, "");
    kz_free(v);
}

Test(input, query_all_repeated)
{
    char **vals;
    int n = kz_query_all(sl("ids=a&x=1&ids=b&ids=c%2Bd"), "ids", &vals);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(vals[0], "a");
    cr_assert_str_eq(vals[1], "b");
    cr_assert_str_eq(vals[2], "c+d");
    kz_store_strings_free(vals, n);
    n = kz_query_all(sl(""), "ids", &vals);
    cr_assert_eq(n, 0);
    kz_store_strings_free(vals, n);
}

Test(input, query_bool)
{
    bool b;
    cr_assert_eq(kz_query_bool(sl(""), "create", true, &b), 0);
    cr_assert(b);
    const char *yes[] = {"create=true", "create=1", "create=t", "create=TRUE", "create=True"};
    const char *no[] = {"create=false", "create=0", "create=f", "create=FALSE", "create=False"};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(kz_query_bool(sl(yes[i]), "create", false, &b), 0);
        cr_assert(b, "%s", yes[i]);
        cr_assert_eq(kz_query_bool(sl(no[i]), "create", true, &b), 0);
        cr_assert_not(b, "%s", no[i]);
    }
    cr_assert_eq(kz_query_bool(sl("create=yes"), "create", true, &b), -1);
    cr_assert_eq(kz_query_bool(sl("create="), "create", true, &b), -1);
}

/* A call whose replies land in a bare exchange, as on a worker. */
static kz_call_t *call_with_body(const char *body)
{
    kz_call_t *call = kz_calloc(1, sizeof *call);
    call->ex = kz_calloc(1, sizeof *call->ex);
    call->ex->req.body = kz_strdup(body);
    call->ex->req.body_len = strlen(body);
    return call;
}

static void call_free(kz_call_t *call)
{
    kz_free(call->ex->req.body);
    kz_free(call->ex->resp.body);
    kz_free(call->ex->resp.extra_headers);
    kz_free(call->ex);
    kz_free(call);
}

Test(input, body_object_and_fields)
{
    kz_call_t *call = call_with_body("{\"refreshToken\":\"r\",\"token\":\"t\",\"vars\":{\"a\":\"1\"}}");
    json_t *o = kz_body_object(call);
    cr_assert_not_null(o);
    const char *s;
    cr_assert_eq(kz_json_string(call, o, "refresh_token", &s), 0);
    cr_assert_str_eq(s, "r");
    cr_assert_eq(kz_json_string(call, o, "token", &s), 0);
    cr_assert_str_eq(s, "t");
    cr_assert_eq(kz_json_string(call, o, "absent", &s), 0);
    cr_assert_null(s);
    json_t *vars;
    cr_assert_eq(kz_json_vars(call, o, "vars", &vars), 0);
    cr_assert_str_eq(json_string_value(json_object_get(vars, "a")), "1");
    json_decref(vars);
    cr_assert_eq(call->ex->resp.status, 0, "nothing answered");
    json_decref(o);
    call_free(call);
}

Test(input, empty_body_is_empty_object)
{
    kz_call_t *call = call_with_body("  \n");
    json_t *o = kz_body_object(call);
    cr_assert(json_is_object(o));
    cr_assert_eq(json_object_size(o), 0);
    json_decref(o);
    call_free(call);
}

Test(input, bad_bodies_answer_400)
{
    const char *bad[] = {"{", "[1,2]", "\"str\"", "{\"a\":1,\"a\":2}", "nul", "{} {}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kz_call_t *call = call_with_body(bad[i]);
        cr_assert_null(kz_body_object(call), "%s", bad[i]);
        cr_assert_eq(call->ex->resp.status, 400, "%s", bad[i]);
        cr_assert_not_null(strstr(call->ex->resp.body, "\"code\":3"), "%s", bad[i]);
        call_free(call);
    }
}

Test(input, wrong_types_answer_400)
{
    kz_call_t *call = call_with_body("{\"id\":123,\"vars\":{\"a\":1},\"v2\":[]}");
    json_t *o = kz_body_object(call);
    const char *s;
    cr_assert_eq(kz_json_string(call, o, "id", &s), -1);
    cr_assert_eq(call->ex->resp.status, 400);
    json_t *vars;
    cr_assert_eq(kz_json_vars(call, o, "vars", &vars), -1);
    cr_assert_null(vars);
    cr_assert_eq(kz_json_vars(call, o, "v2", &vars), -1);
    json_decref(o);
    call_free(call);
}
