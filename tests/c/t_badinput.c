/*
 * Every function x bad input (rules 6, 7), exact-length inputs (rule 6),
 * tasker_last_error semantics and the information functions.
 *
 * Each rejected call must return its status AND set a fresh, non-empty
 * tasker_last_error (EXPECT_FAIL), and every out-pointer must be NULL/0
 * after any status other than OK (prefilled with garbage first).
 */
#include <limits.h>
#include <sys/mman.h>

#include "harness.h"

#define TU "0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f"
#define SU "1c8f7a0d-2e3b-4d4c-9f0a-1b2c3d4e5f60"
#define T "\"task_uuid\":\"" TU "\""
#define S "\"step_uuid\":\"" SU "\""
#define H "\"handler\":\"h\""
#define GOOD "{" T "," S "," H "}"

#define GARBAGE_PTR ((char *)(uintptr_t)0xdeadbeefUL)

static uint64_t rng = 0xbad1;

/* ---------------------------------------------------------------- new */

static void new_fails(const char *cfg, const char *key) {
    tasker_t h = 777;
    h_sentinel();
    int st = tasker_new(cfg, &h);
    if (st == TASKER_OK) tasker_destroy(h);
    CHECKF(st == TASKER_EINVAL, "tasker_new(%s) returned %d (%s), want TASKER_EINVAL", cfg, st, tasker_strerror(st));
    CHECK(tasker_last_error(h_msg, sizeof h_msg) > 0 && strcmp(h_msg, h_sent) != 0);
    CHECKF(h == 0, "tasker_new(%s) failed but *out = %" PRIu64, cfg, h);
    if (key) CHECK_MSG_HAS(key);
}

static void bad_new(void) {
    EXPECT_FAIL(tasker_new(NULL, NULL), TASKER_EINVAL);
    EXPECT_FAIL(tasker_new("{}", NULL), TASKER_EINVAL);
    new_fails("{", NULL);
    new_fails("[]", NULL);
    new_fails("nonsense", NULL);
    new_fails("{\"dispatch_buffer_size\":10,}", NULL);
    new_fails("{\"dispatch_buffer\":5}", "dispatch_buffer");
    new_fails("{\"DISPATCH_BUFFER_SIZE\":5}", "DISPATCH_BUFFER_SIZE");
    new_fails("{\"completion_buffer_size\":5,\"max_concurrent_handlers\":10}", "completion_buffer_size");
    new_fails("{\"max_concurrent_handlers\":1001}", "completion_buffer_size"); /* default completion 1000 */
    new_fails("{\"dispatch_buffer_size\":-1}", "dispatch_buffer_size");
    new_fails("{\"dispatch_buffer_size\":0}", "dispatch_buffer_size");
    new_fails("{\"completion_buffer_size\":-5}", "completion_buffer_size");
    new_fails("{\"max_concurrent_handlers\":-1}", "max_concurrent_handlers");
    new_fails("{\"handler_timeout_ms\":-1}", "handler_timeout_ms");
    new_fails("{\"cleanup_interval_ms\":-1}", "cleanup_interval_ms");
    new_fails("{\"dispatch_buffer_size\":\"10\"}", "dispatch_buffer_size");
    new_fails("{\"dispatch_buffer_size\":1.5}", "dispatch_buffer_size");
    new_fails("{\"dispatch_buffer_size\":true}", "dispatch_buffer_size");
    new_fails("{\"dispatch_buffer_size\":99999999999999999999}", "dispatch_buffer_size");
    new_fails("{\"worker_id\":5}", "worker_id");
    new_fails("{\"worker_id\":\"\xff\xfe\"}", NULL);
    new_fails("{\"max_payload_bytes\":0}", "max_payload_bytes");
    new_fails("{\"max_payload_bytes\":-10}", "max_payload_bytes");
    new_fails("{\"starvation_warning_threshold_ms\":-1}", "starvation_warning_threshold_ms");
    new_fails("{\"dispatch_buffer_size\":10,\"dispatch_buffer_size\":20}", "dispatch_buffer_size");
    /* only NULL and "" mean defaults: whitespace alone is no JSON object */
    new_fails(" ", "JSON object");
    new_fails("\n\t", "JSON object");
    new_fails("\f", "JSON object");
    new_fails("\v", "JSON object");
    new_fails("\xc2\xa0", "JSON object");     /* U+00A0 */
    new_fails("\xc2\x85", "JSON object");     /* U+0085 */
    new_fails("\xe3\x80\x80", "JSON object"); /* U+3000 */
    /* defaults */
    tasker_t h = 0;
    CHECK_OK(tasker_new(NULL, &h));
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.max_concurrent_handlers == 10);
    CHECK_OK(tasker_destroy(h));
    CHECK_OK(tasker_new("", &h));
    CHECK_OK(tasker_destroy(h));
    CHECK_OK(tasker_new("  {  }  ", &h));
    CHECK_OK(tasker_destroy(h));
    CHECK_OK(tasker_new("\r\n\t{}\n", &h)); /* JSON whitespace around an object is fine */
    CHECK_OK(tasker_destroy(h));
    CHECK_OK(tasker_new("{\"dispatch_buffer_size\":5,\"completion_buffer_size\":3,\"max_concurrent_handlers\":3,"
                        "\"handler_timeout_ms\":100,\"cleanup_interval_ms\":0,\"starvation_warning_threshold_ms\":5,"
                        "\"max_payload_bytes\":1,\"worker_id\":\"w-\xc3\xbc\"}",
                        &h));
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------- dispatch */

static void disp_fails_n(tasker_t h, const char *doc, size_t len, int want, const char *key) {
    char id[37];
    memset(id, 'X', sizeof id);
    EXPECT_FAIL(tasker_dispatch(h, doc, len, 0, id), want);
    CHECKF(id[0] == 0, "dispatch of %.80s failed but event_id_out was not set to \"\"", doc ? doc : "(null)");
    if (key) CHECK_MSG_HAS(key);
}

static void disp_fails(tasker_t h, const char *doc, int want, const char *key) {
    disp_fails_n(h, doc, strlen(doc), want, key);
}

