/*
 * Readiness descriptors: tasker_event_fd and tasker_completion_fd (tasker.h,
 * "Readiness descriptors").
 *
 *   readyfd_exact_model      3,000 random steps (dispatch, poll, poll_batch,
 *                            complete, fail, next_completion, cleanup of
 *                            1 ms timeouts) on a channel whose three bounds
 *                            are small, then shutdown: before every
 *                            zero-timeout poll / next_completion the
 *                            descriptor's readability (poll(2), 0 ms) must
 *                            equal "the call returns OK or CLOSED" — and
 *                            after every step it is re-checked twice
 *                            (level-triggered: asking does not change it).
 *   readyfd_bounds           the event descriptor follows rule 3: unreadable
 *                            with events queued at max_concurrent_handlers
 *                            and at completion_buffer_size, readable again
 *                            when complete / next_completion frees room.
 *   readyfd_edge             under epoll with EPOLLET: one edge per
 *                            transition to readable; no new edge while it
 *                            stays readable (work not yet taken); after
 *                            draining to TASKER_EMPTY the next arrival gives
 *                            a new edge (the documented edge rule).
 *   readyfd_wakeup           a thread blocked in poll(2) on each descriptor
 *                            with no timeout wakes on dispatch / on complete,
 *                            and again at shutdown (CLOSED is readable).
 *   readyfd_spurious         two consumers woken by one event: one gets it,
 *                            the other's poll(h, 0) is TASKER_EMPTY and the
 *                            descriptor is unreadable again (a spurious
 *                            wake-up means: wait again).
 *   readyfd_ownership        same descriptor on every call, distinct for the
 *                            two streams, close-on-exec and non-blocking;
 *                            NULL fd is EINVAL, handle 0 / unknown is EBADF,
 *                            *fd is -1 on failure.
 *   readyfd_close_at_destroy no descriptor until asked (counted in
 *                            /proc/self/fd); destroy closes both; a thread
 *                            blocked in poll(2) on the library's descriptor
 *                            wakes at destroy; a dup() stays readable after
 *                            destroy; later calls are EBADF.
 *   readyfd_emfile           with RLIMIT_NOFILE exhausted the call fails
 *                            with TASKER_EINTERNAL and a message naming the
 *                            cause, and the channel keeps working.
 *   readyfd_fork             in a forked child both calls return
 *                            TASKER_EFORKED with *fd = -1 (without entering
 *                            Go); the parent's descriptor keeps following
 *                            its channel.
 */
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "harness.h"

static uint64_t rng = 0x5eed13;

/* readable: poll(2) with a 0 ms timeout. */
static bool readable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        int n = poll(&p, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECKF(n >= 0, "poll(2): %s", strerror(errno));
        CHECKF(!(p.revents & POLLNVAL), "poll(2): fd %d is not open", fd);
        return n == 1 && (p.revents & POLLIN);
    }
}

/* waits up to ms for readability (poll(2)); true if it became readable */
static bool wait_readable(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    double t0 = h_now();
    for (;;) {
        int left = ms < 0 ? -1 : ms - (int)h_ms_since(t0);
        if (ms >= 0 && left < 0) left = 0;
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR) continue;
        CHECKF(n >= 0, "poll(2): %s", strerror(errno));
        return n == 1 && (p.revents & POLLIN);
    }
}

static void fds(tasker_t h, int *efd, int *cfd) {
    CHECK_OK(tasker_event_fd(h, efd));
    CHECK_OK(tasker_completion_fd(h, cfd));
    CHECK(*efd >= 0 && *cfd >= 0);
}

/* ---------------------------------------------------------------------- */

#define MAXP 64

typedef struct {
    char ids[MAXP][37];
    int n;
} pend_t;

static void pend_add(pend_t *p, const char *id) {
    CHECK(p->n < MAXP);
    memcpy(p->ids[p->n++], id, 37);
}

