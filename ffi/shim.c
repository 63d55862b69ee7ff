/* The public tasker_* symbols. Each one that would enter Go first checks that
 * this is the process that loaded the library (rule 11), then forwards to the
 * Go export of the same name with a "tgo_" prefix. Functions that never enter
 * Go (version, strerror, last_error, free) live entirely here. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/mman.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../include/tasker.h"
#include "shim.h"
#include "_cgo_export.h"

/* ---- fork detection and per-thread last error ---- */

static pid_t loaded_pid;
static volatile int forked;

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
/* A page the kernel zeroes in every child, however it was made (fork,
 * _Fork, clone without CLONE_VM): byte 0 is 1 only in the process that
 * loaded the library. Reading it costs nothing, where getpid() is a system
 * call on every call. NULL if the kernel lacks MADV_WIPEONFORK (< 4.14):
 * then getpid() is compared instead. */
static volatile unsigned char *alive;

/* The last error lives in a malloc'd buffer reached through a pthread key,
 * freed when its thread exits. Not in a __thread array: the library is
 * linked with static TLS (the Go runtime's model), and glibc keeps only a
 * few hundred bytes of static TLS for libraries loaded with dlopen, which is
 * how Python and Ruby load it. */
#define ERRBUF 4096
struct errbuf {
    size_t len;
    char msg[ERRBUF];
};
static pthread_key_t err_key;
static int err_key_ok;

static void on_fork_child(void) { forked = 1; }

__attribute__((constructor)) static void tshim_init(void) {
    loaded_pid = getpid();
    pthread_atfork(NULL, NULL, on_fork_child);
    long pagesz = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        if (madvise(p, (size_t)pagesz, MADV_WIPEONFORK) == 0) {
            ((unsigned char *)p)[0] = 1;
            alive = p;
        } else {
            munmap(p, (size_t)pagesz);
        }
    }
    err_key_ok = pthread_key_create(&err_key, free) == 0;
}

static struct errbuf *errbuf_get(int create) {
    if (!err_key_ok) return NULL;
    struct errbuf *e = pthread_getspecific(err_key);
    if (e == NULL && create) {
        e = malloc(sizeof *e);
        if (e == NULL) return NULL;
        e->len = 0;
        e->msg[0] = '\0';
        if (pthread_setspecific(err_key, e) != 0) {
            free(e);
            return NULL;
        }
    }
    return e;
}

void tshim_set_error(const char *msg, size_t len) {
    struct errbuf *e = errbuf_get(1);
    if (e == NULL) return; /* out of memory: the status still tells what failed */
    if (len >= ERRBUF) {
        len = ERRBUF - 1;
        /* do not cut a UTF-8 sequence in half */
        while (len > 0 && ((unsigned char)msg[len] & 0xC0) == 0x80) len--;
    }
    memcpy(e->msg, msg, len);
    e->msg[len] = '\0';
    e->len = len;
}

static int forked_error(void) {
    static const char msg[] =
        "libtasker was loaded before this process forked; the Go runtime does not survive fork(), "
        "so no channel can be used in the child. Load the library only after fork (bindings do this "
        "when the first channel is made), or start workers with spawn/exec.";
    tshim_set_error(msg, sizeof msg - 1);
    return TASKER_EFORKED;
}

/* in_child: the atfork flag catches fork(); the wiped page (or, without
 * it, a getpid() comparison) catches children made without atfork handlers:
 * _Fork(), a raw clone or syscall(SYS_fork). Rule 11 has no exception. */
static inline int in_child(void) {
    if (forked) return 1;
    if (alive != NULL ? alive[0] != 1 : getpid() != loaded_pid) {
        forked = 1;
        return 1;
    }
    return 0;
}

