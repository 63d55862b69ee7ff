/*
 * Bounds (rule 3, and rule 2: complete never waits) and timeouts (rules 8, 9).
 *
 *   bounds_dispatch        dispatch_buffer_size=N, nobody polling: exactly N
 *                          dispatches succeed; then EFULL at once (timeout 0)
 *                          and after waiting (timeout 50); rejected_full and
 *                          queued count them; a waiting dispatch is let in
 *                          by a poll.
 *   bounds_inflight        max_concurrent_handlers=M: M polls succeed, the
 *                          next is EMPTY (also after waiting, also
 *                          poll_batch); a complete frees a slot and wakes a
 *                          waiting poll.
 *   bounds_completion      completion_buffer_size=C: with C events ended and
 *                          not taken, poll is EMPTY; taking one completion
 *                          lets exactly one more poll succeed.
 *   timeout_manual_cleanup per-event timeout_ms + tasker_cleanup_timeouts:
 *                          expired count, "timeout"/"ffi_timeout" completion,
 *                          late complete -> ENOENT counted in late_completions,
 *                          explicit event_id reuse after the end (rule 8).
 *   stats_gauges           the gauges of ABI "Stats": queued/pending/
 *                          undelivered, oldest_pending_*, oldest_queued_age_ms,
 *                          starvation_detected, starving_event_count.
 *   timeout_reaper         the reaper (cleanup_interval_ms) expires an event
 *                          without any cleanup call; late complete -> ENOENT.
 */
#include "harness.h"

static uint64_t rng = 0xb0b0;

static void bounds_dispatch(void) {
    enum { N = 16 };
    tasker_t h = h_new("{\"dispatch_buffer_size\":16,\"cleanup_interval_ms\":0}");
    for (int i = 0; i < N; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    char id[37];
    memset(id, 'X', sizeof id);
    EXPECT_FAIL(h_dispatch(h, &rng, NULL, 0, id), TASKER_EFULL);
    CHECK(id[0] == 0);
    double t0 = h_now();
    memset(id, 'X', sizeof id);
    EXPECT_FAIL(h_dispatch(h, &rng, NULL, 50, id), TASKER_EFULL);
    double waited = h_ms_since(t0);
    CHECK(id[0] == 0);
    CHECKF(waited >= 48.0, "EFULL after %.1f ms, want >= 50 ms of waiting", waited);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.rejected_full == 2 && s.queued == N && s.dispatched == N, "rejected_full %lld queued %lld dispatched %lld",
           s.rejected_full, s.queued, s.dispatched);
    /* one poll makes room for exactly one more */
    CHECK_OK(h_poll_id(h, 0, NULL));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_ST(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_EFULL);
    H_NOTE("EFULL with timeout 50 came after %.1f ms", waited);
    CHECK_OK(tasker_destroy(h));
}

/* a dispatch waiting for room is let in by a poll */
typedef struct {
    tasker_t h;
    int32_t timeout;
    atomic_int done;
    int st;
    char id[37];
} waiter_t;

static void *dispatch_waiter(void *arg) {
    waiter_t *w = arg;
    uint64_t r = 77;
    w->st = h_dispatch(w->h, &r, NULL, w->timeout, w->id);
    atomic_store(&w->done, 1);
    return NULL;
}

static void *poll_waiter(void *arg) {
    waiter_t *w = arg;
    w->st = h_poll_id(w->h, w->timeout, w->id);
    atomic_store(&w->done, 1);
    return NULL;
}

static void bounds_dispatch_wait(void) {
    tasker_t h = h_new("{\"dispatch_buffer_size\":2,\"cleanup_interval_ms\":0}");
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    for (int round = 0; round < 2; round++) {
        waiter_t w = {.h = h, .timeout = round ? 10000 : -1};
        pthread_t t;
        h_thread(&t, dispatch_waiter, &w);
        h_sleep_ms(100);
        CHECKF(!atomic_load(&w.done), "dispatch(timeout %d) into a full queue returned %d without waiting", w.timeout,
               w.st);
        CHECK_OK(h_poll_id(h, 0, NULL));
        h_join(t);
        CHECK_OK(w.st);
        CHECK(h_is_uuid(w.id, strlen(w.id)));
    }
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.queued == 2 && s.rejected_full == 0);
    CHECK_OK(tasker_destroy(h));
}