static void bad_dispatch(void) {
    tasker_t h = h_new("{\"max_payload_bytes\":256,\"cleanup_interval_ms\":0}");
    char id[37];
    /* NULL and empty */
    disp_fails_n(h, NULL, 10, TASKER_EINVAL, NULL);
    disp_fails_n(h, NULL, 0, TASKER_EINVAL, NULL);
    disp_fails(h, "", TASKER_EINVAL, NULL);
    disp_fails(h, "   ", TASKER_EINVAL, NULL);
    /* invalid JSON */
    disp_fails(h, "{", TASKER_EINVAL, NULL);
    disp_fails(h, "[]", TASKER_EINVAL, NULL);
    disp_fails(h, "null", TASKER_EINVAL, NULL);
    disp_fails(h, "\"" TU "\"", TASKER_EINVAL, NULL);
    disp_fails(h, GOOD " trailing", TASKER_EINVAL, NULL);
    disp_fails(h, GOOD GOOD, TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":{\"a\":}}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":[1,2,]}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":01}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":NaN}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":'x'}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":\"tab\there\"}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":\"bad \\x escape\"}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":\"unterminated}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":tru}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T " " S "," H "}", TASKER_EINVAL, NULL);
    disp_fails(h, "{task_uuid:\"" TU "\"," S "," H "}", TASKER_EINVAL, NULL);
    /* invalid UTF-8: in a value, nested, in a key, surrogate, overlong */
    disp_fails(h, "{" T "," S ",\"handler\":\"h\xff\"}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":{\"k\":[\"\xc3\x28\"]}}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":\"\xed\xa0\x80\"}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":\"\xc0\xaf\"}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":\"\xf4\x90\x80\x80\"}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"\xff\":1}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"payload\":{\"\xfe\":1}}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S "," H ",\"trace_id\":\"\x80\"}", TASKER_EINVAL, NULL);
    /* missing required fields */
    disp_fails(h, "{" S "," H "}", TASKER_EINVAL, "task_uuid");
    disp_fails(h, "{" T "," H "}", TASKER_EINVAL, "step_uuid");
    disp_fails(h, "{" T "," S "}", TASKER_EINVAL, "handler");
    disp_fails(h, "{}", TASKER_EINVAL, NULL);
    disp_fails(h, "{" T "," S ",\"handler\":\"\"}", TASKER_EINVAL, "handler");
    disp_fails(h, "{" T "," S ",\"handler\":null}", TASKER_EINVAL, "handler");
    disp_fails(h, "{" T "," S ",\"handler\":5}", TASKER_EINVAL, "handler");
    /* bad UUIDs */
    static const char *const bad_uuids[] = {
        "1234",
        "",
        "zzzzzzzz-1d2a-4c3b-8e9f-0a1b2c3d4e5f",
        "0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5g",
        "{0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f}",
        "urn:uuid:0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f",
        "0b7e6f9c1d2a4c3b8e9f0a1b2c3d4e5f",
        "0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5",
        "0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f0",
        "0b7e6f9c_1d2a-4c3b-8e9f-0a1b2c3d4e5f",
        " 0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5",
    };
    static const char *const uuid_keys[] = {"task_uuid", "step_uuid", "event_id", "correlation_id"};
    char doc[1024];
    for (size_t k = 0; k < sizeof uuid_keys / sizeof uuid_keys[0]; k++) {
        for (size_t b = 0; b < sizeof bad_uuids / sizeof bad_uuids[0]; b++) {
            const char *key = uuid_keys[k];
            if (!strcmp(key, "task_uuid"))
                snprintf(doc, sizeof doc, "{\"task_uuid\":\"%s\"," S "," H "}", bad_uuids[b]);
            else if (!strcmp(key, "step_uuid"))
                snprintf(doc, sizeof doc, "{" T ",\"step_uuid\":\"%s\"," H "}", bad_uuids[b]);
            else
                snprintf(doc, sizeof doc, "{" T "," S "," H ",\"%s\":\"%s\"}", key, bad_uuids[b]);
            disp_fails(h, doc, TASKER_EINVAL, key);
        }
        if (k >= 2) {
            snprintf(doc, sizeof doc, "{" T "," S "," H ",\"%s\":5}", uuid_keys[k]);
            disp_fails(h, doc, TASKER_EINVAL, uuid_keys[k]);
        }
    }
    disp_fails(h, "{\"task_uuid\":5," S "," H "}", TASKER_EINVAL, "task_uuid");
    disp_fails(h, "{" T "," S "," H ",\"event_id\":[]}", TASKER_EINVAL, "event_id");
    /* unknown keys and wrong types */
    disp_fails(h, "{" T "," S "," H ",\"priority\":1}", TASKER_EINVAL, "priority");
    disp_fails(h, "{" T "," S ",\"Handler\":\"h\"}", TASKER_EINVAL, "Handler");
    disp_fails(h, "{" T "," S "," H ",\"timeout_ms\":\"5\"}", TASKER_EINVAL, "timeout_ms");
    disp_fails(h, "{" T "," S "," H ",\"timeout_ms\":0}", TASKER_EINVAL, "timeout_ms");
    disp_fails(h, "{" T "," S "," H ",\"timeout_ms\":-5}", TASKER_EINVAL, "timeout_ms");
    disp_fails(h, "{" T "," S "," H ",\"timeout_ms\":1.5}", TASKER_EINVAL, "timeout_ms");
    disp_fails(h, "{" T "," S "," H ",\"timeout_ms\":99999999999}", TASKER_EINVAL, "timeout_ms");
    disp_fails(h, "{" T "," S "," H ",\"timeout_ms\":true}", TASKER_EINVAL, "timeout_ms");
    disp_fails(h, "{" T "," S "," H ",\"trace_id\":5}", TASKER_EINVAL, "trace_id");
    disp_fails(h, "{" T "," S "," H ",\"span_id\":{}}", TASKER_EINVAL, "span_id");
    disp_fails(h, "{" T "," T "," S "," H "}", TASKER_EINVAL, "task_uuid");
    disp_fails(h, "{" T "," S "," H "," H "}", TASKER_EINVAL, "handler");
    /* bad timeout_ms argument */
    EXPECT_FAIL(tasker_dispatch(h, GOOD, strlen(GOOD), -2, NULL), TASKER_EINVAL);
    EXPECT_FAIL(tasker_dispatch(h, GOOD, strlen(GOOD), INT32_MIN, id), TASKER_EINVAL);
    CHECK(id[0] == 0);
    /* oversized: exactly max_payload_bytes is fine, one more is ETOOBIG */
    char big[400];
    int pad = 256 - (int)strlen("{" T "," S "," H ",\"payload\":\"\"}");
    CHECK(pad > 0);
    snprintf(big, sizeof big, "{" T "," S "," H ",\"payload\":\"%0*d\"}", pad, 7);
    CHECK(strlen(big) == 256);
    CHECK_OK(tasker_dispatch(h, big, 256, 0, id));
    snprintf(big, sizeof big, "{" T "," S "," H ",\"payload\":\"%0*d\"}", pad + 1, 7);
    disp_fails(h, big, TASKER_ETOOBIG, NULL);
    disp_fails_n(h, big, (size_t)1 << 40, TASKER_ETOOBIG, NULL); /* a huge len is never read */
    /* a rejected dispatch queued nothing */
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.dispatched == 1 && s.queued == 1, "after rejected dispatches: dispatched %lld queued %lld", s.dispatched,
           s.queued);
    /* duplicate live event_id: EINVAL while queued or pending; fine again once ended */
    char idoc[512];
    snprintf(idoc, sizeof idoc, "{" T "," S "," H ",\"event_id\":\"5d0c3f7e-4b2a-4e1f-9a8b-7c6d5e4f3a2b\"}");
    CHECK_OK(tasker_dispatch(h, idoc, strlen(idoc), 0, id));
    CHECK(strcmp(id, "5d0c3f7e-4b2a-4e1f-9a8b-7c6d5e4f3a2b") == 0);
    disp_fails(h, idoc, TASKER_EINVAL, "5d0c3f7e-4b2a-4e1f-9a8b-7c6d5e4f3a2b");
    char p1[37], p2[37];
    CHECK_OK(h_poll_id(h, 0, p1));
    CHECK_OK(h_poll_id(h, 0, p2));
    CHECK(strcmp(p2, "5d0c3f7e-4b2a-4e1f-9a8b-7c6d5e4f3a2b") == 0);
    disp_fails(h, idoc, TASKER_EINVAL, "5d0c3f7e-4b2a-4e1f-9a8b-7c6d5e4f3a2b"); /* pending */
    CHECK_OK(h_complete(h, p2, RES_OK));
    CHECK_OK(tasker_dispatch(h, idoc, strlen(idoc), 0, id)); /* ended: may be reused */
    h_stats(h, &s);
    CHECKF(s.dispatched == 3 && s.queued == 1 && s.pending == 1 && s.completed == 1, "stats after duplicates");
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------- poll, poll_batch */

