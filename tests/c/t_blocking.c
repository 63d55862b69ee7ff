/*
 * Blocking calls and shutdown (timeouts of ABI "Functions", rules 1, 10).
 *
 *   block_woken_by_arrival   poll(-1), poll_batch(-1) woken by dispatch;
 *                            next_completion(-1) woken by complete.
 *   block_woken_by_shutdown  poll(-1) and poll_batch(-1) -> CLOSED,
 *                            next_completion(-1) -> CLOSED, dispatch(-1) on a
 *                            full queue -> ESHUTDOWN, all woken by shutdown.
 *   shutdown_drain           queued and pending events at shutdown(400):
 *                            workers complete some before the deadline, the
 *                            rest are cancelled at it; every event accounted
 *                            for exactly once; then CLOSED, ESHUTDOWN,
 *                            idempotent shutdown.
 *   shutdown_deadline        a second shutdown brings the deadline closer
 *                            (never pushes it back); shutdown(-1) waits for
 *                            the workers; during a drain with nothing
 *                            queued poll is CLOSED at once while
 *                            next_completion still waits for the pending
 *                            events, then hands them out, then CLOSED.
 *   block_woken_by_destroy   poll(-1), poll_batch(-1), next_completion(-1),
 *                            dispatch(-1) on a full queue and shutdown(-1)
 *                            with a pending event, all blocked: destroy
 *                            wakes every one of them (rule 5).
 */
#include "harness.h"

static uint64_t rng = 0xb10c;

typedef struct {
    tasker_t h;
    int kind; /* 0 poll, 1 poll_batch, 2 next_completion, 3 dispatch, 4 shutdown */
    int32_t timeout;
    atomic_int done;
    int st;
    char id[37];
    double ms;
    double done_at;
} call_t;

static void *blocked_call(void *arg) {
    call_t *c = arg;
    double t0 = h_now();
    char *p = (char *)1;
    size_t n = 7;
    uint32_t cnt = 7;
    uint64_t r = (uint64_t)(uintptr_t)c;
    switch (c->kind) {
    case 0:
        c->st = tasker_poll(c->h, c->timeout, &p, &n);
        break;
    case 1:
        c->st = tasker_poll_batch(c->h, 10, c->timeout, &p, &n, &cnt);
        break;
    case 2:
        c->st = tasker_next_completion(c->h, c->timeout, &p, &n);
        break;
    case 3:
        p = NULL;
        n = 0;
        c->st = h_dispatch(c->h, &r, NULL, c->timeout, c->id);
        break;
    default:
        p = NULL;
        n = 0;
        c->st = tasker_shutdown(c->h, c->timeout);
        break;
    }
    if (c->st == TASKER_OK && p) {
        jv_t v = {p, n};
        if (c->kind == 1) {
            const char *cur = NULL;
            CHECK(cnt >= 1 && jv_next(v, &cur, &v));
        }
        CHECK(jv_uuid(jv_get(v, "event_id"), c->id));
    } else if (c->kind <= 2) {
        CHECKF(p == NULL && n == 0, "status %d with out-pointers set", c->st);
    }
    tasker_free(p);
    c->done_at = h_now();
    c->ms = (c->done_at - t0) * 1000.0;
    atomic_store(&c->done, 1);
    return NULL;
}

static void expect_blocked(call_t *c, const char *what) {
    h_sleep_ms(150);
    CHECKF(!atomic_load(&c->done), "%s returned %d after %.1f ms instead of blocking", what, c->st, c->ms);
}

static void block_woken_by_arrival(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    call_t a = {.h = h, .kind = 0, .timeout = -1}, b = {.h = h, .kind = 1, .timeout = -1};
    pthread_t ta, tb;
    h_thread(&ta, blocked_call, &a);
    h_thread(&tb, blocked_call, &b);
    expect_blocked(&a, "poll(-1) on an empty queue");
    CHECK(!atomic_load(&b.done));
    char id1[37], id2[37];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, id1));
    /* exactly one of them wakes with that event */
    double t0 = h_now();
    while (!atomic_load(&a.done) && !atomic_load(&b.done)) {
        CHECKF(h_ms_since(t0) < 5000, "no blocked poll woke up after a dispatch");
        h_sleep_ms(1);
    }
    h_sleep_ms(50);
    CHECKF(atomic_load(&a.done) + atomic_load(&b.done) == 1, "one dispatch woke %d polls",
           atomic_load(&a.done) + atomic_load(&b.done));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, id2));
    h_join(ta);
    h_join(tb);
    CHECK_OK(a.st);
    CHECK_OK(b.st);
    CHECK((!strcmp(a.id, id1) && !strcmp(b.id, id2)) || (!strcmp(a.id, id2) && !strcmp(b.id, id1)));
    /* next_completion(-1) is woken by a complete */
    call_t c = {.h = h, .kind = 2, .timeout = -1};
    pthread_t tc;
    h_thread(&tc, blocked_call, &c);
    expect_blocked(&c, "next_completion(-1) on an empty stream");
    CHECK_OK(h_complete(h, id2, RES_OK));
    h_join(tc);
    CHECK_OK(c.st);
    CHECK(strcmp(c.id, id2) == 0);
    /* a finite timeout is woken early too */
    call_t d = {.h = h, .kind = 2, .timeout = 20000};
    h_thread(&tc, blocked_call, &d);
    expect_blocked(&d, "next_completion(20000)");
    CHECK_OK(h_complete(h, id1, RES_FAIL));
    h_join(tc);
    CHECK_OK(d.st);
    CHECKF(d.ms < 10000, "next_completion(20000) took %.1f ms after a complete", d.ms);
    CHECK_OK(tasker_destroy(h));
}

