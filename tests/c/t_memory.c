/*
 * Memory (rules 3 "memory stays flat", 6).
 *
 *   memory_flat  1,000,000 round trips (dispatch + poll/poll_batch + complete
 *                + next_completion, every output freed with tasker_free, plus
 *                a rejected call per batch) keep RSS flat: before/after
 *                figures are printed, growth must stay under 64 MiB. A leak
 *                detector, not a benchmark.
 *   memory_threads 10,000 short-lived threads, each making a failing call
 *                (the per-thread last-error buffer) and a round trip (the Go
 *                runtime's per-thread state for a foreign thread): RSS
 *                growth under 32 MiB once the threads have exited.
 */
#include "harness.h"

#define ROUND_TRIPS 1000000
#define WARMUP 20000
#define B 64

static long run(tasker_t h, long count, uint64_t *rng) {
    static char ids[B][37];
    char ev[EV_MAX];
    int n = ev_build(ev, sizeof ev, rng, "\"memory_handler\"",
                     "{\"order\":{\"id\":12345678901234567890,\"lines\":[{\"sku\":\"A-1\",\"qty\":2},{\"sku\":\"B-2\","
                     "\"qty\":1}],\"note\":\"caf\xc3\xa9 \xe2\x82\xac\"}}",
                     "\"trace_id\":\"t-1\",\"span_id\":\"s-1\"");
    long done = 0;
    while (done < count) {
        for (int i = 0; i < B; i++) CHECK_OK(tasker_dispatch(h, ev, (size_t)n, 0, NULL));
        int got = 0;
        while (got < B) {
            char *js;
            size_t len;
            if ((done / B) % 2) {
                uint32_t cnt;
                CHECK_OK(tasker_poll_batch(h, (uint32_t)(B - got), 0, &js, &len, &cnt));
                jv_t arr = {js, len}, e;
                const char *cur = NULL;
                while (jv_next(arr, &cur, &e)) CHECK(jv_uuid(jv_get(e, "event_id"), ids[got++]));
            } else {
                CHECK_OK(tasker_poll(h, 0, &js, &len));
                CHECK(jv_uuid(json_get(js, len, "event_id"), ids[got++]));
            }
            tasker_free(js);
        }
        for (int i = 0; i < B; i++) CHECK_OK(h_complete(h, ids[i], i % 16 == 5 ? RES_FAIL : RES_OK));
        for (int i = 0; i < B; i++) {
            char *c;
            size_t len;
            CHECK_OK(tasker_next_completion(h, 0, &c, &len));
            tasker_free(c);
        }
        CHECK_ST(h_complete(h, ids[0], RES_OK), TASKER_ENOENT); /* the failure path, too */
        done += B;
    }
    return done;
}

static void memory_flat(void) {
    tasker_t h = h_new("{\"dispatch_buffer_size\":128,\"max_concurrent_handlers\":64,\"completion_buffer_size\":128,"
                       "\"cleanup_interval_ms\":100}");
    uint64_t rng = 0x3e3;
    run(h, WARMUP, &rng);
    long before = h_rss_kb();
    CHECK(before > 0);
    double t0 = h_now();
    long done = 0;
    long peak = before;
    char trace[512];
    size_t tk = 0;
    tk += (size_t)snprintf(trace + tk, sizeof trace - tk, "%ld", before / 1024);
    while (done < ROUND_TRIPS) {
        done += run(h, ROUND_TRIPS / 5, &rng);
        long r = h_rss_kb();
        if (r > peak) peak = r;
        tk += (size_t)snprintf(trace + tk, sizeof trace - tk, " -> %ld", r / 1024);
    }
    double el = h_ms_since(t0);
    long after = h_rss_kb();
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.queued == 0 && s.pending == 0 && s.undelivered == 0 && s.late_completions == s.delivered / B);
    CHECK_OK(tasker_destroy(h));
    H_NOTE("RSS before %ld KiB, after %ld KiB (growth %+ld KiB, peak %ld KiB) over %ld round trips in %.1f s "
           "[MiB per 200k: %s]",
           before, after, after - before, peak, done, el / 1000.0, trace);
    CHECKF(after - before < 64 * 1024, "RSS grew by %ld KiB over %ld round trips", after - before, done);
}

typedef struct {
    tasker_t h;
    int k;
} thr_arg_t;

static void *short_lived(void *arg) {
    thr_arg_t *a = arg;
    char cfg[64];
    tasker_t x;
    snprintf(cfg, sizeof cfg, "{\"unknown_%d\":1}", a->k);
    CHECK_ST(tasker_new(cfg, &x), TASKER_EINVAL);
    char buf[64];
    CHECK(tasker_last_error(buf, sizeof buf) > 0);
    uint64_t r = (uint64_t)a->k;
    char id[37];
    CHECK_OK(h_dispatch(a->h, &r, NULL, -1, NULL));
    CHECK_OK(h_poll_id(a->h, -1, id));
    CHECK_OK(h_complete(a->h, id, RES_OK));
    char *c;
    size_t n;
    CHECK_OK(tasker_next_completion(a->h, -1, &c, &n));
    tasker_free(c);
    return NULL;
}

static void spawn_wave(tasker_t h, int count, int base) {
    enum { PAR = 4 };
    for (int i = 0; i < count; i += PAR) {
        pthread_t t[PAR];
        thr_arg_t a[PAR];
        for (int j = 0; j < PAR; j++) {
            a[j] = (thr_arg_t){.h = h, .k = base + i + j};
            h_thread(&t[j], short_lived, &a[j]);
        }
        for (int j = 0; j < PAR; j++) h_join(t[j]);
    }
}

static void memory_threads(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    spawn_wave(h, 1000, 0);
    long before = h_rss_kb();
    double t0 = h_now();
    spawn_wave(h, 10000, 1000);
    double el = h_ms_since(t0);
    long after = h_rss_kb();
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.delivered == 11000 && s.pending == 0);
    CHECK_OK(tasker_destroy(h));
    H_NOTE("RSS before %ld KiB, after %ld KiB (growth %+ld KiB) over 10000 threads in %.1f s", before, after,
           after - before, el / 1000.0);
    CHECKF(after - before < 32 * 1024, "RSS grew by %ld KiB over 10000 short-lived threads", after - before);
}

static const scenario_t SCENARIOS[] = {
    {"memory_threads", memory_threads, 120},
    {"memory_flat", memory_flat, 400},
};
HARNESS_MAIN(SCENARIOS)
