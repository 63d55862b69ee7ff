/*
 * Concurrency under pthreads.
 *
 *   exactly_once  (rules 1, 2, 3, 5, 8, 9) 2 producers dispatch 200,000
 *                 events (waiting for room), 4 workers poll (poll and
 *                 poll_batch) and complete them, some events have 1-2 ms
 *                 timeouts so tasker_cleanup_timeouts (a thread calling it in
 *                 a loop, plus the reaper) races the completes, a consumer
 *                 drains next_completion and a stats thread checks every
 *                 snapshot's invariants and bounds. Every dispatched id gets
 *                 exactly one completion; counters add up; late_completions
 *                 equals the ENOENT completes seen.
 *   exactly_once_shutdown (rules 1, 10) the same machinery, but shutdown
 *                 with a drain of 0-50 ms arrives while producers are still
 *                 dispatching and workers completing: every accepted event
 *                 still gets exactly one completion (completed, failed,
 *                 timeout or cancelled), 6 rounds.
 *   wakeup_pingpong (rules 2, 3, timeouts) every call blocks with -1 on a
 *                 channel whose three bounds are 1: producers wait in
 *                 dispatch(-1) for room, workers in poll(-1) for an event
 *                 and for room under the bounds, and the consumer's
 *                 next_completion is what frees room. A single lost wakeup
 *                 stalls the chain: the consumer then sees no completion for
 *                 5 s and the scenario fails.
 *   destroy_race  (rule 5) threads blocked in poll(-1), poll_batch(-1),
 *                 next_completion(-1), dispatch(-1) and threads hammering
 *                 stats/complete/cleanup/shutdown while two threads destroy
 *                 the handle at once: no crash, no hang, one destroy wins,
 *                 every call after destroy returned is EBADF.
 */
#include "harness.h"

/* ================================================================ exactly_once */

#define TOTAL 200000
#define NPROD 2
#define NWORK 4
#define MAXC 32
#define COMPBUF 128
#define DISPBUF 256

static tasker_t H;
static idset_t SET;
static atomic_long n_dispatched, n_efull, n_enoent, n_complete_ok, n_polled, n_tiny_enoent, n_cleanup_expired,
    n_snapshots, n_batches;
static atomic_long st_completed, st_failed, st_timeout, st_cancelled;
static atomic_int stop_aux;
static atomic_int cancel_possible; /* exactly_once_shutdown: shutdown may cancel events */
static int per_producer = TOTAL / NPROD;

static void *producer(void *arg) {
    int k = (int)(intptr_t)arg;
    uint64_t r = 1000 + (uint64_t)k;
    char ev[EV_MAX], id[37], payload[64];
    for (int i = 0; i < per_producer; i++) {
        const char *extra = i % 4 == 0 ? "\"timeout_ms\":1" : i % 16 == 1 ? "\"timeout_ms\":2" : NULL;
        snprintf(payload, sizeof payload, "{\"p\":%d,\"i\":%d}", k, i);
        int n = ev_build(ev, sizeof ev, &r, "\"stress\"", payload, extra);
        for (;;) {
            int st = tasker_dispatch(H, ev, (size_t)n, 100, id);
            if (st == TASKER_OK) break;
            if (st == TASKER_ESHUTDOWN && atomic_load(&cancel_possible)) return NULL;
            CHECK_ST(st, TASKER_EFULL);
            atomic_fetch_add(&n_efull, 1);
        }
        idslot_t sl = idset_add(&SET, id, 1, 0);
        CHECKF(sl.dispatched == 1, "dispatch returned the id %s twice", id);
        atomic_fetch_add(&n_dispatched, 1);
    }
    return NULL;
}

