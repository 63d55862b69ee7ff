/*
 * Waiting outside Go: poll, poll_batch and next_completion park the calling
 * thread on a futex in the C shim and are woken by the Go side when a try
 * may succeed (include/tasker.h, "How poll ... wait"). Each scenario breaks
 * if one wake-up path is missing.
 *
 *   park_bound_frees      a poller parked at max_concurrent_handlers wakes
 *                         when complete frees the bound.
 *   park_stream_frees     a poller parked at completion_buffer_size wakes
 *                         when next_completion frees room.
 *   park_reaper_frees     ... and when the reaper (Go, no C call) times an
 *                         event out.
 *   park_many_waiters     8 parked workers, 3,000 events from another
 *                         thread: every event is taken and ends once (the
 *                         one-wake-per-change chain loses none).
 *   park_shared_slot      two live handles that share a park slot (h and
 *                         h + 1024): each one's waiter wakes for its own
 *                         events.
 *   park_timeout          a parked poll with a timeout returns EMPTY, not
 *                         before the timeout; one that is woken returns OK.
 *   park_handoff_races    the direct hand-off (poll, poll_into and
 *                         next_completion sleep as receivers and are handed
 *                         their document): pollers with 1-3 ms timeouts and a
 *                         thread interrupting them with signals race 4,000
 *                         dispatches; every event is taken once and
 *                         completed once, none is left pending (a receiver
 *                         that gave up while Go claimed it would strand one)
 *                         and every completion is taken once.
 *   park_handoff_into     a document handed to a thread parked in
 *                         poll_into / next_completion_into that does not
 *                         fit its buffer is ETOOBIG with its length and is
 *                         kept for the next call; one that fits is written
 *                         in place.
 */
#include "harness.h"

static uint64_t rng = 0x9a4c;

typedef struct {
    tasker_t h;
    int kind; /* 0 poll, 1 poll_batch, 2 next_completion */
    int32_t timeout;
    atomic_int done;
    int st;
    char id[37];
} parked_t;

static void *parked(void *arg) {
    parked_t *p = arg;
    char *doc = NULL;
    size_t n = 0;
    uint32_t cnt = 0;
    if (p->kind == 0) p->st = tasker_poll(p->h, p->timeout, &doc, &n);
    else if (p->kind == 1) p->st = tasker_poll_batch(p->h, 4, p->timeout, &doc, &n, &cnt);
    else p->st = tasker_next_completion(p->h, p->timeout, &doc, &n);
    if (p->st == TASKER_OK) {
        const char *d = doc;
        if (p->kind == 1) {
            CHECK(cnt >= 1);
            d = strstr(doc, "{");
        }
        CHECK(jv_uuid(json_get(d, strlen(d), "event_id"), p->id));
    }
    tasker_free(doc);
    atomic_store(&p->done, 1);
    return NULL;
}

/* starts a parked call and checks that it is still waiting after 100 ms */
static void start_parked(parked_t *p, pthread_t *t) {
    h_thread(t, parked, p);
    h_sleep_ms(100);
    CHECKF(!atomic_load(&p->done), "call kind %d returned %d without waiting", p->kind, p->st);
}

static void park_bound_frees(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0,\"max_concurrent_handlers\":1}");
    char pending[37], next[37];
    h_dispatch_ok(h, &rng, pending);
    CHECK_OK(h_poll_id(h, 0, NULL)); /* pending: the bound is reached */
    for (int kind = 0; kind < 2; kind++) { /* poll, then poll_batch */
        h_dispatch_ok(h, &rng, next);
        parked_t p = {h, kind, -1, 0, 0, ""};
        pthread_t t;
        start_parked(&p, &t);
        CHECK_OK(h_complete(h, pending, "{\"success\":true}"));
        h_join(t);
        CHECK_OK(p.st);
        CHECKF(strcmp(p.id, next) == 0, "kind %d took %s, want %s", kind, p.id, next);
        strcpy(pending, next);
    }
    CHECK_OK(tasker_destroy(h));
}