static void block_woken_by_shutdown(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    tasker_t h2 = h_new("{\"dispatch_buffer_size\":1,\"cleanup_interval_ms\":0}");
    CHECK_OK(h_dispatch(h2, &rng, NULL, 0, NULL));
    call_t c[5] = {
        {.h = h, .kind = 0, .timeout = -1},
        {.h = h, .kind = 1, .timeout = -1},
        {.h = h, .kind = 2, .timeout = -1},
        {.h = h2, .kind = 3, .timeout = -1},
        {.h = h, .kind = 0, .timeout = 60000},
    };
    pthread_t t[5];
    for (int i = 0; i < 5; i++) h_thread(&t[i], blocked_call, &c[i]);
    h_sleep_ms(150);
    for (int i = 0; i < 5; i++) CHECKF(!atomic_load(&c[i].done), "call %d returned %d without blocking", i, c[i].st);
    double t0 = h_now();
    /* h2's queued event can't be drained (nobody polls): its shutdown lasts
     * the whole 1000 ms drain, but the blocked dispatch must wake at once */
    call_t sd = {.h = h2, .kind = 4, .timeout = 1000};
    pthread_t tsd;
    h_thread(&tsd, blocked_call, &sd);
    CHECK_OK(tasker_shutdown(h, 0));
    for (int i = 0; i < 5; i++) h_join(t[i]);
    double el = 0;
    for (int i = 0; i < 5; i++) {
        double w = (c[i].done_at - t0) * 1000.0;
        CHECKF(w < 2000, "blocked call %d took %.1f ms to wake at shutdown", i, w);
        if (w > el) el = w;
    }
    h_join(tsd);
    CHECK_OK(sd.st);
    CHECKF(sd.ms >= 950, "shutdown(h2, 1000) returned after %.1f ms with a queued event nobody polls", sd.ms);
    CHECK_ST(c[0].st, TASKER_CLOSED);
    CHECK_ST(c[1].st, TASKER_CLOSED);
    CHECK_ST(c[2].st, TASKER_CLOSED);
    CHECK_ST(c[3].st, TASKER_ESHUTDOWN);
    CHECK_ST(c[4].st, TASKER_CLOSED);
    /* h2's queued event was cancelled at its deadline and is in the stream */
    char id[37], st[16];
    CHECK_OK(h_next_id(h2, 0, id, st));
    CHECK(strcmp(st, "cancelled") == 0);
    char *p;
    size_t n;
    CHECK_ST(h_next(h2, -1, &p, &n), TASKER_CLOSED);
    CHECK_OK(tasker_destroy(h));
    CHECK_OK(tasker_destroy(h2));
    H_NOTE("5 blocked calls woke %.1f ms after shutdown began", el);
}

/* ---- shutdown drain ---- */

typedef struct {
    tasker_t h;
    char held[2][37];
    int nheld;
    int completed_ok, enoent, polled;
} drainer_t;

static void *drain_worker(void *arg) {
    drainer_t *w = arg;
    /* wait until shutdown has begun */
    for (;;) {
        hstats_t s;
        h_stats(w->h, &s);
        if (strcmp(s.state, "running") != 0) break;
        h_sleep_ms(1);
    }
    /* pending events may still be completed during the drain */
    for (int i = 0; i < w->nheld; i++) {
        CHECK_OK(h_complete(w->h, w->held[i], RES_OK));
        w->completed_ok++;
    }
    /* queued events may still be polled during the drain */
    for (;;) {
        char id[37];
        int st = h_poll_id(w->h, -1, id);
        if (st == TASKER_CLOSED) break;
        CHECKF(st == TASKER_OK, "poll during drain returned %d", st);
        w->polled++;
        h_sleep_ms(25);
        st = h_complete(w->h, id, RES_OK);
        if (st == TASKER_OK) w->completed_ok++;
        else {
            CHECK_ST(st, TASKER_ENOENT); /* cancelled at the deadline meanwhile */
            w->enoent++;
        }
    }
    return NULL;
}