static void bounds_inflight(void) {
    enum { M = 4 };
    tasker_t h = h_new("{\"max_concurrent_handlers\":4,\"completion_buffer_size\":100,\"cleanup_interval_ms\":0}");
    for (int i = 0; i < 20; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    char ids[M][37];
    for (int i = 0; i < M; i++) CHECK_OK(h_poll_id(h, 0, ids[i]));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY);
    double t0 = h_now();
    CHECK_ST(h_poll_id(h, 50, NULL), TASKER_EMPTY);
    double waited = h_ms_since(t0);
    CHECKF(waited >= 48.0, "EMPTY at the in-flight bound after %.1f ms, want >= 50", waited);
    char *p = (char *)1;
    size_t n = 5;
    uint32_t cnt = 5;
    CHECK_ST(tasker_poll_batch(h, 10, 0, &p, &n, &cnt), TASKER_EMPTY);
    CHECK(p == NULL && n == 0 && cnt == 0);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.pending == M && s.queued == 16, "pending %lld queued %lld", s.pending, s.queued);
    /* one complete frees one slot */
    CHECK_OK(h_complete(h, ids[0], RES_OK));
    CHECK_OK(h_poll_id(h, 0, ids[0]));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY);
    /* two completes: poll_batch(10) hands out exactly two */
    CHECK_OK(h_complete(h, ids[1], RES_OK));
    CHECK_OK(h_complete(h, ids[2], RES_FAIL));
    CHECK_OK(tasker_poll_batch(h, 10, 0, &p, &n, &cnt));
    CHECKF(cnt == 2, "poll_batch handed out %u events with 2 free slots", cnt);
    jv_t arr = {p, n}, ev;
    const char *cur = NULL;
    int k = 1;
    while (jv_next(arr, &cur, &ev)) CHECK(jv_uuid(jv_get(ev, "event_id"), ids[k++]));
    CHECK(k == 3);
    tasker_free(p);
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY);
    /* a poll waiting at the bound is woken by a complete */
    waiter_t w = {.h = h, .timeout = -1};
    pthread_t t;
    h_thread(&t, poll_waiter, &w);
    h_sleep_ms(100);
    CHECKF(!atomic_load(&w.done), "poll(-1) at the in-flight bound returned %d without waiting", w.st);
    CHECK_OK(h_complete(h, ids[3], RES_OK));
    h_join(t);
    CHECK_OK(w.st);
    h_stats(h, &s);
    CHECKF(s.pending == M && s.polled == M + 4, "pending %lld polled %lld", s.pending, s.polled);
    CHECK_OK(tasker_destroy(h));
}

static void bounds_completion(void) {
    enum { M = 2, C = 4 };
    tasker_t h = h_new("{\"max_concurrent_handlers\":2,\"completion_buffer_size\":4,\"cleanup_interval_ms\":0}");
    for (int i = 0; i < 10; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    char id[37];
    for (int i = 0; i < C; i++) {
        CHECK_OK(h_poll_id(h, 0, id));
        CHECK_OK(h_complete(h, id, RES_OK));
    }
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.undelivered == C && s.pending == 0, "undelivered %lld pending %lld", s.undelivered, s.pending);
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY);
    double t0 = h_now();
    CHECK_ST(h_poll_id(h, 30, NULL), TASKER_EMPTY);
    CHECK(h_ms_since(t0) >= 28.0);
    char *c;
    size_t n;
    CHECK_OK(h_next(h, 0, &c, &n)); /* room for one */
    tasker_free(c);
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY); /* 1 running + 3 not taken = C */
    /* complete never waits, even with the stream at its bound (rule 2) */
    double tc = h_now();
    CHECK_OK(h_complete(h, id, RES_OK));
    CHECKF(h_ms_since(tc) < 1000, "complete took %.1f ms", h_ms_since(tc));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY); /* 4 not taken */
    /* a poll waiting on the completion bound is woken by next_completion */
    waiter_t w = {.h = h, .timeout = 10000};
    pthread_t t;
    h_thread(&t, poll_waiter, &w);
    h_sleep_ms(100);
    CHECKF(!atomic_load(&w.done), "poll at the completion bound returned %d without waiting", w.st);
    CHECK_OK(h_next(h, 0, &c, &n));
    tasker_free(c);
    h_join(t);
    CHECK_OK(w.st);
    h_stats(h, &s);
    CHECKF(s.in_flight <= C && s.pending == 1 && s.undelivered == 3, "in_flight %lld pending %lld undelivered %lld",
           s.in_flight, s.pending, s.undelivered);
    CHECK_OK(tasker_destroy(h));
}

