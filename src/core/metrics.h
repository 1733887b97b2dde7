/* Prometheus metrics. Counters and histograms are plain atomics in fixed
 * arrays, so recording from any thread costs a few relaxed atomic adds and
 * never takes a lock. Rendering walks the arrays. */
#ifndef KZ_CORE_METRICS_H
#define KZ_CORE_METRICS_H

#include <stddef.h>

/* Registers the route names (borrowed, must outlive the process); route
 * index nroutes is used for requests that matched no route. Call once at
 * start-up before any observation. */
void kz_metrics_init(const char *const *route_names, int nroutes);

/* One finished HTTP request: route index (or -1 for "unmatched"), HTTP
 * status, duration in seconds. */
void kz_metrics_http_observe(int route, int status, double seconds);
/* Open client connections (HTTP and WebSocket) go up or down by delta. */
void kz_metrics_connections_add(int delta);
/* Jobs waiting in the worker-pool queue go up or down by delta. */
void kz_metrics_queue_add(int delta);
/* One database statement took this many seconds. */
void kz_metrics_db_observe(double seconds);

/* A value another module owns, read when the metrics are rendered (from
 * the metrics thread: fn must be thread-safe). type is "counter" or
 * "gauge"; name, type and help are borrowed and must outlive the process.
 * Register at start-up, before the metrics endpoint serves; at most
 * KZ_METRICS_MAX_VALUES. */
#define KZ_METRICS_MAX_VALUES 32
void kz_metrics_register_value(const char *name, const char *type, const char *help, double (*fn)(void));

/* Renders the Prometheus text exposition format into a fresh owned buffer
 * (free with kz_free); *len receives its length. */
char *kz_metrics_render(size_t *len);

#endif
