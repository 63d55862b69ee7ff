/* Internal to libtasker: the C shim's private interface with the Go exports.
 * The public API is include/tasker.h. */
#ifndef TASKER_SHIM_H
#define TASKER_SHIM_H
#include <stddef.h>
#include <stdint.h>

/* Records msg (len bytes, need not be NUL-terminated) as the calling
 * thread's last error. Called by Go on every failing call. */
void tshim_set_error(const char *msg, size_t len);

/* Waiting outside Go (shim.c): the park slot of handle h, counted as used
 * by one more live handle; Go bumps its futex words (park.go). A slot is
 * never freed. detach undoes one attach, when the handle is destroyed. */
void *tshim_park_attach(uint64_t h);
void tshim_park_detach(uint64_t h);
/* For a test: sizeof(struct park_slot) (field 0) and the offsets of
 * events.seq, events.waiters, events.sleepers, completions.seq, live,
 * events.receivers, completions.receivers (1-7). */
size_t tshim_park_layout(int field);

/* The direct hand-off (shim.c): claim unlists the oldest receiver of
 * handle h waiting on stream (0 events, 1 completions) of slot and returns
 * it, or NULL if none of h is listed; the caller must then end it with
 * exactly one deliver: doc (len bytes, copied before it returns) handed
 * over, or NULL: try again. retry_all ends every receiver of the stream
 * with "try again" (shutdown began). None of them blocks beyond a short
 * mutex. */
void *tshim_rx_claim(void *slot, int stream, uint64_t h);
void tshim_rx_deliver(void *receiver, const char *doc, size_t len);
void tshim_rx_retry_all(void *slot, int stream);

#endif
