/*
 * harness.h — shared helpers of libtasker's C test harness (tests/c/).
 *
 * Every scenario runs in its own process: each t_*.c file declares a table
 * of scenarios and ends with HARNESS_MAIN(table). The binary is run as
 *
 *     bin/t_xxx --list          prints "name timeout_seconds" per scenario
 *     bin/t_xxx scenario_name   runs one scenario; exit 0 = pass
 *
 * A failed check prints file:line, the status and its name
 * (tasker_strerror) and tasker_last_error, then _exit(1)s the process at
 * once (from any thread). alarm() is a second guard against hangs besides
 * the `timeout` of run.sh.
 *
 * Everything here is static inline so that each test file uses what it
 * needs and still compiles with -Wall -Wextra -Werror.
 */
#ifndef TASKER_TEST_HARNESS_H
#define TASKER_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tasker.h"

#define H_UNUSED __attribute__((unused))
#define H_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ======================================================================
 * failure reporting
 * ====================================================================== */

static const char *h_scenario H_UNUSED = "?";

H_PRINTF(5, 6) static inline void h_fail(const char *file, int line, int has_status, int status,
                                         const char *fmt, ...) {
    char le[4200];
    size_t n = tasker_last_error(le, sizeof le);
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "CHECK FAILED %s:%d [scenario %s]\n  %s\n", file, line, h_scenario, msg);
    if (has_status) fprintf(stderr, "  status: %d = %s\n", status, tasker_strerror(status));
    fprintf(stderr, "  tasker_last_error (%zu bytes, this thread): \"%s\"\n", n, le);
    fflush(stderr);
    _exit(1);
}

/* CHECK(cond): fail with the expression text. */
#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) h_fail(__FILE__, __LINE__, 0, 0, "CHECK(%s)", #cond);                   \
    } while (0)

/* CHECKF(cond, fmt, ...): fail with a formatted explanation. */
#define CHECKF(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond)) h_fail(__FILE__, __LINE__, 0, 0, __VA_ARGS__);                          \
    } while (0)

/* CHECK_ST(call, want): the call returns status want. */
#define CHECK_ST(call, want)                                                                 \
    do {                                                                                     \
        int st_ = (call);                                                                    \
        int want_ = (want);                                                                  \
        if (st_ != want_)                                                                    \
            h_fail(__FILE__, __LINE__, 1, st_, "%s\n  returned %d, want %d (%s)", #call, st_, \
                   want_, tasker_strerror(want_));                                           \
    } while (0)

#define CHECK_OK(call) CHECK_ST(call, TASKER_OK)

/* ---- last-error freshness ----
 * h_sentinel() makes a failure whose message no scenario call can produce,
 * so that after a failing call we can tell that the call itself set the
 * message (non-empty and different from the sentinel). */
static _Thread_local char h_msg[4200] H_UNUSED;   /* the last error captured by EXPECT_FAIL */
static _Thread_local char h_sent[4200] H_UNUSED;

static inline void h_sentinel(void) {
    tasker_t x = 0;
    int st = tasker_new("{\"__harness_sentinel__\": 1}", &x);
    if (st != TASKER_EINVAL) {
        fprintf(stderr, "sentinel tasker_new returned %d (%s)\n", st, tasker_strerror(st));
        _exit(1);
    }
    tasker_last_error(h_sent, sizeof h_sent);
}

/* EXPECT_FAIL(call, want): the call returns the negative status want and
 * sets a fresh, non-empty tasker_last_error (kept in h_msg for
 * CHECK_MSG_HAS). */