static void work_one(jv_t ev, uint64_t *r) {
    char id[37];
    CHECK(jv_uuid(jv_get(ev, "event_id"), id));
    long to = (long)jv_int(jv_get(ev, "timeout_ms"));
    bool tiny = to <= 2;
    atomic_fetch_add(&n_polled, 1);
    unsigned x = (unsigned)(h_rand(r) % 100);
    if (tiny && x < 50) return; /* left for cleanup / the reaper */
    int st = h_complete(H, id, x % 5 == 0 ? RES_FAIL : RES_OK);
    if (st == TASKER_OK) {
        atomic_fetch_add(&n_complete_ok, 1);
    } else {
        CHECK_ST(st, TASKER_ENOENT);
        CHECKF(tiny || atomic_load(&cancel_possible), "the first complete of event %s (timeout %ld ms) was ENOENT", id, to);
        atomic_fetch_add(&n_enoent, 1);
        atomic_fetch_add(&n_tiny_enoent, 1);
    }
    if (x >= 97) { /* a duplicate complete: always late */
        CHECK_ST(h_complete(H, id, RES_OK), TASKER_ENOENT);
        atomic_fetch_add(&n_enoent, 1);
    }
}

static void *worker(void *arg) {
    int k = (int)(intptr_t)arg;
    uint64_t r = 2000 + (uint64_t)k;
    for (long it = 0;; it++) {
        char *js = NULL;
        size_t n = 0;
        uint32_t cnt = 0;
        int st;
        bool batch = (it + k) % 2 == 0;
        if (batch) st = tasker_poll_batch(H, 8, 20, &js, &n, &cnt);
        else st = tasker_poll(H, 20, &js, &n);
        if (st == TASKER_EMPTY) continue;
        if (st == TASKER_CLOSED) break;
        CHECK_OK(st);
        jv_t v = {js, n};
        if (batch) {
            jv_t ev;
            const char *cur = NULL;
            uint32_t seen = 0;
            while (jv_next(v, &cur, &ev)) {
                work_one(ev, &r);
                seen++;
            }
            CHECK(seen == cnt && cnt >= 1 && cnt <= 8);
            atomic_fetch_add(&n_batches, 1);
        } else {
            work_one(v, &r);
        }
        tasker_free(js);
    }
    return NULL;
}

static void *cleaner(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_aux)) {
        uint32_t e = 0;
        CHECK_OK(tasker_cleanup_timeouts(H, &e));
        atomic_fetch_add(&n_cleanup_expired, e);
        h_sleep_ms(0.2);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (;;) {
        char *c;
        size_t n;
        int st = h_next(H, 100, &c, &n);
        if (st == TASKER_EMPTY) continue;
        if (st == TASKER_CLOSED) break;
        CHECK_OK(st);
        char id[37], status[16];
        CHECK(jv_uuid(json_get(c, n, "event_id"), id));
        CHECK(jv_str(json_get(c, n, "status"), status, sizeof status));
        idslot_t sl = idset_add(&SET, id, 0, 1);
        CHECKF(sl.completed == 1, "event %s has %u completions", id, sl.completed);
        if (!strcmp(status, "completed")) atomic_fetch_add(&st_completed, 1);
        else if (!strcmp(status, "failed")) atomic_fetch_add(&st_failed, 1);
        else if (!strcmp(status, "timeout")) {
            atomic_fetch_add(&st_timeout, 1);
            CHECK(jv_str_is(jv_get(json_get(c, n, "error"), "error_type"), "ffi_timeout"));
        } else if (!strcmp(status, "cancelled")) atomic_fetch_add(&st_cancelled, 1);
        else CHECKF(0, "unknown status %s", status);
        tasker_free(c);
    }
    return NULL;
}

static void *stats_checker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_aux)) {
        hstats_t s;
        h_stats(H, &s);
        CHECKF(h_stats_add_up(&s),
               "snapshot does not add up: dispatched %lld != queued %lld + pending %lld + completed %lld + failed %lld "
               "+ timed_out %lld + cancelled %lld",
               s.dispatched, s.queued, s.pending, s.completed, s.failed, s.timed_out, s.cancelled);
        CHECKF(s.pending <= MAXC, "pending %lld > max_concurrent_handlers %d", s.pending, MAXC);
        CHECKF(s.queued <= DISPBUF, "queued %lld > dispatch_buffer_size %d", s.queued, DISPBUF);
        CHECKF(s.pending + s.undelivered <= COMPBUF, "pending %lld + undelivered %lld > completion_buffer_size %d",
               s.pending, s.undelivered, COMPBUF);
        atomic_fetch_add(&n_snapshots, 1);
        h_sleep_ms(1);
    }
    return NULL;
}

