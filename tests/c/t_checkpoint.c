/*
 * Checkpoint yield (tasker_checkpoint, ABI minor 1).
 *
 *   checkpoint_roundtrip      a checkpoint ends the run without a completion;
 *                             the next poll hands the same event out with
 *                             "checkpoint" {cursor, items_processed,
 *                             accumulated_results, count}; the first poll has
 *                             no "checkpoint"; one final completion with
 *                             "checkpoints": <count> ("checkpoints": 0 without
 *                             any); stats count them.
 *   checkpoint_bad_doc        the strict document: every fault is EINVAL (or
 *                             ETOOBIG) naming the key, and changes nothing:
 *                             the event stays pending and a valid call works.
 *   checkpoint_enoent         not pending (unknown, queued, checkpointed and
 *                             waiting, ended) -> ENOENT, counted as late.
 *   checkpoint_keeps_room     with the dispatch queue full a checkpoint still
 *                             succeeds (the event keeps its room) and goes to
 *                             the back of the queue; new dispatches still see
 *                             the queue full.
 *   checkpoint_wakes_poll     a poll waiting at the in-flight bound is woken
 *                             by a checkpoint (a slot is freed, an event is
 *                             queued) and gets the checkpointed event.
 *   checkpoint_timeout_clock  the deadline restarts at the poll after a
 *                             checkpoint; the timeout completion carries
 *                             "checkpoints".
 *   checkpoint_max            max_checkpoints=N: the N+1th ends the step as
 *                             failed, error_type too_many_checkpoints; bad
 *                             max_checkpoints values are EINVAL.
 *   checkpoint_shutdown       a checkpointed event waiting in the queue is
 *                             cancelled at the drain deadline, once.
 *   checkpoint_exactly_once   4 threads checkpoint and complete 4,000 events
 *                             (0-6 checkpoints each, some with 1 ms timeouts
 *                             and the reaper): one completion per event, its
 *                             "checkpoints" equal to the checkpoints accepted.
 *   checkpoint_abi_minor      tasker_abi_minor() == TASKER_ABI_MINOR >= 1 and
 *                             TASKER_ABI_VERSION is still 1.
 */
#include "harness.h"

static uint64_t rng = 0xc4ec;

static int cp(tasker_t h, const char *id, const char *doc) {
    return tasker_checkpoint(h, id, doc, strlen(doc));
}

/* Polls one event document (caller frees). */
static char *poll_doc(tasker_t h, int32_t timeout_ms, size_t *n) {
    char *js = NULL;
    CHECK_OK(tasker_poll(h, timeout_ms, &js, n));
    CHECK(js != NULL && json_valid(js, *n));
    return js;
}

/* Takes one completion document (caller frees). */
static char *next_doc(tasker_t h, int32_t timeout_ms, size_t *n) {
    char *c = NULL;
    CHECK_OK(h_next(h, timeout_ms, &c, n));
    CHECK(json_valid(c, *n));
    return c;
}

static long long stat_of(tasker_t h, const char *key) {
    char *js = NULL;
    size_t n = 0;
    CHECK_OK(tasker_stats(h, &js, &n));
    long long v = h_stat_field(js, n, key);
    tasker_free(js);
    return v;
}