static void shutdown_drain(void) {
    enum { N = 40, HELD = 4, DRAIN = 400 };
    tasker_t h = h_new("{\"max_concurrent_handlers\":8,\"completion_buffer_size\":64,\"dispatch_buffer_size\":64,"
                       "\"cleanup_interval_ms\":0,\"handler_timeout_ms\":60000}");
    char ids[N][37];
    for (int i = 0; i < N; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, ids[i]));
    char P[HELD][37];
    for (int i = 0; i < HELD; i++) CHECK_OK(h_poll_id(h, 0, P[i]));
    drainer_t w = {.h = h, .nheld = 2};
    memcpy(w.held[0], P[0], 37);
    memcpy(w.held[1], P[1], 37);
    pthread_t t;
    h_thread(&t, drain_worker, &w);
    double t0 = h_now();
    CHECK_OK(tasker_shutdown(h, DRAIN));
    double el = h_ms_since(t0);
    CHECKF(el >= DRAIN - 20, "shutdown(%d) returned after %.1f ms with events never completed", DRAIN, el);
    CHECKF(el < DRAIN + 5000, "shutdown(%d) took %.1f ms", DRAIN, el);
    /* after shutdown: ESHUTDOWN, CLOSED, idempotent */
    EXPECT_FAIL(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_ESHUTDOWN);
    EXPECT_FAIL(h_dispatch(h, &rng, NULL, -1, NULL), TASKER_ESHUTDOWN);
    double t1 = h_now();
    CHECK_OK(tasker_shutdown(h, 0));
    CHECK_OK(tasker_shutdown(h, -1));
    CHECK_OK(tasker_shutdown(h, 100000));
    CHECKF(h_ms_since(t1) < 1000, "repeated shutdowns took %.1f ms", h_ms_since(t1));
    CHECK_ST(h_poll_id(h, -1, NULL), TASKER_CLOSED);
    h_join(t);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(strcmp(s.state, "closed") == 0, "state %s", s.state);
    /* every event accounted for exactly once */
    idset_t set;
    idset_init(&set, N);
    for (int i = 0; i < N; i++) idset_add(&set, ids[i], 1, 0);
    int completed = 0, cancelled = 0, cancelled_never_polled = 0;
    for (int k = 0; k < N; k++) {
        char *c;
        size_t n;
        CHECK_OK(h_next(h, 0, &c, &n));
        char id[37], st[16];
        CHECK(jv_uuid(json_get(c, n, "event_id"), id));
        CHECK(jv_str(json_get(c, n, "status"), st, sizeof st));
        idslot_t sl = idset_add(&set, id, 0, 1);
        CHECKF(sl.dispatched == 1 && sl.completed == 1, "event %s: dispatched %u completions %u", id, sl.dispatched,
               sl.completed);
        bool held_late = !strcmp(id, P[2]) || !strcmp(id, P[3]);
        bool held_early = !strcmp(id, P[0]) || !strcmp(id, P[1]);
        if (!strcmp(st, "completed")) {
            completed++;
            CHECKF(!held_late, "an event nobody completed has status completed");
        } else {
            CHECKF(!strcmp(st, "cancelled"), "status %s at shutdown", st);
            CHECKF(!held_early, "an event completed during the drain was cancelled");
            cancelled++;
            jv_t err = json_get(c, n, "error");
            CHECKF(jv_str_is(jv_get(err, "error_type"), "shutdown"), "cancelled error: %.*s", (int)err.n, err.p);
            CHECK(jv_is(jv_get(err, "retryable"), "true"));
            CHECK(jv_is(json_get(c, n, "success"), "false"));
            jv_t pa = json_get(c, n, "polled_at"), et = json_get(c, n, "execution_time_ms");
            if (jv_null(pa)) {
                cancelled_never_polled++;
                CHECKF(jv_null(et), "never polled but execution_time_ms %.*s", (int)et.n, et.p);
            } else {
                CHECK(jv_is_number(et));
            }
            if (held_late) CHECK(!jv_null(pa));
        }
        tasker_free(c);
    }
    idset_free(&set);
    char *c;
    size_t n;
    CHECK_ST(h_next(h, 0, &c, &n), TASKER_CLOSED);
    CHECK_ST(h_next(h, -1, &c, &n), TASKER_CLOSED);
    CHECKF(completed == w.completed_ok, "completions say %d completed, the worker completed %d", completed, w.completed_ok);
    CHECKF(cancelled_never_polled > 0 && completed > 2, "drain too fast or too slow to test: completed %d, cancelled %d",
           completed, cancelled);
    h_stats(h, &s);
    CHECK(s.dispatched == N && s.completed == completed && s.cancelled == cancelled && h_stats_add_up(&s));
    CHECKF(s.late_completions == w.enoent, "late_completions %lld, worker saw %d ENOENT", s.late_completions, w.enoent);
    CHECK(s.queued == 0 && s.pending == 0 && s.undelivered == 0);
    CHECK_OK(tasker_destroy(h));
    H_NOTE("shutdown(%d) took %.1f ms: %d completed during the drain, %d cancelled (%d never polled), %d late",
           DRAIN, el, completed, cancelled, cancelled_never_polled, w.enoent);
}