static void pend_take(pend_t *p, int i, char out[37]) {
    memcpy(out, p->ids[i], 37);
    p->ids[i][0] = 0;
    memcpy(p->ids[i], p->ids[--p->n], 37);
}

static void take_events(tasker_t h, int efd, pend_t *p, bool batch, int *closed) {
    bool r = readable(efd);
    if (batch) {
        char *js = NULL;
        size_t n = 0;
        uint32_t count = 0;
        int st = tasker_poll_batch(h, 3, 0, &js, &n, &count);
        CHECKF((st == TASKER_OK || st == TASKER_CLOSED) == r,
               "event fd readable=%d but poll_batch(0) returned %d", r, st);
        if (st == TASKER_OK) {
            const char *cur = NULL;
            jv_t ev;
            uint32_t k = 0;
            jv_t arr = {js, n};
            while (jv_next(arr, &cur, &ev)) {
                char id[37];
                CHECK(jv_uuid(jv_get(ev, "event_id"), id));
                pend_add(p, id);
                k++;
            }
            CHECK(k == count && k >= 1);
        } else if (st == TASKER_CLOSED) {
            (*closed)++;
        } else {
            CHECK_ST(st, TASKER_EMPTY);
        }
        tasker_free(js);
        return;
    }
    char id[37];
    int st = h_poll_id(h, 0, id);
    CHECKF((st == TASKER_OK || st == TASKER_CLOSED) == r, "event fd readable=%d but poll(0) returned %d", r, st);
    if (st == TASKER_OK) pend_add(p, id);
    else if (st == TASKER_CLOSED) (*closed)++;
    else CHECK_ST(st, TASKER_EMPTY);
}

static int take_completion(tasker_t h, int cfd) {
    bool r = readable(cfd);
    char id[37];
    int st = h_next_id(h, 0, id, NULL);
    CHECKF((st == TASKER_OK || st == TASKER_CLOSED) == r,
           "completion fd readable=%d but next_completion(0) returned %d", r, st);
    return st;
}

static void readyfd_exact_model(void) {
    tasker_t h = h_new("{\"dispatch_buffer_size\":8,\"max_concurrent_handlers\":3,"
                       "\"completion_buffer_size\":5,\"cleanup_interval_ms\":0}");
    int efd, cfd;
    fds(h, &efd, &cfd);
    CHECK(!readable(efd) && !readable(cfd));
    pend_t p = {.n = 0};
    int closed = 0, completions = 0, dispatched = 0, transitions = 0;
    bool last_e = false;
    for (int step = 0; step < 3000; step++) {
        int op = (int)(h_rand(&rng) % 100);
        if (op < 30) {
            char id[37];
            const char *extra = (h_rand(&rng) % 10 == 0) ? "\"timeout_ms\":1" : NULL;
            int st = h_dispatch(h, &rng, extra, 0, id);
            CHECK(st == TASKER_OK || st == TASKER_EFULL);
            if (st == TASKER_OK) dispatched++;
        } else if (op < 50) {
            take_events(h, efd, &p, op >= 45, &closed);
        } else if (op < 68) {
            if (p.n > 0) {
                char id[37];
                pend_take(&p, (int)(h_rand(&rng) % (uint64_t)p.n), id);
                int st = h_complete(h, id, (op & 1) ? RES_OK : RES_FAIL);
                CHECK(st == TASKER_OK || st == TASKER_ENOENT); /* ENOENT: it timed out */
            }
        } else if (op < 90) {
            if (take_completion(h, cfd) == TASKER_OK) completions++;
        } else if (op < 95) {
            h_sleep_ms(1.5);
            uint32_t n = 0;
            CHECK_OK(tasker_cleanup_timeouts(h, &n));
        } else {
            /* check only */
        }
        bool e = readable(efd), c = readable(cfd);
        CHECK(readable(efd) == e && readable(cfd) == c); /* asking does not change it */
        if (e != last_e) transitions++;
        last_e = e;
    }
    /* shutdown: both become readable (CLOSED) once everything ended */
    CHECK_OK(tasker_shutdown(h, 0));
    CHECK(readable(efd));
    int st;
    while ((st = take_completion(h, cfd)) == TASKER_OK) completions++;
    CHECK_ST(st, TASKER_CLOSED);
    CHECK(readable(cfd) && readable(efd));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_CLOSED);
    CHECKF(completions == dispatched, "%d completions for %d dispatched events", completions, dispatched);
    CHECKF(transitions > 100, "only %d readiness transitions: the model did not exercise the descriptor",
           transitions);
    H_NOTE("%d events, %d event-fd transitions, %d CLOSED polls during the run", dispatched, transitions, closed);
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------------- */