static void checkpoint_roundtrip(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char id[37], id2[37];
    h_dispatch_ok(h, &rng, id);

    size_t n;
    char *ev = poll_doc(h, 0, &n);
    CHECKF(!jv_has(json_get(ev, n, "checkpoint")), "first poll carries a checkpoint: %s", ev);
    jv_t polled1 = json_get(ev, n, "polled_at");
    CHECK(jv_is_ts(polled1));
    int64_t polled1_ns = jv_ts_ns(polled1);
    tasker_free(ev);

    const char *c1 = "{\"cursor\":{\"offset\":100,\"page\":\"b\\u00e9\"},\"items_processed\":100,"
                     "\"accumulated_results\":[12345678901234567890.5]}";
    CHECK_OK(cp(h, id, c1));
    /* no completion for a checkpoint */
    char *c = NULL;
    CHECK_ST(h_next(h, 0, &c, &n), TASKER_EMPTY);
    CHECKF(stat_of(h, "queued") == 1 && stat_of(h, "pending") == 0, "after a checkpoint the event is queued again");

    h_sleep_ms(2);
    ev = poll_doc(h, 0, &n);
    CHECK(jv_uuid(json_get(ev, n, "event_id"), id2) && strcmp(id, id2) == 0);
    jv_t ck = json_get(ev, n, "checkpoint");
    CHECKF(jv_has(ck), "second poll has no checkpoint: %s", ev);
    static const char cur1[] = "{\"offset\":100,\"page\":\"b\\u00e9\"}";
    static const char acc1[] = "[12345678901234567890.5]";
    CHECKF(jv_raw_eq(jv_get(ck, "cursor"), cur1, strlen(cur1)), "cursor not carried byte-exact: %s", ev);
    CHECKF(jv_raw_eq(jv_get(ck, "accumulated_results"), acc1, strlen(acc1)), "accumulated_results: %s", ev);
    CHECK(jv_int(jv_get(ck, "items_processed")) == 100);
    CHECK(jv_int(jv_get(ck, "count")) == 1);
    CHECKF(jv_ts_ns(json_get(ev, n, "polled_at")) > polled1_ns, "polled_at is not the new poll's time: %s", ev);
    tasker_free(ev);

    /* accumulated_results is optional: null in the next event */
    CHECK_OK(cp(h, id, "{\"items_processed\":250,\"cursor\":null}"));
    ev = poll_doc(h, 0, &n);
    ck = json_get(ev, n, "checkpoint");
    CHECKF(jv_null(jv_get(ck, "cursor")) && jv_null(jv_get(ck, "accumulated_results")) &&
               jv_int(jv_get(ck, "items_processed")) == 250 && jv_int(jv_get(ck, "count")) == 2,
           "second checkpoint: %s", ev);
    tasker_free(ev);

    CHECK_OK(h_complete(h, id, RES_OK));
    char *comp = next_doc(h, 0, &n);
    CHECKF(jv_str_is(json_get(comp, n, "status"), "completed") && jv_int(json_get(comp, n, "checkpoints")) == 2,
           "completion: %s", comp);
    /* polled_at of the completion is the first poll: execution time spans every run */
    CHECKF(jv_ts_ns(json_get(comp, n, "polled_at")) == polled1_ns, "completion polled_at is not the first poll: %s",
           comp);
    tasker_free(comp);
    CHECK_ST(h_next(h, 0, &c, &n), TASKER_EMPTY);

    /* an event never checkpointed: "checkpoints": 0, always present */
    h_dispatch_ok(h, &rng, id);
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_OK(h_complete(h, id, RES_FAIL));
    comp = next_doc(h, 0, &n);
    CHECKF(jv_is(json_get(comp, n, "checkpoints"), "0"), "completion without checkpoints: %s", comp);
    tasker_free(comp);

    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.dispatched == 2 && s.polled == 4 && s.completed == 1 && s.failed == 1 && h_stats_add_up(&s),
           "stats: dispatched %lld polled %lld completed %lld failed %lld", s.dispatched, s.polled, s.completed,
           s.failed);
    CHECK(stat_of(h, "checkpoints") == 2);
    CHECK_OK(tasker_destroy(h));
}

