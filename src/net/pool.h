/* The worker pool: threads where blocking work runs (database calls, password
 * hashing, later Lua). I/O threads submit jobs; a worker runs job->run and
 * then job->done, both on the worker thread. done is where a job hands its
 * result back to the I/O thread that asked (through that thread's queue and
 * wake-up), so the pool itself knows nothing about event loops.
 *
 * Each worker owns a context created by the pool's init callback (a database
 * connection, later a Lua state), passed to every job it runs. */
#ifndef KZ_NET_POOL_H
#define KZ_NET_POOL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kz_pool kz_pool_t;
typedef struct kz_job kz_job_t;

struct kz_job {
    void (*run)(kz_job_t *job, void *worker_ctx); /* the blocking work */
    void (*done)(kz_job_t *job);                  /* called right after run, same thread */
    kz_job_t *next;                               /* private: queue link */
};

/* Creates the worker context of worker i; returns NULL on failure (with a
 * message written to err). */
typedef void *(*kz_pool_init_fn)(int i, void *arg, char *err, size_t errlen);
typedef void (*kz_pool_fini_fn)(void *worker_ctx, void *arg);

/* Starts nthreads workers, each with its own context. max_queue bounds the
 * jobs waiting (not yet running). Returns NULL with err set when a context
 * cannot be created (the ones made so far are released). */
kz_pool_t *kz_pool_create(int nthreads, int max_queue, kz_pool_init_fn init, kz_pool_fini_fn fini,
                          void *arg, char *err, size_t errlen);

/* Queues a job; thread-safe. Returns false when the queue is full or the
 * pool is stopping (the job was not taken: the caller still owns it). */
bool kz_pool_submit(kz_pool_t *pool, kz_job_t *job);

/* Runs every queued job, then stops and joins the workers and releases
 * their contexts. NULL is a no-op. */
void kz_pool_destroy(kz_pool_t *pool);

#endif
