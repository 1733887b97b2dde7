/* kizuna-loadtest worker processes and the protocol they speak.
 *
 * A worker is `kizuna-loadtest worker` (a hidden subcommand), started by
 * the coordinator (main.c) or by an agent. It reads one start line (JSON)
 * on stdin, runs its share of the bots on one libuv loop and writes JSON
 * lines on stdout:
 *
 *   -> {"t":"start","scenario":TEXT,"file":NAME,"overrides":{...},"run":"1a2b3c4d",
 *       "start_in_ms":500,"lo":0,"hi":5000,"sources":["127.0.0.1",...],"processes":0}
 *   <- {"t":"stats","delta":<lt_stats_to_json>}    once per run second
 *   <- {"t":"error","msg":"..."}                   fatal problem (then "done")
 *   <- {"t":"done"}                                the end
 *   -> {"t":"stop"}                                (optional) end the run now
 *
 * Bots [lo, hi) start on the scenario's global arrival schedule (bot i at
 * lt_arrival_time_ms(i) after the start), so K workers together keep the
 * scenario's rate. When the run's duration is over every bot still running
 * is stopped (counted as finished), sockets get a clean close (2 s grace),
 * and the last delta goes out. An agent forwards the same lines over TCP,
 * so a coordinator treats local workers and agents alike. */
#ifndef KZ_LOADTEST_RUNNER_H
#define KZ_LOADTEST_RUNNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadtest/scenario.h"

#define LT_MAX_LINE (64u << 20)  /* bound of one protocol line */
#define LT_MAX_SOURCES 256       /* source addresses per start message */
#define LT_STOP_GRACE_MS 2000    /* close handshakes at the end may take this long */

/* The start message. Strings are owned (lt_start_clear frees them). */
typedef struct {
    char *scenario;     /* the scenario file's text */
    size_t scenario_len;
    char *file;         /* the file name, for messages */
    lt_overrides_t ov;  /* command-line overrides (strings owned) */
    char run_id[LT_RUN_ID_LEN + 1];
    int64_t start_in_ms; /* the run starts this long after the message arrives */
    int64_t lo, hi;      /* bots [lo, hi) */
    char **sources;      /* source addresses; may be empty (the OS picks) */
    size_t nsources;
    int processes;       /* agents: worker processes to use, 0 = auto */
} lt_start_t;

/* New reference {"t":"start",...}. */
json_t *lt_start_to_json(const lt_start_t *st);
/* Reads a start message into st (zeroed first). 0, or -1 with a message
 * (st then holds nothing to free; lt_start_clear on it is harmless). */
int lt_start_from_json(const json_t *j, lt_start_t *st, char *err, size_t errlen);
void lt_start_clear(lt_start_t *st);

/* Raises the soft open-files limit to the hard limit; returns the new
 * soft limit (or -1). */
long lt_raise_nofile(void);

/* The worker: reads the start line from in_fd, runs, writes lines to
 * out_fd. Returns the process exit status (0 unless the start message or
 * the scenario was bad). */
int lt_worker_main(int in_fd, int out_fd);

/* The second a per-second tick at run time now_ms closes: the one that just
 * ended (now_ms / 1000 - 1), at most `last`; -1 before the first ended. A
 * worker whose loop stalled past several seconds sends the seconds it
 * skipped as empty deltas and labels what it recorded with this second. */
int64_t lt_tick_second(int64_t now_ms, int64_t last);

/* Writes all of line[0..len) and a newline to fd (blocking). -1 on error.
 * Only for lines written before the worker's loop runs (errors about the
 * start message): the worker writes through the loop, see runner.c. */
int lt_write_line(int fd, const char *line, size_t len);

#endif