static void checkpoint_bad_doc(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0,\"max_payload_bytes\":200}");
    char id[37];
    h_dispatch_ok(h, &rng, id);
    CHECK_OK(h_poll_id(h, 0, id));
    static const struct {
        const char *doc, *names;
    } bad[] = {
        {"{\"items_processed\":1}", "cursor"},
        {"{\"cursor\":1}", "items_processed"},
        {"{\"cursor\":1,\"items_processed\":-1}", "items_processed"},
        {"{\"cursor\":1,\"items_processed\":1.5}", "items_processed"},
        {"{\"cursor\":1,\"items_processed\":\"3\"}", "items_processed"},
        {"{\"cursor\":1,\"items_processed\":null}", "items_processed"},
        {"{\"cursor\":1,\"items_processed\":1e3}", "items_processed"},
        {"{\"cursor\":1,\"items_processed\":99999999999999999999}", "items_processed"},
        {"{\"cursor\":1,\"items_processed\":1,\"count\":4}", "count"},
        {"{\"cursor\":1,\"items_processed\":1,\"result\":4}", "result"},
        {"{\"cursor\":1,\"cursor\":2,\"items_processed\":1}", "cursor"},
        {"{\"cursor\":1,\"items_processed\":1", ""},
        {"[1,2]", ""},
        {"null", ""},
        {"", ""},
        {"{\"cursor\":\"\xff\",\"items_processed\":1}", "UTF-8"},
        {"{\"cursor\":1,\"items_processed\":1} x", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_FAIL(cp(h, id, bad[i].doc), TASKER_EINVAL);
        if (bad[i].names[0]) CHECK_MSG_HAS(bad[i].names);
    }
    /* larger than max_payload_bytes */
    char big[400];
    int bn = snprintf(big, sizeof big, "{\"cursor\":\"%0300d\",\"items_processed\":1}", 0);
    EXPECT_FAIL(tasker_checkpoint(h, id, big, (size_t)bn), TASKER_ETOOBIG);
    /* NULL pointers, bad ids, bad handle */
    EXPECT_FAIL(tasker_checkpoint(h, NULL, "{}", 2), TASKER_EINVAL);
    EXPECT_FAIL(tasker_checkpoint(h, id, NULL, 2), TASKER_EINVAL);
    EXPECT_FAIL(cp(h, "not-a-uuid", "{\"cursor\":1,\"items_processed\":1}"), TASKER_EINVAL);
    EXPECT_FAIL(cp(0, id, "{\"cursor\":1,\"items_processed\":1}"), TASKER_EBADF);
    /* nothing changed: still pending, nothing late, nothing queued */
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.pending == 1 && s.queued == 0 && s.late_completions == 0, "pending %lld queued %lld late %lld", s.pending,
           s.queued, s.late_completions);
    CHECK(stat_of(h, "checkpoints") == 0);
    /* exactly max_payload_bytes is fine; then the event is back in the queue */
    char exact[201];
    int en = snprintf(exact, sizeof exact, "{\"cursor\":\"%s\",\"items_processed\":7}", "");
    int pad = 200 - en;
    en = snprintf(exact, sizeof exact, "{\"cursor\":\"%0*d\",\"items_processed\":7}", pad, 0);
    CHECK(en == 200);
    CHECK_OK(tasker_checkpoint(h, id, exact, (size_t)en));
    h_stats(h, &s);
    CHECK(s.pending == 0 && s.queued == 1);
    CHECK_OK(tasker_destroy(h));
}

static void checkpoint_enoent(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    static const char doc[] = "{\"cursor\":1,\"items_processed\":1}";
    char unknown[37], queued[37], id[37];
    h_uuid(unknown, &rng);
    EXPECT_FAIL(cp(h, unknown, doc), TASKER_ENOENT);
    h_dispatch_ok(h, &rng, queued);
    EXPECT_FAIL(cp(h, queued, doc), TASKER_ENOENT); /* never polled */
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK(strcmp(id, queued) == 0);
    CHECK_OK(cp(h, id, doc));
    EXPECT_FAIL(cp(h, id, doc), TASKER_ENOENT);        /* checkpointed, waiting in the queue */
    EXPECT_FAIL(h_complete(h, id, RES_OK), TASKER_ENOENT); /* a complete too */
    CHECK_MSG_HAS("checkpoint");
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_OK(h_complete(h, id, RES_OK));
    EXPECT_FAIL(cp(h, id, doc), TASKER_ENOENT); /* ended */
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.late_completions == 5, "late_completions %lld, want 5 (4 checkpoints, 1 complete)", s.late_completions);
    CHECK(stat_of(h, "checkpoints") == 1);
    CHECK_OK(tasker_destroy(h));
}

