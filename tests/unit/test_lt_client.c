/* Unit tests for tools/client (libkzclient): a tiny scripted TCP server runs
 * in the test's own loop and plays byte sequences (HTTP responses with
 * Content-Length, chunked and read-until-close bodies, keep-alive and
 * closes; WebSocket upgrades, frames split at odd boundaries, bad accept
 * keys, server closes), and the tests check what the client reports and
 * what it sent (requests, masked frames). Every test ends with no client
 * connection or socket left. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"
#include "core/sha1.h"

#include "lt_script.h"

static kzc_target_t target(void)
{
    return (kzc_target_t){.host = "127.0.0.1", .port = srv.port, .timeout_ms = 5000};
}

/* One HTTP result. */
typedef struct {
    int status;
    char body[4096];
    size_t len;
    char err[64];
    int calls;
} res_t;

static res_t res[4];
static int nres, want_res;

static void http_cb(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    res_t *r = &res[nres++];
    r->calls++;
    r->status = status;
    r->len = len;
    if (body) {
        cr_assert_eq(body[len], '\0', "body is NUL-terminated");
        memcpy(r->body, body, len < sizeof r->body ? len : sizeof r->body - 1);
    }
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
    if (nres == want_res) done = true;
}

/* Runs `n` requests one after the other on c (each GET /n unless given). */
static void chain_cb(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    http_cb(c, status, body, len, err, arg);
    if (nres < want_res) {
        char path[16];
        snprintf(path, sizeof path, "/%d", nres);
        cr_assert_eq(kzc_http_request(c, "GET", path, NULL, NULL, 0, chain_cb, NULL), 0);
    }
}

