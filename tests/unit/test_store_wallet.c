/* Wallet store tests (store/wallet.h): changesets added to the balances,
 * the whole batch rejected by a negative balance, an unknown user or an
 * overflow, updates of one user in request order, the ledger and its
 * paging, account deletion, and concurrent updates of one wallet from
 * several connections. Every test runs on SQLite and on PostgreSQL (see
 * dbfixture.h). */
#include <criterion/criterion.h>
#include <pthread.h>

#include "dbfixture.h"
#include "store/account.h"
#include "store/wallet.h"

#define NOW INT64_C(1700000000000)

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"

static void make_user(kz_db_t *db, const char *id, const char *name)
{
    char device[64];
    snprintf(device, sizeof device, "device-%s", id);
    bool taken = false;
    DB_OK(db, kz_store_user_create(db, id, name, KZ_ID_DEVICE, device, NULL, NOW, &taken));
}

/* The stored wallet text of user id (owned). */
static char *stored_wallet(kz_db_t *db, const char *id)
{
    kz_user_t u;
    DB_OK(db, kz_store_user_find(db, KZ_ID_USER, id, &u));
    char *w = kz_strdup(u.wallet);
    kz_user_clear(&u);
    return w;
}

static void expect_wallet(kz_db_t *db, const char *id, const char *want)
{
    char *w = stored_wallet(db, id);
    cr_assert_str_eq(w, want, "[%s] wallet of %s: %s, want %s", dbfx.label, id, w, want);
    kz_free(w);
}

static int64_t ledger_count(kz_db_t *db, const char *id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(id)};
    return dbfx_count(db, "wallet_ledger", "user_id = $1", p, 1);
}

KZ_DB_TEST(wallet, update_adds_and_reports_both_sides)
{
    make_user(db, U1, "one");
    expect_wallet(db, U1, "{}");
    kz_wallet_update_t u = {U1, "{\"gold\":10,\"gems\":2}", NULL};
    kz_wallet_result_t r;
    DB_OK(db, kz_store_wallet_update(db, &u, 1, false, NOW, &r, NULL));
    cr_assert_str_eq(r.previous, "{}");
    cr_assert_str_eq(r.updated, "{\"gems\":2,\"gold\":10}");
    cr_assert_str_eq(r.ledger_id, "");
    kz_wallet_results_free(&r, 1);
    expect_wallet(db, U1, "{\"gems\":2,\"gold\":10}");
    cr_assert_eq(ledger_count(db, U1), 0, "[%s] no ledger entry unless asked", dbfx.label);

    /* Subtracting down to zero keeps the key; a new key starts from 0. */
    kz_wallet_update_t v = {U1, "{\"gold\":-10,\"wood\":7}", "{\"reason\":\"shop\"}"};
    DB_OK(db, kz_store_wallet_update(db, &v, 1, true, NOW + 1000, &r, NULL));
    cr_assert_str_eq(r.previous, "{\"gems\":2,\"gold\":10}");
    cr_assert_str_eq(r.updated, "{\"gems\":2,\"gold\":0,\"wood\":7}");
    cr_assert_eq(strlen(r.ledger_id), 36);
    kz_wallet_results_free(&r, 1);
    expect_wallet(db, U1, "{\"gems\":2,\"gold\":0,\"wood\":7}");
    cr_assert_eq(ledger_count(db, U1), 1);

    kz_wallet_ledger_t *items;
    int n;
    bool more;
    DB_OK(db, kz_store_wallet_ledger_list(db, U1, 10, 0, NULL, &items, &n, &more));
    cr_assert_eq(n, 1);
    cr_assert_not(more);
    cr_assert_str_eq(items[0].user_id, U1);
    cr_assert_str_eq(items[0].changeset, "{\"gold\":-10,\"wood\":7}");
    cr_assert_str_eq(items[0].metadata, "{\"reason\":\"shop\"}");
    cr_assert_eq(items[0].create_time, NOW + 1000);
    cr_assert_eq(items[0].update_time, NOW + 1000);
    kz_wallet_ledger_free(items, n);
}