static void bad_poll(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char *p;
    size_t n;
    uint32_t cnt;
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    /* NULL out-pointers: EINVAL, the other out-pointer zeroed, nothing taken */
    n = 77;
    EXPECT_FAIL(tasker_poll(h, 0, NULL, &n), TASKER_EINVAL);
    CHECK(n == 0);
    p = GARBAGE_PTR;
    EXPECT_FAIL(tasker_poll(h, 0, &p, NULL), TASKER_EINVAL);
    CHECK(p == NULL);
    EXPECT_FAIL(tasker_poll(h, -1, NULL, NULL), TASKER_EINVAL);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_poll(h, -2, &p, &n), TASKER_EINVAL);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_poll(h, INT32_MIN, &p, &n), TASKER_EINVAL);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_poll(0, 0, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_poll(h + 1000000, 0, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    /* poll_batch */
    p = GARBAGE_PTR, n = 77, cnt = 77;
    EXPECT_FAIL(tasker_poll_batch(h, 0, 0, &p, &n, &cnt), TASKER_EINVAL);
    CHECK(p == NULL && n == 0 && cnt == 0);
    CHECK_MSG_HAS("max");
    n = 77, cnt = 77;
    EXPECT_FAIL(tasker_poll_batch(h, 4, 0, NULL, &n, &cnt), TASKER_EINVAL);
    CHECK(n == 0 && cnt == 0);
    p = GARBAGE_PTR, cnt = 77;
    EXPECT_FAIL(tasker_poll_batch(h, 4, 0, &p, NULL, &cnt), TASKER_EINVAL);
    CHECK(p == NULL && cnt == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_poll_batch(h, 4, 0, &p, &n, NULL), TASKER_EINVAL);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77, cnt = 77;
    EXPECT_FAIL(tasker_poll_batch(h, 4, -2, &p, &n, &cnt), TASKER_EINVAL);
    CHECK(p == NULL && n == 0 && cnt == 0);
    p = GARBAGE_PTR, n = 77, cnt = 77;
    EXPECT_FAIL(tasker_poll_batch(0, 4, 0, &p, &n, &cnt), TASKER_EBADF);
    CHECK(p == NULL && n == 0 && cnt == 0);
    /* nothing was taken by the rejected calls */
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.queued == 1 && s.polled == 0 && s.pending == 0, "rejected polls took an event");
    /* a huge max is fine */
    p = GARBAGE_PTR, n = 77, cnt = 77;
    CHECK_OK(tasker_poll_batch(h, UINT32_MAX, 0, &p, &n, &cnt));
    CHECK(cnt == 1 && p && strlen(p) == n && p[0] == '[');
    tasker_free(p);
    /* EMPTY zeroes the out-pointers too */
    p = GARBAGE_PTR, n = 77, cnt = 77;
    CHECK_ST(tasker_poll_batch(h, 4, 0, &p, &n, &cnt), TASKER_EMPTY);
    CHECK(p == NULL && n == 0 && cnt == 0);
    p = GARBAGE_PTR, n = 77;
    CHECK_ST(tasker_poll(h, 1, &p, &n), TASKER_EMPTY);
    CHECK(p == NULL && n == 0);
    /* CLOSED zeroes them */
    CHECK_OK(tasker_shutdown(h, 0));
    p = GARBAGE_PTR, n = 77;
    CHECK_ST(tasker_poll(h, 0, &p, &n), TASKER_CLOSED);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77, cnt = 77;
    CHECK_ST(tasker_poll_batch(h, 3, -1, &p, &n, &cnt), TASKER_CLOSED);
    CHECK(p == NULL && n == 0 && cnt == 0);
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------- complete */

static void comp_fails(tasker_t h, const char *id, const char *res, int want, const char *key) {
    EXPECT_FAIL(tasker_complete(h, id, res, strlen(res)), want);
    if (key) CHECK_MSG_HAS(key);
}

static void bad_complete(void) {
    tasker_t h = h_new("{\"max_payload_bytes\":256,\"cleanup_interval_ms\":0}");
    char P[37], Q[37], queued[37];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, P));
    CHECK_OK(h_poll_id(h, 0, Q));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, queued));
    /* NULL pointers */
    EXPECT_FAIL(tasker_complete(h, NULL, RES_OK, strlen(RES_OK)), TASKER_EINVAL);
    EXPECT_FAIL(tasker_complete(h, P, NULL, 10), TASKER_EINVAL);
    EXPECT_FAIL(tasker_complete(h, P, NULL, 0), TASKER_EINVAL);
    /* bad event ids */
    static const char *const bad_ids[] = {
        "", "short", "zzzzzzzz-1d2a-4c3b-8e9f-0a1b2c3d4e5f", "{0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f}",
        "urn:uuid:0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f", "0b7e6f9c1d2a4c3b8e9f0a1b2c3d4e5f",
        "0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f0", "0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5\xff",
    };
    for (size_t k = 0; k < sizeof bad_ids / sizeof bad_ids[0]; k++) comp_fails(h, bad_ids[k], RES_OK, TASKER_EINVAL, NULL);
    char longid[200];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    comp_fails(h, longid, RES_OK, TASKER_EINVAL, NULL);
    /* bad result documents, each on the pending event P */
    static const struct {
        const char *doc;
        int want;
        const char *key;
    } cases[] = {
        {"", TASKER_EINVAL, NULL},
        {"{", TASKER_EINVAL, NULL},
        {"[]", TASKER_EINVAL, NULL},
        {"true", TASKER_EINVAL, NULL},
        {"{\"success\":true} x", TASKER_EINVAL, NULL},
        {"{\"success\":true,}", TASKER_EINVAL, NULL},
        {"{\"success\":true,\"result\":[1,2}", TASKER_EINVAL, NULL},
        {"{\"success\":true,\"result\":\"\xff\"}", TASKER_EINVAL, NULL},
        {"{\"success\":true,\"result\":{\"\xc3\x28\":1}}", TASKER_EINVAL, NULL},
        {"{\"success\":true,\"metadata\":{\"\xff\":1}}", TASKER_EINVAL, NULL},
        {"{\"\xff\":true,\"success\":true}", TASKER_EINVAL, NULL},
        {"{\"success\":false,\"error\":{\"message\":\"\xed\xa0\x80\"}}", TASKER_EINVAL, NULL},
        {"{}", TASKER_EINVAL, "success"},
        {"{\"result\":1}", TASKER_EINVAL, "success"},
        {"{\"success\":\"true\"}", TASKER_EINVAL, "success"},
        {"{\"success\":1}", TASKER_EINVAL, "success"},
        {"{\"success\":null}", TASKER_EINVAL, "success"},
        {"{\"success\":true,\"retryable\":false}", TASKER_EINVAL, "retryable"},
        {"{\"success\":false,\"error\":{\"message\":\"m\"},\"retryable\":false}", TASKER_EINVAL, "retryable"},
        {"{\"success\":false,\"error\":{\"message\":\"m\"},\"error_type\":\"x\"}", TASKER_EINVAL, "error_type"},
        {"{\"success\":true,\"status\":\"ok\"}", TASKER_EINVAL, "status"},
        {"{\"success\":false}", TASKER_EINVAL, "error"},
        {"{\"success\":false,\"error\":null}", TASKER_EINVAL, "error"},
        {"{\"success\":false,\"error\":{}}", TASKER_EINVAL, "message"},
        {"{\"success\":false,\"error\":{\"message\":\"\"}}", TASKER_EINVAL, "message"},
        {"{\"success\":false,\"error\":{\"message\":5}}", TASKER_EINVAL, "message"},
        {"{\"success\":false,\"error\":{\"error_type\":\"x\"}}", TASKER_EINVAL, "message"},
        {"{\"success\":false,\"error\":\"boom\"}", TASKER_EINVAL, "error"},
        {"{\"success\":false,\"error\":{\"message\":\"m\",\"code\":1}}", TASKER_EINVAL, "code"},
        {"{\"success\":false,\"error\":{\"message\":\"m\",\"retryable\":\"yes\"}}", TASKER_EINVAL, "retryable"},
        {"{\"success\":false,\"error\":{\"message\":\"m\",\"error_type\":7}}", TASKER_EINVAL, "error_type"},
        {"{\"success\":true,\"error\":{\"message\":\"m\"}}", TASKER_EINVAL, "error"},
        {"{\"success\":true,\"metadata\":[]}", TASKER_EINVAL, "metadata"},
        {"{\"success\":true,\"metadata\":\"x\"}", TASKER_EINVAL, "metadata"},
        {"{\"success\":true,\"metadata\":5}", TASKER_EINVAL, "metadata"},
        {"{\"success\":true,\"success\":true}", TASKER_EINVAL, "success"},
        {"{\"success\":true,\"result\":1,\"result\":2}", TASKER_EINVAL, "result"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) comp_fails(h, P, cases[k].doc, cases[k].want, cases[k].key);
    /* oversized */
    char big[400];
    int pad = 256 - (int)strlen("{\"success\":true,\"result\":\"\"}");
    snprintf(big, sizeof big, "{\"success\":true,\"result\":\"%0*d\"}", pad + 1, 3);
    comp_fails(h, P, big, TASKER_ETOOBIG, NULL);
    EXPECT_FAIL(tasker_complete(h, P, big, (size_t)1 << 40), TASKER_ETOOBIG);
    /* bad handle */
    EXPECT_FAIL(tasker_complete(0, P, RES_OK, strlen(RES_OK)), TASKER_EBADF);
    /* every rejection left P pending, nothing completed, nothing counted late */
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.pending == 2 && s.completed == 0 && s.failed == 0 && s.late_completions == 0,
           "after rejected completes: pending %lld completed %lld failed %lld late %lld", s.pending, s.completed, s.failed,
           s.late_completions);
    char *c;
    size_t n;
    CHECK_ST(h_next(h, 0, &c, &n), TASKER_EMPTY);
    /* not pending: unknown, queued-never-polled -> ENOENT, counted late */
    comp_fails(h, "5d0c3f7e-4b2a-4e1f-9a8b-7c6d5e4f3a2b", RES_OK, TASKER_ENOENT, NULL);
    comp_fails(h, queued, RES_OK, TASKER_ENOENT, NULL);
    /* a later valid complete succeeds and carries its result */
    CHECK_OK(h_complete(h, P, "{\"success\":true,\"result\":{\"fixed\":true}}"));
    comp_fails(h, P, RES_OK, TASKER_ENOENT, NULL); /* already ended: the first end stands */
    /* exactly max_payload_bytes is accepted */
    pad = 256 - (int)strlen("{\"success\":true,\"result\":\"\"}");
    snprintf(big, sizeof big, "{\"success\":true,\"result\":\"%0*d\"}", pad, 3);
    CHECK(strlen(big) == 256);
    CHECK_OK(tasker_complete(h, Q, big, 256));
    CHECK_OK(h_next(h, 0, &c, &n));
    jv_t r = json_get(c, n, "result");
    CHECKF(jv_is(r, "{\"fixed\":true}") && jv_str_is(json_get(c, n, "status"), "completed"), "completion: %s", c);
    tasker_free(c);
    CHECK_OK(h_next(h, 0, &c, &n));
    tasker_free(c);
    h_stats(h, &s);
    CHECKF(s.late_completions == 3 && s.completed == 2, "late %lld completed %lld", s.late_completions, s.completed);
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------- the other functions */