#define EXPECT_FAIL(call, want)                                                              \
    do {                                                                                     \
        h_sentinel();                                                                        \
        CHECK_ST(call, want);                                                                \
        size_t n_ = tasker_last_error(h_msg, sizeof h_msg);                                  \
        CHECKF(n_ > 0 && strlen(h_msg) > 0, "%s: tasker_last_error is empty", #call);        \
        CHECKF(strcmp(h_msg, h_sent) != 0, "%s: tasker_last_error was not set by the call", \
               #call);                                                                       \
    } while (0)

/* CHECK_MSG_HAS(s): the message captured by the last EXPECT_FAIL contains s. */
#define CHECK_MSG_HAS(s)                                                                     \
    CHECKF(strstr(h_msg, (s)) != NULL, "last error should mention \"%s\"; it is \"%s\"", (s), h_msg)

/* ======================================================================
 * scenarios and main
 * ====================================================================== */

typedef struct {
    const char *name;
    void (*fn)(void);
    int timeout_s; /* alarm() inside; run.sh adds a margin for `timeout` */
} scenario_t;

H_UNUSED static void h_on_alarm(int sig) {
    (void)sig;
    static const char m1[] = "\nALARM: scenario ";
    static const char m2[] = " exceeded its time budget (hang?)\n";
    ssize_t r = write(2, m1, sizeof m1 - 1);
    r = write(2, h_scenario, strlen(h_scenario));
    r = write(2, m2, sizeof m2 - 1);
    (void)r;
    _exit(3);
}

#define H_NOTE(...)                                                                          \
    do {                                                                                     \
        printf("NOTE: " __VA_ARGS__);                                                        \
        printf("\n");                                                                        \
        fflush(stdout);                                                                      \
    } while (0)

static inline int h_main(int argc, char **argv, const scenario_t *sc, size_t n) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++) printf("%s %d\n", sc[i].name, sc[i].timeout_s);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s --list | SCENARIO\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], sc[i].name) != 0) continue;
        h_scenario = sc[i].name;
        setvbuf(stdout, NULL, _IOLBF, 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = h_on_alarm;
        sa.sa_flags = SA_ONSTACK; /* may run on a Go thread */
        sigaction(SIGALRM, &sa, NULL);
        alarm((unsigned)sc[i].timeout_s);
        sc[i].fn();
        printf("ok %s\n", sc[i].name);
        fflush(stdout);
        return 0;
    }
    fprintf(stderr, "unknown scenario %s\n", argv[1]);
    return 2;
}

#define HARNESS_MAIN(table)                                                                  \
    int main(int argc, char **argv) {                                                        \
        return h_main(argc, argv, table, sizeof(table) / sizeof(table[0]));                 \
    }

/* ======================================================================
 * time, sleep, threads, memory
 * ====================================================================== */

static inline double h_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double h_ms_since(double t0) { return (h_now() - t0) * 1000.0; }

/* Sleeps ms milliseconds even when signals (the Go runtime's SIGURG) interrupt. */
static inline void h_sleep_ms(double ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000.0);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline void h_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
    int rc = pthread_create(t, NULL, fn, arg);
    CHECKF(rc == 0, "pthread_create: %s", strerror(rc));
}

static inline void h_join(pthread_t t) {
    int rc = pthread_join(t, NULL);
    CHECKF(rc == 0, "pthread_join: %s", strerror(rc));
}

/* Resident set size in KiB, from /proc/self/statm. */
static inline long h_rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, res = 0;
    int k = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    if (k != 2) return -1;
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ======================================================================
 * random numbers and UUIDs
 * ====================================================================== */

static inline uint64_t h_rand(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A random version-4 UUID in the canonical 36-character lowercase form. */
static inline void h_uuid(char out[37], uint64_t *rng) {
    uint64_t a = h_rand(rng), b = h_rand(rng);
    a = (a & ~0xF000ull) | 0x4000ull;                       /* version 4 */
    b = (b & ~0xC000000000000000ull) | 0x8000000000000000ull; /* variant */
    snprintf(out, 37, "%08" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)((a >> 16) & 0xFFFF), (uint32_t)(a & 0xFFFF),
             (uint32_t)(b >> 48), (uint64_t)(b & 0xFFFFFFFFFFFFull));
}