KZ_DB_TEST(wallet, negative_balance_rejects_the_whole_batch)
{
    make_user(db, U1, "one");
    make_user(db, U2, "two");
    kz_wallet_update_t seed[] = {{U1, "{\"gold\":5}", NULL}, {U2, "{\"gold\":3}", NULL}};
    kz_wallet_result_t r[2];
    DB_OK(db, kz_store_wallet_update(db, seed, 2, true, NOW, r, NULL));
    kz_wallet_results_free(r, 2);

    /* U1's part would be fine, U2's goes below zero: neither applies. */
    kz_wallet_update_t u[] = {{U1, "{\"gold\":-5,\"gems\":1}", NULL}, {U2, "{\"gold\":-4}", NULL}};
    kz_wallet_error_t err;
    DB_RC(db, kz_store_wallet_update(db, u, 2, true, NOW, r, &err), KZ_WALLET_ENEGATIVE);
    cr_assert_eq(err.index, 1);
    cr_assert_str_eq(err.key, "gold");
    cr_assert_null(r[0].previous, "[%s] results are freed on failure", dbfx.label);
    expect_wallet(db, U1, "{\"gold\":5}");
    expect_wallet(db, U2, "{\"gold\":3}");
    cr_assert_eq(ledger_count(db, U1), 1, "[%s] no ledger entry of the rejected batch", dbfx.label);
    cr_assert_eq(ledger_count(db, U2), 1);
}

KZ_DB_TEST(wallet, unknown_user_and_bad_input_change_nothing)
{
    make_user(db, U1, "one");
    kz_wallet_update_t u[] = {{U1, "{\"gold\":5}", NULL}, {U3, "{\"gold\":1}", NULL}};
    kz_wallet_result_t r[2];
    kz_wallet_error_t err;
    DB_RC(db, kz_store_wallet_update(db, u, 2, true, NOW, r, &err), KZ_STORE_NOTFOUND);
    cr_assert_eq(err.index, 1);
    expect_wallet(db, U1, "{}");
    cr_assert_eq(ledger_count(db, U1), 0);

    /* A changeset that is not an object of integers. */
    const char *bad[] = {"[1]", "{\"gold\":1.5}", "{\"gold\":\"1\"}", "{\"gold\":{\"x\":1}}",
                         "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kz_wallet_update_t b = {U1, bad[i], NULL};
        DB_RC(db, kz_store_wallet_update(db, &b, 1, false, NOW, r, &err), KZ_WALLET_EINVALID);
        cr_assert_eq(err.index, 0);
    }

    /* A balance past the 64-bit range is refused with its key. */
    kz_wallet_update_t big = {U1, "{\"gold\":9223372036854775807}", NULL};
    DB_OK(db, kz_store_wallet_update(db, &big, 1, false, NOW, r, NULL));
    kz_wallet_results_free(r, 1);
    kz_wallet_update_t more = {U1, "{\"gold\":1}", NULL};
    DB_RC(db, kz_store_wallet_update(db, &more, 1, false, NOW, r, &err), KZ_WALLET_EINVALID);
    cr_assert_str_eq(err.key, "gold");
    expect_wallet(db, U1, "{\"gold\":9223372036854775807}");

    /* A stored wallet that is not an object of integers is refused too. */
    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    DB_OK(db,
          kz_db_exec(db, "UPDATE users SET wallet = '{\"gold\":\"x\"}' WHERE id = $1", p, 1, NULL));
    DB_RC(db, kz_store_wallet_update(db, &more, 1, false, NOW, r, &err), KZ_WALLET_EINVALID);
    cr_assert_str_eq(err.key, "");
}

KZ_DB_TEST(wallet, one_user_twice_applies_in_request_order)
{
    make_user(db, U1, "one");
    make_user(db, U2, "two");
    /* U2 sorts after U1 and is listed first: results stay in request order. */
    kz_wallet_update_t u[] = {{U2, "{\"gold\":1}", NULL},
                              {U1, "{\"gold\":10}", NULL},
                              {U1, "{\"gold\":-4}", "{\"n\":2}"}};
    kz_wallet_result_t r[3];
    DB_OK(db, kz_store_wallet_update(db, u, 3, true, NOW, r, NULL));
    cr_assert_str_eq(r[0].previous, "{}");
    cr_assert_str_eq(r[0].updated, "{\"gold\":1}");
    cr_assert_str_eq(r[1].previous, "{}");
    cr_assert_str_eq(r[1].updated, "{\"gold\":10}");
    cr_assert_str_eq(r[2].previous, "{\"gold\":10}");
    cr_assert_str_eq(r[2].updated, "{\"gold\":6}");
    /* The second ledger entry of U1 sorts after the first. */
    cr_assert_lt(strcmp(r[1].ledger_id, r[2].ledger_id), 0, "[%s] %s then %s", dbfx.label,
                 r[1].ledger_id, r[2].ledger_id);
    kz_wallet_results_free(r, 3);
    expect_wallet(db, U1, "{\"gold\":6}");
    expect_wallet(db, U2, "{\"gold\":1}");
}