/* Keeping the Go scheduler calm. A thread of the caller's that calls into
 * Go holds a Go processor (P) while it is back in C, as if in a system
 * call, and that P's scheduling tick only advances when a goroutine is
 * scheduled on it, which a call from C never does. After 10 ms on one tick
 * the Go runtime's monitor (sysmon) treats the P as stuck: while the thread
 * keeps coming back every few milliseconds, sysmon takes the P away each
 * time it finds the thread in C (waking another thread to run it) and never
 * slows down. Measured with an idle worker fed one event per millisecond:
 * 3,127 thread migrations per 2,000 events and dispatch -> poll p50 89 us,
 * against 514 and 10.6 us once each thread yields once in a while. So a
 * thread that has been calling in steadily (its previous call less than
 * YIELD_NS ago) yields (runtime.Gosched, which schedules its goroutine
 * again and so advances the tick) when it last did so more than YIELD_NS
 * ago, by the coarse clock (a few ns; its granularity, up to 4 ms, keeps
 * the interval under the 10 ms). A yield is not cheap (the goroutine is
 * locked to this thread, so the P goes to another thread and back: several
 * context switches, ~0.5 ms of CPU on this project's VM), and a thread
 * that comes back after a longer pause needs none: sysmon took its P once,
 * after 10 ms, and there is no churn to stop (an idle worker whose waits
 * time out every 100 ms used 0.75% CPU without yields and 1.9% with a
 * yield on every return). */
#define YIELD_NS 4000000LL
/* A yield that falls due is owed, not made at once: the thread makes it
 * just before it next goes to sleep in a waiting call (parked_take), when
 * nobody waits for it, instead of at the start of a call somebody may be
 * waiting for (a dispatch whose worker sleeps, a poll whose event is
 * there). Only if no wait comes within YIELD_GRACE_NS more does the start
 * of a call make it. Measured on the latency benchmarks: see
 * tests/bench/NOTES.md, "What changed" 11. */
#define YIELD_GRACE_NS 2000000LL
/* initial-exec: 20 bytes of the static TLS the Go runtime makes this
 * library use anyway (FLAGS STATIC_TLS), read without a __tls_get_addr call */
static __thread int64_t next_yield_ns __attribute__((tls_model("initial-exec")));
static __thread int64_t last_enter_ns __attribute__((tls_model("initial-exec")));
static __thread int yield_owed __attribute__((tls_model("initial-exec")));

static inline int64_t coarse_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Makes the yield now (the caller holds no lock and is about to wait, or
 * the yield is overdue). */
static void yield_now(int64_t now) {
    yield_owed = 0;
    next_yield_ns = now + YIELD_NS;
    tgo_yield();
}

static inline void maybe_yield(void) {
    int64_t now = coarse_ns();
    int64_t last = last_enter_ns;
    last_enter_ns = now;
    if (now - last > YIELD_NS) { /* first call, or back after a pause: start counting again */
        next_yield_ns = now + YIELD_NS;
        yield_owed = 0;
        return;
    }
    if (now < next_yield_ns) return;
    if (now < next_yield_ns + YIELD_GRACE_NS) {
        yield_owed = 1; /* made before this thread's next sleep, if one comes soon */
        return;
    }
    yield_now(now);
}

/* Every function that enters Go starts with ENTER_GO: the fork check, then
 * maybe_yield. */
#define ENTER_GO() do { if (in_child()) return forked_error(); maybe_yield(); } while (0)

/* ---- functions that never enter Go ---- */

uint32_t tasker_abi_version(void) { return TASKER_ABI_VERSION; }

uint32_t tasker_abi_minor(void) { return TASKER_ABI_MINOR; }

const char *tasker_version(void) { return TASKER_VERSION_STRING; }

const char *tasker_strerror(int status) {
    switch (status) {
    case TASKER_OK: return "TASKER_OK: success";
    case TASKER_EMPTY: return "TASKER_EMPTY: nothing arrived within the timeout";
    case TASKER_CLOSED: return "TASKER_CLOSED: shut down and drained; nothing more will arrive";
    case TASKER_EINVAL: return "TASKER_EINVAL: invalid argument (NULL pointer, bad JSON or UTF-8, bad value or config)";
    case TASKER_EBADF: return "TASKER_EBADF: unknown or destroyed handle";
    case TASKER_ENOENT: return "TASKER_ENOENT: event not pending (never polled, already ended, or expired)";
    case TASKER_EFULL: return "TASKER_EFULL: dispatch queue stayed full for the whole timeout; nothing was queued";
    case TASKER_ESHUTDOWN: return "TASKER_ESHUTDOWN: the channel is shutting down";
    case TASKER_ETOOBIG: return "TASKER_ETOOBIG: input larger than max_payload_bytes, or the caller's buffer is too small";
    case TASKER_EFORKED: return "TASKER_EFORKED: called in a child process after fork()";
    case TASKER_EINTERNAL: return "TASKER_EINTERNAL: internal error (a bug); see tasker_last_error";
    default: return "unknown tasker status code";
    }
}