static void http_run(kzc_conn_t *c, int n)
{
    nres = 0;
    want_res = n;
    memset(res, 0, sizeof res);
    cr_assert_eq(kzc_http_request(c, "GET", "/0", NULL, NULL, 0, chain_cb, NULL), 0);
    run_until_done();
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */

TestSuite(lt_client, .init = setup, .fini = teardown);

Test(lt_client, http_keep_alive_content_length_then_chunked)
{
    static const char r1[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    static const char r2[] = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "4\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    const act_t prog[] = {DO(A_REQ), SEND(r1, sizeof r1 - 1), DO(A_REQ), SPLIT(r2, sizeof r2 - 1, 3), DO(A_END)};
    srv.progs[0] = prog;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    nres = 0;
    want_res = 2;
    memset(res, 0, sizeof res);
    cr_assert_eq(kzc_http_request(c, "POST", "/v2/x?y=1", "Bearer tok", "{\"a\":1}", 7, chain_cb, NULL), 0);
    cr_assert(kzc_http_busy(c));
    cr_assert_eq(kzc_http_request(c, "GET", "/again", NULL, NULL, 0, chain_cb, NULL), -1, "one at a time");
    run_until_done();
    cr_assert_eq(res[0].status, 200);
    cr_assert_str_eq(res[0].body, "hello");
    cr_assert_eq(res[1].status, 201);
    cr_assert_str_eq(res[1].body, "wikipedia in\r\n\r\nchunks.");
    cr_assert_eq(res[1].len, 23);
    cr_assert_eq(srv.nconns, 1, "keep-alive: one connection");
    cr_assert_eq(srv.nreqs, 2);
    cr_assert(strncmp(srv.reqs[0], "POST /v2/x?y=1 HTTP/1.1\r\n", 25) == 0, "%s", srv.reqs[0]);
    cr_assert(strstr(srv.reqs[0], "\r\nAuthorization: Bearer tok\r\n"));
    cr_assert(strstr(srv.reqs[0], "\r\nContent-Length: 7\r\n"));
    cr_assert(strstr(srv.reqs[0], "\r\nContent-Type: application/json\r\n"));
    cr_assert(strstr(srv.reqs[0], "\r\n\r\n{\"a\":1}"));
    cr_assert(strncmp(srv.reqs[1], "GET /1 HTTP/1.1\r\n", 17) == 0, "%s", srv.reqs[1]);
    cr_assert_null(strstr(srv.reqs[1], "Content-Length"), "a GET without body has no Content-Length");
    cr_assert(kzc_is_connected(c));
    kzc_io_stats_t io = kzc_io_stats(c);
    cr_assert_eq(io.bytes_in, sizeof r1 - 1 + sizeof r2 - 1);
    kzc_free(c);
}

Test(lt_client, http_one_byte_pieces)
{
    static const char r1[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Long-Header: abcdefghij\r\n\r\n"
                             "3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n";
    const act_t prog[] = {DO(A_REQ), SPLIT(r1, sizeof r1 - 1, 1), DO(A_END)};
    srv.progs[0] = prog;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 200);
    cr_assert_str_eq(res[0].body, "abcd");
    kzc_free(c);
}

Test(lt_client, http_connection_close_reconnects)
{
    static const char r1[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\na";
    static const char r2[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nb";
    const act_t p1[] = {DO(A_REQ), SEND(r1, sizeof r1 - 1), DO(A_CLOSE)};
    const act_t p2[] = {DO(A_REQ), SEND(r2, sizeof r2 - 1), DO(A_END)};
    srv.progs[0] = p1;
    srv.progs[1] = p2;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 2);
    cr_assert_eq(res[0].status, 200);
    cr_assert_str_eq(res[0].body, "a");
    cr_assert_eq(res[1].status, 404);
    cr_assert_str_eq(res[1].body, "b");
    cr_assert_eq(srv.nconns, 2);
    kzc_free(c);
}

Test(lt_client, http_retries_once_when_kept_alive_socket_was_closed)
{
    /* The server takes the second request and closes without a reply: the
     * client sends it again on a fresh connection. */
    static const char r1[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
    static const char r2[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb";
    const act_t p1[] = {DO(A_REQ), SEND(r1, sizeof r1 - 1), DO(A_REQ), DO(A_CLOSE)};
    const act_t p2[] = {DO(A_REQ), SEND(r2, sizeof r2 - 1), DO(A_END)};
    srv.progs[0] = p1;
    srv.progs[1] = p2;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 2);
    cr_assert_str_eq(res[1].err, "");
    cr_assert_eq(res[1].status, 200);
    cr_assert_str_eq(res[1].body, "b");
    cr_assert_eq(srv.nconns, 2);
    cr_assert_eq(srv.nreqs, 3);
    cr_assert_str_eq(srv.reqs[1], srv.reqs[2], "the same request again");
    kzc_free(c);
}

Test(lt_client, http_no_retry_on_fresh_connection)
{
    const act_t p1[] = {DO(A_REQ), DO(A_CLOSE)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 0);
    cr_assert_str_eq(res[0].err, "closed");
    cr_assert_eq(srv.nconns, 1);
    kzc_free(c);
}

Test(lt_client, http_body_until_close)
{
    static const char r1[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it";
    const act_t p1[] = {DO(A_REQ), SPLIT(r1, sizeof r1 - 1, 7), DO(A_CLOSE)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 200);
    cr_assert_str_eq(res[0].body, "all of it");
    cr_assert_not(kzc_is_connected(c));
    kzc_free(c);
}

Test(lt_client, http_body_bound)
{
    static char r1[2048];
    int n = snprintf(r1, sizeof r1, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    memset(r1 + n, 'x', 1000);
    const act_t p1[] = {DO(A_REQ), SEND(r1, (size_t)n + 1000), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    t.max_body = 100;
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 0);
    cr_assert_str_eq(res[0].err, "body too large");
    cr_assert_not(kzc_is_connected(c), "the socket is dropped");
    kzc_free(c);
}

Test(lt_client, http_bad_response)
{
    static const char r1[] = "SMTP ready\r\n\r\n";
    const act_t p1[] = {DO(A_REQ), SEND(r1, sizeof r1 - 1), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 0);
    cr_assert_str_eq(res[0].err, "bad response");
    kzc_free(c);
}

Test(lt_client, http_timeout)
{
    const act_t p1[] = {DO(A_REQ), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    t.timeout_ms = 100;
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 0);
    cr_assert_str_eq(res[0].err, "timeout");
    cr_assert_eq(res[0].calls, 1);
    kzc_free(c);
}

Test(lt_client, http_connect_refused)
{
    kzc_target_t t = target();
    uv_close((uv_handle_t *)&srv.listener, NULL); /* nobody listens on the port any more */
    uv_run(&loop, UV_RUN_NOWAIT);
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 0);
    cr_assert_str_eq(res[0].err, "connect ECONNREFUSED");
    kzc_free(c);
}

Test(lt_client, http_bad_source_address)
{
    kzc_target_t t = target();
    t.source_addr = "not-an-ip";
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 0);
    cr_assert_str_eq(res[0].err, "bad source address not-an-ip");
    kzc_free(c);
}

Test(lt_client, http_source_address)
{
    static const char r1[] = "HTTP/1.1 204 No Content\r\n\r\n";
    const act_t p1[] = {DO(A_REQ), SEND(r1, sizeof r1 - 1), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    t.source_addr = "127.0.0.1";
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    http_run(c, 1);
    cr_assert_eq(res[0].status, 204);
    cr_assert_eq(res[0].len, 0);
    kzc_free(c);
}

static void free_in_cb(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    http_cb(c, status, body, len, err, arg);
    kzc_free(c);
}

Test(lt_client, http_free_from_callback)
{
    static const char r1[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const act_t p1[] = {DO(A_REQ), SEND(r1, sizeof r1 - 1), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    kzc_conn_t *c = kzc_http_new(&loop, &t);
    nres = 0;
    want_res = 1;
    cr_assert_eq(kzc_http_request(c, "GET", "/", NULL, NULL, 0, free_in_cb, NULL), 0);
    run_until_done();
    cr_assert_eq(res[0].status, 200);
}

/* ------------------------------------------------------------------------ */
/* WebSocket                                                                */

typedef struct {
    bool opened;
    int closes;
    int code;
    char reason[64];
    char msgs[8][512];
    bool binary[8];
    size_t lens[8];
    int nmsgs;
    int close_after; /* close with 1000 once this many messages arrived (0: no) */
    int free_after;  /* kzc_free once this many arrived (0: no) */
    int send_on_open;
    bool null_data; /* on_message got data == NULL */
} wsrec_t;

static wsrec_t rec;

static void ws_on_open(kzc_conn_t *c, void *arg)
{
    rec.opened = true;
    cr_assert(kzc_ws_is_open(c));
    if (rec.send_on_open) {
        cr_assert_eq(kzc_ws_send(c, false, "hello server", 12), 0);
        static char big[300];
        memset(big, 'z', sizeof big);
        cr_assert_eq(kzc_ws_send(c, true, big, sizeof big), 0);
    }
}

static void ws_on_message(kzc_conn_t *c, bool binary, const char *data, size_t len, void *arg)
{
    cr_assert_lt(rec.nmsgs, 8);
    if (!data) {
        rec.null_data = true;
        data = "";
    }
    memcpy(rec.msgs[rec.nmsgs], data, len < 511 ? len : 511);
    rec.binary[rec.nmsgs] = binary;
    rec.lens[rec.nmsgs] = len;
    rec.nmsgs++;
    if (rec.close_after && rec.nmsgs == rec.close_after) kzc_ws_close(c, 1000);
    if (rec.free_after && rec.nmsgs == rec.free_after) {
        kzc_free(c);
        done = true;
    }
}

static void ws_on_close(kzc_conn_t *c, int code, const char *reason, void *arg)
{
    rec.closes++;
    rec.code = code;
    snprintf(rec.reason, sizeof rec.reason, "%s", reason);
    cr_assert_not(kzc_ws_is_open(c));
    done = true;
}

static const kzc_ws_cbs_t ws_cbs = {ws_on_open, ws_on_message, ws_on_close};

static void ws_reset(void)
{
    memset(&rec, 0, sizeof rec);
}

Test(lt_client, ws_upgrade_frames_split_ping_and_server_close)
{
    static char frames[2048];
    size_t n = 0;
    script_frame(frames, &n, 0x1, true, S("{\"cid\":\"1\"}"));
    static char big[200];
    memset(big, 'b', sizeof big);
    script_frame(frames, &n, 0x2, true, big, sizeof big);       /* 16-bit length */
    script_frame(frames, &n, 0x1, false, S("frag"));            /* fragmented message ... */
    script_frame(frames, &n, 0x9, true, S("pi"));               /* ... with a ping between */
    script_frame(frames, &n, 0x0, true, S("mented"));
    script_frame(frames, &n, 0x8, true, "\x03\xf0", 2);         /* close 1008 */
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), DO(A_FRAME), DO(A_FRAME), SPLIT(frames, n, 5),
                        DO(A_FRAME), DO(A_FRAME), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    rec.send_on_open = 1;
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws?token=abc&format=json", &ws_cbs, NULL);
    run_until_done();
    /* Let the server take the pong and the close reply. */
    RUN_WHILE(srv.nframes < 4);
    cr_assert(rec.opened);
    cr_assert_eq(rec.nmsgs, 3);
    cr_assert_str_eq(rec.msgs[0], "{\"cid\":\"1\"}");
    cr_assert_not(rec.binary[0]);
    cr_assert(rec.binary[1]);
    cr_assert_eq(rec.lens[1], 200);
    cr_assert_eq(memcmp(rec.msgs[1], big, 200), 0);
    cr_assert_str_eq(rec.msgs[2], "fragmented");
    cr_assert_eq(rec.closes, 1);
    cr_assert_eq(rec.code, 1008);
    cr_assert_str_eq(rec.reason, "closed 1008");
    /* What the server got: the upgrade request and masked frames. */
    cr_assert(strncmp(srv.reqs[0], "GET /ws?token=abc&format=json HTTP/1.1\r\n", 40) == 0, "%s", srv.reqs[0]);
    cr_assert(strcasestr(srv.reqs[0], "\r\nUpgrade: websocket\r\n"));
    cr_assert(strcasestr(srv.reqs[0], "\r\nSec-WebSocket-Version: 13\r\n"));
    cr_assert_not(srv.unmasked_frame, "every client frame is masked");
    cr_assert_eq(srv.nframes, 4);
    cr_assert_eq(srv.frames[0].opcode, 0x1);
    cr_assert_str_eq(srv.frames[0].payload, "hello server");
    cr_assert_eq(srv.frames[1].opcode, 0x2);
    cr_assert_eq(srv.frames[1].len, 300);
    cr_assert_eq(srv.frames[2].opcode, 0xA, "pong");
    cr_assert_str_eq(srv.frames[2].payload, "pi");
    cr_assert_eq(srv.frames[3].opcode, 0x8, "close reply");
    cr_assert_eq((uint8_t)srv.frames[3].payload[0], 0x03);
    cr_assert_eq((uint8_t)srv.frames[3].payload[1], 0xf0);
    kzc_free(c);
}

Test(lt_client, ws_frames_in_the_same_packet_as_the_101)
{
    /* The 101 and the first frames arrive in one write. */
    static char frames[256];
    size_t n = 0;
    script_frame(frames, &n, 0x1, true, S("one"));
    script_frame(frames, &n, 0x1, true, S("two"));
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), SEND(frames, n), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    rec.close_after = 2;
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    /* The server never answers our close: the close times out. */
    run_until_done();
    cr_assert_eq(rec.nmsgs, 2);
    cr_assert_str_eq(rec.msgs[1], "two");
    cr_assert_eq(rec.closes, 1);
    cr_assert_eq(rec.code, 1006);
    kzc_free(c);
}

Test(lt_client, ws_client_close_handshake)
{
    static char frames[64], closef[16];
    size_t n = 0, cn = 0;
    script_frame(frames, &n, 0x1, true, S("bye?"));
    script_frame(closef, &cn, 0x8, true, "\x03\xe8", 2);
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), SEND(frames, n), DO(A_FRAME), SEND(closef, cn), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    rec.close_after = 1;
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert_eq(rec.closes, 1);
    cr_assert_eq(rec.code, 1000);
    cr_assert_str_eq(rec.reason, "closed 1000");
    cr_assert_eq(srv.nframes, 1);
    cr_assert_eq(srv.frames[0].opcode, 0x8);
    cr_assert_eq(srv.frames[0].len, 2);
    cr_assert_eq(kzc_ws_send(c, false, "x", 1), -1, "no sends after the close");
    kzc_free(c);
}

Test(lt_client, ws_empty_messages_are_empty_strings)
{
    /* Empty data messages on both paths: whole frames (straight from the
     * read buffer), a fragmented one and one split in 1-byte pieces (wslay).
     * Each arrives as data != NULL, len 0. */
    static char whole[64], split[64], closef[16];
    size_t n = 0, sn = 0, cn = 0;
    script_frame(whole, &n, 0x1, true, "", 0);
    script_frame(whole, &n, 0x1, false, "", 0); /* fragmented: empty first part ... */
    script_frame(whole, &n, 0x0, true, "", 0);  /* ... and an empty last part */
    script_frame(split, &sn, 0x2, true, "", 0);
    script_frame(closef, &cn, 0x8, true, "\x03\xe8", 2);
    const act_t p1[] = {DO(A_REQ),          DO(A_ACCEPT),        SEND(whole, n),
                        SPLIT(split, sn, 1), SEND(closef, cn),     DO(A_FRAME), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert_eq(rec.nmsgs, 3);
    cr_assert_not(rec.null_data, "an empty message came as NULL");
    for (int i = 0; i < 3; i++) cr_assert_eq(rec.lens[i], 0, "message %d", i);
    cr_assert_not(rec.binary[0]);
    cr_assert_not(rec.binary[1]);
    cr_assert(rec.binary[2]);
    cr_assert_eq(rec.code, 1000);
    kzc_free(c);
}

Test(lt_client, ws_bad_accept)
{
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT_BAD), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert_not(rec.opened);
    cr_assert_eq(rec.closes, 1);
    cr_assert_eq(rec.code, 0);
    cr_assert_str_eq(rec.reason, "bad accept");
    kzc_free(c);
}

Test(lt_client, ws_upgrade_refused)
{
    static const char r1[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}";
    const act_t p1[] = {DO(A_REQ), SPLIT(r1, sizeof r1 - 1, 4), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws?token=bad", &ws_cbs, NULL);
    run_until_done();
    cr_assert_not(rec.opened);
    cr_assert_str_eq(rec.reason, "http 401");
    kzc_free(c);
}

Test(lt_client, ws_abrupt_close)
{
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), DO(A_CLOSE)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert(rec.opened);
    cr_assert_eq(rec.code, 1006);
    cr_assert_str_eq(rec.reason, "closed 1006");
    kzc_free(c);
}

Test(lt_client, ws_closed_before_upgrade)
{
    const act_t p1[] = {DO(A_REQ), DO(A_CLOSE)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert_not(rec.opened);
    cr_assert_eq(rec.code, 0);
    cr_assert_str_eq(rec.reason, "closed");
    kzc_free(c);
}

Test(lt_client, ws_message_bound)
{
    static char frames[256], big[100];
    size_t n = 0;
    memset(big, 'q', sizeof big);
    script_frame(frames, &n, 0x1, true, S("small"));
    script_frame(frames, &n, 0x1, true, big, sizeof big);
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), SEND(frames, n), DO(A_FRAME), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    t.max_body = 64;
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    RUN_WHILE(srv.nframes < 1);
    cr_assert_eq(rec.nmsgs, 1);
    cr_assert_eq(rec.code, 1009);
    cr_assert_str_eq(rec.reason, "message too large");
    cr_assert_eq(srv.frames[0].opcode, 0x8, "the client said why");
    kzc_free(c);
}

Test(lt_client, ws_protocol_error_masked_server_frame)
{
    static const char bad[] = "\x81\x83\x01\x02\x03\x04" "abc"; /* a server must not mask */
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), SEND(bad, sizeof bad - 1), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert_eq(rec.nmsgs, 0);
    cr_assert_str_eq(rec.reason, "protocol error");
    kzc_free(c);
}

Test(lt_client, ws_free_from_on_message_stops_callbacks)
{
    static char frames[256];
    size_t n = 0;
    script_frame(frames, &n, 0x1, true, S("a"));
    script_frame(frames, &n, 0x1, true, S("b"));
    script_frame(frames, &n, 0x1, true, S("c"));
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), SEND(frames, n), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    ws_reset();
    rec.free_after = 1;
    kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(rec.nmsgs, 1, "nothing after kzc_free");
    cr_assert_eq(rec.closes, 0, "no on_close after kzc_free");
}

Test(lt_client, ws_write_backlog)
{
    const act_t p1[] = {DO(A_REQ), DO(A_ACCEPT), DO(A_DEAF), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    t.max_backlog = 64 * 1024;
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    RUN_WHILE(!rec.opened && !rec.closes);
    cr_assert(rec.opened);
    /* The server reads nothing: the kernel buffers fill, then the backlog. */
    static char chunk[256 * 1024];
    int sent = 0, rc = 0;
    while (sent < 4096 && (rc = kzc_ws_send(c, true, chunk, sizeof chunk)) == 0) sent++;
    cr_assert_eq(rc, -1, "a send fails once the backlog passes its bound");
    cr_assert_eq(rec.closes, 0, "on_close comes from the loop, not from inside send");
    run_until_done();
    cr_assert_eq(rec.closes, 1);
    cr_assert_str_eq(rec.reason, "write backlog");
    kzc_free(c);
}

Test(lt_client, ws_connect_refused_and_timeout)
{
    kzc_target_t t = target();
    uv_close((uv_handle_t *)&srv.listener, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert_str_eq(rec.reason, "connect ECONNREFUSED");
    cr_assert_eq(rec.code, 0);
    kzc_free(c);
}

Test(lt_client, ws_upgrade_timeout)
{
    const act_t p1[] = {DO(A_REQ), DO(A_END)};
    srv.progs[0] = p1;
    kzc_target_t t = target();
    t.timeout_ms = 100;
    ws_reset();
    kzc_conn_t *c = kzc_ws_open(&loop, &t, "/ws", &ws_cbs, NULL);
    run_until_done();
    cr_assert_str_eq(rec.reason, "timeout");
    cr_assert_eq(rec.closes, 1);
    kzc_free(c);
}
