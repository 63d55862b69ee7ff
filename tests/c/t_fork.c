/*
 * Fork (rule 11).
 *
 *   fork_child_eforked  after the library is loaded and a channel used (and
 *                       while another parent thread is blocked inside Go),
 *                       fork(): in the child every function that would enter
 *                       Go returns EFORKED at once (also with handle 0, NULL
 *                       pointers and a fresh tasker_new), zeroes its
 *                       out-pointers, and tasker_last_error explains;
 *                       abi_version/version/strerror/last_error/free work (a
 *                       buffer the parent got before fork is freed in the
 *                       child). The child exits 0 within a generous timeout;
 *                       the parent keeps working. A second dlopen in the
 *                       child gives the same copy, whose functions still
 *                       return EFORKED.
 *   fork_before_channel the library is loaded (linked) but no channel was
 *                       ever made: the Go runtime started at load, so the
 *                       child's tasker_new is EFORKED; the parent works.
 *   fork_raw_Fork       a child made with glibc's _Fork() (POSIX.1-2024's
 *                       async-signal-safe fork, which runs no atfork
 *                       handlers): every function must still return EFORKED
 *                       without entering Go (the shim's getpid() check is
 *                       meant to catch such children).
 */
#include <dlfcn.h>
#include <sys/wait.h>

#include "harness.h"

static uint64_t rng = 0xf0f0;

typedef struct {
    tasker_t h;
    int st;
} blocked_t;

static void *blocked_next(void *arg) {
    blocked_t *b = arg;
    char *p;
    size_t n;
    b->st = tasker_next_completion(b->h, -1, &p, &n);
    tasker_free(p);
    return NULL;
}

#define CHILD_CHECK(cond)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            char le_[4200];                                                                  \
            tasker_last_error(le_, sizeof le_);                                              \
            fprintf(stderr, "child: CHECK(%s) failed at %s:%d; last error \"%s\"\n", #cond,  \
                    __FILE__, __LINE__, le_);                                                \
            fflush(stderr);                                                                  \
            _exit(1);                                                                        \
        }                                                                                    \
    } while (0)

/* the call returned EFORKED and set a last error about fork */
#define CHILD_EFORKED(call)                                                                  \
    do {                                                                                     \
        tasker_last_error(NULL, 0);                                                          \
        int st_ = (call);                                                                    \
        if (st_ != TASKER_EFORKED) {                                                         \
            fprintf(stderr, "child: %s returned %d (%s), want TASKER_EFORKED\n", #call, st_, \
                    tasker_strerror(st_));                                                   \
            _exit(1);                                                                        \
        }                                                                                    \
        char m_[4200];                                                                       \
        CHILD_CHECK(tasker_last_error(m_, sizeof m_) > 0 && strstr(m_, "fork") != NULL);     \
        calls++;                                                                             \
    } while (0)