KZ_DB_TEST(wallet, ledger_pages_in_order)
{
    make_user(db, U1, "one");
    make_user(db, U2, "two");
    for (int i = 0; i < 5; i++) {
        char cs[32];
        snprintf(cs, sizeof cs, "{\"gold\":%d}", i + 1);
        kz_wallet_update_t u[] = {{U1, cs, NULL}, {U2, "{\"x\":1}", NULL}};
        kz_wallet_result_t r[2];
        /* Two entries share each millisecond: the ids keep their order. */
        DB_OK(db, kz_store_wallet_update(db, u, 2, true, NOW + (i / 2) * 1000, r, NULL));
        kz_wallet_results_free(r, 2);
    }
    int seen = 0;
    int64_t after_time = 0;
    char after_id[37] = "";
    for (int page = 0; page < 3; page++) {
        kz_wallet_ledger_t *items;
        int n;
        bool more;
        DB_OK(db, kz_store_wallet_ledger_list(db, U1, 2, after_time, after_id, &items, &n, &more));
        cr_assert_eq(n, page < 2 ? 2 : 1, "[%s] page %d has %d", dbfx.label, page, n);
        cr_assert_eq(more, page < 2, "[%s] page %d more", dbfx.label, page);
        for (int i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof want, "{\"gold\":%d}", ++seen);
            cr_assert_str_eq(items[i].changeset, want, "[%s] entry %d", dbfx.label, seen);
            cr_assert_str_eq(items[i].user_id, U1);
        }
        after_time = items[n - 1].create_time;
        memcpy(after_id, items[n - 1].id, 37);
        kz_wallet_ledger_free(items, n);
    }
    cr_assert_eq(seen, 5);
}

KZ_DB_TEST(wallet, account_deletion_removes_the_ledger)
{
    make_user(db, U1, "one");
    make_user(db, U2, "two");
    kz_wallet_update_t u[] = {{U1, "{\"gold\":1}", NULL}, {U2, "{\"gold\":1}", NULL}};
    kz_wallet_result_t r[2];
    DB_OK(db, kz_store_wallet_update(db, u, 2, true, NOW, r, NULL));
    kz_wallet_results_free(r, 2);
    DB_OK(db, kz_store_user_delete(db, U1));
    cr_assert_eq(ledger_count(db, U1), 0);
    cr_assert_eq(ledger_count(db, U2), 1);
}

/* Concurrent updates of one wallet: each thread adds 1 ITER times on its
 * own connection; the row lock makes them add up exactly. */
enum { THREADS = 4, ITER = 25 };

static void *adder(void *arg)
{
    (void)arg;
    kz_db_t *db = dbfx_open_again();
    kz_wallet_update_t u = {U1, "{\"gold\":1}", NULL};
    for (int i = 0; i < ITER; i++) {
        kz_wallet_result_t r;
        int rc = kz_store_wallet_update(db, &u, 1, true, NOW, &r, NULL);
        cr_assert_eq(rc, KZ_DB_OK, "[%s] concurrent update %d: %s", dbfx.label, rc,
                     kz_db_errmsg(db));
        kz_wallet_results_free(&r, 1);
    }
    kz_db_close(db);
    return NULL;
}

KZ_DB_TEST(wallet, concurrent_updates_add_up)
{
    make_user(db, U1, "one");
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, adder, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char want[32];
    snprintf(want, sizeof want, "{\"gold\":%d}", THREADS * ITER);
    expect_wallet(db, U1, want);
    cr_assert_eq(ledger_count(db, U1), THREADS * ITER);
}

KZ_DB_TEST(wallet, ledger_update_replaces_metadata)
{
    make_user(db, U1, "one");
    kz_wallet_update_t u = {U1, "{\"gold\":3}", "{\"why\":\"gift\"}"};
    kz_wallet_result_t r;
    DB_OK(db, kz_store_wallet_update(db, &u, 1, true, NOW, &r, NULL));
    kz_wallet_ledger_t e;
    DB_OK(db, kz_store_wallet_ledger_update(db, r.ledger_id, "{\"why\":\"refund\"}", NOW + 500, &e));
    cr_assert_str_eq(e.id, r.ledger_id);
    cr_assert_str_eq(e.user_id, U1);
    cr_assert_str_eq(e.changeset, "{\"gold\":3}");
    cr_assert_str_eq(e.metadata, "{\"why\":\"refund\"}");
    cr_assert_eq(e.create_time, NOW);
    cr_assert_eq(e.update_time, NOW + 500);
    kz_wallet_ledger_clear(&e);
    kz_wallet_ledger_t *items;
    int n;
    bool more;
    DB_OK(db, kz_store_wallet_ledger_list(db, U1, 10, 0, NULL, &items, &n, &more));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(items[0].metadata, "{\"why\":\"refund\"}");
    kz_wallet_ledger_free(items, n);
    kz_wallet_results_free(&r, 1);
    cr_assert_eq(kz_store_wallet_ledger_update(db, "99999999-9999-4999-8999-999999999999", "{}", NOW, &e),
                 KZ_STORE_NOTFOUND);
    cr_assert_null(e.metadata);
}
