/* Internal to libtasker: the C shim's private interface with the Go exports.
 * The public API is include/tasker.h. */
#ifndef TASKER_SHIM_H
#define TASKER_SHIM_H
#include <stddef.h>
#include <stdint.h>

/* Records msg (len bytes, need not be NUL-terminated) as the calling
 * thread's last error. Called by Go on every failing call. */
void tshim_set_error(const char *msg, size_t len);

/* Waiting outside Go (shim.c, "the direct hand-off"): the park slot of
 * handle h, whose words Go bumps and reads (park.go). Slots are static,
 * never freed. */
void *tshim_park_slot(uint64_t h);
/* For a test: sizeof(struct park_slot) (field 0) and the offsets of
 * events.seq, events.waiters, events.receivers, completions.seq,
 * completions.receivers (1-5). */
size_t tshim_park_layout(int field);

/* claim unlists the oldest receiver of handle h waiting on stream (0
 * events, 1 completions) of slot, sets *max (poll_batch: up to that many
 * events; 0: one document) and returns it, or NULL if none of h is
 * listed; the caller must then end it with exactly one deliver: doc (len
 * bytes, count events for a batch, copied before it returns) handed over,
 * or NULL: try again. retry_all ends every receiver of the stream with "try
 * again" (shutdown began). None of them blocks beyond a short mutex. */
void *tshim_rx_claim(void *slot, int stream, uint64_t h, uint32_t *max);
void tshim_rx_deliver(void *receiver, const char *doc, size_t len, uint32_t count);
void tshim_rx_retry_all(void *slot, int stream);

#endif