static void park_stream_frees(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0,\"max_concurrent_handlers\":1,\"completion_buffer_size\":1}");
    char a[37], b[37], got[37];
    h_dispatch_ok(h, &rng, a);
    h_dispatch_ok(h, &rng, b);
    CHECK_OK(h_poll_id(h, 0, NULL));
    CHECK_OK(h_complete(h, a, "{\"success\":true}")); /* the stream holds a's completion: no room to start b */
    parked_t p = {h, 0, -1, 0, 0, ""};
    pthread_t t;
    start_parked(&p, &t);
    CHECK_OK(h_next_id(h, 0, got, NULL));
    h_join(t);
    CHECK_OK(p.st);
    CHECK(strcmp(p.id, b) == 0);
    CHECK_OK(tasker_destroy(h));
}

static void park_reaper_frees(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":20,\"max_concurrent_handlers\":1}");
    char b[37];
    uint64_t r = rng;
    CHECK_OK(h_dispatch(h, &r, "\"timeout_ms\":50", 0, NULL));
    h_dispatch_ok(h, &rng, b);
    CHECK_OK(h_poll_id(h, 0, NULL)); /* times out after 50 ms; only the reaper ends it */
    parked_t p = {h, 0, -1, 0, 0, ""};
    pthread_t t;
    h_thread(&t, parked, &p);
    h_join(t);
    CHECK_OK(p.st);
    CHECK(strcmp(p.id, b) == 0);
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.timed_out == 1);
    CHECK_OK(tasker_destroy(h));
}

enum { MANY = 3000, WORKERS = 8 };
typedef struct {
    tasker_t h;
    atomic_int *taken;
} worker_arg_t;

static void *worker(void *arg) {
    worker_arg_t *w = arg;
    char id[37];
    for (;;) {
        int st = h_poll_id(w->h, -1, id);
        if (st == TASKER_CLOSED) return NULL;
        CHECK_OK(st);
        CHECK_OK(h_complete(w->h, id, "{\"success\":true}"));
        atomic_fetch_add(w->taken, 1);
    }
}

static void park_many_waiters(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0,\"dispatch_buffer_size\":100,\"max_concurrent_handlers\":16,"
                       "\"completion_buffer_size\":5000}");
    atomic_int taken = 0;
    worker_arg_t w = {h, &taken};
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) h_thread(&t[i], worker, &w);
    h_sleep_ms(50);
    uint64_t r = rng;
    for (int i = 0; i < MANY; i++) {
        CHECK_OK(h_dispatch(h, &r, NULL, -1, NULL));
        if (i % 97 == 0) h_sleep_ms(1); /* let the workers park again now and then */
    }
    CHECK_OK(tasker_shutdown(h, -1)); /* returns once every event has ended */
    for (int i = 0; i < WORKERS; i++) h_join(t[i]);
    CHECKF(atomic_load(&taken) == MANY, "taken %d of %d", atomic_load(&taken), MANY);
    hstats_t s;
    h_stats(h, &s);
    CHECK(s.completed == MANY && s.cancelled == 0 && h_stats_add_up(&s));
    char id[37];
    for (int i = 0; i < MANY; i++) CHECK_OK(h_next_id(h, 0, id, NULL));
    CHECK_ST(h_next_id(h, 0, id, NULL), TASKER_CLOSED);
    CHECK_OK(tasker_destroy(h));
}