static void readyfd_bounds(void) {
    tasker_t h = h_new("{\"max_concurrent_handlers\":2,\"completion_buffer_size\":3,\"cleanup_interval_ms\":0}");
    int efd, cfd;
    fds(h, &efd, &cfd);
    char a[37], b[37], c[37], x[37];
    for (int i = 0; i < 5; i++) h_dispatch_ok(h, &rng, NULL);
    CHECK(readable(efd));
    CHECK_OK(h_poll_id(h, 0, a));
    CHECK(readable(efd));
    CHECK_OK(h_poll_id(h, 0, b));
    /* 3 queued, 2 running = max_concurrent_handlers: poll would be EMPTY */
    CHECK(!readable(efd));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY);
    CHECK(!readable(cfd));
    CHECK_OK(h_complete(h, a, RES_OK));
    CHECK(readable(cfd));
    /* running 1, undelivered 1: room for one more */
    CHECK(readable(efd));
    CHECK_OK(h_poll_id(h, 0, c));
    CHECK(!readable(efd));
    CHECK_OK(h_complete(h, b, RES_OK));
    CHECK_OK(h_complete(h, c, RES_OK));
    /* running 0, undelivered 3 = completion_buffer_size: no room */
    CHECK(!readable(efd));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY);
    CHECK(readable(cfd));
    CHECK_OK(h_next_id(h, 0, x, NULL));
    CHECK(readable(efd)); /* taking a completion freed room */
    CHECK(readable(cfd));
    CHECK_OK(h_next_id(h, 0, x, NULL));
    CHECK_OK(h_next_id(h, 0, x, NULL));
    CHECK(!readable(cfd));
    CHECK_ST(h_next_id(h, 0, x, NULL), TASKER_EMPTY);
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------------- */

static int epoll_edges(int ep) {
    struct epoll_event evs[4];
    for (;;) {
        int n = epoll_wait(ep, evs, 4, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECKF(n >= 0, "epoll_wait: %s", strerror(errno));
        return n;
    }
}

static void readyfd_edge(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    int efd, cfd;
    fds(h, &efd, &cfd);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ee = {.events = EPOLLIN | EPOLLET, .data.fd = efd};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ee) == 0);
    CHECK(epoll_edges(ep) == 0);
    h_dispatch_ok(h, &rng, NULL);
    CHECK(epoll_edges(ep) == 1);
    CHECK(epoll_edges(ep) == 0); /* edge consumed */
    h_dispatch_ok(h, &rng, NULL);
    CHECK(epoll_edges(ep) == 0); /* still readable: no new edge until drained */
    char id[37];
    int taken = 0;
    while (h_poll_id(h, 0, id) == TASKER_OK) {
        taken++;
        CHECK_OK(h_complete(h, id, RES_OK));
    }
    CHECK(taken == 2);
    CHECK(!readable(efd));
    h_dispatch_ok(h, &rng, NULL);
    CHECK(epoll_edges(ep) == 1); /* drained to EMPTY: the next arrival is a new edge */
    /* level-triggered registration of the same descriptor reports it every time */
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event el = {.events = EPOLLIN, .data.fd = efd};
    CHECK(epoll_ctl(ep2, EPOLL_CTL_ADD, efd, &el) == 0);
    CHECK(epoll_edges(ep2) == 1 && epoll_edges(ep2) == 1);
    CHECK_OK(tasker_shutdown(h, 0)); /* the queued event is cancelled: CLOSED is readable */
    CHECK(readable(efd));
    close(ep2);
    close(ep);
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------------- */