static void checkpoint_keeps_room(void) {
    tasker_t h = h_new("{\"dispatch_buffer_size\":2,\"cleanup_interval_ms\":0}");
    char a[37], b[37], c[37], got[37];
    h_dispatch_ok(h, &rng, a);
    h_dispatch_ok(h, &rng, b);
    CHECK_OK(h_poll_id(h, 0, got));
    CHECK(strcmp(got, a) == 0);
    h_dispatch_ok(h, &rng, c);
    CHECK_ST(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_EFULL); /* full: b, c */
    double t0 = h_now();
    CHECK_OK(cp(h, a, "{\"cursor\":\"x\",\"items_processed\":1}"));
    double took = h_ms_since(t0);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(s.queued == 3, "queued %lld, want 3 (the checkpointed event keeps its room)", s.queued);
    CHECK_ST(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_EFULL);
    /* FIFO: the checkpointed event goes to the back */
    CHECK_OK(h_poll_id(h, 0, got));
    CHECK(strcmp(got, b) == 0);
    CHECK_OK(h_poll_id(h, 0, got));
    CHECK(strcmp(got, c) == 0);
    CHECK_ST(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_OK); /* queued 1 < 2 */
    CHECK_OK(h_poll_id(h, 0, got));
    CHECK(strcmp(got, a) == 0);
    H_NOTE("checkpoint into a full queue took %.3f ms", took);
    CHECK_OK(tasker_destroy(h));
}

typedef struct {
    tasker_t h;
    atomic_int done;
    int st;
    char id[37];
} waiter_t;

static void *poll_waiter(void *arg) {
    waiter_t *w = arg;
    w->st = h_poll_id(w->h, -1, w->id);
    atomic_store(&w->done, 1);
    return NULL;
}

static void checkpoint_wakes_poll(void) {
    tasker_t h = h_new("{\"max_concurrent_handlers\":1,\"cleanup_interval_ms\":0}");
    char a[37];
    h_dispatch_ok(h, &rng, a);
    CHECK_OK(h_poll_id(h, 0, a));
    waiter_t w = {.h = h};
    pthread_t t;
    h_thread(&t, poll_waiter, &w);
    h_sleep_ms(50);
    CHECKF(!atomic_load(&w.done), "poll(-1) at the in-flight bound with nothing queued returned %d", w.st);
    CHECK_OK(cp(h, a, "{\"cursor\":1,\"items_processed\":1}"));
    h_join(t);
    CHECK_OK(w.st);
    CHECK(strcmp(w.id, a) == 0);
    CHECK_OK(h_complete(h, a, RES_OK));
    CHECK_OK(tasker_destroy(h));
}

static void checkpoint_timeout_clock(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char id[37];
    h_dispatch(h, &rng, "\"timeout_ms\":400", 0, id);
    CHECK_OK(h_poll_id(h, 0, id));
    h_sleep_ms(250);
    CHECK_OK(cp(h, id, "{\"cursor\":1,\"items_processed\":1}"));
    h_sleep_ms(250); /* 500 ms after the first poll: past its deadline if the clock had not restarted */
    double t_poll = h_now();
    CHECK_OK(h_poll_id(h, 0, id));
    uint32_t expired = 99;
    CHECK_OK(tasker_cleanup_timeouts(h, &expired));
    double since = h_ms_since(t_poll);
    CHECKF(expired == 0 || since >= 400, "the event expired %.0f ms after its second poll (timeout 400 ms): the clock "
           "did not restart", since);
    h_sleep_ms(450);
    CHECK_OK(tasker_cleanup_timeouts(h, &expired));
    CHECK(expired == 1);
    size_t n;
    char *c = next_doc(h, 0, &n);
    CHECKF(jv_str_is(json_get(c, n, "status"), "timeout") && jv_int(json_get(c, n, "checkpoints")) == 1,
           "timeout completion: %s", c);
    tasker_free(c);
    CHECK_OK(tasker_destroy(h));
}