static void exactly_once(void) {
    char cfg[256];
    snprintf(cfg, sizeof cfg,
             "{\"dispatch_buffer_size\":%d,\"max_concurrent_handlers\":%d,\"completion_buffer_size\":%d,"
             "\"handler_timeout_ms\":10000,\"cleanup_interval_ms\":1}",
             DISPBUF, MAXC, COMPBUF);
    H = h_new(cfg);
    idset_init(&SET, TOTAL);
    double t0 = h_now();
    pthread_t prod[NPROD], work[NWORK], cl, co, sc;
    h_thread(&co, consumer, NULL);
    for (int k = 0; k < NWORK; k++) h_thread(&work[k], worker, (void *)(intptr_t)k);
    h_thread(&cl, cleaner, NULL);
    h_thread(&sc, stats_checker, NULL);
    for (int k = 0; k < NPROD; k++) h_thread(&prod[k], producer, (void *)(intptr_t)k);
    for (int k = 0; k < NPROD; k++) h_join(prod[k]);
    double t_prod = h_ms_since(t0);
    CHECK_OK(tasker_shutdown(H, -1)); /* workers drain the queue, cleanup/reaper end the rest */
    for (int k = 0; k < NWORK; k++) h_join(work[k]);
    atomic_store(&stop_aux, 1);
    h_join(cl);
    h_join(sc);
    h_join(co);
    double el = h_ms_since(t0);
    /* every dispatched id exactly one completion */
    CHECK(atomic_load(&n_dispatched) == TOTAL);
    CHECKF(SET.count == TOTAL, "%zu distinct ids seen (dispatched or completed), want %d", SET.count, TOTAL);
    long bad = 0;
    for (size_t i = 0; i < SET.cap; i++) {
        idslot_t *sl = &SET.slots[i];
        if (!sl->used) continue;
        if (sl->dispatched != 1 || sl->completed != 1) {
            if (bad++ < 5)
                fprintf(stderr, "event %.36s: dispatched %u, completions %u\n", sl->id, sl->dispatched, sl->completed);
        }
    }
    CHECKF(bad == 0, "%ld events without exactly one completion", bad);
    hstats_t s;
    h_stats(H, &s);
    CHECK(s.dispatched == TOTAL && h_stats_add_up(&s));
    CHECK(s.completed + s.failed + s.timed_out + s.cancelled == TOTAL);
    CHECKF(s.completed == atomic_load(&st_completed) && s.failed == atomic_load(&st_failed) &&
               s.timed_out == atomic_load(&st_timeout) && s.cancelled == atomic_load(&st_cancelled),
           "stats completed/failed/timed_out/cancelled %lld/%lld/%lld/%lld, the stream said %ld/%ld/%ld/%ld", s.completed,
           s.failed, s.timed_out, s.cancelled, atomic_load(&st_completed), atomic_load(&st_failed),
           atomic_load(&st_timeout), atomic_load(&st_cancelled));
    CHECKF(s.completed + s.failed == atomic_load(&n_complete_ok), "completed+failed %lld, OK completes %ld",
           s.completed + s.failed, atomic_load(&n_complete_ok));
    CHECKF(s.late_completions == atomic_load(&n_enoent), "late_completions %lld, ENOENT completes seen %ld",
           s.late_completions, atomic_load(&n_enoent));
    CHECKF(s.polled == atomic_load(&n_polled), "polled %lld, workers polled %ld", s.polled, atomic_load(&n_polled));
    CHECK(s.delivered == TOTAL && s.cancelled == 0 && s.queued == 0 && s.pending == 0 && s.undelivered == 0);
    CHECK(s.timed_out >= atomic_load(&n_cleanup_expired) && s.timed_out > 0);
    CHECK_OK(tasker_destroy(H));
    idset_free(&SET);
    H_NOTE("%d events in %.0f ms (producers done at %.0f ms): %lld completed, %lld failed, %lld timed out "
           "(%ld by the cleanup thread), %ld ENOENT completes (%ld lost races with cleanup), %ld EFULL retries, "
           "%ld batches, %ld stats snapshots checked",
           TOTAL, el, t_prod, s.completed, s.failed, s.timed_out, atomic_load(&n_cleanup_expired),
           atomic_load(&n_enoent), atomic_load(&n_tiny_enoent), atomic_load(&n_efull), atomic_load(&n_batches),
           atomic_load(&n_snapshots));
}