static void park_shared_slot(void) {
    const char *cfg = "{\"cleanup_interval_ms\":0}";
    tasker_t h1 = h_new(cfg), h2 = 0;
    for (int i = 0; i < 2048 && h2 == 0; i++) {
        tasker_t x = h_new(cfg);
        if (x % 1024 == h1 % 1024) h2 = x;
        else CHECK_OK(tasker_destroy(x));
    }
    CHECKF(h2 != 0, "no handle shares a slot with %" PRIu64, h1);
    for (int round = 0; round < 20; round++) {
        parked_t p1 = {h1, round % 3, -1, 0, 0, ""}, p2 = {h2, 0, -1, 0, 0, ""};
        pthread_t t1, t2;
        h_thread(&t1, parked, &p1);
        h_thread(&t2, parked, &p2);
        h_sleep_ms(20);
        char id[37];
        tasker_t first = round % 2 ? h1 : h2, second = round % 2 ? h2 : h1;
        parked_t *pf = round % 2 ? &p1 : &p2;
        if (p1.kind == 2) { /* p1 waits for a completion of h1 */
            char e[37];
            h_dispatch_ok(h1, &rng, e);
            CHECK_OK(h_poll_id(h1, 0, NULL));
            CHECK_OK(h_complete(h1, e, "{\"success\":true}"));
            h_dispatch_ok(h2, &rng, id);
            h_join(t1);
            h_join(t2);
            CHECK_OK(p1.st);
            CHECK_OK(p2.st);
            CHECK(strcmp(p1.id, e) == 0 && strcmp(p2.id, id) == 0);
            CHECK_OK(h_complete(h2, id, "{\"success\":true}"));
            CHECK_OK(h_next_id(h2, 0, id, NULL));
            continue;
        }
        h_dispatch_ok(first, &rng, id);
        h_join(first == h1 ? t1 : t2);
        CHECK_OK(pf->st);
        CHECK(strcmp(pf->id, id) == 0);
        CHECK_OK(h_complete(first, id, "{\"success\":true}"));
        h_dispatch_ok(second, &rng, id);
        h_join(second == h1 ? t1 : t2);
        parked_t *ps = second == h1 ? &p1 : &p2;
        CHECK_OK(ps->st);
        CHECK(strcmp(ps->id, id) == 0);
        CHECK_OK(h_complete(second, id, "{\"success\":true}"));
        CHECK_OK(h_next_id(h1, 0, id, NULL));
        CHECK_OK(h_next_id(h2, 0, id, NULL));
    }
    CHECK_OK(tasker_destroy(h1));
    CHECK_OK(tasker_destroy(h2));
}

static void park_timeout(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char *p = (char *)1;
    size_t n = 3;
    double t0 = h_now();
    CHECK_ST(tasker_poll(h, 120, &p, &n), TASKER_EMPTY);
    double el = h_ms_since(t0);
    CHECKF(el >= 119.0, "poll(120) returned EMPTY after %.1f ms, before its timeout", el);
    CHECK(p == NULL && n == 0);
    t0 = h_now();
    CHECK_ST(tasker_next_completion(h, 60, &p, &n), TASKER_EMPTY);
    el = h_ms_since(t0);
    CHECKF(el >= 59.0, "next_completion(60) returned EMPTY after %.1f ms", el);
    parked_t w = {h, 0, 30000, 0, 0, ""};
    pthread_t t;
    start_parked(&w, &t);
    char id[37];
    h_dispatch_ok(h, &rng, id);
    h_join(t);
    CHECK_OK(w.st);
    CHECK(strcmp(w.id, id) == 0);
    CHECK_OK(tasker_destroy(h));
}

enum { RACE_EVENTS = 4000, RACE_POLLERS = 4 };
typedef struct {
    tasker_t h;
    int kind; /* 0 poll, 1 poll_into */
    atomic_int *taken;
    atomic_int *stop;
} racer_t;

static void on_usr1(int sig) { (void)sig; }

/* The signal may land while the thread runs Go code (or while the Go
 * runtime is still setting the thread up on its first call): a C handler
 * must then run on an alternate signal stack (SA_ONSTACK, cgo's rule), so
 * every thread the signaller targets makes its own before any call. */
static void own_sigaltstack(void) {
    stack_t ss = {.ss_sp = malloc(SIGSTKSZ * 4), .ss_size = SIGSTKSZ * 4, .ss_flags = 0};
    CHECK(ss.ss_sp != NULL && sigaltstack(&ss, NULL) == 0);
}

