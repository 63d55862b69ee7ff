/* bench.c — `make bench` from C. Each mode prints one JSON line per figure.
 * Benchmarks only report: nothing here asserts a time.
 *
 *   bench roundtrip N BATCH      one thread: dispatch + poll + complete + next_completion
 *   bench scaling THREADS N      THREADS threads doing round trips on one handle
 *   bench latency N MODE [GAP]   dispatch -> poll-return latency; MODE block (poll -1), fd (poll(2) on
 *                                tasker_event_fd, then poll 0)
 *                                or sleep (poll 0, sleep 10 ms when empty); GAP: microseconds the
 *                                producer sleeps between events (default 50; block only: mode
 *                                "blocking_gapNus" when not 50); with BENCH_ONE_CPU=1 in the
 *                                environment the process runs on CPU 0 only and the mode gets
 *                                "_onecpu" (also peer_latency)
 *   bench memory N               RSS before/after N round trips; peak with 100,000 pending
 *   bench cleanup N              time of tasker_cleanup_timeouts expiring N events
 *   bench checkpoint N           one thread: N checkpoint round trips (poll + checkpoint: the
 *                                event goes back to the queue) beside N complete round trips
 *                                (dispatch + poll + complete + next_completion), same run
 *   bench peer_roundtrip N       the same round trip through the queue a C user would
 *                                otherwise write: mutex + condvar, documents copied
 *   bench peer_latency N [GAP]   dispatch -> pop-return latency of that queue, idle worker (GAP as above)
 *   bench roundtrip_into N       the round trip with tasker_poll_into and
 *                                tasker_next_completion_into (one reused buffer)
 *   bench pingpong N             two threads, both blocking: the producer dispatches and
 *                                waits for the completion, the worker waits in poll
 *   bench peer_pingpong N        the same through the mutex + condvar queue
 *   bench callgrind N WHAT       N round trips between CALLGRIND_TOGGLE_COLLECT marks, for
 *                                `valgrind --tool=callgrind --collect-atstart=no`; WHAT is
 *                                all|batch|into|dispatch|poll|complete|next|peer: which calls are
 *                                counted (batch: poll_batch(64) round trips)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tasker.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define CALLGRIND_TOGGLE_COLLECT do { } while (0)
#endif

static const char *EVENT =
    "{\"task_uuid\":\"0190a0a0-0000-7000-8000-000000000001\","
    "\"step_uuid\":\"0190a0a0-0000-7000-8000-000000000002\",\"handler\":\"bench\","
    "\"payload\":{\"order_id\":12345,\"items\":[{\"sku\":\"A-1\",\"qty\":2},{\"sku\":\"B-7\",\"qty\":1}],"
    "\"note\":\"hello\"}}";
static const char *RESULT = "{\"success\":true,\"result\":{\"ok\":true,\"total\":42.5},\"metadata\":{\"worker\":\"c\"}}";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, int st) {
    char buf[512];
    tasker_last_error(buf, sizeof buf);
    fprintf(stderr, "bench: %s: %s (%s)\n", what, tasker_strerror(st), buf);
    exit(1);
}
#define OK(call) do { int st_ = (call); if (st_ != TASKER_OK) die(#call, st_); } while (0)

static tasker_t open_channel(const char *cfg) {
    tasker_t h;
    OK(tasker_new(cfg, &h));
    return h;
}

/* the id of a polled event: the first "event_id" value */
static void event_id_of(const char *json, char id[37]) {
    const char *p = strstr(json, "\"event_id\":\"");
    if (!p) { fprintf(stderr, "no event_id\n"); exit(1); }
    memcpy(id, p + 12, 36);
    id[36] = 0;
}

static long rss_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) v = atol(line + n + 1);
    if (f) fclose(f);
    return v;
}

/* ---- round trip ---- */

__attribute__((noinline)) static void one_round_trip(tasker_t h, size_t evl, size_t rl) {
    char id[37], *out;
    size_t n;
    OK(tasker_dispatch(h, EVENT, evl, 0, id));
    OK(tasker_poll(h, 0, &out, &n));
    tasker_free(out);
    OK(tasker_complete(h, id, RESULT, rl));
    OK(tasker_next_completion(h, 0, &out, &n));
    tasker_free(out);
}