size_t tasker_last_error(char *buf, size_t cap) {
    struct errbuf *e = errbuf_get(0);
    size_t len = e ? e->len : 0;
    if (buf != NULL && cap > 0) {
        size_t n = len < cap - 1 ? len : cap - 1;
        if (n > 0) memcpy(buf, e->msg, n);
        buf[n] = '\0';
    }
    return len;
}

void tasker_free(void *p) { free(p); }


/* ---- waiting outside Go: the direct hand-off ----
 *
 * A call that waits (poll, poll_batch, next_completion and the _into forms,
 * with a timeout) does not wait inside Go. It tries once with no wait (one
 * crossing: the fast path when work is there); if that finds nothing it
 * lists a receiver (on its own stack) with its handle's slot and stream and
 * sleeps on the receiver's own futex word. Go's waker (ffi/park.go, told by
 * the channel once its lock is released) claims the oldest receiver of that
 * handle after every state change that lets a try succeed, takes the
 * document for it (a Poll / PollBatch / NextCompletion that does not wait,
 * in the goroutine that made the change) and hands it over: written
 * straight into the caller's buffer when it has one that fits (the _into
 * calls), else into malloc'd memory. The woken thread returns it without
 * entering Go, the rule of a Go channel (a send to a waiting receiver hands
 * the value over). Entering Go from a thread that slept costs the Go
 * scheduler's processor hand-off; waiting inside Go (a goroutine locked to
 * the C thread) paid it twice per wake-up.
 *
 * A receiver is WAITING while listed; Go unlists it and marks it CLAIMED
 * under the list's lock, then HANDED (doc, len, count set first) or RETRY
 * (the document went to somebody else, or shutdown began: try again). A
 * thread that wakes or times out removes itself if still listed, else it
 * waits for the claim to end: a claimed receiver always gets its answer, so
 * a document taken for it is never dropped (it may return one after its
 * timeout ran out, never lose one). Go writes nothing to a receiver after
 * its final state: the thread may return at once.
 *
 * No wake-up is missed. Per slot and stream, seq counts changes: a waiter
 * reads it before each try, and after listing itself (counted in
 * receivers, seq_cst) it sleeps only if seq has not moved; Go bumps seq
 * (seq_cst) before it reads receivers. So either Go sees the receiver or
 * the receiver sees the new seq and tries again. Receivers are per handle
 * (two live handles may share a slot), so a claim never goes to another
 * handle's waiter; after shutdown began every receiver is told to retry
 * (each has a new answer). A channel nobody waits on pays one atomic load
 * per change (waiters).
 *
 * The wake-up is made after the channel's lock is released. Made under it
 * (as a first attempt did), the woken thread entered Go while the waker
 * still held the lock, its goroutine parked on the mutex, and the Go
 * scheduler's hand-off to the locked thread came back on every event: the
 * blocking ping-pong ran 3-6x slower than with the wait inside Go.
 *
 * Slots and lists live in static tables indexed by handle, so a waiter
 * never touches freed memory, whatever destroy does meanwhile. */

#define PARK_SLOTS 1024u
#define PARK_SPINS 64 /* pause loops before listing: catches a quick answer without a system call */

struct park_stream {
    _Atomic uint32_t seq;       /* changes that let a try succeed; Go bumps it */
    _Atomic uint32_t waiters;   /* threads between their first try and their return */
    _Atomic uint32_t receivers; /* of those, threads listed for a hand-off: only then does Go look */
};
struct park_slot {
    struct park_stream events;      /* poll, poll_batch, poll_into */
    struct park_stream completions; /* next_completion, next_completion_into */
    char pad[64 - 2 * sizeof(struct park_stream)];
};
_Static_assert(sizeof(struct park_slot) == 64, "park_slot is one cache line");
static struct park_slot park_slots[PARK_SLOTS] __attribute__((aligned(64)));

static struct park_slot *park_slot_of(tasker_t h) { return &park_slots[h % PARK_SLOTS]; }

void *tshim_park_slot(uint64_t h) { return park_slot_of(h); }

size_t tshim_park_layout(int field) {
    switch (field) {
    case 0: return sizeof(struct park_slot);
    case 1: return offsetof(struct park_slot, events.seq);
    case 2: return offsetof(struct park_slot, events.waiters);
    case 3: return offsetof(struct park_slot, events.receivers);
    case 4: return offsetof(struct park_slot, completions.seq);
    case 5: return offsetof(struct park_slot, completions.receivers);
    default: return (size_t)-1;
    }
}