static void *racer(void *arg) {
    racer_t *r = arg;
    own_sigaltstack();
    char buf[4096], id[37], *doc;
    size_t n;
    uint64_t x = (uint64_t)(uintptr_t)arg;
    while (!atomic_load(r->stop)) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int32_t t = 1 + (int32_t)((x >> 33) % 3);
        int st;
        if (r->kind == 0) {
            st = tasker_poll(r->h, t, &doc, &n);
            if (st == TASKER_OK) {
                CHECK(jv_uuid(json_get(doc, n, "event_id"), id));
                tasker_free(doc);
            }
        } else {
            st = tasker_poll_into(r->h, t, buf, sizeof buf, &n);
            if (st == TASKER_OK) CHECK(n == strlen(buf) && jv_uuid(json_get(buf, n, "event_id"), id));
        }
        if (st == TASKER_EMPTY) continue;
        if (st == TASKER_CLOSED) break;
        CHECK_OK(st);
        CHECK_OK(h_complete(r->h, id, "{\"success\":true}")); /* a second hand-off of one event fails here */
        atomic_fetch_add(r->taken, 1);
    }
    return NULL;
}

typedef struct {
    tasker_t h;
    atomic_int *got;
    atomic_int *stop;
} drainer_t;

static void *drainer(void *arg) { /* takes completions with short timeouts: receivers on the other stream */
    drainer_t *d = arg;
    own_sigaltstack();
    char buf[4096], id[37];
    size_t n;
    while (!atomic_load(d->stop)) {
        int st = tasker_next_completion_into(d->h, 2, buf, sizeof buf, &n);
        if (st == TASKER_EMPTY) continue;
        if (st == TASKER_CLOSED) break;
        CHECK_OK(st);
        CHECK(n == strlen(buf) && jv_uuid(json_get(buf, n, "event_id"), id));
        atomic_fetch_add(d->got, 1);
    }
    return NULL;
}

typedef struct {
    pthread_t *targets;
    int n;
    atomic_int *stop;
} signaller_t;

static void *signaller(void *arg) {
    signaller_t *s = arg;
    for (int i = 0; !atomic_load(s->stop); i++) {
        pthread_kill(s->targets[i % s->n], SIGUSR1);
        h_sleep_ms(0.3);
    }
    return NULL;
}

static void park_handoff_races(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: the futex waits return EINTR */
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    tasker_t h = h_new("{\"cleanup_interval_ms\":0,\"dispatch_buffer_size\":64,\"max_concurrent_handlers\":64,"
                       "\"completion_buffer_size\":64}");
    atomic_int taken = 0, got = 0, stop = 0, stop_sig = 0;
    racer_t rs[RACE_POLLERS];
    pthread_t t[RACE_POLLERS + 1], ts;
    for (int i = 0; i < RACE_POLLERS; i++) {
        rs[i] = (racer_t){h, i % 2, &taken, &stop};
        h_thread(&t[i], racer, &rs[i]);
    }
    drainer_t d = {h, &got, &stop};
    h_thread(&t[RACE_POLLERS], drainer, &d);
    signaller_t sg = {t, RACE_POLLERS + 1, &stop_sig};
    h_thread(&ts, signaller, &sg);
    uint64_t r = rng;
    for (int i = 0; i < RACE_EVENTS; i++) {
        int st = h_dispatch(h, &r, NULL, 10000, NULL);
        CHECKF(st == TASKER_OK, "dispatch %d: status %d after 10 s: the pending events hold the bound (%d taken)", i, st,
               atomic_load(&taken));
        if (i % 3 == 0) h_sleep_ms(((unsigned)i * 7919u) % 2000u / 1000.0); /* 0-2 ms: pollers park, time out, wake */
    }
    double t0 = h_now();
    while ((atomic_load(&taken) < RACE_EVENTS || atomic_load(&got) < RACE_EVENTS) && h_ms_since(t0) < 20000)
        h_sleep_ms(1);
    atomic_store(&stop, 1);
    atomic_store(&stop_sig, 1);
    h_join(ts);
    for (int i = 0; i <= RACE_POLLERS; i++) h_join(t[i]);
    hstats_t s;
    h_stats(h, &s);
    CHECKF(atomic_load(&taken) == RACE_EVENTS && s.completed == RACE_EVENTS,
           "taken %d, completed %lld of %d (pending %lld): a handed-off event was stranded", atomic_load(&taken),
           s.completed, RACE_EVENTS, s.pending);
    CHECKF(atomic_load(&got) == RACE_EVENTS, "completions taken %d of %d", atomic_load(&got), RACE_EVENTS);
    CHECK(s.pending == 0 && s.cancelled == 0 && s.timed_out == 0 && h_stats_add_up(&s));
    char id[37];
    CHECK_ST(h_next_id(h, 0, id, NULL), TASKER_EMPTY);
    CHECK_OK(tasker_destroy(h));
}