static char into_buf[65536];

__attribute__((noinline)) static void into_round_trip(tasker_t h, size_t evl, size_t rl) {
    char id[37];
    size_t n;
    OK(tasker_dispatch(h, EVENT, evl, 0, id));
    OK(tasker_poll_into(h, 0, into_buf, sizeof into_buf, &n));
    OK(tasker_complete(h, id, RESULT, rl));
    OK(tasker_next_completion_into(h, 0, into_buf, sizeof into_buf, &n));
}

static void batch_round_trip(tasker_t h, size_t evl, size_t rl, uint32_t batch) {
    char id[37], *out;
    size_t n;
    uint32_t count;
    for (uint32_t i = 0; i < batch; i++) OK(tasker_dispatch(h, EVENT, evl, 0, NULL));
    OK(tasker_poll_batch(h, batch, 0, &out, &n, &count));
    /* complete each event of the array */
    const char *p = out;
    for (uint32_t i = 0; i < count; i++) {
        p = strstr(p, "\"event_id\":\"");
        memcpy(id, p + 12, 36);
        id[36] = 0;
        p += 12;
        OK(tasker_complete(h, id, RESULT, rl));
    }
    tasker_free(out);
    for (uint32_t i = 0; i < count; i++) {
        OK(tasker_next_completion(h, 0, &out, &n));
        tasker_free(out);
    }
}

static int mode_roundtrip(long N, uint32_t batch) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0,\"max_concurrent_handlers\":64,\"completion_buffer_size\":128}");
    size_t evl = strlen(EVENT), rl = strlen(RESULT);
    for (long i = 0; i < N / 10; i++) one_round_trip(h, evl, rl); /* warm up */
    double t0 = now();
    if (batch <= 1) {
        for (long i = 0; i < N; i++) one_round_trip(h, evl, rl);
    } else {
        for (long i = 0; i < N; i += batch) batch_round_trip(h, evl, rl, batch);
    }
    double dt = now() - t0;
    printf("{\"bench\":\"c_roundtrip\",\"batch\":%u,\"events\":%ld,\"seconds\":%.4f,\"events_per_s\":%.0f,\"us_per_event\":%.3f}\n",
           batch, N, dt, (double)N / dt, dt / (double)N * 1e6);
    tasker_destroy(h);
    return 0;
}

/* ---- checkpoint vs complete ---- */

static const char *CHECKPOINT =
    "{\"cursor\":{\"table\":\"orders\",\"after_id\":123456},\"items_processed\":5000,"
    "\"accumulated_results\":{\"sum\":98765.25,\"errors\":0}}";

static int mode_checkpoint(long N) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0,\"max_checkpoints\":2147483647}");
    size_t evl = strlen(EVENT), rl = strlen(RESULT), cl = strlen(CHECKPOINT);
    char id[37], *out;
    size_t n;
    for (long i = 0; i < N / 10; i++) one_round_trip(h, evl, rl); /* warm up */
    double t0 = now();
    for (long i = 0; i < N; i++) one_round_trip(h, evl, rl);
    double complete_s = now() - t0;

    OK(tasker_dispatch(h, EVENT, evl, 0, id));
    for (long i = 0; i < N / 10; i++) { /* warm up */
        OK(tasker_poll(h, 0, &out, &n));
        tasker_free(out);
        OK(tasker_checkpoint(h, id, CHECKPOINT, cl));
    }
    t0 = now();
    for (long i = 0; i < N; i++) {
        OK(tasker_poll(h, 0, &out, &n)); /* the event with its checkpoint object */
        tasker_free(out);
        OK(tasker_checkpoint(h, id, CHECKPOINT, cl));
    }
    double checkpoint_s = now() - t0;
    OK(tasker_poll(h, 0, &out, &n));
    tasker_free(out);
    OK(tasker_complete(h, id, RESULT, rl));
    OK(tasker_next_completion(h, 0, &out, &n));
    tasker_free(out);
    printf("{\"bench\":\"c_checkpoint\",\"events\":%ld,\"complete_round_trip_us\":%.3f,"
           "\"checkpoint_round_trip_us\":%.3f,\"ratio\":%.3f}\n",
           N, complete_s / (double)N * 1e6, checkpoint_s / (double)N * 1e6, checkpoint_s / complete_s);
    tasker_destroy(h);
    return 0;
}

