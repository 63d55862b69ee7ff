/* floor.c — the cost of one no-op call from C into Go and back, measured
 * against tests/bench/floor (a c-shared library that does nothing).
 *
 *   floor N [callgrind]        the no-op crossing (and one after a sleep)
 *   floor slot N [callgrind]   the one-slot floor (tests/bench/floor/slot.go):
 *                              a C round trip's four calls and JSON work,
 *                              one event slot instead of the channel */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif

extern int bench_noop(void);
extern int bench_noop_args(unsigned long long h, char *p, size_t n);
extern int bench_slot_dispatch(char *doc, size_t n, char *id_out);
extern int bench_slot_poll_into(char *dst, size_t cap, size_t *n);
extern int bench_slot_complete(char *id, char *doc, size_t n);
extern int bench_slot_next_into(char *dst, size_t cap, size_t *n);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char slot_buf[65536];

/* bench roundtrip_into's loop, on the one-slot floor */
__attribute__((noinline)) static void slot_round_trip(char *ev, size_t evl, char *res, size_t rl) {
    char id[37];
    size_t n;
    if (bench_slot_dispatch(ev, evl, id) || bench_slot_poll_into(slot_buf, sizeof slot_buf, &n) ||
        bench_slot_complete(id, res, rl) || bench_slot_next_into(slot_buf, sizeof slot_buf, &n)) {
        fprintf(stderr, "floor slot: a call failed\n");
        exit(1);
    }
}

static int mode_slot(long N, int callgrind) {
    char *ev = getenv("BENCH_EVENT"), *res = getenv("BENCH_RESULT");
    if (ev == NULL || res == NULL) {
        fprintf(stderr, "floor slot: set BENCH_EVENT and BENCH_RESULT (tests/bench/run.sh)\n");
        return 2;
    }
    size_t evl = strlen(ev), rl = strlen(res);
    for (long i = 0; i < N / 10 + 1000; i++) slot_round_trip(ev, evl, res, rl); /* warm up */
#ifdef HAVE_CALLGRIND
    if (callgrind) {
        CALLGRIND_TOGGLE_COLLECT;
        for (long i = 0; i < N; i++) slot_round_trip(ev, evl, res, rl);
        CALLGRIND_TOGGLE_COLLECT;
        printf("{\"bench\":\"c_slot_floor_callgrind_run\",\"events\":%ld}\n", N);
        return 0;
    }
#else
    if (callgrind) {
        fprintf(stderr, "floor slot: built without valgrind/callgrind.h\n");
        return 2;
    }
#endif
    double t0 = now();
    for (long i = 0; i < N; i++) slot_round_trip(ev, evl, res, rl);
    double dt = now() - t0;
    printf("{\"bench\":\"c_slot_floor\",\"events\":%ld,\"seconds\":%.4f,\"events_per_s\":%.0f,\"us_per_event\":%.3f}\n",
           N, dt, (double)N / dt, dt / (double)N * 1e6);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "slot")) return mode_slot(atol(argv[2]), argc > 3 && argv[3][0] == 'c');
    long N = argc > 1 ? atol(argv[1]) : 5000000;
    char buf[8] = "x";
#ifdef HAVE_CALLGRIND
    if (argc > 2 && argv[2][0] == 'c') { /* floor N callgrind: instructions of N crossings */
        for (long i = 0; i < 1000; i++) bench_noop_args((unsigned long long)i, buf, 1);
        CALLGRIND_TOGGLE_COLLECT;
        for (long i = 0; i < N; i++) bench_noop_args((unsigned long long)i, buf, 1);
        CALLGRIND_TOGGLE_COLLECT;
        printf("{\"bench\":\"c_floor_callgrind_run\",\"calls\":%ld}\n", N);
        return 0;
    }
#endif
    for (long i = 0; i < N / 10; i++) bench_noop();
    double t0 = now();
    for (long i = 0; i < N; i++) bench_noop();
    double t1 = now();
    for (long i = 0; i < N; i++) bench_noop_args((unsigned long long)i, buf, 1);
    double t2 = now();
    /* the first call into Go after the calling thread slept: what a woken
     * worker or an idle producer pays before any work (the Go runtime must
     * give the thread a processor again) */
    enum { S = 2000 };
    static double after[S];
    for (int i = 0; i < S; i++) {
        usleep(1000);
        double a = now();
        bench_noop();
        after[i] = (now() - a) * 1e6;
    }
    qsort(after, S, sizeof(double), cmp);
    printf("{\"bench\":\"c_floor\",\"calls\":%ld,\"ns_per_call\":%.1f,\"ns_per_call_args\":%.1f,"
           "\"after_sleep_p50_us\":%.1f,\"after_sleep_p99_us\":%.1f}\n", N,
           (t1 - t0) / (double)N * 1e9, (t2 - t1) / (double)N * 1e9, after[S / 2], after[S * 99 / 100]);
    return 0;
}
