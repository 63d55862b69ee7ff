/* pgworker.c — the C worker process of `make bench`'s "PostgreSQL source" section, driven by
 * tests/bench/pgsource (which starts it, produces the messages and measures). Reports only.
 *
 *   pgworker work CONFIG_JSON THREADS   THREADS threads poll_batch(20) and complete every event
 *                                        with a fixed result, until SIGTERM; then shutdown (no
 *                                        drain: what is still queued is released) and exit 0
 *   pgworker latency CONFIG_JSON N      one thread polls (blocking), and for each of N events
 *                                        prints {"lat_us": now - payload.sent_ns} as soon as
 *                                        poll returns, then completes it; exit 0 after N
 *
 * CONFIG_JSON is tasker_new's config document, with its "source" key. Both modes print the line
 * "ready" once tasker_stats says source_state "connected", and a last line with the stats.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tasker.h"

static const char *RESULT = "{\"success\":true,\"result\":{\"ok\":true,\"total\":42.5},\"metadata\":{\"worker\":\"c\"}}";
static atomic_int stop_flag;

static void on_term(int sig) { (void)sig; atomic_store(&stop_flag, 1); }

static void die(const char *what, int st) {
    char buf[512];
    tasker_last_error(buf, sizeof buf);
    fprintf(stderr, "pgworker: %s: %s (%s)\n", what, tasker_strerror(st), buf);
    exit(1);
}
#define OK(call) do { int st_ = (call); if (st_ != TASKER_OK) die(#call, st_); } while (0)

static void print_stats(tasker_t h) {
    char *s;
    size_t n;
    OK(tasker_stats(h, &s, &n));
    printf("%.*s\n", (int)n, s);
    fflush(stdout);
    tasker_free(s);
}

static void wait_connected(tasker_t h) {
    for (;;) {
        char *s;
        size_t n;
        OK(tasker_stats(h, &s, &n));
        int ok = strstr(s, "\"source_state\":\"connected\"") != NULL;
        tasker_free(s);
        if (ok) break;
        usleep(5000);
    }
    printf("ready\n");
    fflush(stdout);
}

/* complete every event of a poll_batch array */
static void complete_all(tasker_t h, const char *json, uint32_t count, size_t rl) {
    const char *p = json;
    char id[37];
    for (uint32_t i = 0; i < count; i++) {
        p = strstr(p, "\"event_id\":\"");
        if (!p) { fprintf(stderr, "pgworker: no event_id\n"); exit(1); }
        memcpy(id, p + 12, 36);
        id[36] = 0;
        p += 12;
        int st = tasker_complete(h, id, RESULT, rl);
        if (st != TASKER_OK && st != TASKER_ENOENT) die("tasker_complete", st);
    }
}

static void *work_thread(void *arg) {
    tasker_t h = *(tasker_t *)arg;
    size_t rl = strlen(RESULT);
    while (!atomic_load(&stop_flag)) {
        char *out;
        size_t n;
        uint32_t count;
        int st = tasker_poll_batch(h, 20, 100, &out, &n, &count);
        if (st == TASKER_EMPTY) continue;
        if (st == TASKER_CLOSED) break;
        if (st != TASKER_OK) die("tasker_poll_batch", st);
        complete_all(h, out, count, rl);
        tasker_free(out);
    }
    return NULL;
}

static int mode_work(const char *cfg, int threads) {
    tasker_t h;
    OK(tasker_new(cfg, &h));
    wait_connected(h);
    pthread_t t[64];
    if (threads < 1 || threads > 64) threads = 1;
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, work_thread, &h);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    OK(tasker_shutdown(h, 0));
    print_stats(h);
    OK(tasker_destroy(h));
    return 0;
}

static int mode_latency(const char *cfg, long N) {
    tasker_t h;
    OK(tasker_new(cfg, &h));
    wait_connected(h);
    size_t rl = strlen(RESULT);
    for (long i = 0; i < N && !atomic_load(&stop_flag);) {
        char *out;
        size_t n;
        int st = tasker_poll(h, 200, &out, &n);
        if (st == TASKER_EMPTY) continue;
        if (st != TASKER_OK) die("tasker_poll", st);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long now_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        const char *p = strstr(out, "\"sent_ns\":");
        if (!p) { fprintf(stderr, "pgworker: no sent_ns in %.*s\n", (int)n, out); exit(1); }
        long long sent = strtoll(p + 10, NULL, 10);
        printf("{\"lat_us\":%.1f}\n", (double)(now_ns - sent) / 1e3);
        fflush(stdout);
        complete_all(h, out, 1, rl);
        tasker_free(out);
        i++;
    }
    OK(tasker_shutdown(h, 1000));
    print_stats(h);
    OK(tasker_destroy(h));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: pgworker work CONFIG THREADS | latency CONFIG N\n"); return 2; }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (!strcmp(argv[1], "work")) return mode_work(argv[2], atoi(argv[3]));
    if (!strcmp(argv[1], "latency")) return mode_latency(argv[2], atol(argv[3]));
    fprintf(stderr, "pgworker: unknown mode %s\n", argv[1]);
    return 2;
}