static int mode_roundtrip_into(long N) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0,\"max_concurrent_handlers\":64,\"completion_buffer_size\":128}");
    size_t evl = strlen(EVENT), rl = strlen(RESULT);
    for (long i = 0; i < N / 10; i++) into_round_trip(h, evl, rl);
    double t0 = now();
    for (long i = 0; i < N; i++) into_round_trip(h, evl, rl);
    double dt = now() - t0;
    printf("{\"bench\":\"c_roundtrip_into\",\"events\":%ld,\"seconds\":%.4f,\"events_per_s\":%.0f,\"us_per_event\":%.3f}\n",
           N, dt, (double)N / dt, dt / (double)N * 1e6);
    tasker_destroy(h);
    return 0;
}

/* ---- blocking ping-pong: both sides wait in the library ---- */

struct pp_arg { tasker_t h; long n; };

static void *pp_worker(void *p) {
    struct pp_arg *a = p;
    size_t rl = strlen(RESULT);
    char id[37], *out;
    size_t n;
    for (long i = 0; i < a->n; i++) {
        OK(tasker_poll(a->h, -1, &out, &n));
        event_id_of(out, id);
        tasker_free(out);
        OK(tasker_complete(a->h, id, RESULT, rl));
    }
    return NULL;
}

static int mode_pingpong(long N) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0}");
    struct pp_arg a = {h, N + N / 10};
    pthread_t th;
    pthread_create(&th, NULL, pp_worker, &a);
    size_t evl = strlen(EVENT);
    char *out;
    size_t n;
    double t0 = 0;
    for (long i = 0; i < N + N / 10; i++) {
        if (i == N / 10) t0 = now();
        OK(tasker_dispatch(h, EVENT, evl, -1, NULL));
        OK(tasker_next_completion(h, -1, &out, &n));
        tasker_free(out);
    }
    double dt = now() - t0;
    pthread_join(th, NULL);
    printf("{\"bench\":\"c_pingpong\",\"events\":%ld,\"seconds\":%.4f,\"events_per_s\":%.0f,\"us_per_event\":%.3f}\n",
           N, dt, (double)N / dt, dt / (double)N * 1e6);
    tasker_destroy(h);
    return 0;
}

/* ---- scaling ---- */

struct scale_arg { tasker_t h; long n; long done; };

static void *scale_thread(void *p) {
    struct scale_arg *a = p;
    size_t evl = strlen(EVENT), rl = strlen(RESULT);
    char id[37], *out;
    size_t n;
    for (long i = 0; i < a->n; i++) {
        OK(tasker_dispatch(a->h, EVENT, evl, -1, NULL));
        int st = tasker_poll(a->h, -1, &out, &n);
        if (st != TASKER_OK) die("poll", st);
        event_id_of(out, id);
        tasker_free(out);
        OK(tasker_complete(a->h, id, RESULT, rl));
        st = tasker_next_completion(a->h, 0, &out, &n);
        if (st == TASKER_OK) tasker_free(out);
        else if (st != TASKER_EMPTY) die("next_completion", st);
    }
    return NULL;
}