static double mono_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Sleeps while *word == val, at most ms milliseconds (ms < 0: no limit);
 * may return early (a signal, a spurious wake-up): callers re-check. */
static void futex_wait_ms(_Atomic uint32_t *word, uint32_t val, double ms) {
    struct timespec ts, *tsp = NULL;
    if (ms >= 0) {
        ts.tv_sec = (time_t)(ms / 1e3);
        ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1e3) * 1e6);
        tsp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

/* A short spin on seq before listing: returns 1 if seq moved. */
static int park_spin(struct park_stream *ps, uint32_t seen) {
    for (int i = 0; i < PARK_SPINS; i++) {
        if (atomic_load_explicit(&ps->seq, memory_order_acquire) != seen) return 1;
        __builtin_ia32_pause();
    }
    return 0;
}

enum { RX_WAITING, RX_CLAIMED, RX_HANDED, RX_RETRY };
struct receiver {
    struct receiver *next;
    tasker_t h;
    char *buf;    /* the caller's buffer (*_into) or NULL */
    size_t cap;   /* its size */
    uint32_t max; /* poll_batch: up to this many events, as one array; 0: one document */
    char *doc;    /* HANDED: buf (written in place) or malloc'd */
    size_t len;
    uint32_t count; /* HANDED, poll_batch: events in doc */
    _Atomic uint32_t state; /* the futex word */
};
struct rx_list {
    pthread_mutex_t mu;
    struct receiver *head, *tail; /* oldest first; guarded by mu */
};
static struct rx_list rx_lists[PARK_SLOTS][2]; /* [slot][stream], initialised in rx_init */

__attribute__((constructor)) static void rx_init(void) {
    for (unsigned i = 0; i < PARK_SLOTS; i++)
        for (int j = 0; j < 2; j++) pthread_mutex_init(&rx_lists[i][j].mu, NULL);
}

/* The streams; the same numbers index the kept documents below and are
 * park.go's streamEvents and streamCompletions. */
enum { STREAM_EVENTS = 0, STREAM_COMPLETIONS = 1 };

static struct park_stream *stream_of(struct park_slot *s, int stream) {
    return stream == STREAM_EVENTS ? &s->events : &s->completions;
}

static void rx_add(struct park_stream *ps, struct rx_list *l, struct receiver *r) {
    pthread_mutex_lock(&l->mu);
    r->next = NULL;
    if (l->tail != NULL) l->tail->next = r;
    else l->head = r;
    l->tail = r;
    atomic_fetch_add(&ps->receivers, 1);
    pthread_mutex_unlock(&l->mu);
}

/* Unlinks the receiver after prev (NULL: the head). Under l->mu. */
static void rx_unlink(struct park_stream *ps, struct rx_list *l, struct receiver *prev, struct receiver *r) {
    if (prev != NULL) prev->next = r->next;
    else l->head = r->next;
    if (l->tail == r) l->tail = prev;
    atomic_fetch_sub(&ps->receivers, 1);
}