/* ================================================================ exactly_once_shutdown */

static void reset_counters(void) {
    atomic_store(&n_dispatched, 0);
    atomic_store(&n_efull, 0);
    atomic_store(&n_enoent, 0);
    atomic_store(&n_complete_ok, 0);
    atomic_store(&n_polled, 0);
    atomic_store(&n_tiny_enoent, 0);
    atomic_store(&n_cleanup_expired, 0);
    atomic_store(&n_snapshots, 0);
    atomic_store(&n_batches, 0);
    atomic_store(&st_completed, 0);
    atomic_store(&st_failed, 0);
    atomic_store(&st_timeout, 0);
    atomic_store(&st_cancelled, 0);
    atomic_store(&stop_aux, 0);
}

static void exactly_once_shutdown(void) {
    enum { ROUNDS = 6, PER_ROUND = 20000 };
    static const int drains[ROUNDS] = {0, 5, 50, 0, 1, 20};
    uint64_t rng = 0x5d;
    long total = 0, cancelled = 0;
    atomic_store(&cancel_possible, 1);
    per_producer = PER_ROUND / NPROD;
    for (int round = 0; round < ROUNDS; round++) {
        reset_counters();
        char cfg[256];
        snprintf(cfg, sizeof cfg,
                 "{\"dispatch_buffer_size\":%d,\"max_concurrent_handlers\":%d,\"completion_buffer_size\":%d,"
                 "\"handler_timeout_ms\":10000,\"cleanup_interval_ms\":1}",
                 DISPBUF, MAXC, COMPBUF);
        H = h_new(cfg);
        idset_init(&SET, PER_ROUND);
        pthread_t prod[NPROD], work[NWORK], cl, co;
        h_thread(&co, consumer, NULL);
        for (int k = 0; k < NWORK; k++) h_thread(&work[k], worker, (void *)(intptr_t)k);
        h_thread(&cl, cleaner, NULL);
        for (int k = 0; k < NPROD; k++) h_thread(&prod[k], producer, (void *)(intptr_t)(k + 10 * round));
        /* shut down while events flow (after a few thousand) */
        while (atomic_load(&n_dispatched) < 2000 + (long)(h_rand(&rng) % 4000)) h_sleep_ms(1);
        CHECK_OK(tasker_shutdown(H, drains[round]));
        for (int k = 0; k < NPROD; k++) h_join(prod[k]);
        for (int k = 0; k < NWORK; k++) h_join(work[k]);
        atomic_store(&stop_aux, 1);
        h_join(cl);
        h_join(co);
        long nd = atomic_load(&n_dispatched);
        CHECKF((long)SET.count == nd, "round %d: %zu distinct ids seen, %ld dispatched", round, SET.count, nd);
        long bad = 0;
        for (size_t i = 0; i < SET.cap; i++) {
            idslot_t *sl = &SET.slots[i];
            if (sl->used && (sl->dispatched != 1 || sl->completed != 1)) {
                if (bad++ < 5)
                    fprintf(stderr, "round %d: event %.36s: dispatched %u, completions %u\n", round, sl->id,
                            sl->dispatched, sl->completed);
            }
        }
        CHECKF(bad == 0, "round %d (drain %d ms): %ld events without exactly one completion", round, drains[round], bad);
        hstats_t s;
        h_stats(H, &s);
        CHECK(s.dispatched == nd && h_stats_add_up(&s) && s.queued == 0 && s.pending == 0);
        CHECK(s.completed + s.failed + s.timed_out + s.cancelled == nd && s.delivered == nd);
        CHECK(s.cancelled == atomic_load(&st_cancelled) && s.timed_out == atomic_load(&st_timeout));
        CHECKF(s.late_completions == atomic_load(&n_enoent), "round %d: late_completions %lld, ENOENT seen %ld", round,
               s.late_completions, atomic_load(&n_enoent));
        CHECK(strcmp(s.state, "closed") == 0);
        CHECK_OK(tasker_destroy(H));
        idset_free(&SET);
        total += nd;
        cancelled += s.cancelled;
    }
    H_NOTE("%d rounds, %ld events dispatched before shutdown, %ld cancelled, every one completed exactly once", ROUNDS,
           total, cancelled);
}