static int mode_scaling(int threads, long N) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0,\"max_concurrent_handlers\":64,\"completion_buffer_size\":100000,"
                              "\"dispatch_buffer_size\":100000}");
    pthread_t th[64];
    struct scale_arg args[64];
    long per = N / threads;
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        args[i] = (struct scale_arg){h, per, 0};
        pthread_create(&th[i], NULL, scale_thread, &args[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    /* drain what the threads' non-blocking next_completion left behind */
    char *out;
    size_t n;
    while (tasker_next_completion(h, 0, &out, &n) == TASKER_OK) tasker_free(out);
    double dt = now() - t0;
    long total = per * threads;
    printf("{\"bench\":\"c_scaling\",\"threads\":%d,\"cores\":%ld,\"events\":%ld,\"seconds\":%.4f,\"events_per_s\":%.0f}\n",
           threads, sysconf(_SC_NPROCESSORS_ONLN), total, dt, (double)total / dt);
    tasker_destroy(h);
    return 0;
}

/* ---- latency ---- */

struct lat_arg {
    tasker_t h;
    int sleep_mode; /* 0 blocking poll(-1), 1 poll(0)+sleep 10 ms, 2 poll(2) on tasker_event_fd then poll(0) */
    long n;
    double *poll_at; /* per sample: when poll returned */
    double *woke_at; /* fd mode, per sample: when poll(2) returned */
    int *cpu;        /* per sample: the worker's CPU when poll returned */
};

static void *lat_worker(void *p) {
    struct lat_arg *a = p;
    size_t rl = strlen(RESULT);
    char id[37], *out;
    size_t n;
    int efd = -1;
    if (a->sleep_mode == 2) OK(tasker_event_fd(a->h, &efd));
    for (long i = 0; i < a->n;) {
        if (efd >= 0) {
            struct pollfd pf = {.fd = efd, .events = POLLIN};
            while (poll(&pf, 1, -1) < 0 && errno == EINTR) {
            }
            a->woke_at[i] = now();
        }
        int st = tasker_poll(a->h, a->sleep_mode ? 0 : -1, &out, &n);
        if (st == TASKER_EMPTY) {
            if (efd < 0) usleep(10000); /* fd mode: a spurious wake-up, wait again */
            continue;
        }
        if (st != TASKER_OK) die("poll", st);
        a->poll_at[i] = now();
        a->cpu[i] = sched_getcpu();
        event_id_of(out, id);
        tasker_free(out);
        OK(tasker_complete(a->h, id, RESULT, rl));
        i++;
    }
    return NULL;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static const char *LAT_MODES[] = {"blocking", "sleep10ms", "fd"};

/* BENCH_ONE_CPU=1: the whole process on CPU 0 (set in main); the suffix of
 * the latency modes then says so. */
static const char *one_cpu(void) {
    const char *e = getenv("BENCH_ONE_CPU");
    return e != NULL && e[0] == '1' ? "_onecpu" : "";
}

/* The p50 and p99 of (b[i] - a[i]) in µs; sorts a scratch copy. */
static void split(long N, const double *a, const double *b, double *p50, double *p99) {
    double *d = malloc(sizeof(double) * (size_t)N);
    for (long i = 0; i < N; i++) d[i] = (b[i] - a[i]) * 1e6;
    qsort(d, (size_t)N, sizeof(double), cmp_double);
    *p50 = d[N / 2];
    *p99 = d[N * 99 / 100];
    free(d);
}

static int mode_latency(long N, int sleep_mode, int gap_us) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0}");
    double *sent = calloc((size_t)N, sizeof(double)), *got = calloc((size_t)N, sizeof(double));
    double *dret = calloc((size_t)N, sizeof(double)), *woke = calloc((size_t)N, sizeof(double));
    int *pcpu = calloc((size_t)N, sizeof(int)), *wcpu = calloc((size_t)N, sizeof(int));
    struct lat_arg a = {h, sleep_mode, N, got, woke, wcpu};
    pthread_t th;
    pthread_create(&th, NULL, lat_worker, &a);
    size_t evl = strlen(EVENT);
    char *out;
    size_t n;
    usleep(20000);
    for (long i = 0; i < N; i++) {
        sent[i] = now();
        pcpu[i] = sched_getcpu();
        OK(tasker_dispatch(h, EVENT, evl, -1, NULL));
        dret[i] = now();
        OK(tasker_next_completion(h, -1, &out, &n)); /* one event at a time */
        tasker_free(out);
        if (sleep_mode != 1) usleep((useconds_t)gap_us); /* let the worker park again: measure an idle worker */
    }
    pthread_join(th, NULL);
    double *lat = malloc(sizeof(double) * (size_t)N);
    for (long i = 0; i < N; i++) lat[i] = (got[i] - sent[i]) * 1e6;
    qsort(lat, (size_t)N, sizeof(double), cmp_double);
    char mode[64];
    if (sleep_mode == 0 && gap_us != 50) snprintf(mode, sizeof mode, "blocking_gap%dus%s", gap_us, one_cpu());
    else snprintf(mode, sizeof mode, "%s%s", LAT_MODES[sleep_mode], one_cpu());
    /* where it goes: the producer's dispatch call, the worker's CPU against the producer's, and
     * (fd) when poll(2) returned */
    double d50, d99, w50 = -1, w99 = -1;
    split(N, sent, dret, &d50, &d99);
    if (sleep_mode == 2) split(N, sent, woke, &w50, &w99);
    long same = 0;
    for (long i = 0; i < N; i++) same += wcpu[i] == pcpu[i];
    printf("{\"bench\":\"c_latency\",\"mode\":\"%s\",\"samples\":%ld,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
           "\"dispatch_p50_us\":%.1f,\"dispatch_p99_us\":%.1f,\"same_cpu_pct\":%.0f,\"fd_wake_p50_us\":%.1f,\"fd_wake_p99_us\":%.1f}\n",
           mode, N, lat[N / 2], lat[N * 9 / 10], lat[N * 99 / 100], lat[N - 1], d50, d99, 100.0 * (double)same / (double)N,
           w50, w99);
    tasker_destroy(h);
    free(sent); free(got); free(lat); free(dret); free(woke); free(pcpu); free(wcpu);
    return 0;
}

