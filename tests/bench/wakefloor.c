/* The wake-up floor of a library that waits in native code (make bench, section 3).
 *
 * One mutex and condvar carry the latency benchmark's protocol, nothing else:
 * no Go, no documents. Python (ctypes) and Ruby (ffi) call it the way their
 * tasker binding calls libtasker: the calls that cannot wait (post, finish)
 * keep the GIL/GVL, the calls that wait (wait, wait_done) release it. The
 * gap between this and the language's own queue is what any such library
 * pays to wake a thread through the language's foreign-call layer; the gap
 * between libtasker and this is libtasker's own. */
#include <pthread.h>
#include <stdlib.h>

struct wake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int work; /* guarded by mu: an event posted, not yet taken */
    int done; /* guarded by mu: a completion finished, not yet taken */
};

void *wake_new(void) {
    struct wake *w = calloc(1, sizeof *w);
    if (w == NULL) return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    return w;
}

void wake_free(void *p) { free(p); }

static void set(struct wake *w, int *flag) {
    pthread_mutex_lock(&w->mu);
    *flag = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void take(struct wake *w, int *flag) {
    pthread_mutex_lock(&w->mu);
    while (!*flag) pthread_cond_wait(&w->cv, &w->mu);
    *flag = 0;
    pthread_mutex_unlock(&w->mu);
}

int wake_post(void *p) { struct wake *w = p; set(w, &w->work); return 0; }
int wake_wait(void *p) { struct wake *w = p; take(w, &w->work); return 0; }
int wake_finish(void *p) { struct wake *w = p; set(w, &w->done); return 0; }
int wake_wait_done(void *p) { struct wake *w = p; take(w, &w->done); return 0; }