typedef struct {
    int fd;
    atomic_int woke;
} waiter_t;

static void *waiter(void *arg) {
    waiter_t *w = arg;
    CHECK(wait_readable(w->fd, -1));
    atomic_fetch_add(&w->woke, 1);
    return NULL;
}

static void await_count(atomic_int *v, int want) {
    double t0 = h_now();
    while (atomic_load(v) < want) {
        CHECKF(h_ms_since(t0) < 10000, "waiter did not wake within 10 s (have %d, want %d)", atomic_load(v), want);
        h_sleep_ms(0.2);
    }
}

static void readyfd_wakeup(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    int efd, cfd;
    fds(h, &efd, &cfd);
    waiter_t we = {.fd = efd}, wc = {.fd = cfd};
    atomic_init(&we.woke, 0);
    atomic_init(&wc.woke, 0);
    pthread_t te, tc;
    h_thread(&te, waiter, &we);
    h_thread(&tc, waiter, &wc);
    h_sleep_ms(50);
    CHECK(atomic_load(&we.woke) == 0 && atomic_load(&wc.woke) == 0);
    double t0 = h_now();
    h_dispatch_ok(h, &rng, NULL);
    await_count(&we.woke, 1);
    double ms_e = h_ms_since(t0);
    h_join(te);
    CHECK(atomic_load(&wc.woke) == 0);
    char id[37];
    CHECK_OK(h_poll_id(h, 0, id));
    t0 = h_now();
    CHECK_OK(h_complete(h, id, RES_OK));
    await_count(&wc.woke, 1);
    double ms_c = h_ms_since(t0);
    h_join(tc);
    CHECK_OK(h_next_id(h, 0, id, NULL));
    CHECK(!readable(efd) && !readable(cfd));
    /* a shutdown wakes both */
    waiter_t we2 = {.fd = efd}, wc2 = {.fd = cfd};
    atomic_init(&we2.woke, 0);
    atomic_init(&wc2.woke, 0);
    h_thread(&te, waiter, &we2);
    h_thread(&tc, waiter, &wc2);
    h_sleep_ms(20);
    CHECK_OK(tasker_shutdown(h, 0));
    await_count(&we2.woke, 1);
    await_count(&wc2.woke, 1);
    h_join(te);
    h_join(tc);
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_CLOSED);
    CHECK_ST(h_next_id(h, 0, id, NULL), TASKER_CLOSED);
    H_NOTE("wake-up after dispatch %.3f ms, after complete %.3f ms", ms_e, ms_c);
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------------- */

typedef struct {
    tasker_t h;
    int fd;
    int st;
    atomic_int *ready;
} consumer_t;