static void bad_other(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char *p;
    size_t n;
    uint32_t cnt, exp;
    char id[37];
    /* next_completion */
    n = 77;
    EXPECT_FAIL(tasker_next_completion(h, 0, NULL, &n), TASKER_EINVAL);
    CHECK(n == 0);
    p = GARBAGE_PTR;
    EXPECT_FAIL(tasker_next_completion(h, 0, &p, NULL), TASKER_EINVAL);
    CHECK(p == NULL);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_next_completion(h, -2, &p, &n), TASKER_EINVAL);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_next_completion(0, 0, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77;
    CHECK_ST(tasker_next_completion(h, 0, &p, &n), TASKER_EMPTY);
    CHECK(p == NULL && n == 0);
    /* a rejected next_completion loses no completion */
    char ev[37];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, ev));
    CHECK_OK(h_complete(h, ev, RES_OK));
    EXPECT_FAIL(tasker_next_completion(h, 0, NULL, NULL), TASKER_EINVAL);
    char got[37];
    CHECK_OK(h_next_id(h, 0, got, NULL));
    CHECK(strcmp(got, ev) == 0);
    /* stats */
    n = 77;
    EXPECT_FAIL(tasker_stats(h, NULL, &n), TASKER_EINVAL);
    CHECK(n == 0);
    p = GARBAGE_PTR;
    EXPECT_FAIL(tasker_stats(h, &p, NULL), TASKER_EINVAL);
    CHECK(p == NULL);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_stats(0, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    CHECK_OK(tasker_stats(h, &p, &n));
    CHECK(json_valid(p, n) && jv_null(json_get(p, n, "oldest_pending_event_id")));
    static const char *const stat_keys[] = {"dispatched", "polled", "completed", "failed", "timed_out", "cancelled",
                                            "late_completions", "rejected_full", "queued", "pending", "undelivered",
                                            "max_concurrent_handlers", "oldest_pending_age_ms",
                                            "oldest_pending_event_id", "oldest_queued_age_ms", "starvation_detected",
                                            "starving_event_count"};
    for (size_t k = 0; k < sizeof stat_keys / sizeof stat_keys[0]; k++)
        CHECKF(jv_has(json_get(p, n, stat_keys[k])), "stats lacks \"%s\": %s", stat_keys[k], p);
    tasker_free(p);
    /* cleanup_timeouts */
    exp = 77;
    EXPECT_FAIL(tasker_cleanup_timeouts(0, &exp), TASKER_EBADF);
    CHECK(exp == 0);
    CHECK_OK(tasker_cleanup_timeouts(h, NULL));
    /* shutdown: a bad drain is rejected and shuts nothing down */
    EXPECT_FAIL(tasker_shutdown(h, -2), TASKER_EINVAL);
    EXPECT_FAIL(tasker_shutdown(h, INT32_MIN), TASKER_EINVAL);
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    EXPECT_FAIL(tasker_shutdown(0, 0), TASKER_EBADF);
    EXPECT_FAIL(tasker_shutdown(h + 1000000, 0), TASKER_EBADF);
    /* destroy */
    EXPECT_FAIL(tasker_destroy(0), TASKER_EBADF);
    EXPECT_FAIL(tasker_destroy(h + 1000000), TASKER_EBADF);
    /* a destroyed handle: every function is EBADF and zeroes its out-pointers */
    CHECK_OK(tasker_destroy(h));
    memset(id, 'X', sizeof id);
    EXPECT_FAIL(tasker_dispatch(h, GOOD, strlen(GOOD), 0, id), TASKER_EBADF);
    CHECK(id[0] == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_poll(h, 0, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_poll(h, -1, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    p = GARBAGE_PTR, n = 77, cnt = 77;
    EXPECT_FAIL(tasker_poll_batch(h, 5, -1, &p, &n, &cnt), TASKER_EBADF);
    CHECK(p == NULL && n == 0 && cnt == 0);
    EXPECT_FAIL(tasker_complete(h, ev, RES_OK, strlen(RES_OK)), TASKER_EBADF);
    exp = 77;
    EXPECT_FAIL(tasker_cleanup_timeouts(h, &exp), TASKER_EBADF);
    CHECK(exp == 0);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_next_completion(h, -1, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    EXPECT_FAIL(tasker_shutdown(h, -1), TASKER_EBADF);
    p = GARBAGE_PTR, n = 77;
    EXPECT_FAIL(tasker_stats(h, &p, &n), TASKER_EBADF);
    CHECK(p == NULL && n == 0);
    EXPECT_FAIL(tasker_destroy(h), TASKER_EBADF);
    /* handles are never 0 and never reused */
    tasker_t seen[200];
    seen[0] = h;
    for (int i = 1; i < 200; i++) {
        seen[i] = h_new("{\"cleanup_interval_ms\":0}");
        for (int j = 0; j < i; j++) CHECKF(seen[j] != seen[i], "handle %" PRIu64 " reused", seen[i]);
        if (i % 2) CHECK_OK(tasker_destroy(seen[i]));
    }
    for (int i = 2; i < 200; i += 2) CHECK_OK(tasker_destroy(seen[i]));
}

/* ---------------------------------------------------------------- exact length */

/* Places n bytes so that they end exactly at the start of a PROT_NONE page:
 * reading even one byte past len crashes the process. */
static char *guarded(const char *data, size_t n, void **base, size_t *maplen) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (n + ps - 1) / ps + 1;
    *maplen = pages * ps;
    char *m = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK(mprotect(m + (pages - 1) * ps, ps, PROT_NONE) == 0);
    char *p = m + (pages - 1) * ps - n;
    memcpy(p, data, n);
    *base = m;
    return p;
}

static void exact_len(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    const char *payload = "{\"exact\":[1,2,3],\"u\":\"\xc3\xbc\"}";
    char doc[1024];
    char task[37], step[37];
    h_uuid(task, &rng);
    h_uuid(step, &rng);
    int dn = snprintf(doc, sizeof doc, "{\"task_uuid\":\"%s\",\"step_uuid\":\"%s\",\"handler\":\"h\",\"payload\":%s}", task,
                      step, payload);
    /* 1. input ends at a PROT_NONE page: the library must not read past len */
    void *base;
    size_t ml;
    char *g = guarded(doc, (size_t)dn, &base, &ml);
    char id[37];
    CHECK_OK(tasker_dispatch(h, g, (size_t)dn, 0, id));
    munmap(base, ml);
    /* 2. garbage (no NUL, more JSON-looking bytes) right after len */
    char *heap = malloc((size_t)dn + 64);
    CHECK(heap);
    memcpy(heap, doc, (size_t)dn);
    memset(heap + dn, '}', 64);
    memcpy(heap + dn, ",\"x\":1}GARBAGE", 14);
    CHECK_OK(tasker_dispatch(h, heap, (size_t)dn, 0, NULL));
    /* inputs are borrowed for the call only: scribble over and free the buffer */
    memset(heap, 'Z', (size_t)dn + 64);
    free(heap);
    /* 3. a len shorter than the document is the document cut short: EINVAL */
    EXPECT_FAIL(tasker_dispatch(h, doc, (size_t)dn - 1, 0, NULL), TASKER_EINVAL);
    EXPECT_FAIL(tasker_dispatch(h, doc, 1, 0, NULL), TASKER_EINVAL);
    for (int k = 0; k < 2; k++) {
        char *js;
        size_t n;
        CHECK_OK(tasker_poll(h, 0, &js, &n));
        CHECK(js[n] == 0 && strlen(js) == n);
        jv_t pl = json_get(js, n, "payload");
        CHECKF(jv_raw_eq(pl, payload, strlen(payload)), "payload %.*s", (int)pl.n, pl.p);
        char eid[37];
        CHECK(jv_uuid(json_get(js, n, "event_id"), eid));
        tasker_free(js);
        const char *res = k ? "{\"success\":true,\"result\":[\"tail\"]}" : "{\"success\":true,\"result\":{\"g\":1}}";
        size_t rn = strlen(res);
        if (k == 0) {
            char *rg = guarded(res, rn, &base, &ml);
            EXPECT_FAIL(tasker_complete(h, eid, rg, rn - 1), TASKER_EINVAL); /* cut short */
            CHECK_OK(tasker_complete(h, eid, rg, rn));
            munmap(base, ml);
        } else {
            char *rh = malloc(rn + 32);
            CHECK(rh);
            memcpy(rh, res, rn);
            memcpy(rh + rn, ",\"retryable\":true}XXXXXXXXXXXXXX", 32);
            CHECK_OK(tasker_complete(h, eid, rh, rn));
            memset(rh, 'Z', rn + 32);
            free(rh);
        }
    }
    for (int k = 0; k < 2; k++) {
        char *c;
        size_t n;
        CHECK_OK(h_next(h, 0, &c, &n));
        CHECK(c[n] == 0);
        jv_t r = json_get(c, n, "result");
        CHECKF(jv_is(r, k ? "[\"tail\"]" : "{\"g\":1}"), "result %.*s", (int)r.n, r.p);
        tasker_free(c);
    }
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------- last_error */

static bool utf8_ok(const char *s, size_t n) {
    char *q = malloc(n + 3);
    CHECK(q);
    q[0] = '"';
    for (size_t i = 0; i < n; i++) q[i + 1] = (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20) ? 'x' : s[i];
    q[n + 1] = '"';
    bool ok = jstrict_string(q, q + n + 2) == q + n + 2;
    free(q);
    return ok;
}

static void *fresh_thread(void *arg) {
    (void)arg;
    char buf[64];
    memset(buf, 'Q', sizeof buf);
    size_t n = tasker_last_error(buf, sizeof buf);
    CHECKF(n == 0 && buf[0] == 0, "a new thread's last error is %zu bytes \"%s\", want \"\"", n, buf);
    CHECK(tasker_last_error(NULL, 0) == 0);
    return NULL;
}

static void last_error_semantics(void) {
    char buf[8192], cur[8192];
    /* nothing failed yet on this thread (or on a new one) */
    memset(buf, 'Q', 64);
    CHECK(tasker_last_error(buf, 64) == 0 && buf[0] == 0);
    pthread_t t;
    h_thread(&t, fresh_thread, NULL);
    h_join(t);
    /* provoke */
    tasker_t h = 5;
    CHECK_ST(tasker_new("{\"abcdefghijklmnopqrstuvwxyz\":1}", &h), TASKER_EINVAL);
    size_t L = tasker_last_error(NULL, 0);
    CHECK(L > 10);
    CHECK(tasker_last_error(buf, sizeof buf) == L && strlen(buf) == L && strstr(buf, "abcdefghijklmnopqrstuvwxyz"));
    strcpy(cur, buf);
    /* truncation: NUL-terminated, returns the full length, writes at most cap bytes */
    char small[16];
    memset(small, 'Z', sizeof small);
    CHECK(tasker_last_error(small, 5) == L);
    CHECK(small[4] == 0 && strncmp(small, cur, 4) == 0);
    for (int i = 5; i < 16; i++) CHECKF(small[i] == 'Z', "last_error wrote past cap (byte %d)", i);
    memset(small, 'Z', sizeof small);
    CHECK(tasker_last_error(small, 1) == L && small[0] == 0 && small[1] == 'Z');
    memset(small, 'Z', sizeof small);
    CHECK(tasker_last_error(small, 0) == L && small[0] == 'Z');
    memset(buf, 'Z', sizeof buf);
    CHECK(tasker_last_error(buf, L) == L && strlen(buf) == L - 1 && buf[L] == 'Z');
    CHECK(tasker_last_error(buf, L + 1) == L && strcmp(buf, cur) == 0);
    /* unchanged by successful calls, EMPTY and CLOSED, and the info functions */
    h = h_new("{\"cleanup_interval_ms\":0}");
    char *p;
    size_t n;
    uint32_t cnt, exp;
    CHECK_OK(tasker_stats(h, &p, &n));
    tasker_free(p);
    CHECK_OK(tasker_cleanup_timeouts(h, &exp));
    CHECK_ST(tasker_poll(h, 0, &p, &n), TASKER_EMPTY);
    CHECK_ST(tasker_poll(h, 5, &p, &n), TASKER_EMPTY);
    CHECK_ST(tasker_poll_batch(h, 3, 0, &p, &n, &cnt), TASKER_EMPTY);
    CHECK_ST(tasker_next_completion(h, 0, &p, &n), TASKER_EMPTY);
    char id[37];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_OK(h_complete(h, id, RES_OK));
    CHECK_OK(tasker_shutdown(h, 0));
    CHECK_OK(tasker_shutdown(h, 0));
    CHECK_ST(tasker_poll(h, 0, &p, &n), TASKER_CLOSED);
    CHECK_ST(tasker_poll_batch(h, 3, -1, &p, &n, &cnt), TASKER_CLOSED);
    CHECK_OK(tasker_next_completion(h, 0, &p, &n));
    tasker_free(p);
    CHECK_ST(tasker_next_completion(h, -1, &p, &n), TASKER_CLOSED);
    (void)tasker_abi_version();
    (void)tasker_version();
    (void)tasker_strerror(TASKER_EINVAL);
    tasker_free(NULL);
    CHECK(tasker_last_error(buf, sizeof buf) == L);
    CHECKF(strcmp(buf, cur) == 0, "last error changed by a call that did not fail: \"%s\" -> \"%s\"", cur, buf);
    CHECK_OK(tasker_destroy(h));
    /* each failure replaces the message */
    CHECK_ST(tasker_destroy(h), TASKER_EBADF);
    CHECK(tasker_last_error(buf, sizeof buf) > 0 && strcmp(buf, cur) != 0);
    /* messages are at most 4095 bytes, cut on a UTF-8 boundary */
    size_t kl = 12000;
    char *cfg = malloc(kl + 16);
    CHECK(cfg);
    size_t k = 0;
    cfg[k++] = '{';
    cfg[k++] = '"';
    while (k < kl) {
        memcpy(cfg + k, "\xe2\x82\xac", 3); /* a 3-byte character */
        k += 3;
    }
    memcpy(cfg + k, "\":1}", 5);
    CHECK_ST(tasker_new(cfg, &h), TASKER_EINVAL);
    free(cfg);
    size_t LL = tasker_last_error(buf, sizeof buf);
    CHECKF(LL > 0 && LL <= 4095 && strlen(buf) == LL, "long message: %zu bytes", LL);
    CHECKF(utf8_ok(buf, LL), "a truncated message was cut inside a UTF-8 sequence");
}

/* per thread: each thread sees its own error */
#define NT 8
static pthread_barrier_t bar;

static void *err_thread(void *arg) {
    int k = (int)(intptr_t)arg;
    char marker[64], cfg[128], buf[4200];
    snprintf(marker, sizeof marker, "thread_%d_marker", k);
    snprintf(cfg, sizeof cfg, "{\"%s\":1}", marker);
    for (int round = 0; round < 300; round++) {
        tasker_t h = 1;
        if (k % 2) {
            CHECK_ST(tasker_new(cfg, &h), TASKER_EINVAL);
        } else {
            char *p;
            size_t n;
            CHECK_ST(tasker_stats((tasker_t)(4242000 + (uint64_t)k), &p, &n), TASKER_EBADF);
            snprintf(marker, sizeof marker, "%d", 4242000 + k);
        }
        pthread_barrier_wait(&bar); /* every thread has set its error */
        tasker_last_error(buf, sizeof buf);
        CHECKF(strstr(buf, marker) != NULL, "thread %d sees \"%s\", not its own error (%s)", k, buf, marker);
        for (int j = 0; j < NT; j++) {
            char other[64];
            if (j == k) continue;
            snprintf(other, sizeof other, j % 2 ? "thread_%d_marker" : "%d", j % 2 ? j : 4242000 + j);
            CHECKF(strstr(buf, other) == NULL, "thread %d sees thread %d's error: \"%s\"", k, j, buf);
        }
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

static void last_error_per_thread(void) {
    char mine[4200], after[4200];
    CHECK_ST(tasker_destroy(0), TASKER_EBADF);
    tasker_last_error(mine, sizeof mine);
    pthread_barrier_init(&bar, NULL, NT);
    pthread_t t[NT];
    for (int k = 0; k < NT; k++) h_thread(&t[k], err_thread, (void *)(intptr_t)k);
    for (int k = 0; k < NT; k++) h_join(t[k]);
    pthread_barrier_destroy(&bar);
    tasker_last_error(after, sizeof after);
    CHECKF(strcmp(mine, after) == 0, "main thread's error changed by other threads: \"%s\" -> \"%s\"", mine, after);
}

/* ---------------------------------------------------------------- info */

static void info_functions(void) {
    CHECK(tasker_abi_version() == TASKER_ABI_VERSION);
    const char *v = tasker_version();
    CHECK(v != NULL && strlen(v) > 0);
    CHECKF(strcmp(v, TASKER_VERSION_STRING) == 0, "tasker_version() \"%s\" != TASKER_VERSION_STRING \"%s\"", v,
           TASKER_VERSION_STRING);
    static const struct {
        int code;
        const char *name;
    } codes[] = {
        {TASKER_OK, "TASKER_OK"},         {TASKER_EMPTY, "TASKER_EMPTY"},         {TASKER_CLOSED, "TASKER_CLOSED"},
        {TASKER_EINVAL, "TASKER_EINVAL"}, {TASKER_EBADF, "TASKER_EBADF"},         {TASKER_ENOENT, "TASKER_ENOENT"},
        {TASKER_EFULL, "TASKER_EFULL"},   {TASKER_ESHUTDOWN, "TASKER_ESHUTDOWN"}, {TASKER_ETOOBIG, "TASKER_ETOOBIG"},
        {TASKER_EFORKED, "TASKER_EFORKED"}, {TASKER_EINTERNAL, "TASKER_EINTERNAL"},
    };
    size_t nc = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < nc; i++) {
        const char *s = tasker_strerror(codes[i].code);
        CHECKF(s && strstr(s, codes[i].name), "strerror(%d) = \"%s\"", codes[i].code, s ? s : "(null)");
        for (size_t j = 0; j < i; j++) CHECK(strcmp(s, tasker_strerror(codes[j].code)) != 0);
        CHECK(tasker_strerror(codes[i].code) == s || strcmp(tasker_strerror(codes[i].code), s) == 0);
    }
    static const int unknown[] = {3, 100, -9, -100, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = tasker_strerror(unknown[i]);
        CHECKF(s && strlen(s) > 0, "strerror(%d)", unknown[i]);
        for (size_t j = 0; j < nc; j++) CHECKF(strcmp(s, tasker_strerror(codes[j].code)) != 0, "strerror(%d) = %s", unknown[i], s);
    }
    tasker_free(NULL);
    CHECK(tasker_last_error(NULL, 0) == 0); /* none of these set an error */
}

/* ---------------------------------------------------------------- nil UUIDs */

/* The nil UUID is a well-formed UUID. For task_uuid/step_uuid the library
 * rejects it (EINVAL, "the nil UUID is not allowed"). An explicit event_id or
 * correlation_id of the nil UUID must then either be rejected the same way
 * or be honoured, never silently replaced by a generated id (documents are
 * strict; the default applies only when the key is absent). */
static void nil_uuid_ids(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    const char *nil = "00000000-0000-0000-0000-000000000000";
    static const char *const docs[] = {
        "{" T "," S "," H ",\"event_id\":\"00000000-0000-0000-0000-000000000000\"}",
        "{" T "," S "," H ",\"correlation_id\":\"00000000-0000-0000-0000-000000000000\"}",
    };
    static const char *const keys[] = {"event_id", "correlation_id"};
    char bad[1024];
    size_t bk = 0;
    for (int k = 0; k < 2; k++) {
        char id[37];
        h_sentinel();
        int st = tasker_dispatch(h, docs[k], strlen(docs[k]), 0, id);
        if (st == TASKER_EINVAL) {
            size_t n = tasker_last_error(h_msg, sizeof h_msg);
            CHECK(n > 0 && strcmp(h_msg, h_sent) != 0);
            CHECK_MSG_HAS(keys[k]);
            continue;
        }
        CHECK_OK(st);
        char *js;
        size_t n;
        CHECK_OK(tasker_poll(h, 0, &js, &n));
        char got[37];
        CHECK(jv_uuid(json_get(js, n, keys[k]), got));
        if (strcmp(got, nil) != 0)
            bk += (size_t)snprintf(bad + bk, sizeof bad - bk,
                                   "\n  dispatch with an explicit %s of the nil UUID returned OK, but the polled event "
                                   "carries %s = %s (event_id_out = %s): silently replaced by a generated id",
                                   keys[k], keys[k], got, id);
        tasker_free(js);
    }
    CHECK_OK(tasker_destroy(h));
    CHECKF(bk == 0, "explicit nil UUIDs:%s", bad);
}

/* rejected_invalid counts every dispatch refused for its document: EINVAL
 * (bad JSON, unknown key, a live event_id) and ETOOBIG (longer than
 * max_payload_bytes, also when the length is absurd and never read). A bad
 * argument that is not the document (NULL event_json, a bad timeout_ms) is
 * not counted. */
static long long rejected_invalid(tasker_t h) {
    char *js = NULL;
    size_t n = 0;
    CHECK_OK(tasker_stats(h, &js, &n));
    long long v = h_stat_field(js, n, "rejected_invalid");
    tasker_free(js);
    return v;
}

static void rejected_invalid_counts(void) {
    tasker_t h = h_new("{\"max_payload_bytes\":200,\"cleanup_interval_ms\":0}");
    CHECK(rejected_invalid(h) == 0);
    disp_fails(h, "{" T "," S "," H ",\"priority\":1}", TASKER_EINVAL, "priority");
    CHECKF(rejected_invalid(h) == 1, "after EINVAL: %lld", rejected_invalid(h));
    char big[512];
    snprintf(big, sizeof big, "{" T "," S "," H ",\"payload\":\"%0*d\"}", 150, 7);
    CHECK(strlen(big) > 200);
    disp_fails(h, big, TASKER_ETOOBIG, "max_payload_bytes");
    CHECKF(rejected_invalid(h) == 2, "after ETOOBIG: %lld", rejected_invalid(h));
    disp_fails_n(h, big, (size_t)1 << 40, TASKER_ETOOBIG, "max_payload_bytes");
    CHECKF(rejected_invalid(h) == 3, "after ETOOBIG with a huge len: %lld", rejected_invalid(h));
    disp_fails_n(h, NULL, 10, TASKER_EINVAL, "event_json");
    EXPECT_FAIL(tasker_dispatch(h, GOOD, strlen(GOOD), -2, NULL), TASKER_EINVAL);
    CHECKF(rejected_invalid(h) == 3, "argument errors are not counted: %lld", rejected_invalid(h));
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.dispatched == 0 && s.queued == 0);
    CHECK_OK(tasker_destroy(h));
}

static const scenario_t SCENARIOS[] = {
    {"rejected_invalid_counts", rejected_invalid_counts, 30},
    {"bad_new", bad_new, 30},
    {"bad_dispatch", bad_dispatch, 30},
    {"nil_uuid_ids", nil_uuid_ids, 30},
    {"bad_poll", bad_poll, 30},
    {"bad_complete", bad_complete, 30},
    {"bad_other", bad_other, 30},
    {"exact_len", exact_len, 30},
    {"last_error_semantics", last_error_semantics, 30},
    {"last_error_per_thread", last_error_per_thread, 30},
    {"info_functions", info_functions, 30},
};
HARNESS_MAIN(SCENARIOS)
