/* Route matching and the reply helpers of api/router.c. */
#include <criterion/criterion.h>
#include <http_parser.h>
#include <string.h>

#include "api/api.h"
#include "core/alloc.h"

static kz_slice_t sl(const char *s)
{
    return (kz_slice_t){s, strlen(s)};
}

static const char *find_name(int method, const char *path, bool *known)
{
    kz_slice_t params[KZ_MAX_PATH_PARAMS];
    int n;
    const kz_route_t *r = kz_route_find(method, sl(path), params, &n, known);
    return r ? r->name : NULL;
}

Test(router, literal_routes)
{
    bool known;
    cr_assert_str_eq(find_name(HTTP_POST, "/v2/account/authenticate/device", &known), "AuthenticateDevice");
    cr_assert_str_eq(find_name(HTTP_POST, "/v2/account/authenticate/email", &known), "AuthenticateEmail");
    cr_assert_str_eq(find_name(HTTP_GET, "/v2/account", &known), "GetAccount");
    cr_assert_str_eq(find_name(HTTP_PUT, "/v2/account", &known), "UpdateAccount");
    cr_assert_str_eq(find_name(HTTP_DELETE, "/v2/account", &known), "DeleteAccount");
    cr_assert_str_eq(find_name(HTTP_POST, "/v2/session/logout", &known), "SessionLogout");
    cr_assert_str_eq(find_name(HTTP_GET, "/healthcheck", &known), "Healthcheck");
    cr_assert_str_eq(find_name(HTTP_GET, "/", &known), "Root");
}

Test(router, known_path_other_method_is_not_found_but_known)
{
    bool known = false;
    cr_assert_null(find_name(HTTP_PATCH, "/v2/account", &known));
    cr_assert(known);
    cr_assert_null(find_name(HTTP_GET, "/v2/account/authenticate/device", &known));
    cr_assert(known);
}

Test(router, unknown_paths)
{
    bool known = true;
    const char *paths[] = {"/v2/accounts", "/v2/account/", "/v2", "", "/healthcheck/x",
                           "/v2/account/authenticate/device/extra", "//v2/account"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        cr_assert_null(find_name(HTTP_GET, paths[i], &known), "%s", paths[i]);
        cr_assert_not(known, "%s", paths[i]);
    }
}

Test(router, route_names_cover_the_table)
{
    const char *const *names = kz_route_names();
    cr_assert_gt(kz_nroutes, 30);
    for (int i = 0; i < kz_nroutes; i++) cr_assert_str_eq(names[i], kz_routes[i].name);
}

Test(router, every_pattern_matches_itself_only_with_its_method)
{
    for (int i = 0; i < kz_nroutes; i++) {
        bool known;
        kz_slice_t params[KZ_MAX_PATH_PARAMS];
        int n;
        const kz_route_t *r =
            kz_route_find(kz_routes[i].method, sl(kz_routes[i].pattern), params, &n, &known);
        cr_assert_eq(r, &kz_routes[i], "%s", kz_routes[i].pattern);
    }
}

Test(router, grpc_to_http_status)
{
    int codes[][2] = {{0, 200}, {3, 400},  {5, 404}, {6, 409}, {7, 403}, {8, 429}, {9, 400},
                      {12, 501}, {13, 500}, {14, 503}, {16, 401}, {2, 500}, {99, 500}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        cr_assert_eq(kz_grpc_http_status(codes[i][0]), codes[i][1], "code %d", codes[i][0]);
}

Test(router, error_body_shape_and_www_authenticate)
{
    kz_exchange_t ex = {0};
    kz_reply_error(&ex, KZ_GRPC_UNAUTHENTICATED, "Auth token \"invalid\"");
    cr_assert_eq(ex.resp.status, 401);
    cr_assert_str_eq(ex.resp.body, "{\"code\":16,\"message\":\"Auth token \\\"invalid\\\"\"}");
    cr_assert_str_eq(ex.resp.extra_headers, "WWW-Authenticate: Auth token \"invalid\"\r\n");
    kz_reply_error(&ex, KZ_GRPC_NOT_FOUND, "Not Found");
    cr_assert_eq(ex.resp.status, 404);
    cr_assert_str_eq(ex.resp.body, "{\"code\":5,\"message\":\"Not Found\"}");
    kz_free(ex.resp.body);
    kz_free(ex.resp.extra_headers);
}