static int child(tasker_t h, const char *event_id, char *parent_buf) {
    alarm(20); /* alarms are not inherited */
    int calls = 0;
    double t0 = h_now();
    char ev[EV_MAX], id[37];
    int n = ev_simple(ev, sizeof ev, &rng, NULL);
    char *p;
    size_t len;
    uint32_t cnt, exp;
    tasker_t nh;
    for (int rep = 0; rep < 100; rep++) {
        nh = 77;
        CHILD_EFORKED(tasker_new(NULL, &nh));
        CHILD_CHECK(nh == 0);
        CHILD_EFORKED(tasker_new("{\"dispatch_buffer_size\":5}", &nh));
        CHILD_EFORKED(tasker_new(NULL, NULL));
        memset(id, 'X', sizeof id);
        CHILD_EFORKED(tasker_dispatch(h, ev, (size_t)n, -1, id));
        CHILD_CHECK(id[0] == 0);
        CHILD_EFORKED(tasker_dispatch(0, NULL, 0, 0, NULL));
        p = (char *)1, len = 1;
        CHILD_EFORKED(tasker_poll(h, -1, &p, &len));
        CHILD_CHECK(p == NULL && len == 0);
        CHILD_EFORKED(tasker_poll(h, 0, NULL, NULL));
        p = (char *)1, len = 1, cnt = 1;
        CHILD_EFORKED(tasker_poll_batch(h, 10, -1, &p, &len, &cnt));
        CHILD_CHECK(p == NULL && len == 0 && cnt == 0);
        CHILD_EFORKED(tasker_complete(h, event_id, RES_OK, strlen(RES_OK)));
        CHILD_EFORKED(tasker_complete(0, NULL, NULL, 0));
        CHILD_EFORKED(tasker_checkpoint(h, event_id, "{\"cursor\":1,\"items_processed\":1}", 32));
        CHILD_EFORKED(tasker_checkpoint(0, NULL, NULL, 0));
        exp = 5;
        CHILD_EFORKED(tasker_cleanup_timeouts(h, &exp));
        CHILD_CHECK(exp == 0);
        p = (char *)1, len = 1;
        CHILD_EFORKED(tasker_next_completion(h, -1, &p, &len));
        CHILD_CHECK(p == NULL && len == 0);
        {
            char ibuf[64] = "x";
            len = 1;
            CHILD_EFORKED(tasker_poll_into(h, -1, ibuf, sizeof ibuf, &len));
            CHILD_CHECK(len == 0 && ibuf[0] == 0);
            len = 1;
            CHILD_EFORKED(tasker_next_completion_into(h, -1, ibuf, sizeof ibuf, &len));
            CHILD_CHECK(len == 0);
            CHILD_EFORKED(tasker_poll_into(h, 0, NULL, 0, NULL));
        }
        CHILD_EFORKED(tasker_shutdown(h, -1));
        p = (char *)1, len = 1;
        CHILD_EFORKED(tasker_stats(h, &p, &len));
        CHILD_CHECK(p == NULL && len == 0);
        CHILD_EFORKED(tasker_stats(0, NULL, NULL));
        CHILD_EFORKED(tasker_destroy(h));
        CHILD_EFORKED(tasker_destroy(0));
    }
    double el = h_ms_since(t0);
    /* a second dlopen returns the same broken copy */
    void *dl = dlopen("libtasker.so", RTLD_NOW | RTLD_NOLOAD);
    CHILD_CHECK(dl != NULL);
    int (*stats_fn)(tasker_t, char **, size_t *) = (int (*)(tasker_t, char **, size_t *))dlsym(dl, "tasker_stats");
    CHILD_CHECK(stats_fn != NULL);
    CHILD_EFORKED(stats_fn(h, &p, &len));
    dlclose(dl);
    /* the functions that work anywhere */
    CHILD_CHECK(tasker_abi_version() == TASKER_ABI_VERSION);
    CHILD_CHECK(tasker_abi_minor() == TASKER_ABI_MINOR);
    CHILD_CHECK(tasker_version() != NULL && strcmp(tasker_version(), TASKER_VERSION_STRING) == 0);
    CHILD_CHECK(strstr(tasker_strerror(TASKER_EFORKED), "TASKER_EFORKED") != NULL);
    char msg[4200];
    size_t L = tasker_last_error(NULL, 0);
    CHILD_CHECK(L > 0 && tasker_last_error(msg, sizeof msg) == L && strlen(msg) == L);
    char small[8];
    CHILD_CHECK(tasker_last_error(small, sizeof small) == L && strlen(small) == 7);
    tasker_free(parent_buf); /* a buffer the library returned before fork */
    tasker_free(NULL);
    printf("NOTE: child: %d calls returned EFORKED in %.2f ms in all (%.2f us each); last error: \"%.60s...\"\n", calls,
           el, el * 1000.0 / calls, msg);
    fflush(stdout);
    exit(0);
}

static void fork_child_eforked(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":10}");
    char A[37], B[37];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, A));
    char *statsbuf;
    size_t sl;
    CHECK_OK(tasker_stats(h, &statsbuf, &sl));
    /* a second channel with a thread blocked inside Go during the fork */
    tasker_t h2 = h_new(NULL);
    blocked_t b = {.h = h2};
    pthread_t t;
    h_thread(&t, blocked_next, &b);
    h_sleep_ms(50);
    fflush(stdout);
    fflush(stderr);
    double t0 = h_now();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child(h, A, statsbuf);
    tasker_free(statsbuf);
    /* the parent waits for the child with a generous bound */
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        CHECK(r >= 0);
        if (r == pid) break;
        if (h_ms_since(t0) > 20000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECKF(0, "the forked child did not exit within 20 s (hung in the library?)");
        }
        h_sleep_ms(5);
    }
    double child_ms = h_ms_since(t0);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %s %d", WIFEXITED(status) ? "exit status" : "signal",
           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    /* the parent keeps working */
    CHECK_OK(h_complete(h, A, RES_OK));
    CHECK_OK(h_poll_id(h, 0, B));
    CHECK_OK(h_complete(h, B, RES_FAIL));
    char id[37], st[16];
    CHECK_OK(h_next_id(h, 1000, id, st));
    CHECK(strcmp(id, A) == 0 && strcmp(st, "completed") == 0);
    CHECK_OK(h_next_id(h, 1000, id, st));
    CHECK(strcmp(id, B) == 0 && strcmp(st, "failed") == 0);
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    tasker_t h3 = h_new(NULL);
    CHECK_OK(tasker_destroy(h3));
    CHECK_OK(tasker_destroy(h2));
    h_join(t);
    CHECKF(b.st == TASKER_CLOSED || b.st == TASKER_EBADF, "next_completion(-1) woken by destroy returned %d", b.st);
    CHECK_OK(tasker_destroy(h));
    H_NOTE("child exited 0 %.1f ms after fork()", child_ms);
}