/* ---- memory ---- */

static int mode_memory(long N) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0}");
    size_t evl = strlen(EVENT), rl = strlen(RESULT);
    /* Warm-up: enough round trips for the Go heap to reach its steady size
     * (a few collection cycles: about 140 bytes a round trip allocate since
     * entries are recycled, against a 4 MB minimum heap goal), so that the
     * growth below is what the round trips leave behind, not the heap
     * filling up once. */
    for (long i = 0; i < 200000; i++) one_round_trip(h, evl, rl);
    long before = rss_kb("VmRSS:");
    for (long i = 0; i < N; i++) one_round_trip(h, evl, rl);
    long after = rss_kb("VmRSS:");
    tasker_destroy(h);

    enum { P = 100000 };
    h = open_channel("{\"cleanup_interval_ms\":0,\"dispatch_buffer_size\":100000,\"max_concurrent_handlers\":100000,"
                     "\"completion_buffer_size\":100000}");
    long base = rss_kb("VmRSS:");
    char *out;
    size_t n;
    for (long i = 0; i < P; i++) OK(tasker_dispatch(h, EVENT, evl, 0, NULL));
    for (long i = 0; i < P; i++) { OK(tasker_poll(h, 0, &out, &n)); tasker_free(out); }
    long pending = rss_kb("VmRSS:");
    tasker_destroy(h);
    printf("{\"bench\":\"c_memory\",\"round_trips\":%ld,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"rss_growth_kb\":%ld,"
           "\"pending\":%d,\"rss_idle_kb\":%ld,\"rss_with_pending_kb\":%ld,\"bytes_per_pending_event\":%.0f,\"peak_rss_kb\":%ld}\n",
           N, before, after, after - before, P, base, pending, (double)(pending - base) * 1024.0 / P, rss_kb("VmHWM:"));
    return 0;
}

/* ---- cleanup ---- */