/* ================================================================ wakeup_pingpong */

#define PP_EVENTS 6000
static tasker_t PP;

static void *pp_producer(void *arg) {
    uint64_t r = 7000 + (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < PP_EVENTS / 2; i++) CHECK_OK(h_dispatch(PP, &r, NULL, -1, NULL));
    return NULL;
}

static void *pp_worker(void *arg) {
    long *count = arg;
    for (;;) {
        char id[37];
        int st = h_poll_id(PP, -1, id);
        if (st == TASKER_CLOSED) break;
        CHECK_OK(st);
        CHECK_OK(h_complete(PP, id, RES_OK));
        (*count)++;
    }
    return NULL;
}

static void wakeup_pingpong(void) {
    PP = h_new("{\"dispatch_buffer_size\":1,\"max_concurrent_handlers\":1,\"completion_buffer_size\":1,"
               "\"cleanup_interval_ms\":0,\"handler_timeout_ms\":60000}");
    pthread_t prod[2], work[3];
    long counts[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) h_thread(&work[k], pp_worker, &counts[k]);
    for (int k = 0; k < 2; k++) h_thread(&prod[k], pp_producer, (void *)(intptr_t)k);
    double t0 = h_now();
    for (int i = 0; i < PP_EVENTS; i++) {
        char *c;
        size_t n;
        int st = h_next(PP, 5000, &c, &n);
        if (st == TASKER_EMPTY) {
            char *js;
            size_t l;
            tasker_stats(PP, &js, &l);
            CHECKF(0, "no completion for 5 s after %d of %d (a lost wakeup?); stats: %s", i, PP_EVENTS, js ? js : "?");
        }
        CHECK_OK(st);
        tasker_free(c);
    }
    double el = h_ms_since(t0);
    for (int k = 0; k < 2; k++) h_join(prod[k]);
    CHECK_OK(tasker_shutdown(PP, -1));
    for (int k = 0; k < 3; k++) h_join(work[k]);
    hstats_t s;
    h_stats(PP, &s);
    CHECK(s.dispatched == PP_EVENTS && s.completed == PP_EVENTS && s.delivered == PP_EVENTS);
    char *c;
    size_t n;
    CHECK_ST(h_next(PP, -1, &c, &n), TASKER_CLOSED);
    CHECK_OK(tasker_destroy(PP));
    H_NOTE("%d events through bounds of 1 with every call blocking: %.0f ms; per worker %ld/%ld/%ld", PP_EVENTS, el,
           counts[0], counts[1], counts[2]);
}

/* ================================================================ destroy_race */

typedef struct {
    tasker_t h;
    int role;
    atomic_int *destroyed; /* set once tasker_destroy has returned */
    long calls;
    uint64_t rng;
} racer_t;