static void checkpoint_max(void) {
    tasker_t h = 0;
    static const char *badcfg[] = {"{\"max_checkpoints\":-1}", "{\"max_checkpoints\":\"3\"}",
                                   "{\"max_checkpoints\":1.5}", "{\"max_checkpoints\":3000000000}"};
    for (size_t i = 0; i < sizeof badcfg / sizeof badcfg[0]; i++) {
        EXPECT_FAIL(tasker_new(badcfg[i], &h), TASKER_EINVAL);
        CHECK_MSG_HAS("max_checkpoints");
        CHECK(h == 0);
    }
    h = h_new("{\"max_checkpoints\":3,\"cleanup_interval_ms\":0}");
    char id[37];
    h_dispatch_ok(h, &rng, id);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(h_poll_id(h, 0, id));
        CHECK_OK(cp(h, id, "{\"cursor\":1,\"items_processed\":1}"));
    }
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_OK(cp(h, id, "{\"cursor\":1,\"items_processed\":1}")); /* the 4th: the step ends */
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY);
    size_t n;
    char *c = next_doc(h, 0, &n);
    jv_t err = json_get(c, n, "error");
    CHECKF(jv_str_is(json_get(c, n, "status"), "failed") && jv_is(json_get(c, n, "success"), "false") &&
               jv_str_is(jv_get(err, "error_type"), "too_many_checkpoints") &&
               jv_is(jv_get(err, "retryable"), "false") && jv_int(json_get(c, n, "checkpoints")) == 3,
           "completion: %s", c);
    tasker_free(c);
    EXPECT_FAIL(h_complete(h, id, RES_OK), TASKER_ENOENT);
    CHECK_OK(tasker_destroy(h));

    /* the default is 100000 (shown in config) and 0 allows none */
    h = h_new("{\"max_checkpoints\":0,\"cleanup_interval_ms\":0}");
    h_dispatch_ok(h, &rng, id);
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_OK(cp(h, id, "{\"cursor\":1,\"items_processed\":1}"));
    c = next_doc(h, 0, &n);
    CHECKF(jv_str_is(json_get(c, n, "status"), "failed") && jv_int(json_get(c, n, "checkpoints")) == 0, "%s", c);
    tasker_free(c);
    CHECK_OK(tasker_destroy(h));
}

static void checkpoint_shutdown(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char id[37];
    h_dispatch_ok(h, &rng, id);
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK_OK(cp(h, id, "{\"cursor\":1,\"items_processed\":1}"));
    CHECK_OK(tasker_shutdown(h, 0));
    size_t n;
    char *c = next_doc(h, 0, &n);
    CHECKF(jv_str_is(json_get(c, n, "status"), "cancelled") && jv_int(json_get(c, n, "checkpoints")) == 1,
           "%s", c);
    tasker_free(c);
    char *x = NULL;
    CHECK_ST(h_next(h, 0, &x, &n), TASKER_CLOSED);
    EXPECT_FAIL(cp(h, id, "{\"cursor\":1,\"items_processed\":1}"), TASKER_ENOENT);
    CHECK_OK(tasker_destroy(h));
}

/* ---- many threads ---- */

enum { XN = 4000, XT = 4 };

typedef struct {
    tasker_t h;
    idset_t *ids;
    atomic_int *left; /* events not yet finished by a worker */
    atomic_llong accepted;
} xshared_t;

static void *xworker(void *arg) {
    xshared_t *x = arg;
    uint64_t r = (uint64_t)pthread_self();
    for (;;) {
        char *js = NULL;
        size_t n = 0;
        int st = tasker_poll(x->h, 20, &js, &n);
        if (st == TASKER_CLOSED) break;
        if (st == TASKER_EMPTY) {
            if (atomic_load(x->left) <= 0) break;
            continue;
        }
        CHECK_OK(st);
        char id[37];
        CHECK(jv_uuid(json_get(js, n, "event_id"), id));
        jv_t ck = json_get(js, n, "checkpoint");
        long long count = jv_has(ck) ? jv_int(jv_get(ck, "count")) : 0;
        long long want = (long long)(h_fnv(id) % 7); /* this event's number of checkpoints */
        bool short_timeout = jv_int(json_get(js, n, "timeout_ms")) == 1;
        tasker_free(js);
        if (short_timeout && (h_rand(&r) & 1)) h_sleep_ms(2); /* let the reaper race this run */
        if (count < want) {
            char doc[96];
            snprintf(doc, sizeof doc, "{\"cursor\":%lld,\"items_processed\":%lld}", count + 1, (count + 1) * 10);
            st = cp(x->h, id, doc);
            CHECKF(st == TASKER_OK || st == TASKER_ENOENT, "checkpoint: %d", st);
            if (st == TASKER_OK) atomic_fetch_add(&x->accepted, 1);
            if (st == TASKER_ENOENT) atomic_fetch_sub(x->left, 1); /* timed out */
            continue;
        }
        st = h_complete(x->h, id, (h_rand(&r) & 1) ? RES_OK : RES_FAIL);
        CHECKF(st == TASKER_OK || st == TASKER_ENOENT, "complete: %d", st);
        atomic_fetch_sub(x->left, 1);
    }
    return NULL;
}