static inline bool h_is_uuid(const char *s, size_t n) {
    if (n != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

/* ======================================================================
 * a tiny JSON reader for the library's flat documents
 * ====================================================================== */

/* A raw JSON value inside a document: p == NULL means absent. */
typedef struct {
    const char *p;
    size_t n;
} jv_t;

static inline const char *js_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static inline const char *js_skip_str(const char *p, const char *e) {
    p++; /* opening quote */
    while (p < e) {
        if (*p == '\\') {
            p += 2;
            continue;
        }
        if (*p == '"') return p + 1;
        p++;
    }
    return NULL;
}

/* End of the value starting at p (after whitespace), or NULL. */
static inline const char *js_skip(const char *p, const char *e) {
    p = js_ws(p, e);
    if (p >= e) return NULL;
    if (*p == '"') return js_skip_str(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            char c = *p;
            if (c == '"') {
                p = js_skip_str(p, e);
                if (!p) return NULL;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *s = p;
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\t' &&
           *p != '\r')
        p++;
    return p > s ? p : NULL;
}

/* The raw value of top-level key `key` of the object in doc[0..len). */
static inline jv_t json_get(const char *doc, size_t len, const char *key) {
    jv_t none = {NULL, 0};
    if (!doc) return none;
    const char *e = doc + len, *p = js_ws(doc, e);
    size_t klen = strlen(key);
    if (p >= e || *p != '{') return none;
    p = js_ws(p + 1, e);
    if (p < e && *p == '}') return none;
    while (p < e && *p == '"') {
        const char *ks = p + 1, *ke = js_skip_str(p, e);
        if (!ke) return none;
        size_t kn = (size_t)(ke - 1 - ks);
        p = js_ws(ke, e);
        if (p >= e || *p != ':') return none;
        const char *vs = js_ws(p + 1, e), *ve = js_skip(vs, e);
        if (!ve) return none;
        if (kn == klen && memcmp(ks, key, klen) == 0) {
            jv_t v = {vs, (size_t)(ve - vs)};
            return v;
        }
        p = js_ws(ve, e);
        if (p < e && *p == ',') {
            p = js_ws(p + 1, e);
            continue;
        }
        break;
    }
    return none;
}

static inline jv_t jv_get(jv_t obj, const char *key) { return json_get(obj.p, obj.n, key); }

static inline bool jv_has(jv_t v) { return v.p != NULL; }

/* The raw text equals lit. */
static inline bool jv_is(jv_t v, const char *lit) {
    return v.p && v.n == strlen(lit) && memcmp(v.p, lit, v.n) == 0;
}

static inline bool jv_null(jv_t v) { return jv_is(v, "null"); }

static inline bool jv_raw_eq(jv_t v, const char *raw, size_t n) {
    return v.p && v.n == n && memcmp(v.p, raw, n) == 0;
}

static inline void h_put_utf8(char **o, char *oe, uint32_t cp) {
    char b[4];
    int k;
    if (cp < 0x80) {
        b[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    for (int i = 0; i < k && *o < oe; i++) *(*o)++ = b[i];
}

static inline uint32_t h_hex4(const char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    }
    return v;
}

/* Decodes a JSON string value into out (NUL-terminated); false if v is not
 * a string or out is too small. */
static inline bool jv_str(jv_t v, char *out, size_t cap) {
    if (!v.p || v.n < 2 || v.p[0] != '"' || cap == 0) return false;
    const char *p = v.p + 1, *e = v.p + v.n - 1;
    char *o = out, *oe = out + cap - 1;
    while (p < e) {
        if (o >= oe) return false;
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        p++;
        char c = *p++;
        switch (c) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            uint32_t cp = h_hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p + 6 <= e && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = h_hex4(p + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            h_put_utf8(&o, oe, cp);
            break;
        }
        default: *o++ = c; break;
        }
    }
    *o = '\0';
    return true;
}

/* The value is a string whose decoded text is s. */
static inline bool jv_str_is(jv_t v, const char *s) {
    char buf[4096];
    return jv_str(v, buf, sizeof buf) && strcmp(buf, s) == 0;
}

/* A number value as double / integer; NAN-ish sentinel checks by caller. */
static inline bool jv_is_number(jv_t v) {
    return v.p && v.n > 0 && (v.p[0] == '-' || (v.p[0] >= '0' && v.p[0] <= '9'));
}

static inline double jv_num(jv_t v) {
    char buf[64];
    size_t n = v.n < sizeof buf - 1 ? v.n : sizeof buf - 1;
    if (!v.p) return -1e300;
    memcpy(buf, v.p, n);
    buf[n] = 0;
    return strtod(buf, NULL);
}

static inline long long jv_int(jv_t v) {
    char buf[64];
    size_t n = v.n < sizeof buf - 1 ? v.n : sizeof buf - 1;
    if (!v.p) return -999999999;
    memcpy(buf, v.p, n);
    buf[n] = 0;
    return strtoll(buf, NULL, 10);
}

/* Iterates the elements of a JSON array: start with *cur = NULL. */
static inline bool jv_next(jv_t arr, const char **cur, jv_t *out) {
    const char *e = arr.p + arr.n, *p;
    if (!arr.p || arr.n < 2 || arr.p[0] != '[') return false;
    p = *cur ? *cur : arr.p + 1;
    p = js_ws(p, e);
    if (p < e && *p == ',') p = js_ws(p + 1, e);
    if (p >= e || *p == ']') return false;
    const char *ve = js_skip(p, e);
    if (!ve) return false;
    out->p = p;
    out->n = (size_t)(ve - p);
    *cur = ve;
    return true;
}

/* ---- a strict validator: is doc[0..len) exactly one valid JSON value? ---- */

static inline const char *jstrict_value(const char *p, const char *e, int depth);

static inline const char *jstrict_string(const char *p, const char *e) {
    if (p >= e || *p != '"') return NULL;
    p++;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (p + 1 >= e) return NULL;
            char x = p[1];
            if (x == 'u') {
                if (p + 6 > e) return NULL;
                for (int i = 2; i < 6; i++) {
                    char h = p[i];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        return NULL;
                }
                p += 6;
            } else if (strchr("\"\\/bfnrt", x) && x) {
                p += 2;
            } else {
                return NULL;
            }
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        /* UTF-8 sequence */
        int k;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07;
        else return NULL;
        if (p + k >= e) return NULL;
        for (int i = 1; i <= k; i++) {
            unsigned char cc = (unsigned char)p[i];
            if ((cc & 0xC0) != 0x80) return NULL;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return NULL;
        p += k + 1;
    }
    return NULL;
}

static inline const char *jstrict_number(const char *p, const char *e) {
    const char *s = p;
    if (p < e && *p == '-') p++;
    if (p < e && *p == '0') p++;
    else {
        const char *d = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    if (p < e && *p == '.') {
        p++;
        const char *d = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        const char *d = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    return p > s ? p : NULL;
}

static inline const char *jstrict_value(const char *p, const char *e, int depth) {
    if (depth > 2000) return NULL;
    p = js_ws(p, e);
    if (p >= e) return NULL;
    switch (*p) {
    case '"': return jstrict_string(p, e);
    case '{':
        p = js_ws(p + 1, e);
        if (p < e && *p == '}') return p + 1;
        for (;;) {
            p = jstrict_string(js_ws(p, e), e);
            if (!p) return NULL;
            p = js_ws(p, e);
            if (p >= e || *p != ':') return NULL;
            p = jstrict_value(p + 1, e, depth + 1);
            if (!p) return NULL;
            p = js_ws(p, e);
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            if (p < e && *p == '}') return p + 1;
            return NULL;
        }
    case '[':
        p = js_ws(p + 1, e);
        if (p < e && *p == ']') return p + 1;
        for (;;) {
            p = jstrict_value(p, e, depth + 1);
            if (!p) return NULL;
            p = js_ws(p, e);
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            if (p < e && *p == ']') return p + 1;
            return NULL;
        }
    case 't': return (e - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : NULL;
    case 'f': return (e - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : NULL;
    case 'n': return (e - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : NULL;
    default: return jstrict_number(p, e);
    }
}

static inline bool json_valid(const char *doc, size_t len) {
    const char *e = doc + len, *p = jstrict_value(doc, e, 0);
    return p && js_ws(p, e) == e;
}

/* RFC 3339, UTC, nanoseconds: "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (as a JSON string). */
static inline bool jv_is_ts(jv_t v) {
    static const char pat[] = "\"dddd-dd-ddTdd:dd:dd.dddddddddZ\"";
    if (!v.p || v.n != sizeof pat - 1) return false;
    for (size_t i = 0; i < v.n; i++) {
        if (pat[i] == 'd') {
            if (v.p[i] < '0' || v.p[i] > '9') return false;
        } else if (pat[i] != v.p[i]) {
            return false;
        }
    }
    return true;
}

/* Nanoseconds since the epoch of a timestamp of the form above (-1 if malformed). */
static inline int64_t jv_ts_ns(jv_t v) {
    if (!jv_is_ts(v)) return -1;
    const char *p = v.p + 1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = atoi(p) - 1900;
    tm.tm_mon = atoi(p + 5) - 1;
    tm.tm_mday = atoi(p + 8);
    tm.tm_hour = atoi(p + 11);
    tm.tm_min = atoi(p + 14);
    tm.tm_sec = atoi(p + 17);
    int64_t ns = 0;
    for (int i = 20; i < 29; i++) ns = ns * 10 + (p[i] - '0');
    return (int64_t)timegm(&tm) * 1000000000 + ns;
}

/* Compares two timestamps of the form above: <0, 0, >0. */
static inline int jv_ts_cmp(jv_t a, jv_t b) {
    size_t n = a.n < b.n ? a.n : b.n;
    int c = memcmp(a.p, b.p, n);
    return c ? c : (int)a.n - (int)b.n;
}

/* Copies a UUID string value into out[37]; false if not a 36-char string. */
static inline bool jv_uuid(jv_t v, char out[37]) {
    if (!v.p || v.n != 38 || v.p[0] != '"') return false;
    memcpy(out, v.p + 1, 36);
    out[36] = 0;
    return h_is_uuid(out, 36);
}

/* ======================================================================
 * event and result builders, call wrappers
 * ====================================================================== */

#define EV_MAX 1024

/* A dispatch document with fresh random task/step UUIDs. handler_json is the
 * handler as a JSON string literal (with quotes); payload_raw any JSON
 * text; extra (may be NULL) extra members without a leading comma. */
static inline int ev_build(char *buf, size_t cap, uint64_t *rng, const char *handler_json,
                           const char *payload_raw, const char *extra) {
    char task[37], step[37];
    h_uuid(task, rng);
    h_uuid(step, rng);
    int n = snprintf(buf, cap, "{\"task_uuid\":\"%s\",\"step_uuid\":\"%s\",\"handler\":%s,\"payload\":%s%s%s}",
                     task, step, handler_json, payload_raw, extra ? "," : "", extra ? extra : "");
    CHECKF(n > 0 && (size_t)n < cap, "ev_build: buffer too small");
    return n;
}

/* A small valid event. */
static inline int ev_simple(char *buf, size_t cap, uint64_t *rng, const char *extra) {
    return ev_build(buf, cap, rng, "\"test_handler\"", "{\"k\":1}", extra);
}

static const char RES_OK[] H_UNUSED = "{\"success\":true,\"result\":{\"ok\":1}}";
static const char RES_FAIL[] H_UNUSED =
    "{\"success\":false,\"error\":{\"message\":\"boom\",\"error_type\":\"test_error\",\"retryable\":false}}";

static inline tasker_t h_new(const char *cfg) {
    tasker_t h = 0;
    CHECK_OK(tasker_new(cfg, &h));
    CHECK(h != 0);
    return h;
}

/* Dispatches a small event; returns the status; the id goes to id (may be NULL). */
static inline int h_dispatch(tasker_t h, uint64_t *rng, const char *extra, int32_t timeout_ms, char *id) {
    char ev[EV_MAX];
    int n = ev_simple(ev, sizeof ev, rng, extra);
    return tasker_dispatch(h, ev, (size_t)n, timeout_ms, id);
}

static inline void h_dispatch_ok(tasker_t h, uint64_t *rng, char id[37]) {
    char ev[EV_MAX];
    int n = ev_simple(ev, sizeof ev, rng, NULL);
    CHECK_OK(tasker_dispatch(h, ev, (size_t)n, 0, id));
}

/* Polls one event; on OK copies its event_id to id (may be NULL) and frees
 * the document. Returns the status. */
static inline int h_poll_id(tasker_t h, int32_t timeout_ms, char id[37]) {
    char *js = NULL;
    size_t n = 0;
    int st = tasker_poll(h, timeout_ms, &js, &n);
    if (st == TASKER_OK) {
        CHECK(js != NULL && strlen(js) == n);
        if (id) CHECKF(jv_uuid(json_get(js, n, "event_id"), id), "polled event has no event_id: %s", js);
    } else {
        CHECKF(js == NULL && n == 0, "poll returned %d but left out-pointers set", st);
    }
    tasker_free(js);
    return st;
}

static inline int h_complete(tasker_t h, const char *id, const char *res) {
    return tasker_complete(h, id, res, strlen(res));
}

/* Takes one completion; returns the status; on OK *out is the document
 * (caller frees with tasker_free). */
static inline int h_next(tasker_t h, int32_t timeout_ms, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    int st = tasker_next_completion(h, timeout_ms, out, len);
    if (st == TASKER_OK) CHECK(*out != NULL && strlen(*out) == *len);
    else CHECKF(*out == NULL && *len == 0, "next_completion returned %d but left out-pointers set", st);
    return st;
}

/* Takes one completion and returns its event_id in id and status string in status. */
static inline int h_next_id(tasker_t h, int32_t timeout_ms, char id[37], char status[16]) {
    char *c;
    size_t n;
    int st = h_next(h, timeout_ms, &c, &n);
    if (st == TASKER_OK) {
        CHECKF(jv_uuid(json_get(c, n, "event_id"), id), "completion without event_id: %s", c);
        if (status) CHECKF(jv_str(json_get(c, n, "status"), status, 16), "completion without status: %s", c);
    }
    tasker_free(c);
    return st;
}

/* ---- stats ---- */

typedef struct {
    long long dispatched, polled, completed, failed, timed_out, cancelled, late_completions,
        rejected_full, queued, pending, undelivered, delivered, discarded, in_flight,
        max_concurrent_handlers, starving_event_count;
    char state[32];
} hstats_t;

static inline long long h_stat_field(const char *js, size_t n, const char *key) {
    jv_t v = json_get(js, n, key);
    CHECKF(jv_is_number(v), "stats has no numeric \"%s\": %s", key, js);
    return jv_int(v);
}

static inline void h_stats(tasker_t h, hstats_t *s) {
    char *js = NULL;
    size_t n = 0;
    CHECK_OK(tasker_stats(h, &js, &n));
    CHECK(js != NULL && strlen(js) == n);
    memset(s, 0, sizeof *s);
#define H_SF(f) s->f = h_stat_field(js, n, #f)
    H_SF(dispatched);
    H_SF(polled);
    H_SF(completed);
    H_SF(failed);
    H_SF(timed_out);
    H_SF(cancelled);
    H_SF(late_completions);
    H_SF(rejected_full);
    H_SF(queued);
    H_SF(pending);
    H_SF(undelivered);
    H_SF(delivered);
    H_SF(discarded);
    H_SF(in_flight);
    H_SF(max_concurrent_handlers);
    H_SF(starving_event_count);
#undef H_SF
    if (!jv_str(json_get(js, n, "state"), s->state, sizeof s->state)) s->state[0] = 0;
    tasker_free(js);
}

/* dispatched == queued + pending + completed + failed + timed_out + cancelled */
static inline bool h_stats_add_up(const hstats_t *s) {
    return s->dispatched == s->queued + s->pending + s->completed + s->failed + s->timed_out + s->cancelled;
}

/* ======================================================================
 * a thread-safe set of event ids with per-id counters
 * ====================================================================== */

typedef struct {
    char id[36];
    uint8_t used;
    uint32_t dispatched, completed;
} idslot_t;

typedef struct {
    pthread_mutex_t mu;
    idslot_t *slots;
    size_t cap; /* power of two */
    size_t count;
} idset_t;

static inline void idset_init(idset_t *s, size_t expected) {
    size_t cap = 1024;
    while (cap < expected * 2) cap <<= 1;
    s->slots = calloc(cap, sizeof *s->slots);
    CHECK(s->slots != NULL);
    s->cap = cap;
    s->count = 0;
    pthread_mutex_init(&s->mu, NULL);
}

static inline void idset_free(idset_t *s) {
    free(s->slots);
    pthread_mutex_destroy(&s->mu);
}

static inline uint64_t h_fnv(const char *id) {
    uint64_t x = 1469598103934665603ull;
    for (int i = 0; i < 36; i++) x = (x ^ (unsigned char)id[i]) * 1099511628211ull;
    return x;
}

/* Adds dispatched/completed to id's counters (inserting it); returns the slot's new counters. */
static inline idslot_t idset_add(idset_t *s, const char *id, uint32_t dispatched, uint32_t completed) {
    pthread_mutex_lock(&s->mu);
    CHECKF(s->count * 10 < s->cap * 7, "idset full");
    size_t i = (size_t)h_fnv(id) & (s->cap - 1);
    while (s->slots[i].used && memcmp(s->slots[i].id, id, 36) != 0) i = (i + 1) & (s->cap - 1);
    idslot_t *sl = &s->slots[i];
    if (!sl->used) {
        sl->used = 1;
        memcpy(sl->id, id, 36);
        s->count++;
    }
    sl->dispatched += dispatched;
    sl->completed += completed;
    idslot_t copy = *sl;
    pthread_mutex_unlock(&s->mu);
    return copy;
}

#endif /* TASKER_TEST_HARNESS_H */