static bool allowed(int st, int a, int b, int c, int d) {
    return st == TASKER_EBADF || st == a || st == b || st == c || st == d;
}

static void *racer(void *arg) {
    racer_t *r = arg;
    char ev[EV_MAX], id[37];
    int n = ev_simple(ev, sizeof ev, &r->rng, NULL);
    for (;;) {
        int before = atomic_load(r->destroyed);
        int st;
        char *p = NULL;
        size_t len = 0;
        uint32_t cnt = 0;
        r->calls++;
        switch (r->role) {
        case 0: /* poll(-1); checkpoint what it gets on its first run, complete it on its second */
            st = tasker_poll(r->h, -1, &p, &len);
            CHECKF(allowed(st, TASKER_OK, TASKER_CLOSED, TASKER_EMPTY, 99), "poll racing destroy: %d", st);
            if (st == TASKER_OK) {
                CHECK(jv_uuid(json_get(p, len, "event_id"), id));
                if (!jv_has(json_get(p, len, "checkpoint"))) {
                    static const char cp[] = "{\"cursor\":1,\"items_processed\":1}";
                    int ks = tasker_checkpoint(r->h, id, cp, sizeof cp - 1);
                    CHECKF(allowed(ks, TASKER_OK, TASKER_ENOENT, 99, 99), "checkpoint racing destroy: %d", ks);
                    break;
                }
                int cs = h_complete(r->h, id, RES_OK);
                CHECKF(allowed(cs, TASKER_OK, TASKER_ENOENT, 99, 99), "complete racing destroy: %d", cs);
            }
            break;
        case 1:
            st = tasker_poll_batch(r->h, 8, -1, &p, &len, &cnt);
            CHECKF(allowed(st, TASKER_OK, TASKER_CLOSED, TASKER_EMPTY, 99), "poll_batch racing destroy: %d", st);
            break;
        case 2:
            st = tasker_next_completion(r->h, -1, &p, &len);
            CHECKF(allowed(st, TASKER_OK, TASKER_CLOSED, TASKER_EMPTY, 99), "next_completion racing destroy: %d", st);
            break;
        case 3:
            st = tasker_dispatch(r->h, ev, (size_t)n, -1, id);
            CHECKF(allowed(st, TASKER_OK, TASKER_ESHUTDOWN, 99, 99), "dispatch(-1) racing destroy: %d", st);
            break;
        case 4:
            st = tasker_stats(r->h, &p, &len);
            CHECKF(allowed(st, TASKER_OK, 99, 99, 99), "stats racing destroy: %d", st);
            break;
        case 5: {
            char u[37];
            h_uuid(u, &r->rng);
            st = h_complete(r->h, u, RES_OK);
            CHECKF(allowed(st, TASKER_ENOENT, 99, 99, 99), "complete(unknown) racing destroy: %d", st);
            uint32_t e;
            int cs = tasker_cleanup_timeouts(r->h, &e);
            CHECKF(allowed(cs, TASKER_OK, 99, 99, 99), "cleanup racing destroy: %d", cs);
            if (st == TASKER_EBADF) CHECKF(cs == TASKER_EBADF, "cleanup after an EBADF complete returned %d", cs);
            else st = cs;
            break;
        }
        case 6:
            st = h_dispatch(r->h, &r->rng, NULL, 5, NULL);
            CHECKF(allowed(st, TASKER_OK, TASKER_EFULL, TASKER_ESHUTDOWN, 99), "dispatch(5) racing destroy: %d", st);
            break;
        default:
            st = tasker_shutdown(r->h, 5);
            CHECKF(allowed(st, TASKER_OK, 99, 99, 99), "shutdown racing destroy: %d", st);
            break;
        }
        if (st != TASKER_OK) CHECKF(p == NULL && len == 0 && cnt == 0, "role %d: status %d with out-pointers set", r->role, st);
        tasker_free(p);
        if (before) CHECKF(st == TASKER_EBADF, "role %d: a call started after destroy returned got %d, want EBADF", r->role, st);
        if (st == TASKER_EBADF) break;
        if (r->role == 7) h_sleep_ms(3);
    }
    return NULL;
}