static void timeout_manual_cleanup(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0,\"handler_timeout_ms\":60000}");
    char ev[EV_MAX];
    const char *explicit_id = "6e1f0a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b";
    char extra[128];
    snprintf(extra, sizeof extra, "\"timeout_ms\":300,\"event_id\":\"%s\"", explicit_id);
    int n = ev_simple(ev, sizeof ev, &rng, extra);
    CHECK_OK(tasker_dispatch(h, ev, (size_t)n, 0, NULL));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL)); /* default 60 s */
    char A[37], B[37], *js;
    size_t len;
    CHECK_OK(tasker_poll(h, 0, &js, &len));
    double polled = h_now();
    CHECK(jv_uuid(json_get(js, len, "event_id"), A) && strcmp(A, explicit_id) == 0);
    CHECK(jv_int(json_get(js, len, "timeout_ms")) == 300);
    tasker_free(js);
    CHECK_OK(tasker_poll(h, 0, &js, &len));
    CHECK(jv_uuid(json_get(js, len, "event_id"), B));
    CHECK(jv_int(json_get(js, len, "timeout_ms")) == 60000);
    tasker_free(js);
    uint32_t expired = 99;
    CHECK_OK(tasker_cleanup_timeouts(h, &expired));
    if (h_ms_since(polled) < 250) CHECKF(expired == 0, "cleanup expired %u events before any deadline", expired);
    while (h_ms_since(polled) < 350) h_sleep_ms(10);
    expired = 99;
    CHECK_OK(tasker_cleanup_timeouts(h, &expired));
    CHECKF(expired == 1, "cleanup expired %u, want 1", expired);
    expired = 99;
    CHECK_OK(tasker_cleanup_timeouts(h, &expired));
    CHECK(expired == 0);
    CHECK_OK(tasker_cleanup_timeouts(h, NULL));
    char *c;
    CHECK_OK(h_next(h, 0, &c, &len));
    char id[37];
    CHECK(jv_uuid(json_get(c, len, "event_id"), id) && strcmp(id, A) == 0);
    CHECKF(jv_str_is(json_get(c, len, "status"), "timeout"), "status: %s", c);
    CHECK(jv_is(json_get(c, len, "success"), "false"));
    CHECK(jv_null(json_get(c, len, "result")));
    jv_t err = json_get(c, len, "error");
    CHECKF(jv_str_is(jv_get(err, "error_type"), "ffi_timeout"), "error: %.*s", (int)err.n, err.p);
    CHECK(jv_is(jv_get(err, "retryable"), "true"));
    char msg[256];
    CHECK(jv_str(jv_get(err, "message"), msg, sizeof msg) && strlen(msg) > 0);
    CHECK(jv_is_ts(json_get(c, len, "polled_at")));
    jv_t et = json_get(c, len, "execution_time_ms");
    CHECKF(jv_is_number(et) && jv_num(et) >= 299.0, "execution_time_ms %.*s", (int)et.n, et.p);
    double span = (double)(jv_ts_ns(json_get(c, len, "completed_at")) - jv_ts_ns(json_get(c, len, "polled_at"))) / 1e6;
    CHECKF(jv_num(et) < span + 250.0 && jv_num(et) > span - 250.0,
           "execution_time_ms %.*s, completed_at - polled_at %.3f ms", (int)et.n, et.p, span);
    tasker_free(c);
    /* rule 8: late complete -> ENOENT, counted; the first end stands */
    EXPECT_FAIL(h_complete(h, A, RES_OK), TASKER_ENOENT);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.late_completions == 1 && s.timed_out == 1 && s.pending == 1, "late %lld timed_out %lld pending %lld",
           s.late_completions, s.timed_out, s.pending);
    CHECK_ST(h_next(h, 0, &c, &len), TASKER_EMPTY);
    /* the explicit event_id may be reused now that its event has ended */
    CHECK_OK(tasker_dispatch(h, ev, (size_t)n, 0, id));
    CHECK(strcmp(id, explicit_id) == 0);
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_OK(h_complete(h, id, RES_OK));
    CHECK_OK(h_complete(h, B, RES_OK)); /* not expired */
    CHECK_OK(h_next_id(h, 0, id, NULL));
    CHECK(strcmp(id, explicit_id) == 0);
    CHECK_OK(h_next_id(h, 0, id, NULL));
    CHECK(strcmp(id, B) == 0);
    h_stats(h, &s);
    CHECK(s.timed_out == 1 && s.completed == 2 && s.late_completions == 1 && h_stats_add_up(&s));
    CHECK_OK(tasker_destroy(h));
}