/* ---- deadlines ---- */

typedef struct {
    tasker_t h;
    char ids[3][37];
} completer_t;

static void *slow_completer(void *arg) {
    completer_t *c = arg;
    for (int i = 0; i < 3; i++) {
        h_sleep_ms(80);
        CHECK_OK(h_complete(c->h, c->ids[i], RES_OK));
    }
    return NULL;
}

static void shutdown_deadline(void) {
    /* 1: a second shutdown brings the deadline closer */
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, NULL)); /* pending, never completed */
    call_t a = {.h = h, .kind = 4, .timeout = 30000};
    pthread_t ta;
    h_thread(&ta, blocked_call, &a);
    expect_blocked(&a, "shutdown(30000) with a pending event");
    double t0 = h_now();
    CHECK_OK(tasker_shutdown(h, 0));
    double el = h_ms_since(t0);
    h_join(ta);
    CHECK_OK(a.st);
    CHECKF(el < 3000 && a.ms < 5000, "shutdown(0) after shutdown(30000): %.1f ms, first returned after %.1f ms", el, a.ms);
    char id[37], st[16];
    CHECK_OK(h_next_id(h, 0, id, st));
    CHECK(strcmp(st, "cancelled") == 0);
    CHECK_OK(tasker_destroy(h));
    /* 2: shutdown(-1) then shutdown(100): both return around 100 ms */
    h = h_new("{\"cleanup_interval_ms\":0}");
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, NULL));
    call_t b = {.h = h, .kind = 4, .timeout = -1};
    h_thread(&ta, blocked_call, &b);
    expect_blocked(&b, "shutdown(-1) with a pending event");
    t0 = h_now();
    CHECK_OK(tasker_shutdown(h, 100));
    el = h_ms_since(t0);
    h_join(ta);
    CHECK_OK(b.st);
    CHECKF(el >= 90 && el < 3000, "shutdown(100) after shutdown(-1) took %.1f ms", el);
    /* a later, longer deadline does not push it back: everything has ended */
    t0 = h_now();
    CHECK_OK(tasker_shutdown(h, 60000));
    CHECK(h_ms_since(t0) < 1000);
    CHECK_OK(tasker_destroy(h));
    /* 3: shutdown(-1) waits for the workers, cancels nothing */
    h = h_new("{\"cleanup_interval_ms\":0}");
    completer_t cp = {.h = h};
    for (int i = 0; i < 3; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    for (int i = 0; i < 3; i++) CHECK_OK(h_poll_id(h, 0, cp.ids[i]));
    h_thread(&ta, slow_completer, &cp);
    t0 = h_now();
    CHECK_OK(tasker_shutdown(h, -1));
    el = h_ms_since(t0);
    h_join(ta);
    CHECKF(el >= 200, "shutdown(-1) returned after %.1f ms, before the worker finished", el);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(h_next_id(h, 0, id, st));
        CHECK(strcmp(id, cp.ids[i]) == 0 && strcmp(st, "completed") == 0);
    }
    char *c;
    size_t n;
    CHECK_ST(h_next(h, 0, &c, &n), TASKER_CLOSED);
    CHECK_OK(tasker_destroy(h));
    /* 4: during a drain with nothing queued: poll is CLOSED at once, the
     * stream waits for the pending event, hands it out, then is CLOSED */
    h = h_new("{\"cleanup_interval_ms\":0}");
    char P[37];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, P));
    call_t sd = {.h = h, .kind = 4, .timeout = 20000};
    h_thread(&ta, blocked_call, &sd);
    expect_blocked(&sd, "shutdown(20000) with a pending event");
    t0 = h_now();
    CHECK_ST(h_poll_id(h, -1, NULL), TASKER_CLOSED);
    CHECKF(h_ms_since(t0) < 1000, "poll(-1) during a drain with nothing queued took %.1f ms", h_ms_since(t0));
    CHECK_ST(h_next(h, 100, &c, &n), TASKER_EMPTY); /* the pending event has not ended yet */
    EXPECT_FAIL(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_ESHUTDOWN);
    CHECK_OK(h_complete(h, P, RES_OK)); /* completing during the drain is allowed */
    h_join(ta);
    CHECK_OK(sd.st);
    CHECKF(sd.ms < 10000, "shutdown(20000) took %.1f ms after the last event ended", sd.ms);
    CHECK_OK(h_next_id(h, -1, id, st));
    CHECK(strcmp(id, P) == 0 && strcmp(st, "completed") == 0);
    CHECK_ST(h_next(h, -1, &c, &n), TASKER_CLOSED);
    CHECK_OK(tasker_destroy(h));
}