static void *consumer(void *arg) {
    consumer_t *c = arg;
    atomic_fetch_add(c->ready, 1);
    CHECK(wait_readable(c->fd, 10000));
    /* both consumers see readability before either takes */
    atomic_fetch_add(c->ready, 1);
    while (atomic_load(c->ready) < 4) h_sleep_ms(0.1);
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    c->st = h_poll_id(c->h, 0, NULL);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void readyfd_spurious(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    int efd, cfd;
    fds(h, &efd, &cfd);
    atomic_int ready;
    atomic_init(&ready, 0);
    consumer_t a = {h, efd, 99, &ready}, b = {h, efd, 99, &ready};
    pthread_t ta, tb;
    h_thread(&ta, consumer, &a);
    h_thread(&tb, consumer, &b);
    while (atomic_load(&ready) < 2) h_sleep_ms(0.1);
    h_dispatch_ok(h, &rng, NULL);
    h_join(ta);
    h_join(tb);
    CHECKF((a.st == TASKER_OK && b.st == TASKER_EMPTY) || (a.st == TASKER_EMPTY && b.st == TASKER_OK),
           "one consumer takes the event, the other sees EMPTY (got %d and %d)", a.st, b.st);
    CHECK(!readable(efd)); /* the loser waits again: nothing left */
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------------- */

static void readyfd_ownership(void) {
    tasker_t h = h_new(NULL);
    int e1, c1, e2 = -5, c2 = -5;
    fds(h, &e1, &c1);
    CHECK_OK(tasker_event_fd(h, &e2));
    CHECK_OK(tasker_completion_fd(h, &c2));
    CHECK(e1 == e2 && c1 == c2 && e1 != c1);
    for (int i = 0; i < 2; i++) {
        int fd = i ? c1 : e1;
        int fdfl = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
        CHECK(fdfl >= 0 && (fdfl & FD_CLOEXEC));
        CHECK(fl >= 0 && (fl & O_NONBLOCK));
    }
    EXPECT_FAIL(tasker_event_fd(h, NULL), TASKER_EINVAL);
    CHECK_MSG_HAS("fd");
    EXPECT_FAIL(tasker_completion_fd(h, NULL), TASKER_EINVAL);
    int fd = 7;
    EXPECT_FAIL(tasker_event_fd(0, &fd), TASKER_EBADF);
    CHECK(fd == -1);
    fd = 7;
    EXPECT_FAIL(tasker_completion_fd(h + 1000, &fd), TASKER_EBADF);
    CHECK(fd == -1);
    /* another channel has its own descriptors */
    tasker_t h2 = h_new(NULL);
    int e3, c3;
    fds(h2, &e3, &c3);
    CHECK(e3 != e1 && e3 != c1 && c3 != e1 && c3 != c1);
    h_dispatch_ok(h2, &rng, NULL);
    CHECK(readable(e3) && !readable(e1));
    CHECK_OK(tasker_destroy(h2));
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------------- */

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    while (readdir(d) != NULL) n++;
    closedir(d);
    return n;
}

static void *blocked_on(void *arg) {
    waiter_t *w = arg;
    /* poll(2) with no timeout on the library's own descriptor */
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int n;
    do n = poll(&p, 1, -1);
    while (n < 0 && errno == EINTR);
    CHECK(n == 1);
    atomic_fetch_add(&w->woke, 1);
    return NULL;
}

static void readyfd_close_at_destroy(void) {
    /* warm up: the Go runtime opens its own descriptors (netpoller) on first use */
    tasker_t w0 = h_new(NULL);
    h_dispatch_ok(w0, &rng, NULL);
    CHECK_OK(h_poll_id(w0, 5, NULL));
    CHECK_OK(tasker_destroy(w0));
    int before = open_fds();
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    CHECKF(open_fds() == before, "tasker_new opened a descriptor (%d -> %d): they must be lazy", before,
           open_fds());
    int efd, cfd;
    fds(h, &efd, &cfd);
    CHECK(open_fds() == before + 2);
    h_dispatch_ok(h, &rng, NULL);
    char id[37];
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK(!readable(efd) && !readable(cfd));
    int dup_c = dup(cfd);
    CHECK(dup_c >= 0);
    waiter_t w = {.fd = efd};
    atomic_init(&w.woke, 0);
    pthread_t t;
    h_thread(&t, blocked_on, &w);
    h_sleep_ms(30);
    CHECK(atomic_load(&w.woke) == 0);
    CHECK_OK(tasker_destroy(h));
    await_count(&w.woke, 1); /* destroy makes it readable before closing it */
    h_join(t);
    CHECKF(fcntl(efd, F_GETFD) == -1 && errno == EBADF, "destroy did not close the event descriptor");
    CHECKF(fcntl(cfd, F_GETFD) == -1 && errno == EBADF, "destroy did not close the completion descriptor");
    CHECK(open_fds() == before + 1); /* only our dup is left */
    CHECK(readable(dup_c));           /* and it stays readable */
    close(dup_c);
    CHECK(open_fds() == before);
    int fd = 3;
    EXPECT_FAIL(tasker_event_fd(h, &fd), TASKER_EBADF);
    CHECK(fd == -1);
    EXPECT_FAIL(tasker_completion_fd(h, &fd), TASKER_EBADF);
    CHECK(fd == -1);
    /* a channel destroyed without ever asking opens and closes nothing */
    tasker_t h2 = h_new(NULL);
    CHECK_OK(tasker_destroy(h2));
    CHECK(open_fds() == before);
}

/* ---------------------------------------------------------------------- */

static void readyfd_emfile(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    /* fill every descriptor below a low limit */
    struct rlimit lim = {.rlim_cur = 64, .rlim_max = old.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    int filler[64], nf = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        CHECK(nf < 64);
        filler[nf++] = fd;
    }
    int fd = 5;
    EXPECT_FAIL(tasker_event_fd(h, &fd), TASKER_EINTERNAL);
    CHECK(fd == -1);
    CHECK_MSG_HAS("too many open files");
    for (int i = 0; i < nf; i++) close(filler[i]);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    /* the channel works, and the next call gets its descriptor */
    int efd, cfd;
    fds(h, &efd, &cfd);
    h_dispatch_ok(h, &rng, NULL);
    CHECK(readable(efd));
    CHECK_OK(h_poll_id(h, 0, NULL));
    CHECK(!readable(efd));
    CHECK_OK(tasker_destroy(h));
}

/* ---------------------------------------------------------------------- */

static void readyfd_fork(void) {
    tasker_t h = h_new("{\"cleanup_interval_ms\":0}");
    int efd, cfd;
    fds(h, &efd, &cfd);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        int fd = 9;
        int st = tasker_event_fd(h, &fd);
        if (st != TASKER_EFORKED || fd != -1) {
            fprintf(stderr, "child: tasker_event_fd returned %d, fd %d\n", st, fd);
            _exit(1);
        }
        fd = 9;
        st = tasker_completion_fd(h, &fd);
        if (st != TASKER_EFORKED || fd != -1) {
            fprintf(stderr, "child: tasker_completion_fd returned %d, fd %d\n", st, fd);
            _exit(1);
        }
        char m[4200];
        if (tasker_last_error(m, sizeof m) == 0 || strstr(m, "fork") == NULL) {
            fprintf(stderr, "child: last error does not explain fork: %s\n", m);
            _exit(1);
        }
        /* closing the child's copies is harmless to the parent */
        close(efd);
        close(cfd);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %d)", status);
    CHECK(!readable(efd));
    h_dispatch_ok(h, &rng, NULL);
    CHECK(readable(efd));
    char id[37];
    CHECK_OK(h_poll_id(h, 0, id));
    CHECK(!readable(efd));
    CHECK_OK(h_complete(h, id, RES_OK));
    CHECK(readable(cfd));
    CHECK_OK(tasker_destroy(h));
}

static const scenario_t scenarios[] = {
    {"readyfd_exact_model", readyfd_exact_model, 60},
    {"readyfd_bounds", readyfd_bounds, 20},
    {"readyfd_edge", readyfd_edge, 20},
    {"readyfd_wakeup", readyfd_wakeup, 30},
    {"readyfd_spurious", readyfd_spurious, 30},
    {"readyfd_ownership", readyfd_ownership, 20},
    {"readyfd_close_at_destroy", readyfd_close_at_destroy, 30},
    {"readyfd_emfile", readyfd_emfile, 20},
    {"readyfd_fork", readyfd_fork, 30},
};

HARNESS_MAIN(scenarios)
