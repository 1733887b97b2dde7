/* The worker pool: jobs run once each with their worker's context, the
 * queue bound refuses work, and destroy drains what was queued. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "net/pool.h"

typedef struct {
    kz_job_t job;
    int worker;      /* index of the worker that ran it */
    _Atomic int *done_count;
    pthread_mutex_t *gate; /* held by the test to block workers, or NULL */
    _Atomic int *started;  /* set when the job begins, or NULL */
} test_job_t;

static void *init_ctx(int i, void *arg, char *err, size_t errlen)
{
    int *ctx = kz_malloc(sizeof *ctx);
    *ctx = i;
    return ctx;
}

static void fini_ctx(void *ctx, void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    kz_free(ctx);
}

static void run_job(kz_job_t *job, void *ctx)
{
    test_job_t *t = (test_job_t *)job;
    if (t->started) atomic_store(t->started, 1);
    if (t->gate) {
        pthread_mutex_lock(t->gate);
        pthread_mutex_unlock(t->gate);
    }
    t->worker = *(int *)ctx;
}

static void done_job(kz_job_t *job)
{
    test_job_t *t = (test_job_t *)job;
    atomic_fetch_add(t->done_count, 1);
}

Test(pool, runs_every_job_once_and_releases_contexts)
{
    _Atomic int finis = 0, done = 0;
    char err[128];
    kz_pool_t *pool = kz_pool_create(3, 10000, init_ctx, fini_ctx, (void *)&finis, err, sizeof err);
    cr_assert_not_null(pool);
    enum { N = 5000 };
    test_job_t *jobs = kz_calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i] = (test_job_t){.job = {.run = run_job, .done = done_job}, .worker = -1, .done_count = &done};
        cr_assert(kz_pool_submit(pool, &jobs[i].job));
    }
    kz_pool_destroy(pool); /* drains the queue first */
    cr_assert_eq(atomic_load(&done), N);
    cr_assert_eq(atomic_load(&finis), 3);
    for (int i = 0; i < N; i++) cr_assert(jobs[i].worker >= 0 && jobs[i].worker < 3);
    kz_free(jobs);
}

Test(pool, queue_bound_refuses_work)
{
    _Atomic int finis = 0, done = 0;
    char err[128];
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&gate);
    kz_pool_t *pool = kz_pool_create(1, 4, init_ctx, fini_ctx, (void *)&finis, err, sizeof err);
    test_job_t jobs[8];
    for (int i = 0; i < 8; i++)
        jobs[i] = (test_job_t){.job = {.run = run_job, .done = done_job}, .done_count = &done, .gate = &gate};
    /* The first job occupies the only worker (blocked on the gate); four
     * more fill the queue; the sixth is refused. */
    _Atomic int started = 0;
    jobs[0].started = &started;
    cr_assert(kz_pool_submit(pool, &jobs[0].job));
    while (!atomic_load(&started)) sched_yield();
    for (int i = 1; i < 5; i++) cr_assert(kz_pool_submit(pool, &jobs[i].job), "job %d", i);
    cr_assert_not(kz_pool_submit(pool, &jobs[5].job));
    int accepted = 5;
    pthread_mutex_unlock(&gate);
    kz_pool_destroy(pool);
    cr_assert_eq(atomic_load(&done), accepted);
}

static void *failing_init(int i, void *arg, char *err, size_t errlen)
{
    if (i == 2) {
        snprintf(err, errlen, "no connection for worker %d", i);
        return NULL;
    }
    return init_ctx(i, arg, err, errlen);
}

Test(pool, failed_context_releases_the_others)
{
    _Atomic int finis = 0;
    char err[128] = "";
    kz_pool_t *pool = kz_pool_create(4, 16, failing_init, fini_ctx, (void *)&finis, err, sizeof err);
    cr_assert_null(pool);
    cr_assert_str_eq(err, "no connection for worker 2");
    cr_assert_eq(atomic_load(&finis), 2);
}