/* waits for pid at most limit_ms; returns the wait status or fails */
static int reap(pid_t pid, double limit_ms) {
    int status = 0;
    double t0 = h_now();
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        CHECK(r >= 0);
        if (r == pid) return status;
        if (h_ms_since(t0) > limit_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECKF(0, "the forked child did not exit within %.0f ms (hung in the library?)", limit_ms);
        }
        h_sleep_ms(5);
    }
}

static void fork_before_channel(void) {
    /* nothing called yet: the library is only loaded */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        tasker_t h = 77;
        int st = tasker_new(NULL, &h);
        char m[4200];
        tasker_last_error(m, sizeof m);
        if (st != TASKER_EFORKED || h != 0 || !strstr(m, "fork")) {
            fprintf(stderr, "child: tasker_new returned %d (%s), handle %" PRIu64 ", last error \"%s\"\n", st,
                    tasker_strerror(st), h, m);
            _exit(1);
        }
        _exit(0);
    }
    int status = reap(pid, 20000);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status 0x%x)", status);
    tasker_t h = h_new(NULL);
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, NULL));
    CHECK_OK(tasker_destroy(h));
}

static void fork_raw_Fork(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    char A[37];
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_OK(h_poll_id(h, 0, A));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = _Fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(5); /* a hang in the child ends it with exit status 3 */
        char ev[EV_MAX];
        int n = ev_simple(ev, sizeof ev, &rng, NULL);
        char *p;
        size_t len;
        uint32_t cnt, exp;
        struct {
            const char *what;
            int st;
        } r[16];
        int k = 0;
        /* the first call of each kind, in an order that puts the calls which
         * would enter Go before tasker_new (whose getpid() check would mark
         * the process as forked for the others) */
#define RAW_CALL(label, call)                                                                \
    do {                                                                                     \
        fprintf(stderr, "_Fork child: calling %s ... ", label);                              \
        r[k].what = label;                                                                   \
        r[k].st = (call);                                                                    \
        fprintf(stderr, "returned %d\n", r[k].st);                                          \
        k++;                                                                                 \
    } while (0)
        RAW_CALL("tasker_poll(h, 0)", tasker_poll(h, 0, &p, &len));
        RAW_CALL("tasker_stats(h)", tasker_stats(h, &p, &len));
        RAW_CALL("tasker_dispatch(h)", tasker_dispatch(h, ev, (size_t)n, 0, NULL));
        RAW_CALL("tasker_checkpoint(h, polled id)", tasker_checkpoint(h, A, "{\"cursor\":1,\"items_processed\":1}", 32));
        RAW_CALL("tasker_complete(h, polled id)", h_complete(h, A, RES_OK));
        RAW_CALL("tasker_poll_batch(h, 0)", tasker_poll_batch(h, 4, 0, &p, &len, &cnt));
        RAW_CALL("tasker_cleanup_timeouts(h)", tasker_cleanup_timeouts(h, &exp));
        RAW_CALL("tasker_next_completion(h, 0)", tasker_next_completion(h, 0, &p, &len));
        {
            char ibuf[64];
            RAW_CALL("tasker_poll_into(h, 0)", tasker_poll_into(h, 0, ibuf, sizeof ibuf, &len));
            RAW_CALL("tasker_next_completion_into(h, 0)", tasker_next_completion_into(h, 0, ibuf, sizeof ibuf, &len));
        }
        RAW_CALL("tasker_shutdown(h, 0)", tasker_shutdown(h, 0));
        RAW_CALL("tasker_destroy(h)", tasker_destroy(h));
        tasker_t h2 = 0;
        RAW_CALL("tasker_new", tasker_new(NULL, &h2));
        int bad = 0;
        for (int i = 0; i < k; i++) {
            if (r[i].st != TASKER_EFORKED) {
                fprintf(stderr, "_Fork child: %s returned %d (%s), want TASKER_EFORKED\n", r[i].what, r[i].st,
                        tasker_strerror(r[i].st));
                bad++;
            }
        }
        fflush(stderr);
        _exit(bad ? 1 : 0);
    }
    int status = reap(pid, 20000);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "in a child made by _Fork() some functions entered Go instead of returning TASKER_EFORKED (child %s %d)",
           WIFEXITED(status) ? "exit status" : "killed by signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    CHECK_OK(h_complete(h, A, RES_OK)); /* the parent is unaffected */
    CHECK_OK(tasker_destroy(h));
}

static const scenario_t SCENARIOS[] = {
    {"fork_child_eforked", fork_child_eforked, 60},
    {"fork_before_channel", fork_before_channel, 60},
    {"fork_raw_Fork", fork_raw_Fork, 60},
};
HARNESS_MAIN(SCENARIOS)