/* 1 if r was still listed (now it is not), 0 if Go claimed it. */
static int rx_remove(struct park_stream *ps, struct rx_list *l, struct receiver *r) {
    int found = 0;
    pthread_mutex_lock(&l->mu);
    for (struct receiver *prev = NULL, *p = l->head; p != NULL; prev = p, p = p->next) {
        if (p == r) {
            rx_unlink(ps, l, prev, r);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return found;
}

void *tshim_rx_claim(void *slot, int stream, uint64_t h, uint32_t *max) {
    struct park_slot *s = slot;
    struct park_stream *ps = stream_of(s, stream);
    struct rx_list *l = &rx_lists[s - park_slots][stream];
    struct receiver *r = NULL;
    pthread_mutex_lock(&l->mu);
    for (struct receiver *prev = NULL, *p = l->head; p != NULL; prev = p, p = p->next) {
        if (p->h == h) {
            rx_unlink(ps, l, prev, p);
            atomic_store_explicit(&p->state, RX_CLAIMED, memory_order_relaxed); /* published by the unlock */
            *max = p->max;
            r = p;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

static void rx_finish(struct receiver *r, uint32_t state) {
    atomic_store_explicit(&r->state, state, memory_order_release);
    /* r may be gone now: the futex call only names the address (at worst a
     * spurious wake-up of whatever waits there next, which re-checks) */
    syscall(SYS_futex, (uint32_t *)&r->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void tshim_rx_deliver(void *rp, const char *doc, size_t len, uint32_t count) {
    struct receiver *r = rp;
    if (doc == NULL) {
        rx_finish(r, RX_RETRY);
        return;
    }
    char *p = r->buf;
    if (p == NULL || len >= r->cap) {
        p = malloc(len + 1);
        if (p == NULL) abort(); /* the document was taken for this thread: it must not be dropped */
    }
    memcpy(p, doc, len);
    p[len] = '\0';
    r->doc = p;
    r->len = len;
    r->count = count;
    rx_finish(r, RX_HANDED);
}

void tshim_rx_retry_all(void *slot, int stream) {
    struct park_slot *s = slot;
    struct park_stream *ps = stream_of(s, stream);
    struct rx_list *l = &rx_lists[s - park_slots][stream];
    pthread_mutex_lock(&l->mu);
    struct receiver *p = l->head;
    l->head = l->tail = NULL;
    while (p != NULL) {
        struct receiver *next = p->next; /* read before p is released */
        atomic_fetch_sub(&ps->receivers, 1);
        rx_finish(p, RX_RETRY);
        p = next;
    }
    pthread_mutex_unlock(&l->mu);
}

/* What a waiting call asks for: its stream, and for poll_batch the most
 * events it takes (max > 0) and where their count goes. */
struct want {
    int stream;
    uint32_t max;    /* > 0: tasker_poll_batch */
    uint32_t *count; /* tasker_poll_batch's out-count */
};

/* One try in Go. With a buffer (the *_into calls' or take_malloced's) Go
 * builds the document straight in it (*doc == buf); one that does not fit
 * is malloc'd (*doc) and may leave buf partly written. */
static int take_now(const struct want *w, tasker_t h, int32_t timeout_ms, char *buf, size_t cap, char **doc,
                    size_t *len) {
    if (w->max > 0) return tgo_poll_batch(h, w->max, timeout_ms, doc, len, w->count);
    return w->stream == STREAM_EVENTS ? tgo_poll(h, timeout_ms, buf, cap, doc, len)
                                      : tgo_next_completion(h, timeout_ms, buf, cap, doc, len);
}

/* Waits for what w asks for as described above. On TASKER_OK *doc is buf
 * (written in place, NUL-terminated) or malloc'd memory the caller owns.
 * Timeouts other than 0, -1 and positive go straight to Go, which rejects
 * them with the usual message. */
static int parked_take(const struct want *w, tasker_t h, int32_t timeout_ms, char *buf, size_t cap, char **doc,
                       size_t *len) {
    if (timeout_ms == 0 || timeout_ms < -1) return take_now(w, h, timeout_ms < -1 ? timeout_ms : 0, buf, cap, doc, len);
    struct park_slot *s = park_slot_of(h);
    struct park_stream *ps = stream_of(s, w->stream);
    struct rx_list *l = &rx_lists[s - park_slots][w->stream];
    double deadline = timeout_ms > 0 ? mono_ms() + (double)timeout_ms : 0;
    atomic_fetch_add(&ps->waiters, 1);
    int st;
    for (;;) {
        uint32_t seen = atomic_load(&ps->seq);
        st = take_now(w, h, 0, buf, cap, doc, len);
        if (st != TASKER_EMPTY) break;
        double left = -1;
        if (timeout_ms > 0) {
            left = deadline - mono_ms();
            if (left <= 0) break;
        }
        if (park_spin(ps, seen)) continue;
        if (yield_owed) { /* going to sleep: nobody waits for this thread now (see maybe_yield) */
            yield_now(coarse_ns());
            continue; /* time has passed: try again before sleeping */
        }
        struct receiver r = {.next = NULL, .h = h, .buf = buf, .cap = cap, .max = w->max};
        atomic_init(&r.state, RX_WAITING);
        rx_add(ps, l, &r);
        if (atomic_load(&ps->seq) == seen) futex_wait_ms(&r.state, RX_WAITING, left);
        if (atomic_load_explicit(&r.state, memory_order_acquire) == RX_WAITING && rx_remove(ps, l, &r))
            continue; /* woken by a bump, a signal or the timeout: try again */
        uint32_t v;
        while ((v = atomic_load_explicit(&r.state, memory_order_acquire)) == RX_CLAIMED)
            futex_wait_ms(&r.state, RX_CLAIMED, -1); /* Go is taking a document for this thread */
        if (v == RX_HANDED) {
            *doc = r.doc;
            *len = r.len;
            if (w->count != NULL) *w->count = r.count;
            st = TASKER_OK;
            break;
        }
    }
    atomic_fetch_sub(&ps->waiters, 1);
    return st;
}

/* ---- documents kept for later: the *_into calls ----
 *
 * tasker_poll_into and tasker_next_completion_into copy a document into the
 * caller's buffer. One that does not fit has already been taken from the
 * channel (an event is pending, a completion has left the stream), so it is
 * kept here, per handle, and handed out first by the next call of the same
 * stream on that handle, from any thread (poll, poll_batch and poll_into
 * for an event; next_completion and next_completion_into for a
 * completion). Nothing is lost: a kept event's deadline runs as for any
 * polled event, and destroy frees what is still kept, as it discards
 * completions not yet taken. The list is almost always empty: one atomic
 * load tells, before any lock. */

struct kept {
    struct kept *next;
    tasker_t h;
    int stream;
    size_t len;
    char *doc; /* malloc'd by Go's output(), NUL-terminated */
};
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kept *kept_head; /* oldest first */
static _Atomic size_t kept_n;

static void kept_push(tasker_t h, int stream, char *doc, size_t len) {
    struct kept *k = malloc(sizeof *k);
    if (k == NULL) abort(); /* cannot keep the document and must not lose it */
    *k = (struct kept){NULL, h, stream, len, doc};
    pthread_mutex_lock(&kept_mu);
    struct kept **pp = &kept_head;
    while (*pp) pp = &(*pp)->next;
    *pp = k;
    atomic_fetch_add(&kept_n, 1);
    pthread_mutex_unlock(&kept_mu);
}

/* The oldest kept document of (h, stream), taken out of the list when
 * cap is (size_t)-1 or the document fits in cap bytes with its NUL; else
 * left in place. Returns 1 and sets *doc and *len if one was found (*doc NULL
 * when it was left in place), 0 if none is kept. */
static int kept_take(tasker_t h, int stream, size_t cap, char **doc, size_t *len) {
    if (atomic_load_explicit(&kept_n, memory_order_acquire) == 0) return 0;
    int found = 0;
    pthread_mutex_lock(&kept_mu);
    for (struct kept **pp = &kept_head; *pp; pp = &(*pp)->next) {
        struct kept *k = *pp;
        if (k->h != h || k->stream != stream) continue;
        found = 1;
        *len = k->len;
        *doc = NULL;
        if (cap == (size_t)-1 || k->len < cap) {
            *doc = k->doc;
            *pp = k->next;
            free(k);
            atomic_fetch_sub(&kept_n, 1);
        }
        break;
    }
    pthread_mutex_unlock(&kept_mu);
    return found;
}

static void kept_drop_handle(tasker_t h) {
    if (atomic_load(&kept_n) == 0) return;
    pthread_mutex_lock(&kept_mu);
    for (struct kept **pp = &kept_head; *pp;) {
        struct kept *k = *pp;
        if (k->h == h) {
            *pp = k->next;
            free(k->doc);
            free(k);
            atomic_fetch_sub(&kept_n, 1);
        } else {
            pp = &k->next;
        }
    }
    pthread_mutex_unlock(&kept_mu);
}

static int too_small(const char *fn, const char *what, size_t len, size_t cap) {
    char msg[320];
    int n = snprintf(msg, sizeof msg,
                     "%s: the %s is %zu bytes and needs a buffer of %zu (with its NUL); cap is %zu. It is kept, "
                     "and the next call for this handle hands it out first: call again with a buffer of at least %zu",
                     fn, what, len, len + 1, cap, len + 1);
    tshim_set_error(msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    return TASKER_ETOOBIG;
}

static int null_arg(const char *fn, const char *what) {
    char msg[160];
    int n = snprintf(msg, sizeof msg, "%s: %s", fn, what);
    tshim_set_error(msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    return TASKER_EINVAL;
}

/* Copies doc into buf when it fits, else keeps it; frees it when copied. */
static int deliver_into(const char *fn, const char *what, tasker_t h, int stream, char *doc, size_t n, char *buf,
                        size_t cap, size_t *len) {
    *len = n;
    if (n < cap) {
        memcpy(buf, doc, n + 1);
        free(doc);
        return TASKER_OK;
    }
    kept_push(h, stream, doc, n);
    return too_small(fn, what, n, cap);
}

/* ---- documents the caller frees: tasker_poll, tasker_next_completion ----
 *
 * Their document is malloc'd memory the caller frees with tasker_free.
 * Rather than have Go call malloc (a call from Go into C: the Go scheduler's
 * system-call bookkeeping both ways, twice per round trip), the shim
 * mallocs a buffer of the size this thread's last document of that stream
 * needed, with room to spare, and lets Go write into it (the path of the
 * *_into calls); a document that does not fit is malloc'd by Go as before
 * and the buffer freed. */

static __thread size_t alloc_guess[2] __attribute__((tls_model("initial-exec"))); /* per stream; 0: none yet */

static int take_malloced(int stream, tasker_t h, int32_t timeout_ms, char **doc, size_t *len) {
    const struct want w = {stream, 0, NULL};
    if (doc == NULL || len == NULL) return parked_take(&w, h, timeout_ms, NULL, 0, doc, len); /* Go says EINVAL */
    size_t cap = alloc_guess[stream] ? alloc_guess[stream] : 512;
    char *buf = malloc(cap);
    if (buf == NULL) cap = 0; /* Go mallocs, or says what failed */
    int st = parked_take(&w, h, timeout_ms, buf, cap, doc, len);
    if (st != TASKER_OK || *doc != buf) free(buf);
    if (st == TASKER_OK) alloc_guess[stream] = ((*len + 1) * 5 / 4 + 255) & ~(size_t)255;
    return st;
}

/* ---- functions that enter Go ---- */

int tasker_new(const char *config_json, tasker_t *out) {
    if (out != NULL) *out = 0;
    ENTER_GO();
    return tgo_new((char *)config_json, out);
}

int tasker_destroy(tasker_t h) {
    ENTER_GO();
    int st = tgo_destroy(h);
    if (st == TASKER_OK) kept_drop_handle(h);
    return st;
}

int tasker_dispatch(tasker_t h, const char *event_json, size_t len, int32_t timeout_ms, char event_id_out[37]) {
    if (event_id_out != NULL) event_id_out[0] = '\0';
    ENTER_GO();
    return tgo_dispatch(h, (char *)event_json, len, timeout_ms, event_id_out);
}

int tasker_poll(tasker_t h, int32_t timeout_ms, char **event_json, size_t *len) {
    if (event_json != NULL) *event_json = NULL;
    if (len != NULL) *len = 0;
    ENTER_GO();
    if (event_json != NULL && len != NULL && timeout_ms >= -1 && kept_take(h, STREAM_EVENTS, (size_t)-1, event_json, len))
        return TASKER_OK;
    return take_malloced(STREAM_EVENTS, h, timeout_ms, event_json, len);
}

int tasker_poll_batch(tasker_t h, uint32_t max, int32_t timeout_ms, char **events_json, size_t *len, uint32_t *count) {
    if (events_json != NULL) *events_json = NULL;
    if (len != NULL) *len = 0;
    if (count != NULL) *count = 0;
    ENTER_GO();
    char *kdoc = NULL;
    size_t klen = 0;
    if (events_json != NULL && len != NULL && count != NULL && max > 0 && timeout_ms >= -1 &&
        kept_take(h, STREAM_EVENTS, (size_t)-1, &kdoc, &klen)) {
        /* a kept event goes out alone, as a one-element array */
        char *arr = malloc(klen + 3);
        if (arr == NULL) {
            kept_push(h, STREAM_EVENTS, kdoc, klen); /* the oldest goes to the back: rare, and still not lost */
            return null_arg("tasker_poll_batch", "out of memory");
        }
        arr[0] = '[';
        memcpy(arr + 1, kdoc, klen);
        arr[klen + 1] = ']';
        arr[klen + 2] = 0;
        free(kdoc);
        *events_json = arr;
        *len = klen + 2;
        *count = 1;
        return TASKER_OK;
    }
    if (max == 0) return tgo_poll_batch(h, max, timeout_ms < -1 ? timeout_ms : 0, events_json, len, count); /* EINVAL */
    const struct want w = {STREAM_EVENTS, max, count};
    return parked_take(&w, h, timeout_ms, NULL, 0, events_json, len);
}

int tasker_complete(tasker_t h, const char *event_id, const char *result_json, size_t len) {
    ENTER_GO();
    return tgo_complete(h, (char *)event_id, (char *)result_json, len);
}

int tasker_checkpoint(tasker_t h, const char *event_id, const char *checkpoint_json, size_t len) {
    ENTER_GO();
    return tgo_checkpoint(h, (char *)event_id, (char *)checkpoint_json, len);
}

int tasker_cleanup_timeouts(tasker_t h, uint32_t *expired) {
    if (expired != NULL) *expired = 0;
    ENTER_GO();
    return tgo_cleanup_timeouts(h, expired);
}

int tasker_next_completion(tasker_t h, int32_t timeout_ms, char **completion_json, size_t *len) {
    if (completion_json != NULL) *completion_json = NULL;
    if (len != NULL) *len = 0;
    ENTER_GO();
    if (completion_json != NULL && len != NULL && timeout_ms >= -1 &&
        kept_take(h, STREAM_COMPLETIONS, (size_t)-1, completion_json, len))
        return TASKER_OK;
    return take_malloced(STREAM_COMPLETIONS, h, timeout_ms, completion_json, len);
}

int tasker_shutdown(tasker_t h, int32_t drain_timeout_ms) {
    ENTER_GO();
    return tgo_shutdown(h, drain_timeout_ms);
}

int tasker_stats(tasker_t h, char **stats_json, size_t *len) {
    if (stats_json != NULL) *stats_json = NULL;
    if (len != NULL) *len = 0;
    ENTER_GO();
    return tgo_stats(h, stats_json, len);
}

/* ---- into caller-owned buffers ---- */

static int take_into(const char *fn, const char *what, tasker_t h, int stream, int32_t timeout_ms, char *buf,
                     size_t cap, size_t *len) {
    if (len != NULL) *len = 0;
    if (buf != NULL && cap > 0) buf[0] = '\0';
    ENTER_GO();
    if (len == NULL) return null_arg(fn, "len must not be NULL");
    if (buf == NULL && cap > 0) return null_arg(fn, "buf is NULL but cap > 0 (buf may be NULL only with cap 0)");
    /* Initialized although Go's stores into doc no longer read its old
     * value (exports.go, setOut): old stack contents are nobody's input. */
    char *doc = NULL;
    size_t n = 0;
    if (timeout_ms >= -1 && kept_take(h, stream, cap, &doc, &n)) {
        if (doc == NULL) {
            *len = n;
            return too_small(fn, what, n, cap);
        }
        return deliver_into(fn, what, h, stream, doc, n, buf, cap, len);
    }
    const struct want w = {stream, 0, NULL};
    int st = parked_take(&w, h, timeout_ms, buf, cap, &doc, &n);
    if (st != TASKER_OK) return st;
    if (buf != NULL && doc == buf) { /* written in place, by the try in Go or by a hand-off */
        *len = n;
        return TASKER_OK;
    }
    if (buf != NULL && cap > 0) buf[0] = '\0'; /* Go began it there before it outgrew buf */
    return deliver_into(fn, what, h, stream, doc, n, buf, cap, len);
}

int tasker_poll_into(tasker_t h, int32_t timeout_ms, char *buf, size_t cap, size_t *len) {
    return take_into("tasker_poll_into", "event", h, STREAM_EVENTS, timeout_ms, buf, cap, len);
}

int tasker_next_completion_into(tasker_t h, int32_t timeout_ms, char *buf, size_t cap, size_t *len) {
    return take_into("tasker_next_completion_into", "completion", h, STREAM_COMPLETIONS, timeout_ms, buf, cap, len);
}

/* ---- readiness descriptors (issue 13): tasker_event_fd, tasker_completion_fd ----
 * Kept apart from the waiting calls above. The descriptor is the library's
 * (an eventfd opened close-on-exec and non-blocking); *fd is -1 on every
 * status but TASKER_OK. In a forked child the call never enters Go. */

int tasker_event_fd(tasker_t h, int *fd) {
    if (fd != NULL) *fd = -1;
    ENTER_GO();
    return tgo_event_fd(h, fd);
}

int tasker_completion_fd(tasker_t h, int *fd) {
    if (fd != NULL) *fd = -1;
    ENTER_GO();
    return tgo_completion_fd(h, fd);
}
