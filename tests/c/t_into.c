/*
 * Caller-owned buffers: tasker_poll_into and tasker_next_completion_into
 * (include/tasker.h).
 *
 *   into_roundtrip        poll_into / next_completion_into hand out the same
 *                         documents as poll / next_completion: NUL-terminated,
 *                         *len without the NUL, one buffer reused.
 *   into_too_small_event  an event that does not fit: ETOOBIG, *len = its
 *                         length, a message that says what to do; it is
 *                         kept and handed out first (before older queued
 *                         events) by poll_into, poll and poll_batch; polled
 *                         counts it once; buf NULL with cap 0 asks its size.
 *   into_too_small_completion  a completion that does not fit is kept and
 *                         handed out first by next_completion(_into), from
 *                         another thread too; every event ends exactly once.
 *   into_bad_args         NULL len, NULL buf with cap > 0, bad timeout, bad
 *                         handle: the usual statuses, nothing taken.
 *   into_destroy_frees    destroy with kept documents: later calls EBADF,
 *                         nothing handed out.
 *   into_blocking         poll_into(-1) and next_completion_into(-1) wait and
 *                         are woken by dispatch and complete.
 */
#include "harness.h"

static uint64_t rng = 0x1a70;

static void into_roundtrip(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char buf[8192];
    size_t n = 77;
    for (int i = 0; i < 100; i++) {
        char id[37], got[37];
        h_dispatch_ok(h, &rng, id);
        CHECK_OK(tasker_poll_into(h, 0, buf, sizeof buf, &n));
        CHECKF(strlen(buf) == n, "len %zu but strlen %zu", n, strlen(buf));
        CHECK(json_valid(buf, n));
        CHECK(jv_uuid(json_get(buf, n, "event_id"), got));
        CHECK(strcmp(id, got) == 0);
        CHECK(jv_has(json_get(buf, n, "polled_at")));
        CHECK_OK(h_complete(h, id, "{\"success\":true,\"result\":1}"));
        CHECK_OK(tasker_next_completion_into(h, 0, buf, sizeof buf, &n));
        CHECK(strlen(buf) == n && json_valid(buf, n));
        CHECK(jv_uuid(json_get(buf, n, "event_id"), got));
        CHECK(strcmp(id, got) == 0);
    }
    CHECK_ST(tasker_poll_into(h, 0, buf, sizeof buf, &n), TASKER_EMPTY);
    CHECK(n == 0 && buf[0] == 0);
    CHECK_ST(tasker_next_completion_into(h, 0, buf, sizeof buf, &n), TASKER_EMPTY);
    CHECK_OK(tasker_destroy(h));
}