static void checkpoint_exactly_once(void) {
    tasker_t h = h_new("{\"max_concurrent_handlers\":8,\"completion_buffer_size\":64,\"dispatch_buffer_size\":256,"
                       "\"cleanup_interval_ms\":1}");
    idset_t ids;
    idset_init(&ids, XN);
    atomic_int left = XN;
    xshared_t x = {.h = h, .ids = &ids, .left = &left};
    pthread_t t[XT];
    for (int i = 0; i < XT; i++) h_thread(&t[i], xworker, &x);
    long long total_ck = 0, seen = 0;
    int dispatched = 0;
    while (seen < XN) {
        if (dispatched < XN) {
            char id[37];
            /* one event in 16 has a 1 ms timeout: the reaper races its checkpoints */
            int st = h_dispatch(h, &rng, (dispatched % 16 == 0) ? "\"timeout_ms\":1" : NULL, 0, id);
            if (st == TASKER_OK) {
                idset_add(&ids, id, 1, 0);
                dispatched++;
            } else {
                CHECK_ST(st, TASKER_EFULL);
            }
        }
        char *c = NULL;
        size_t n = 0;
        int st = h_next(h, dispatched < XN ? 0 : 1000, &c, &n);
        if (st == TASKER_EMPTY) continue;
        CHECK_OK(st);
        char id[37];
        CHECK(jv_uuid(json_get(c, n, "event_id"), id));
        idslot_t sl = idset_add(&ids, id, 0, 1);
        CHECKF(sl.dispatched == 1 && sl.completed == 1, "event %s: %u completions", id, sl.completed);
        long long k = jv_int(json_get(c, n, "checkpoints"));
        CHECKF(k >= 0 && k <= (long long)(h_fnv(id) % 7), "event %s: checkpoints %lld", id, k);
        if (jv_str_is(json_get(c, n, "status"), "completed") || jv_str_is(json_get(c, n, "status"), "failed"))
            CHECKF(k == (long long)(h_fnv(id) % 7), "completed event %s has checkpoints %lld", id, k);
        total_ck += k;
        tasker_free(c);
        seen++;
    }
    for (int i = 0; i < XT; i++) h_join(t[i]);
    char *c = NULL;
    size_t n;
    CHECK_ST(h_next(h, 0, &c, &n), TASKER_EMPTY);
    CHECKF(total_ck == atomic_load(&x.accepted) && total_ck == stat_of(h, "checkpoints"),
           "sum of completions' checkpoints %lld, accepted %lld, stats %lld", total_ck, atomic_load(&x.accepted),
           stat_of(h, "checkpoints"));
    hstats_t s;
    h_stats(h, &s);
    CHECK(h_stats_add_up(&s) && s.queued == 0 && s.pending == 0);
    H_NOTE("%d events, %lld checkpoints, %lld timed out", XN, total_ck, s.timed_out);
    idset_free(&ids);
    CHECK_OK(tasker_destroy(h));
}

static void checkpoint_abi_minor(void) {
    CHECK(TASKER_ABI_VERSION == 1);
    CHECK(tasker_abi_version() == TASKER_ABI_VERSION);
    CHECK(TASKER_ABI_MINOR >= 1);
    CHECKF(tasker_abi_minor() == TASKER_ABI_MINOR, "tasker_abi_minor() = %u, header %d", tasker_abi_minor(),
           TASKER_ABI_MINOR);
}

static const scenario_t scenarios[] = {
    {"checkpoint_roundtrip", checkpoint_roundtrip, 30},
    {"checkpoint_bad_doc", checkpoint_bad_doc, 30},
    {"checkpoint_enoent", checkpoint_enoent, 30},
    {"checkpoint_keeps_room", checkpoint_keeps_room, 30},
    {"checkpoint_wakes_poll", checkpoint_wakes_poll, 30},
    {"checkpoint_timeout_clock", checkpoint_timeout_clock, 30},
    {"checkpoint_max", checkpoint_max, 30},
    {"checkpoint_shutdown", checkpoint_shutdown, 30},
    {"checkpoint_exactly_once", checkpoint_exactly_once, 120},
    {"checkpoint_abi_minor", checkpoint_abi_minor, 10},
};

HARNESS_MAIN(scenarios)