static void timeout_reaper(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":10,\"handler_timeout_ms\":50}");
    char A[37], id[37], st[16];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, A));
    double polled = h_now();
    char *c;
    size_t len;
    CHECK_OK(h_next(h, 5000, &c, &len)); /* nobody calls cleanup */
    double after = h_ms_since(polled);
    CHECK(jv_uuid(json_get(c, len, "event_id"), id) && strcmp(id, A) == 0);
    CHECK(jv_str(json_get(c, len, "status"), st, sizeof st) && strcmp(st, "timeout") == 0);
    CHECK(jv_str_is(jv_get(json_get(c, len, "error"), "error_type"), "ffi_timeout"));
    tasker_free(c);
    CHECKF(after >= 45.0, "reaped after %.1f ms, deadline was 50 ms", after);
    EXPECT_FAIL(h_complete(h, A, RES_OK), TASKER_ENOENT);
    /* a completed event is not reaped */
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, A));
    CHECK_OK(h_complete(h, A, RES_OK));
    h_sleep_ms(100);
    CHECK_OK(h_next_id(h, 0, id, st));
    CHECK(strcmp(id, A) == 0 && strcmp(st, "completed") == 0);
    CHECK_ST(h_next(h, 0, &c, &len), TASKER_EMPTY);
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.timed_out == 1 && s.completed == 1 && s.late_completions == 1);
    H_NOTE("reaper ended the event %.1f ms after poll (timeout 50 ms, interval 10 ms)", after);
    CHECK_OK(tasker_destroy(h));
}

static void stats_gauges(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0,\"starvation_warning_threshold_ms\":50,\"worker_id\":\"w-7\"}");
    char *js;
    size_t n;
    CHECK_OK(tasker_stats(h, &js, &n));
    CHECK(json_valid(js, n));
    CHECK(jv_null(json_get(js, n, "oldest_pending_event_id")) && jv_is(json_get(js, n, "starvation_detected"), "false"));
    CHECK(jv_int(json_get(js, n, "oldest_pending_age_ms")) == 0 && jv_int(json_get(js, n, "oldest_queued_age_ms")) == 0);
    tasker_free(js);
    char first[37], second[37];
    for (int i = 0; i < 4; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, first));
    CHECK_OK(h_poll_id(h, 0, second));
    h_sleep_ms(120);
    CHECK_OK(h_complete(h, second, RES_OK));
    CHECK_OK(tasker_stats(h, &js, &n));
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.queued == 2 && s.pending == 1 && s.undelivered == 1 && s.dispatched == 4 && s.polled == 2 &&
               s.completed == 1 && h_stats_add_up(&s),
           "stats: %s", js);
    char id[37];
    CHECKF(jv_uuid(json_get(js, n, "oldest_pending_event_id"), id) && strcmp(id, first) == 0, "stats: %s", js);
    CHECKF(jv_int(json_get(js, n, "oldest_pending_age_ms")) >= 100, "stats: %s", js);
    CHECKF(jv_int(json_get(js, n, "oldest_queued_age_ms")) >= 100, "stats: %s", js);
    CHECKF(jv_is(json_get(js, n, "starvation_detected"), "true"), "stats: %s", js);
    CHECKF(jv_int(json_get(js, n, "starving_event_count")) == 3, "starving_event_count (2 queued + 1 pending): %s", js);
    CHECKF(jv_str_is(json_get(js, n, "worker_id"), "w-7"), "worker_id: %s", js);
    tasker_free(js);
    CHECK_OK(tasker_destroy(h));
}

static const scenario_t SCENARIOS[] = {
    {"bounds_dispatch", bounds_dispatch, 30},
    {"bounds_dispatch_wait", bounds_dispatch_wait, 30},
    {"bounds_inflight", bounds_inflight, 30},
    {"bounds_completion", bounds_completion, 30},
    {"timeout_manual_cleanup", timeout_manual_cleanup, 30},
    {"timeout_reaper", timeout_reaper, 30},
    {"stats_gauges", stats_gauges, 30},
};
HARNESS_MAIN(SCENARIOS)