typedef struct {
    tasker_t h;
    int completion;
    size_t cap;
    int st;
    size_t n;
    char buf[4096];
} into_waiter_t;

static void *into_wait(void *arg) {
    into_waiter_t *w = arg;
    w->st = w->completion ? tasker_next_completion_into(w->h, -1, w->buf, w->cap, &w->n)
                          : tasker_poll_into(w->h, -1, w->buf, w->cap, &w->n);
    return NULL;
}

/* Makes what a parked into_wait of the given stream waits for: an event, or
 * (completion) an event's completion. */
static void into_arrive(tasker_t h, int completion, char id[37]) {
    h_dispatch_ok(h, &rng, id);
    if (completion) {
        CHECK_OK(h_poll_id(h, 0, NULL));
        CHECK_OK(h_complete(h, id, "{\"success\":true}"));
    }
}

/* Ends a taken event (poll stream only), so that the next round starts empty. */
static void into_settle(tasker_t h, int completion, const char *id) {
    char got[37];
    if (!completion) {
        CHECK_OK(h_complete(h, id, "{\"success\":true}"));
        CHECK_OK(h_next_id(h, 0, got, NULL));
    }
}

static void park_handoff_into(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    for (int completion = 0; completion < 2; completion++) {
        char id[37], got[37];
        static into_waiter_t small, big;
        small = (into_waiter_t){.h = h, .completion = completion, .cap = 16};
        pthread_t t;
        h_thread(&t, into_wait, &small);
        h_sleep_ms(50); /* parked as a receiver by now */
        into_arrive(h, completion, id);
        h_join(t);
        CHECK_ST(small.st, TASKER_ETOOBIG);
        CHECKF(small.n > 16, "ETOOBIG must report the length, got %zu", small.n);
        size_t need = small.n;
        big = (into_waiter_t){.h = h, .completion = completion, .cap = sizeof big.buf};
        into_wait(&big); /* the kept document comes first, without waiting */
        CHECK_OK(big.st);
        CHECK(big.n == need && strlen(big.buf) == need);
        CHECK(jv_uuid(json_get(big.buf, big.n, "event_id"), got) && strcmp(got, id) == 0);
        into_settle(h, completion, id);
        /* parked with a buffer that fits: written in place */
        big = (into_waiter_t){.h = h, .completion = completion, .cap = sizeof big.buf};
        memset(big.buf, 'x', sizeof big.buf);
        h_thread(&t, into_wait, &big);
        h_sleep_ms(50);
        into_arrive(h, completion, id);
        h_join(t);
        CHECK_OK(big.st);
        CHECK(big.n < sizeof big.buf && big.buf[big.n] == '\0' && strlen(big.buf) == big.n);
        CHECK(jv_uuid(json_get(big.buf, big.n, "event_id"), got) && strcmp(got, id) == 0);
        into_settle(h, completion, id);
    }
    CHECK_OK(tasker_destroy(h));
}

static const scenario_t SCENARIOS[] = {
    {"park_bound_frees", park_bound_frees, 30},
    {"park_stream_frees", park_stream_frees, 30},
    {"park_reaper_frees", park_reaper_frees, 30},
    {"park_many_waiters", park_many_waiters, 60},
    {"park_shared_slot", park_shared_slot, 60},
    {"park_timeout", park_timeout, 30},
    {"park_handoff_races", park_handoff_races, 90},
    {"park_handoff_into", park_handoff_into, 30},
};
HARNESS_MAIN(SCENARIOS)