static int mode_cleanup(long N) {
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"cleanup_interval_ms\":0,\"dispatch_buffer_size\":%ld,\"max_concurrent_handlers\":%ld,"
             "\"completion_buffer_size\":%ld}", N, N, N);
    tasker_t h = open_channel(cfg);
    const char *ev = "{\"task_uuid\":\"0190a0a0-0000-7000-8000-000000000001\","
                     "\"step_uuid\":\"0190a0a0-0000-7000-8000-000000000002\",\"handler\":\"bench\",\"timeout_ms\":1}";
    size_t evl = strlen(ev);
    char *out;
    size_t n;
    for (long i = 0; i < N; i++) OK(tasker_dispatch(h, ev, evl, 0, NULL));
    for (long i = 0; i < N; i++) { OK(tasker_poll(h, 0, &out, &n)); tasker_free(out); }
    usleep(20000);
    uint32_t expired = 0;
    double t0 = now();
    OK(tasker_cleanup_timeouts(h, &expired));
    double dt = now() - t0;
    printf("{\"bench\":\"c_cleanup\",\"pending\":%ld,\"expired\":%u,\"ms\":%.2f}\n", N, expired, dt * 1e3);
    tasker_destroy(h);
    return 0;
}

/* ---- the peer: a mutex + condvar queue, what a C user writes instead ----
 * Each item is a malloc'd copy of its document (the library also copies a
 * document in and hands a malloc'd one out), so the peer moves the same
 * bytes through the same kind of ownership transfer; only the dispatch
 * machinery (JSON parse/build, ids, bounds, timeouts) is absent. */

struct pq_item { char *doc; size_t len; };
struct pqueue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pq_item items[64];
    unsigned head, n;
};

static void pq_init(struct pqueue *q) {
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->head = q->n = 0;
}