static void into_too_small_event(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char first[37], second[37], got[37], small[16], buf[8192];
    size_t n = 0;
    h_dispatch_ok(h, &rng, first);
    h_dispatch_ok(h, &rng, second);
    EXPECT_FAIL(tasker_poll_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK_MSG_HAS("tasker_poll_into");
    CHECK_MSG_HAS("kept");
    CHECKF(n > sizeof small, "len %zu should be the event's length", n);
    CHECK(small[0] == 0);
    size_t need = n;
    /* still too small: the same answer, nothing more taken */
    EXPECT_FAIL(tasker_poll_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK(n == need);
    /* exactly len bytes is one too few (the NUL) */
    char *exact = malloc(need);
    CHECK(exact);
    EXPECT_FAIL(tasker_poll_into(h, 0, exact, need, &n), TASKER_ETOOBIG);
    free(exact);
    /* the size question: NULL with cap 0 */
    CHECK_ST(tasker_poll_into(h, 0, NULL, 0, &n), TASKER_ETOOBIG);
    CHECK(n == need);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.polled == 1 && s.queued == 1 && s.pending == 1, "polled %lld queued %lld pending %lld", s.polled,
           s.queued, s.pending);
    /* the kept one comes first, then the queued one */
    CHECK_OK(tasker_poll_into(h, 0, buf, need + 1, &n));
    CHECK(n == need && strlen(buf) == n);
    CHECK(jv_uuid(json_get(buf, n, "event_id"), got) && strcmp(got, first) == 0);
    CHECK_OK(tasker_poll_into(h, 0, buf, sizeof buf, &n));
    CHECK(jv_uuid(json_get(buf, n, "event_id"), got) && strcmp(got, second) == 0);
    h_stats(h, &s);
    CHECK(s.polled == 2 && s.pending == 2 && h_stats_add_up(&s));

    /* kept, then taken by tasker_poll */
    char third[37];
    h_dispatch_ok(h, &rng, third);
    CHECK_ST(tasker_poll_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK_OK(h_poll_id(h, 0, got));
    CHECK(strcmp(got, third) == 0);
    /* kept, then taken by tasker_poll_batch as a one-element array */
    char fourth[37], fifth[37];
    h_dispatch_ok(h, &rng, fourth);
    h_dispatch_ok(h, &rng, fifth);
    CHECK_ST(tasker_poll_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    char *arr = NULL;
    uint32_t cnt = 0;
    CHECK_OK(tasker_poll_batch(h, 10, 0, &arr, &n, &cnt));
    CHECK(cnt == 1 && strlen(arr) == n && json_valid(arr, n) && arr[0] == '[');
    const char *cur = NULL;
    jv_t el;
    CHECK(jv_next((jv_t){arr, n}, &cur, &el));
    CHECK(jv_uuid(jv_get(el, "event_id"), got) && strcmp(got, fourth) == 0);
    tasker_free(arr);
    CHECK_OK(h_poll_id(h, 0, got));
    CHECK(strcmp(got, fifth) == 0);
    /* every event ends exactly once */
    const char *ids[] = {first, second, third, fourth, fifth};
    for (int i = 0; i < 5; i++) CHECK_OK(h_complete(h, ids[i], "{\"success\":true}"));
    for (int i = 0; i < 5; i++) {
        CHECK_OK(h_next_id(h, 0, got, NULL));
        CHECKF(strcmp(got, ids[i]) == 0, "completion %d is %s, want %s", i, got, ids[i]);
    }
    CHECK_ST(h_next_id(h, 0, got, NULL), TASKER_EMPTY);
    h_stats(h, &s);
    CHECK(s.polled == 5 && s.completed == 5 && s.pending == 0 && h_stats_add_up(&s));
    CHECK_OK(tasker_destroy(h));
}

typedef struct {
    tasker_t h;
    char id[37];
    int st;
} taker_t;

static void *take_completion(void *arg) {
    taker_t *t = arg;
    char buf[8192];
    size_t n;
    t->st = tasker_next_completion_into(t->h, 5000, buf, sizeof buf, &n);
    if (t->st == TASKER_OK) CHECK(jv_uuid(json_get(buf, n, "event_id"), t->id));
    return NULL;
}

static void into_too_small_completion(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char ids[3][37], got[37], small[32], buf[8192];
    size_t n;
    for (int i = 0; i < 3; i++) {
        h_dispatch_ok(h, &rng, ids[i]);
        CHECK_OK(h_poll_id(h, 0, NULL));
        CHECK_OK(h_complete(h, ids[i], "{\"success\":true,\"result\":\"a result\"}"));
    }
    EXPECT_FAIL(tasker_next_completion_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK_MSG_HAS("tasker_next_completion_into");
    CHECK(n > sizeof small);
    size_t need = n;
    /* kept: the next caller (another thread here) gets it first */
    taker_t t = {h, "", 0};
    pthread_t th;
    h_thread(&th, take_completion, &t);
    h_join(th);
    CHECK_OK(t.st);
    CHECK(strcmp(t.id, ids[0]) == 0);
    /* kept again, then taken by the malloc'ing call */
    CHECK_ST(tasker_next_completion_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK_OK(h_next_id(h, 0, got, NULL));
    CHECK(strcmp(got, ids[1]) == 0);
    CHECK_OK(tasker_next_completion_into(h, 0, buf, need + 1 + 64, &n));
    CHECK(jv_uuid(json_get(buf, n, "event_id"), got) && strcmp(got, ids[2]) == 0);
    CHECK_ST(tasker_next_completion_into(h, 0, buf, sizeof buf, &n), TASKER_EMPTY);
    /* CLOSED only once nothing is kept either */
    char last[37];
    h_dispatch_ok(h, &rng, last);
    CHECK_OK(h_poll_id(h, 0, NULL));
    CHECK_OK(h_complete(h, last, "{\"success\":true}"));
    CHECK_OK(tasker_shutdown(h, 0));
    CHECK_ST(tasker_next_completion_into(h, 0, small, 8, &n), TASKER_ETOOBIG);
    CHECK_OK(tasker_next_completion_into(h, 0, buf, sizeof buf, &n));
    CHECK(jv_uuid(json_get(buf, n, "event_id"), got) && strcmp(got, last) == 0);
    CHECK_ST(tasker_next_completion_into(h, 0, buf, sizeof buf, &n), TASKER_CLOSED);
    CHECK_OK(tasker_destroy(h));
}

static void into_bad_args(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char buf[4096];
    size_t n = 5;
    h_dispatch_ok(h, &rng, NULL);
    EXPECT_FAIL(tasker_poll_into(h, 0, buf, sizeof buf, NULL), TASKER_EINVAL);
    CHECK_MSG_HAS("len");
    EXPECT_FAIL(tasker_poll_into(h, 0, NULL, 10, &n), TASKER_EINVAL);
    CHECK_MSG_HAS("buf");
    CHECK(n == 0);
    EXPECT_FAIL(tasker_poll_into(h, -2, buf, sizeof buf, &n), TASKER_EINVAL);
    EXPECT_FAIL(tasker_next_completion_into(h, 0, NULL, 10, &n), TASKER_EINVAL);
    EXPECT_FAIL(tasker_next_completion_into(h, -7, buf, sizeof buf, &n), TASKER_EINVAL);
    EXPECT_FAIL(tasker_poll_into(h + 1000, 0, buf, sizeof buf, &n), TASKER_EBADF);
    EXPECT_FAIL(tasker_poll_into(0, 0, buf, sizeof buf, &n), TASKER_EBADF);
    EXPECT_FAIL(tasker_next_completion_into(0, 0, buf, sizeof buf, &n), TASKER_EBADF);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.polled == 0 && s.queued == 1, "a rejected call took something: polled %lld", s.polled);
    CHECK_OK(tasker_destroy(h));
}

static void into_destroy_frees(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char id[37], small[8], buf[4096];
    size_t n;
    h_dispatch_ok(h, &rng, id);
    h_dispatch_ok(h, &rng, NULL);
    CHECK_ST(tasker_poll_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK_OK(h_poll_id(h, 0, NULL)); /* hands out the kept one */
    CHECK_ST(tasker_poll_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK_OK(h_complete(h, id, "{\"success\":true}"));
    CHECK_ST(tasker_next_completion_into(h, 0, small, sizeof small, &n), TASKER_ETOOBIG);
    CHECK_OK(tasker_destroy(h));
    CHECK_ST(tasker_poll_into(h, 0, buf, sizeof buf, &n), TASKER_EBADF);
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EBADF);
    CHECK_ST(tasker_next_completion_into(h, 0, buf, sizeof buf, &n), TASKER_EBADF);
    char *p;
    CHECK_ST(tasker_next_completion(h, 0, &p, &n), TASKER_EBADF);
}

typedef struct {
    tasker_t h;
    int st;
    size_t n;
    char doc[8192];
} waiter_t;

static void *wait_event(void *arg) {
    waiter_t *w = arg;
    w->st = tasker_poll_into(w->h, -1, w->doc, sizeof w->doc, &w->n);
    return NULL;
}

static void *wait_completion(void *arg) {
    waiter_t *w = arg;
    w->st = tasker_next_completion_into(w->h, -1, w->doc, sizeof w->doc, &w->n);
    return NULL;
}

static void into_blocking(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    static waiter_t we, wc;
    we.h = wc.h = h;
    pthread_t a, b;
    h_thread(&a, wait_event, &we);
    h_thread(&b, wait_completion, &wc);
    h_sleep_ms(50);
    char id[37], got[37];
    h_dispatch_ok(h, &rng, id);
    h_join(a);
    CHECK_OK(we.st);
    CHECK(jv_uuid(json_get(we.doc, we.n, "event_id"), got) && strcmp(got, id) == 0);
    h_sleep_ms(20);
    CHECK_OK(h_complete(h, id, "{\"success\":true}"));
    h_join(b);
    CHECK_OK(wc.st);
    CHECK(jv_uuid(json_get(wc.doc, wc.n, "event_id"), got) && strcmp(got, id) == 0);
    CHECK_OK(tasker_destroy(h));
}

static const scenario_t SCENARIOS[] = {
    {"into_roundtrip", into_roundtrip, 30},
    {"into_too_small_event", into_too_small_event, 30},
    {"into_too_small_completion", into_too_small_completion, 30},
    {"into_bad_args", into_bad_args, 30},
    {"into_destroy_frees", into_destroy_frees, 30},
    {"into_blocking", into_blocking, 30},
};
HARNESS_MAIN(SCENARIOS)
