/* kizuna: the server binary.
 *
 *   kizuna [flags]                  run the server
 *   kizuna migrate up|status [flags] apply or list schema migrations
 *   kizuna --help | --version
 */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "lua/runtime.h"
#include "net/http.h"
#include "net/pool.h"
#include "rank/board.h"
#include "realtime/matchmaker.h"
#include "realtime/authoritative.h"
#include "realtime/socket.h"
#include "store/db.h"

#define KZ_POOL_QUEUE_MAX 65536

static void usage(FILE *out)
{
    fprintf(out,
            "kizuna %s - realtime game backend speaking Nakama's client API\n\n"
            "Usage:\n"
            "  kizuna [flags]                    run the server\n"
            "  kizuna migrate up [flags]         apply pending schema migrations\n"
            "  kizuna migrate status [flags]     list schema migrations\n"
            "  kizuna --help | --version\n\n",
            KZ_VERSION);
    kz_config_usage(out);
}

static int run_migrate(const kz_config_t *cfg, const char *action)
{
    char err[512];
    kz_db_t *db;
    if (kz_db_open(cfg->database.address, &db, err, sizeof err) != KZ_DB_OK) {
        kz_log_error("cannot open the database: %s", err);
        return 1;
    }
    int rc;
    if (strcmp(action, "up") == 0) {
        rc = kz_migrate_up(db, err, sizeof err);
        if (rc != KZ_DB_OK)
            kz_log_error("migration failed: %s", err);
        else
            kz_log_info("schema is up to date: %d migration(s) known to this binary", kz_migrate_count());
    } else {
        rc = kz_migrate_status(db, stdout);
    }
    kz_db_close(db);
    return rc == KZ_DB_OK ? 0 : 1;
}

static void on_signal(uv_signal_t *s, int signum)
{
    kz_log_info("received signal %d, shutting down", signum);
    uv_stop(s->loop);
}

/* Prepares the store (migrations), the session deny-list and the Lua
 * modules with one connection, before any worker starts. */
static int prepare_store(const kz_config_t *cfg, kz_sessions_t *sessions)
{
    char err[512];
    kz_db_t *db;
    if (kz_db_open(cfg->database.address, &db, err, sizeof err) != KZ_DB_OK) {
        kz_log_error("cannot open the database: %s", err);
        return -1;
    }
    int rc = kz_migrate_up(db, err, sizeof err);
    if (rc != KZ_DB_OK)
        kz_log_error("migration failed: %s", err);
    else if ((rc = kz_sessions_load(sessions, db)) != KZ_DB_OK)
        kz_log_error("cannot load session revocations: %s", kz_db_errmsg(db));
    else if (kz_lua_init(cfg, db, err, sizeof err) != 0) {
        kz_log_error("%s", err);
        rc = KZ_DB_EERROR;
    } else if ((rc = kz_boards_load(db, kz_now_sec())) != KZ_DB_OK)
        kz_log_error("cannot load the leaderboards: %s", kz_db_errmsg(db));
    kz_db_close(db);
    return rc == KZ_DB_OK ? 0 : -1;
}

static int run_server(const kz_config_t *cfg)
{
    char err[512];
    int status = 1;
    kz_app_t app = {.cfg = cfg, .sessions = kz_sessions_create()};
    kz_sessions_set_global(app.sessions);
    kz_server_t *srv = NULL;
    uv_loop_t *loop = uv_default_loop();
    uv_signal_t sigint, sigterm;

    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    if (strcmp(cfg->socket.server_key, "defaultkey") == 0)
        kz_log_warn("socket.server_key is the default; set your own before going to production");
    if (strcmp(cfg->session.encryption_key, "defaultencryptionkey") == 0)
        kz_log_warn("session.encryption_key is the default; set your own before going to production");

    if (prepare_store(cfg, app.sessions) != 0) goto out;
    kz_metrics_init(kz_route_names(), kz_nroutes);
    kz_rt_init();
    app.pool = kz_pool_create(cfg->database.max_open_conns, KZ_POOL_QUEUE_MAX, kz_api_worker_init,
                              kz_api_worker_fini, &app, err, sizeof err);
    if (!app.pool) {
        kz_log_error("cannot start the worker pool: %s", err);
        goto out;
    }
    if (kz_lb_start(&app) != 0) {
        kz_log_error("cannot start the leaderboard scheduler");
        goto out;
    }
    if (kz_am_start(&app) != 0) {
        kz_log_error("cannot start the match tick thread");
        goto out;
    }
    if (kz_mm_start(&app) != 0) {
        kz_log_error("cannot start the matchmaker");
        goto out;
    }
    srv = kz_server_create(cfg, kz_api_dispatch, &app, err, sizeof err);
    if (!srv) {
        kz_log_error("%s", err);
        goto out;
    }
    app.server = srv;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    if (kz_server_start(srv) != 0) {
        kz_log_error("cannot start the I/O threads");
        goto out;
    }
    kz_log_info("kizuna %s listening on %s:%d (%d I/O threads, %d workers, %s store)%s", KZ_VERSION,
                cfg->socket.address, kz_server_port(srv), cfg->workers, cfg->database.max_open_conns,
                strncmp(cfg->database.address, "postgres", 8) == 0 ? "postgres" : "sqlite",
                cfg->metrics.prometheus_port ? "" : ", metrics off");
    uv_run(loop, UV_RUN_DEFAULT);

    /* Matches get match_terminate while their players are still connected. */
    kz_am_stop();
    /* Stop taking connections, let in-flight requests finish, then drain
     * the pool and close every database connection. */
    kz_server_stop(srv);
    status = 0;
    kz_log_info("stopped");
out:
    /* The pool goes before the server: jobs still running may post work to
     * the I/O threads, whose queues kz_server_destroy drains last. */
    kz_mm_stop();
    kz_lb_stop();
    kz_pool_destroy(app.pool);
    kz_am_free_all();
    kz_boards_shutdown();
    kz_server_destroy(srv);
    kz_sessions_destroy(app.sessions);
    kz_lua_shutdown();
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return status;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("kizuna %s\n", KZ_VERSION);
        return 0;
    }
    const char *migrate = NULL;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "migrate") == 0) {
        if (argc < 3 || (strcmp(argv[2], "up") != 0 && strcmp(argv[2], "status") != 0)) {
            fprintf(stderr, "usage: kizuna migrate up|status [flags]\n");
            return 2;
        }
        migrate = argv[2];
        first = 3;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "cannot initialise libsodium\n");
        return 1;
    }
    kz_config_t cfg;
    char err[512];
    kz_config_defaults(&cfg);
    if (kz_config_from_args(&cfg, argc - first, argv + first, err, sizeof err) != 0 ||
        kz_config_finish(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "kizuna: %s\n", err);
        kz_config_free(&cfg);
        return 2;
    }
    kz_log_set_level(cfg.logger.level);
    int status = migrate ? run_migrate(&cfg, migrate) : run_server(&cfg);
    kz_config_free(&cfg);
    return status;
}