typedef struct {
    tasker_t h;
    pthread_barrier_t *bar;
    int st;
} destroyer_t;

static void *destroyer(void *arg) {
    destroyer_t *d = arg;
    pthread_barrier_wait(d->bar);
    d->st = tasker_destroy(d->h);
    return NULL;
}

static void destroy_race(void) {
    enum { ROUNDS = 40, NR = 10 };
    uint64_t rng = 0xde57;
    tasker_t handles[ROUNDS];
    long total_calls = 0;
    for (int round = 0; round < ROUNDS; round++) {
        tasker_t h = h_new("{\"dispatch_buffer_size\":4,\"max_concurrent_handlers\":2,\"completion_buffer_size\":4,"
                           "\"cleanup_interval_ms\":1,\"handler_timeout_ms\":3}");
        for (int j = 0; j < round; j++) CHECKF(handles[j] != h, "handle %" PRIu64 " reused", h);
        handles[round] = h;
        atomic_int destroyed = 0;
        racer_t rs[NR];
        pthread_t ts[NR];
        static const int roles[NR] = {0, 0, 1, 2, 2, 3, 3, 4, 5, 6};
        for (int i = 0; i < NR; i++) {
            rs[i] = (racer_t){.h = h, .role = roles[i], .destroyed = &destroyed, .rng = h_rand(&rng)};
            if (round % 4 == 3 && i == NR - 1) rs[i].role = 7; /* some rounds: shutdown races destroy too */
            h_thread(&ts[i], racer, &rs[i]);
        }
        h_sleep_ms((double)(h_rand(&rng) % 30));
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 2);
        destroyer_t d1 = {.h = h, .bar = &bar}, d2 = {.h = h, .bar = &bar};
        pthread_t t1, t2;
        h_thread(&t1, destroyer, &d1);
        h_thread(&t2, destroyer, &d2);
        h_join(t1);
        h_join(t2);
        pthread_barrier_destroy(&bar);
        atomic_store(&destroyed, 1);
        CHECKF((d1.st == TASKER_OK && d2.st == TASKER_EBADF) || (d1.st == TASKER_EBADF && d2.st == TASKER_OK),
               "two concurrent destroys returned %d and %d, want one OK and one EBADF", d1.st, d2.st);
        for (int i = 0; i < NR; i++) {
            h_join(ts[i]);
            total_calls += rs[i].calls;
        }
        /* after destroy: EBADF everywhere */
        char *p = (char *)1;
        size_t len = 1;
        uint32_t cnt = 1;
        CHECK_ST(tasker_poll(h, 0, &p, &len), TASKER_EBADF);
        CHECK_ST(tasker_poll_batch(h, 1, 0, &p, &len, &cnt), TASKER_EBADF);
        CHECK_ST(tasker_next_completion(h, 0, &p, &len), TASKER_EBADF);
        CHECK_ST(tasker_stats(h, &p, &len), TASKER_EBADF);
        CHECK(p == NULL && len == 0 && cnt == 0);
        CHECK_ST(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_EBADF);
        CHECK_ST(tasker_cleanup_timeouts(h, NULL), TASKER_EBADF);
        CHECK_ST(tasker_shutdown(h, 0), TASKER_EBADF);
        CHECK_ST(tasker_destroy(h), TASKER_EBADF);
    }
    H_NOTE("%d rounds, %ld calls racing destroy", ROUNDS, total_calls);
}

static const scenario_t SCENARIOS[] = {
    {"exactly_once", exactly_once, 240},
    {"exactly_once_shutdown", exactly_once_shutdown, 120},
    {"wakeup_pingpong", wakeup_pingpong, 120},
    {"destroy_race", destroy_race, 60},
};
HARNESS_MAIN(SCENARIOS)
