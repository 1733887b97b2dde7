/* Unit tests for core/strbuf: appends, formatting past the free room,
 * reset, take and free. */
#include "core/strbuf.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(strbuf, appends_stay_nul_terminated)
{
    kz_strbuf_t b = {0};
    kz_strbuf_puts(&b, "ab");
    kz_strbuf_putc(&b, 'c');
    kz_strbuf_add(&b, "d\0e", 3); /* bytes, an embedded NUL included */
    cr_assert_eq(b.len, 6);
    cr_assert_eq(memcmp(b.p, "abcd\0e", 7), 0);
    kz_strbuf_add(&b, "", 0);
    cr_assert_eq(b.len, 6);
    kz_strbuf_free(&b);
    cr_assert_null(b.p);
    cr_assert_eq(b.len, 0);
}

Test(strbuf, printf_grows_past_the_room_it_has)
{
    kz_strbuf_t b = {0};
    kz_strbuf_printf(&b, "%d-%s", 42, "x");
    cr_assert_str_eq(b.p, "42-x");
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    kz_strbuf_printf(&b, "[%s]", big);
    cr_assert_eq(b.len, 4 + 1001);
    cr_assert_eq(b.p[4], '[');
    cr_assert_eq(b.p[1004], ']');
    cr_assert_eq(b.p[1005], '\0');
    cr_assert_eq(strspn(b.p + 5, "z"), 999);
    kz_strbuf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.p, "");
    kz_strbuf_printf(&b, "%s", "again");
    cr_assert_str_eq(b.p, "again");
    char *s = kz_strbuf_take(&b);
    cr_assert_str_eq(s, "again");
    cr_assert_null(b.p);
    free(s);
}

Test(strbuf, take_of_nothing_is_an_empty_string)
{
    kz_strbuf_t b = {0};
    char *s = kz_strbuf_take(&b);
    cr_assert_str_eq(s, "");
    free(s);
}
