#include "net/pool.h"

#include <pthread.h>
#include <stdio.h>

#include "core/alloc.h"
#include "core/metrics.h"

struct kz_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    kz_job_t *head, *tail; /* FIFO of waiting jobs */
    int queued;            /* jobs in the FIFO */
    int max_queue;         /* bound on queued */
    bool stopping;         /* no new jobs; workers exit once the FIFO is empty */
    int nthreads; /* threads started */
    int nctx;     /* contexts created (all of them once create succeeds) */
    pthread_t *threads;
    void **ctx; /* per-worker contexts */
    kz_pool_fini_fn fini;
    void *arg;
};

typedef struct {
    kz_pool_t *pool;
    int index;
} worker_arg_t;

static void *worker_main(void *p)
{
    worker_arg_t *wa = p;
    kz_pool_t *pool = wa->pool;
    void *ctx = pool->ctx[wa->index];
    kz_free(wa);
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->cond, &pool->lock);
        kz_job_t *job = pool->head;
        if (!job) { /* stopping and drained */
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        pool->head = job->next;
        if (!pool->head) pool->tail = NULL;
        pool->queued--;
        pthread_mutex_unlock(&pool->lock);
        kz_metrics_queue_add(-1);
        job->next = NULL;
        job->run(job, ctx);
        if (job->done) job->done(job);
    }
    return NULL;
}

kz_pool_t *kz_pool_create(int nthreads, int max_queue, kz_pool_init_fn init, kz_pool_fini_fn fini,
                          void *arg, char *err, size_t errlen)
{
    kz_pool_t *pool = kz_calloc(1, sizeof *pool);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->max_queue = max_queue;
    pool->fini = fini;
    pool->arg = arg;
    pool->threads = kz_calloc((size_t)nthreads, sizeof *pool->threads);
    pool->ctx = kz_calloc((size_t)nthreads, sizeof *pool->ctx);
    for (int i = 0; i < nthreads; i++) {
        pool->ctx[i] = init ? init(i, arg, err, errlen) : NULL;
        if (init && !pool->ctx[i]) {
            kz_pool_destroy(pool);
            return NULL;
        }
        pool->nctx = i + 1;
    }
    for (int i = 0; i < nthreads; i++) {
        worker_arg_t *wa = kz_malloc(sizeof *wa);
        wa->pool = pool;
        wa->index = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            kz_free(wa);
            pool->nthreads = i;
            kz_pool_destroy(pool);
            return NULL;
        }
        pool->nthreads = i + 1;
    }
    return pool;
}

bool kz_pool_submit(kz_pool_t *pool, kz_job_t *job)
{
    job->next = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping || pool->queued >= pool->max_queue) {
        pthread_mutex_unlock(&pool->lock);
        return false;
    }
    if (pool->tail)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    pool->queued++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    kz_metrics_queue_add(1);
    return true;
}

void kz_pool_destroy(kz_pool_t *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    for (int i = 0; i < pool->nctx; i++)
        if (pool->fini) pool->fini(pool->ctx[i], pool->arg);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
    kz_free(pool->ctx);
    kz_free(pool->threads);
    kz_free(pool);
}