static void pq_push(struct pqueue *q, const char *doc, size_t len) {
    char *copy = malloc(len + 1);
    memcpy(copy, doc, len);
    copy[len] = 0;
    pthread_mutex_lock(&q->mu);
    q->items[(q->head + q->n++) % 64] = (struct pq_item){copy, len};
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static struct pq_item pq_pop(struct pqueue *q) {
    pthread_mutex_lock(&q->mu);
    while (q->n == 0) pthread_cond_wait(&q->cv, &q->mu);
    struct pq_item it = q->items[q->head];
    q->head = (q->head + 1) % 64;
    q->n--;
    pthread_mutex_unlock(&q->mu);
    return it;
}

__attribute__((noinline)) static void peer_round_trip(struct pqueue *work, struct pqueue *done, size_t evl, size_t rl) {
    pq_push(work, EVENT, evl);
    struct pq_item ev = pq_pop(work);
    free(ev.doc);
    pq_push(done, RESULT, rl);
    struct pq_item c = pq_pop(done);
    free(c.doc);
}

static int mode_peer_roundtrip(long N) {
    static struct pqueue work, done;
    pq_init(&work);
    pq_init(&done);
    size_t evl = strlen(EVENT), rl = strlen(RESULT);
    for (long i = 0; i < N / 10; i++) peer_round_trip(&work, &done, evl, rl);
    double t0 = now();
    for (long i = 0; i < N; i++) peer_round_trip(&work, &done, evl, rl);
    double dt = now() - t0;
    printf("{\"bench\":\"c_peer_roundtrip\",\"events\":%ld,\"seconds\":%.4f,\"events_per_s\":%.0f,\"us_per_event\":%.3f}\n",
           N, dt, (double)N / dt, dt / (double)N * 1e6);
    return 0;
}

struct peer_lat { struct pqueue work, done; long n; double *got; };

static void *peer_lat_worker(void *p) {
    struct peer_lat *a = p;
    size_t rl = strlen(RESULT);
    for (long i = 0; i < a->n; i++) {
        struct pq_item ev = pq_pop(&a->work);
        a->got[i] = now();
        free(ev.doc);
        pq_push(&a->done, RESULT, rl);
    }
    return NULL;
}

static void print_latency(const char *bench, const char *mode, long N, double *sent, double *got) {
    double *lat = malloc(sizeof(double) * (size_t)N);
    for (long i = 0; i < N; i++) lat[i] = (got[i] - sent[i]) * 1e6;
    qsort(lat, (size_t)N, sizeof(double), cmp_double);
    printf("{\"bench\":\"%s\",\"mode\":\"%s\",\"samples\":%ld,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
           bench, mode, N, lat[N / 2], lat[N * 9 / 10], lat[N * 99 / 100], lat[N - 1]);
    free(lat);
}

static int mode_peer_latency(long N, int gap_us) {
    static struct peer_lat a;
    pq_init(&a.work);
    pq_init(&a.done);
    a.n = N;
    a.got = calloc((size_t)N, sizeof(double));
    double *sent = calloc((size_t)N, sizeof(double));
    pthread_t th;
    pthread_create(&th, NULL, peer_lat_worker, &a);
    size_t evl = strlen(EVENT);
    usleep(20000);
    for (long i = 0; i < N; i++) {
        sent[i] = now();
        pq_push(&a.work, EVENT, evl);
        struct pq_item c = pq_pop(&a.done);
        free(c.doc);
        usleep((useconds_t)gap_us); /* as mode_latency: the worker is idle (parked) when the next one comes */
    }
    pthread_join(th, NULL);
    char mode[64];
    if (gap_us != 50) snprintf(mode, sizeof mode, "blocking_gap%dus%s", gap_us, one_cpu());
    else snprintf(mode, sizeof mode, "blocking%s", one_cpu());
    print_latency("c_peer_latency", mode, N, sent, a.got);
    free(sent); free(a.got);
    return 0;
}

static void *peer_pp_worker(void *p) {
    struct peer_lat *a = p;
    size_t rl = strlen(RESULT);
    for (long i = 0; i < a->n; i++) {
        struct pq_item ev = pq_pop(&a->work);
        free(ev.doc);
        pq_push(&a->done, RESULT, rl);
    }
    return NULL;
}

static int mode_peer_pingpong(long N) {
    static struct peer_lat a;
    pq_init(&a.work);
    pq_init(&a.done);
    a.n = N + N / 10;
    pthread_t th;
    pthread_create(&th, NULL, peer_pp_worker, &a);
    size_t evl = strlen(EVENT);
    double t0 = 0;
    for (long i = 0; i < N + N / 10; i++) {
        if (i == N / 10) t0 = now();
        pq_push(&a.work, EVENT, evl);
        struct pq_item c = pq_pop(&a.done);
        free(c.doc);
    }
    double dt = now() - t0;
    pthread_join(th, NULL);
    printf("{\"bench\":\"c_peer_pingpong\",\"events\":%ld,\"seconds\":%.4f,\"events_per_s\":%.0f,\"us_per_event\":%.3f}\n",
           N, dt, (double)N / dt, dt / (double)N * 1e6);
    return 0;
}

/* ---- instruction counts ----
 * Run under `valgrind --tool=callgrind --collect-atstart=no`: only the
 * instructions between the two toggles are counted, on every thread (the
 * round trip has no waits, so it all runs on this thread). WHAT picks which
 * calls are inside the marks, to split the round trip into its calls. */

static int mode_callgrind(long N, const char *what) {
    tasker_t h = open_channel("{\"cleanup_interval_ms\":0,\"max_concurrent_handlers\":64,\"completion_buffer_size\":128}");
    size_t evl = strlen(EVENT), rl = strlen(RESULT);
    for (long i = 0; i < 1000; i++) one_round_trip(h, evl, rl); /* warm up: pools, buffers, first-call paths */
    int all = !strcmp(what, "all");
    int sel = !strcmp(what, "dispatch") ? 1 : !strcmp(what, "poll") ? 2 : !strcmp(what, "complete") ? 3
            : !strcmp(what, "next") ? 4 : 0;
    if (!strcmp(what, "peer")) {
        static struct pqueue work, done;
        pq_init(&work);
        pq_init(&done);
        for (long i = 0; i < 1000; i++) peer_round_trip(&work, &done, evl, rl);
        CALLGRIND_TOGGLE_COLLECT;
        for (long i = 0; i < N; i++) peer_round_trip(&work, &done, evl, rl);
        CALLGRIND_TOGGLE_COLLECT;
    } else if (!strcmp(what, "batch")) {
        for (long i = 0; i < 1000; i += 64) batch_round_trip(h, evl, rl, 64);
        CALLGRIND_TOGGLE_COLLECT;
        for (long i = 0; i < N; i += 64) batch_round_trip(h, evl, rl, 64);
        CALLGRIND_TOGGLE_COLLECT;
        N = (N + 63) / 64 * 64;
    } else if (!strcmp(what, "into")) {
        for (long i = 0; i < 1000; i++) into_round_trip(h, evl, rl);
        CALLGRIND_TOGGLE_COLLECT;
        for (long i = 0; i < N; i++) into_round_trip(h, evl, rl);
        CALLGRIND_TOGGLE_COLLECT;
    } else if (all) {
        CALLGRIND_TOGGLE_COLLECT;
        for (long i = 0; i < N; i++) one_round_trip(h, evl, rl);
        CALLGRIND_TOGGLE_COLLECT;
    } else if (sel) {
        char id[37], *out;
        size_t n;
        for (long i = 0; i < N; i++) {
            if (sel == 1) CALLGRIND_TOGGLE_COLLECT;
            OK(tasker_dispatch(h, EVENT, evl, 0, id));
            if (sel == 1) CALLGRIND_TOGGLE_COLLECT;
            if (sel == 2) CALLGRIND_TOGGLE_COLLECT;
            OK(tasker_poll(h, 0, &out, &n));
            tasker_free(out);
            if (sel == 2) CALLGRIND_TOGGLE_COLLECT;
            if (sel == 3) CALLGRIND_TOGGLE_COLLECT;
            OK(tasker_complete(h, id, RESULT, rl));
            if (sel == 3) CALLGRIND_TOGGLE_COLLECT;
            if (sel == 4) CALLGRIND_TOGGLE_COLLECT;
            OK(tasker_next_completion(h, 0, &out, &n));
            tasker_free(out);
            if (sel == 4) CALLGRIND_TOGGLE_COLLECT;
        }
    } else {
        fprintf(stderr, "callgrind: unknown WHAT %s\n", what);
        return 2;
    }
#ifndef HAVE_CALLGRIND
    fprintf(stderr, "bench was built without valgrind/callgrind.h: nothing was counted\n");
#endif
    printf("{\"bench\":\"c_callgrind_run\",\"what\":\"%s\",\"events\":%ld}\n", what, N);
    tasker_destroy(h);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see the top of bench.c\n"); return 2; }
    const char *mode = argv[1];
    if (one_cpu()[0]) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) { perror("sched_setaffinity"); return 2; }
    }
    long N = atol(argv[2]);
    if (!strcmp(mode, "roundtrip")) return mode_roundtrip(N, argc > 3 ? (uint32_t)atoi(argv[3]) : 1);
    if (!strcmp(mode, "scaling")) return mode_scaling((int)N, atol(argv[3]));
    if (!strcmp(mode, "latency"))
        return mode_latency(N, argc <= 3 ? 0 : !strcmp(argv[3], "sleep") ? 1 : !strcmp(argv[3], "fd") ? 2 : 0,
                            argc > 4 ? atoi(argv[4]) : 50);
    if (!strcmp(mode, "memory")) return mode_memory(N);
    if (!strcmp(mode, "cleanup")) return mode_cleanup(N);
    if (!strcmp(mode, "checkpoint")) return mode_checkpoint(N);
    if (!strcmp(mode, "peer_roundtrip")) return mode_peer_roundtrip(N);
    if (!strcmp(mode, "roundtrip_into")) return mode_roundtrip_into(N);
    if (!strcmp(mode, "pingpong")) return mode_pingpong(N);
    if (!strcmp(mode, "peer_pingpong")) return mode_peer_pingpong(N);
    if (!strcmp(mode, "peer_latency")) return mode_peer_latency(N, argc > 3 ? atoi(argv[3]) : 50);
    if (!strcmp(mode, "callgrind")) return mode_callgrind(N, argc > 3 ? argv[3] : "all");
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