static void block_woken_by_destroy(void) {
    /* every bound is 1: A pending, B queued (queue full, no room to start it) */
    tasker_t h = h_new("{\"dispatch_buffer_size\":1,\"max_concurrent_handlers\":1,\"completion_buffer_size\":1,"
                       "\"cleanup_interval_ms\":0}");
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, NULL));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    /* shutdown(-1) begins a shutdown, so it blocks on a channel of its own */
    tasker_t h2 = h_new("{\"cleanup_interval_ms\":0}");
    CHECK_OK(h_dispatch(h2, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h2, 0, NULL));
    call_t c[6] = {
        {.h = h, .kind = 0, .timeout = -1}, /* poll: blocked by the in-flight bound */
        {.h = h, .kind = 1, .timeout = -1}, /* poll_batch: same */
        {.h = h, .kind = 2, .timeout = -1}, /* next_completion: empty stream */
        {.h = h, .kind = 3, .timeout = -1}, /* dispatch: full queue */
        {.h = h2, .kind = 4, .timeout = -1}, /* shutdown(-1): its event never completes */
        {.h = h, .kind = 2, .timeout = 60000},
    };
    pthread_t t[6];
    for (int i = 0; i < 6; i++) h_thread(&t[i], blocked_call, &c[i]);
    h_sleep_ms(150);
    for (int i = 0; i < 6; i++) CHECKF(!atomic_load(&c[i].done), "call %d returned %d without blocking", i, c[i].st);
    double t0 = h_now();
    CHECK_OK(tasker_destroy(h));
    CHECK_OK(tasker_destroy(h2));
    double el = h_ms_since(t0);
    for (int i = 0; i < 6; i++) h_join(t[i]);
    for (int i = 0; i < 6; i++) {
        double w = (c[i].done_at - t0) * 1000.0;
        CHECKF(w < 2000, "blocked call %d took %.1f ms to wake at destroy", i, w);
    }
    CHECKF(c[0].st == TASKER_CLOSED || c[0].st == TASKER_EBADF, "poll woken by destroy: %d", c[0].st);
    CHECKF(c[1].st == TASKER_CLOSED || c[1].st == TASKER_EBADF, "poll_batch woken by destroy: %d", c[1].st);
    for (int i = 2; i < 6; i += 3) /* a completion (cancelled A or B) may be handed out before the discard */
        CHECKF(c[i].st == TASKER_CLOSED || c[i].st == TASKER_EBADF || c[i].st == TASKER_OK,
               "next_completion woken by destroy: %d", c[i].st);
    CHECKF(c[3].st == TASKER_ESHUTDOWN || c[3].st == TASKER_EBADF, "dispatch woken by destroy: %d", c[3].st);
    CHECKF(c[4].st == TASKER_OK || c[4].st == TASKER_EBADF, "shutdown(-1) woken by destroy: %d", c[4].st);
    CHECK_ST(tasker_destroy(h), TASKER_EBADF);
    CHECK_ST(tasker_destroy(h2), TASKER_EBADF);
    H_NOTE("two destroys returned after %.1f ms and woke 6 blocked calls", el);
}

static const scenario_t SCENARIOS[] = {
    {"block_woken_by_arrival", block_woken_by_arrival, 30},
    {"block_woken_by_shutdown", block_woken_by_shutdown, 30},
    {"shutdown_drain", shutdown_drain, 30},
    {"shutdown_deadline", shutdown_deadline, 30},
    {"block_woken_by_destroy", block_woken_by_destroy, 30},
};
HARNESS_MAIN(SCENARIOS)
