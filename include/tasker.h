/*
 * tasker.h — the C API of libtasker, ABI version 1.
 *
 * libtasker is a step-dispatch channel: producers dispatch step events,
 * workers written in any language poll them, run their handler and complete
 * them, and a consumer takes one completion per event from a completion
 * stream. The core is Go (built as a c-shared library); this header is the
 * whole contract for C, C++, Python (ctypes), Ruby (ffi) and anything else
 * that can call C.
 *
 *     producer --tasker_dispatch--> [dispatch queue]
 *     worker   <--tasker_poll------ [dispatch queue]    (event becomes pending)
 *     worker   --tasker_complete--> [pending] --> [completion stream]
 *     worker   --tasker_checkpoint-> [pending] --> back to [dispatch queue]
 *     reaper / tasker_cleanup_timeouts: pending past deadline --> timeout completion
 *     consumer <--tasker_next_completion-- [completion stream]
 *
 * The library never calls into your code: no callbacks, no code of yours on
 * library threads.
 *
 * The normative contract, numbered rules included, is docs/ABI.md in the
 * libtasker repository; this header says the same function by function.
 * Link with -ltasker (pkg-config tasker); the library's SONAME is
 * libtasker.so.1, its number being TASKER_ABI_VERSION.
 *
 * ==== Guarantees ====
 *
 * Exactly once. Every event that tasker_dispatch accepted (TASKER_OK) yields
 * exactly one completion, whatever the order of complete, cleanup, shutdown
 * and destroy, and from however many threads. Its status is "completed",
 * "failed", "timeout" or "cancelled".
 *
 * Bounded. At most max_concurrent_handlers events run at once (polled and not
 * ended); running events plus completions not yet taken are at most
 * completion_buffer_size; events dispatched and not yet polled are at most
 * dispatch_buffer_size. At a bound, poll hands out nothing (TASKER_EMPTY
 * after its timeout) and dispatch waits, then TASKER_EFULL. Memory stays flat
 * over any number of events. (After shutdown cancels queued events, the
 * stream can briefly hold up to dispatch_buffer_size more entries.)
 *
 * Never blocks on a consumer. tasker_complete and tasker_cleanup_timeouts
 * never wait: room for every polled event's completion is reserved when it is
 * polled. Only dispatch, poll, poll_batch, next_completion and shutdown wait,
 * and only as their timeout says.
 *
 * Order. Completions leave the stream in the order in which complete,
 * cleanup and shutdown ended their events.
 *
 * Bad input loses nothing. A rejected call changes nothing: a complete with
 * an invalid result leaves its event pending (fix the result and call again);
 * a rejected dispatch queues nothing. No input crashes the process.
 *
 * Checkpoints (ABI minor 1). A long step may yield: tasker_checkpoint ends
 * its current run without a completion and sends the event back to the end
 * of the dispatch queue with its progress; the next poll hands it out again
 * (same event_id) with a "checkpoint" object, and its timeout clock restarts
 * at that poll. The event still ends exactly once, however many checkpoints
 * it takes. A checkpoint never waits and never fails for lack of room: the
 * event keeps its place, so the dispatch queue may hold up to
 * max_concurrent_handlers events beyond dispatch_buffer_size (new dispatches
 * still see the queue as full while it does).
 * With a source (below), a checkpoint of a source event is also made
 * durable: the source writes it into the queue message under the lease
 * before the event is handed out again (see "Checkpoints of source events").
 *
 * ==== Threads ====
 *
 * Every function may be called from any thread, concurrently, on the same
 * handle. Blocking calls (dispatch with a timeout, poll, poll_batch,
 * next_completion, shutdown) wake when the channel shuts down or is
 * destroyed. Calls racing a destroy return what the state they meet gives
 * (TASKER_ESHUTDOWN, TASKER_ENOENT, TASKER_CLOSED or TASKER_EBADF) and never
 * crash; once tasker_destroy has returned, every call with that handle
 * returns TASKER_EBADF. Handles are never reused within a process.
 *
 * The last error is per thread: tasker_last_error describes the most recent
 * call on the calling thread that returned a negative status.
 *
 * How poll, poll_batch, next_completion and the _into forms wait: they
 * try once without waiting (one call into the Go runtime), and if nothing
 * is there they park the calling thread on a futex outside the Go runtime
 * until the timeout passes or the thread is handed what it waits for: the
 * thread whose call made it available (a dispatch, a complete, the reaper,
 * a shutdown's drain...) takes it on the waiter's behalf and wakes it with
 * the document in hand (written straight into the caller's buffer for the
 * _into forms when it fits), so the woken thread returns without entering
 * Go again. A document taken for a waiter is always returned by it, even if
 * its timeout ran out meanwhile: nothing is dropped. A waiting thread uses
 * no CPU.
 *
 * The library's Go runtime runs with one processor (GOMAXPROCS) more than
 * the Go runtime would choose, unless the process environment sets
 * GOMAXPROCS, which is then used as set. A thread that called in keeps a
 * processor while it is back in your code; with none to spare, the Go
 * runtime takes one back every 20 µs and the next call waits to get one.
 * A thread that keeps calling in also hands its processor to the Go
 * scheduler about every 4-6 ms, or the runtime would treat it as stuck and
 * take it away on every call. That hand-off costs tens of microseconds. It is
 * made just before the thread next waits in poll, poll_batch or
 * next_completion, when nobody waits for it. A thread that only makes calls
 * that never wait (dispatch, complete, a poll with timeout 0) pays it at the
 * start of a call instead: about one call in six, for a thread calling
 * once a millisecond.
 *
 * ==== Memory ====
 *
 * Inputs are exactly `len` bytes (no NUL needed; bytes past len are never
 * read) and are borrowed for the call only. Outputs (char ** parameters) are
 * allocated by the library, NUL-terminated, owned by the caller and freed
 * with tasker_free — never with free() of another allocator. *len excludes
 * the NUL. On any status other than TASKER_OK every out-pointer is set to
 * NULL/0 (even for TASKER_EMPTY and TASKER_CLOSED), so freeing it is always
 * safe. Only config_json, event_id_out, expired and (with cap 0) the buffer
 * of tasker_last_error may be NULL; any other NULL pointer is TASKER_EINVAL
 * and changes nothing.
 *
 * ==== Timeouts ====
 *
 * timeout_ms: 0 never waits; a positive value waits at most that many
 * milliseconds; -1 waits until something arrives or the channel shuts down.
 * Any other negative value is TASKER_EINVAL.
 *
 * An event's deadline is its poll time plus its timeout_ms (default
 * completion_timeout_ms when set, else handler_timeout_ms); after a
 * checkpoint, the time of the poll that hands it out again. A reaper thread inside the library ends overdue events
 * every cleanup_interval_ms; calling tasker_cleanup_timeouts yourself is
 * allowed, never required. A complete that arrives after the event ended
 * returns TASKER_ENOENT and counts in the late_completions stat.
 *
 * ==== Shutdown recipe ====
 *
 *   1. tasker_shutdown(h, drain_ms) — from any thread. Dispatch now returns
 *      TASKER_ESHUTDOWN. Workers keep polling queued events and completing
 *      pending ones until the drain deadline; at the deadline every event
 *      still queued or pending is completed as "cancelled". The call returns
 *      once every event has ended (at most drain_ms plus a moment).
 *   2. Workers stop when tasker_poll returns TASKER_CLOSED (shutdown began
 *      and no queued event is left).
 *   3. The consumer takes completions until tasker_next_completion returns
 *      TASKER_CLOSED (every event ended and the stream is empty).
 *   4. tasker_destroy(h) once no thread will use h again. Destroy alone also
 *      works (it is shutdown with drain 0, then it discards completions not
 *      yet taken and releases the handle).
 *
 * ==== Fork ====
 *
 * Loading the library starts the Go runtime, and the Go runtime does not
 * survive fork(). In a child process forked after the library was loaded,
 * every function returns TASKER_EFORKED at once, without entering Go —
 * except tasker_abi_version, tasker_abi_minor, tasker_version,
 * tasker_strerror, tasker_last_error and tasker_free, which work anywhere. A second dlopen in
 * the child returns the same broken copy. So load the library after fork
 * (bindings load it lazily, when the first channel is made), or use
 * posix_spawn/exec for workers.
 *
 * ==== Readiness descriptors (event loops, fiber schedulers; ABI minor 2) ====
 *
 * A program that must not block a thread in tasker_poll or
 * tasker_next_completion (an asyncio loop, a Ruby fiber scheduler, an
 * epoll/kqueue/libuv loop) waits on a file descriptor instead:
 * tasker_event_fd for the event queue, tasker_completion_fd for the
 * completion stream. Nothing else changes: when the descriptor is readable,
 * the usual non-blocking call (tasker_poll / tasker_poll_batch /
 * tasker_next_completion with timeout_ms 0) takes the work.
 *
 *   Level-triggered. The event descriptor follows whether
 *   tasker_poll(h, 0, ...) would return TASKER_OK or TASKER_CLOSED (an
 *   event is queued and the bounds let it start, or shutdown began and no
 *   event is queued); the completion descriptor whether
 *   tasker_next_completion(h, 0, ...) would return TASKER_OK or
 *   TASKER_CLOSED. The thread whose call changed that answer updates the
 *   descriptor right after the change, once the library's lock is
 *   released (so that the waiter it wakes does not find the lock still
 *   held), and the newest answer always wins: the descriptor becomes
 *   readable when work arrives, stays readable as long as work is there
 *   (take it batch by batch, with no lost wake-up) and becomes unreadable
 *   right after the last item is taken. Between a change and its update it
 *   may still show the previous answer for a moment: a wake-up may then
 *   find TASKER_EMPTY (below). Edge-triggered waiting (EPOLLET) also works
 *   if you drain until TASKER_EMPTY after each wake-up: every arrival after
 *   that gives a new edge, also one that comes while the descriptor is
 *   still readable.
 *   Readable also once shut down (CLOSED), so a waiter always wakes up,
 *   and it stays readable from destroy on.
 *
 *   Spurious wake-ups. Another thread (or a Go handler taking room under
 *   the bounds) may take the work between your wake-up and your call: the
 *   non-blocking call then returns TASKER_EMPTY; wait on the descriptor
 *   again. Never treat EMPTY after a wake-up as an error.
 *
 *   Ownership. The descriptor belongs to the library: it is opened on the
 *   first call (later calls return the same number), close-on-exec and
 *   non-blocking, and closed by tasker_destroy. Only wait on it (poll,
 *   select, epoll, kqueue, an event loop's add_reader): never read, write
 *   or close it, which would corrupt its readiness. Stop waiting on it (e.g.
 *   remove it from your epoll set or event loop) before tasker_destroy, or
 *   wait on a dup() of it, which you close yourself and which stays
 *   readable after destroy.
 *
 *   Fork. In a forked child the call returns TASKER_EFORKED like every
 *   other; the descriptor inherited from the parent still refers to the
 *   parent's channel and must not be used (not even waited on) in the
 *   child. Closing the child's copy is harmless.
 *
 * ==== JSON documents ====
 *
 * All documents are strict: an unknown key, a duplicate key or a value of
 * the wrong type is TASKER_EINVAL and tasker_last_error names the key;
 * invalid UTF-8 is TASKER_EINVAL; an input longer than max_payload_bytes is
 * TASKER_ETOOBIG. UUIDs are the 36-character form. payload, result and
 * metadata are carried exactly as written (numbers are never rounded).
 *
 * Dispatch input:
 *   {"task_uuid": UUID, "step_uuid": UUID, "handler": "non-empty",   required
 *    "payload": any JSON (default null),
 *    "event_id": UUID (default: a new UUIDv7; TASKER_EINVAL if an event with
 *                this id is queued or pending),
 *    "correlation_id": UUID (default: a new UUIDv7),
 *    "timeout_ms": positive integer (default handler_timeout_ms),
 *    "trace_id": string, "span_id": string}                          optional
 *
 * Polled event: every key above, filled in (trace_id/span_id null when not
 * given; timeout_ms the effective one), plus "dispatched_at" and
 * "polled_at" (RFC 3339, UTC, nanoseconds; this run's poll). After a
 * checkpoint it also has "checkpoint": {"cursor": <as given>,
 * "items_processed": <as given>, "accumulated_results": <as given, or null>,
 * "count": <checkpoints so far>}; on its first run there is no "checkpoint"
 * key. tasker_poll_batch returns a JSON array of these.
 *
 * Checkpoint (tasker_checkpoint):
 *   {"cursor": any JSON (required; null allowed),
 *    "items_processed": integer >= 0 (required),
 *    "accumulated_results": any JSON (optional, default null)}
 *   cursor and accumulated_results are carried exactly as written.
 *
 * Result (tasker_complete):
 *   {"success": true, "result": any, "metadata": {object}}
 *   {"success": false, "error": {"message": "non-empty",
 *        "error_type": "..." (default "handler_error"),
 *        "retryable": bool (default true)}, "metadata": {object}}
 *   success is required; result and metadata are optional (null); an "error"
 *   with success true is TASKER_EINVAL. A misplaced key such as a top-level
 *   "retryable" is TASKER_EINVAL, never silently dropped.
 *
 * Completion (tasker_next_completion), every key always present, null where
 * it has no value:
 *   event_id, task_uuid, step_uuid, correlation_id, trace_id, span_id (the
 *   event's, so that a trace can be followed from dispatch to completion;
 *   null when the event had none), handler,
 *   status ("completed" | "failed" | "timeout" | "cancelled"), success,
 *   result, error {message, error_type, retryable}, metadata,
 *   dispatched_at, polled_at (the first poll; null if never polled),
 *   completed_at, execution_time_ms (completed_at - polled_at in
 *   milliseconds, with microsecond precision; null if never polled),
 *   checkpoints (how many checkpoints the event took; 0 without any).
 *   Error types the library produces: "ffi_timeout" (cleanup/reaper),
 *   "shutdown" (cancelled), "too_many_checkpoints" (failed: a checkpoint
 *   beyond max_checkpoints; not retryable); Go handlers add "handler_timeout",
 *   "handler_panic", "handler_error", "handler_not_found". All retryable
 *   except handler_panic and handler_not_found.
 *
 * Stats (tasker_stats), a JSON object; at least: dispatched, polled,
 *   completed, failed, timed_out, cancelled, late_completions, rejected_full,
 *   queued, pending, undelivered, max_concurrent_handlers,
 *   oldest_pending_age_ms, oldest_pending_event_id (null when none),
 *   oldest_queued_age_ms, starvation_detected, starving_event_count (queued
 *   or pending events older than starvation_warning_threshold_ms).
 *   Also: delivered, discarded, rejected_invalid, in_flight, state
 *   ("running" | "draining" | "closed"), worker_id, buffer sizes,
 *   checkpoints (checkpoints accepted), config_sources (an object: for every
 *   config key, where its value came from: "default", "json", or
 *   "<file>:<table>.<key>" for tasker-core TOML, see Config).
 *   rejected_invalid counts every tasker_dispatch refused for its document:
 *   TASKER_EINVAL (bad JSON, unknown key, an event_id already live...) and
 *   TASKER_ETOOBIG alike; a bad argument that is not the document (NULL
 *   event_json, a bad timeout_ms, a bad handle) is not counted. Counters
 *   add up in every snapshot:
 *   dispatched == queued + pending + completed + failed + timed_out + cancelled.
 *   With a source (below) its events count in these like dispatched ones,
 *   and these keys are added (docs/QUEUE.md rule 9): source_state
 *   ("connecting" | "connected" | "reconnecting" | "stopped"), source_read,
 *   source_acked, source_released, source_lease_lost, source_dead_lettered,
 *   source_heartbeats, source_errors, source_last_error (string or null).
 *
 * Config (tasker_new), a JSON object; every key optional:
 *   dispatch_buffer_size (1000), completion_buffer_size (1000, must be >=
 *   max_concurrent_handlers), max_concurrent_handlers (10),
 *   handler_timeout_ms (30000), cleanup_interval_ms (1000; 0 turns the
 *   reaper off), starvation_warning_threshold_ms (10000), max_payload_bytes
 *   (1048576), worker_id (string), max_checkpoints (100000: a checkpoint
 *   beyond it ends the event as failed, too_many_checkpoints; 0 allows
 *   none), completion_timeout_ms (0: the default timeout of polled events,
 *   0 meaning handler_timeout_ms), tasker_config and source (objects,
 *   below).
 *
 * tasker-core TOML (tasker_config). Reads the handler-dispatch settings from
 * tasker-core's own configuration files, so that its users need not
 * translate them:
 *   "tasker_config": {"path": "tasker.toml"}           one pre-merged file
 *   "tasker_config": {"root": "config/tasker",         base/ and environments/
 *                     "environment": "production"}     (default development)
 *   "tasker_config": "env"   TASKER_CONFIG_PATH if set, else
 *                            TASKER_CONFIG_ROOT with TASKER_ENV (development)
 *   Keys read: [worker.mpsc_channels.handler_dispatch] (or the older
 *   [mpsc_channels.worker.handler_dispatch]) dispatch_buffer_size,
 *   completion_buffer_size, max_concurrent_handlers, handler_timeout_ms;
 *   [worker.mpsc_channels.ffi_dispatch] starvation_warning_threshold_ms,
 *   completion_timeout_ms. The root's base/NAME.toml files, then
 *   environments/<env>/NAME.toml, are merged in name order (tables merge,
 *   scalars and arrays are replaced). Every other table and key is ignored.
 *   ${VAR} and ${VAR:-default} are substituted in the values read (read with
 *   getenv() during tasker_new). Keys given in the JSON document win over
 *   the TOML. Errors (missing file, TOML syntax, a wrong type, an unset
 *   variable without default) are TASKER_EINVAL naming the file and key.
 *
 * Source (config key "source"; the contract is docs/QUEUE.md): the channel reads
 * step messages from a PostgreSQL queue (pgmq's table layout) with a lease,
 * feeds them to its workers, and writes each result back in the transaction
 * that archives the message:
 *   {"source": {"postgres": {"dsn": "postgres://user@/db?host=/run/pg",
 *     "queue": "orders", "schema": "pgmq", "results_queue": "orders_results",
 *     "dead_letter_queue": "orders_dlq", "create_queues": true,
 *     "visibility_timeout_ms": 30000, "heartbeat_ms": 10000,
 *     "batch_size": 20, "poll_interval_ms": 500, "max_attempts": 5}}}
 *   dsn and queue are required; the values shown are the defaults
 *   (results_queue <queue>_results, dead_letter_queue <queue>_dlq,
 *   heartbeat_ms visibility_timeout_ms / 3, which it must stay below).
 *   Queue names are [a-z0-9_], at most 47 characters, derived names too.
 *   Bad values are TASKER_EINVAL naming the key. tasker_new never waits for
 *   the database: the source connects in the background and reconnects
 *   with backoff; tasker_stats shows its state.
 *   Source events are polled and completed like any other, but their
 *   completions go back to the source (acked to the database), never to
 *   tasker_next_completion; tasker_dispatch'ed events are unchanged and the
 *   only ones in the completion stream. A source event is running while
 *   polled and counts against completion_buffer_size until the source has
 *   taken its completion (at once, in practice). The source reads only as
 *   many messages as there are free handler slots and dispatch-queue room:
 *   a worker that stops polling stops taking messages.
 *   tasker_shutdown / tasker_destroy stop reading; events ending before the
 *   drain deadline are acked; those still queued or running at it are
 *   released to other workers (no result, not reported as cancelled
 *   anywhere). Destroy waits for those last writes (bounded: a database
 *   that stays away is given up on after about 10 s; its messages come back
 *   when their lease expires).
 *   A step message may carry "checkpoint": {"cursor": any JSON (required),
 *   "items_processed": integer >= 0 (required), "accumulated_results": any
 *   JSON (optional), "count": integer >= 0 (optional, default 0)}, strict
 *   (a bad one makes the message invalid_message); its event is polled with
 *   that checkpoint and later checkpoints continue its count.
 *   With tasker_config, the source's keys not given in JSON come from
 *   tasker-core's TOML: dsn from [common.pgmq_database] url when non-empty,
 *   else [common.database] url; visibility_timeout_ms from
 *   [worker.event_systems.worker] timing.visibility_timeout_seconds, else
 *   [common.queues] default_visibility_timeout_seconds (x 1000);
 *   poll_interval_ms from [worker.event_systems.worker]
 *   metadata.fallback_poller.polling_interval_ms, else [common.queues]
 *   pgmq.poll_interval_ms; batch_size from [worker.event_systems.worker]
 *   processing.batch_size. These are read only when there is a source.
 *   config_sources shows every key of the source as "source.postgres.<key>".
 *   A dsn found nowhere is TASKER_EINVAL naming "dsn" and the files and keys
 *   looked at.
 *
 * Checkpoints of source events. tasker_checkpoint on a source event returns
 *   at once (it never waits for the database), but the event is not handed
 *   out again until the source has written the checkpoint into its queue
 *   message: message.checkpoint replaced by {"cursor", "items_processed",
 *   "accumulated_results", "count"}, vt extended to now +
 *   visibility_timeout_ms, in one statement that checks the lease (msg_id,
 *   read_ct). Meanwhile the event counts as running (pending) and has no
 *   deadline; tasker_complete and tasker_checkpoint on it are TASKER_ENOENT.
 *   So whatever checkpoint a worker is handed is already durable: a worker
 *   process that dies (kill -9) leaves the message with its last checkpoint,
 *   and the worker that takes it after the lease expires resumes from there
 *   (the completion's checkpoints counts the checkpoints of every run). A
 *   checkpoint write whose lease was lost writes nothing, counts in
 *   source_lease_lost, and ends the event here without a result (another
 *   worker has the message). While the database is away the write is
 *   retried and the event waits; at the drain deadline it is cancelled like
 *   any running event (checkpoint written first, then the lease released).
 *   The final result message is still the one result of the message; its
 *   completion has "checkpoints": <count>.
 */
#ifndef TASKER_H
#define TASKER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. Compare with tasker_abi_version(). */
#define TASKER_ABI_VERSION 1
/**
 * The minor version: additions to ABI version 1 that older code does not
 * use. 1 adds tasker_checkpoint and tasker_abi_minor; 2 adds
 * tasker_event_fd and tasker_completion_fd. A program that calls an
 * addition checks tasker_abi_minor() >= the minor that added it.
 */
#define TASKER_ABI_MINOR 2
/** The library version this header ships with. */
#define TASKER_VERSION_STRING "libtasker 0.1.0 (abi 1)"

/** A channel handle. 0 is never a valid handle; handles are never reused. */
typedef uint64_t tasker_t;

/* ==== Status codes ==== Every function returns one unless noted. */
#define TASKER_OK          0  /**< success */
#define TASKER_EMPTY       1  /**< nothing arrived within timeout_ms (poll, poll_batch, next_completion) */
#define TASKER_CLOSED      2  /**< shut down and drained: nothing more will arrive; stop polling */
#define TASKER_EINVAL    (-1) /**< bad argument: NULL where not allowed, bad JSON, bad UTF-8, bad config */
#define TASKER_EBADF     (-2) /**< unknown or destroyed handle */
#define TASKER_ENOENT    (-3) /**< complete/checkpoint: event not pending (never polled, already ended, expired) */
#define TASKER_EFULL     (-4) /**< dispatch: queue stayed full for timeout_ms; nothing was queued */
#define TASKER_ESHUTDOWN (-5) /**< dispatch after shutdown began */
#define TASKER_ETOOBIG   (-6) /**< input larger than max_payload_bytes; or (the *_into calls) the caller's buffer is too small */
#define TASKER_EFORKED   (-7) /**< called in a child process after fork(); see Fork */
#define TASKER_EINTERNAL (-8) /**< a bug: an internal panic was recovered; see tasker_last_error */

/* ==== Library information (work anywhere, also in a forked child) ==== */

/**
 * Returns TASKER_ABI_VERSION of the loaded library. Bindings refuse a
 * library whose version differs from the one they were written for.
 * Ownership: nothing to free. Thread-safe. Never enters Go.
 */
uint32_t tasker_abi_version(void);

/**
 * Returns TASKER_ABI_MINOR of the loaded library (0 for a library older than
 * this function: look the symbol up with dlsym first if you must run on
 * one). Call tasker_checkpoint only when it returns >= 1.
 * Ownership: nothing to free. Thread-safe. Never enters Go.
 */
uint32_t tasker_abi_minor(void);

/**
 * Returns a static version string, e.g. "libtasker 0.1.0 (abi 1)"; never NULL.
 * Ownership: static storage; do not free. Thread-safe. Never enters Go.
 */
const char *tasker_version(void);

/**
 * Returns a static "TASKER_NAME: meaning" string for a status code, or
 * "unknown tasker status code"; never NULL.
 * Ownership: static storage; do not free. Thread-safe. Never enters Go.
 */
const char *tasker_strerror(int status);

/**
 * Copies the message of the most recent call on the calling thread that
 * returned a negative status (calls that succeed, or return TASKER_EMPTY or
 * TASKER_CLOSED, leave it as it was; "" before any failure). snprintf-style:
 * writes at most cap bytes including a NUL and returns the message's full
 * length, so a return >= cap means it was truncated. buf may be NULL when cap
 * is 0 (to ask for the length). Messages are at most 4095 bytes.
 * Ownership: buf is the caller's. Thread-safe (per-thread state). Never enters Go.
 */
size_t tasker_last_error(char *buf, size_t cap);

/**
 * Frees a buffer returned by the library (event, completion, stats JSON).
 * NULL-safe. The only way to free those buffers.
 * Ownership: takes ownership of p. Thread-safe. Never enters Go.
 */
void tasker_free(void *p);

/* ==== Channel lifecycle ==== */

/**
 * Creates a channel and starts its reaper. config_json is a NUL-terminated
 * JSON object (see Config above); NULL or "" means defaults. Anything else
 * must be a JSON object, with JSON whitespace (space, tab, LF, CR) around it
 * at most: a string of whitespace alone (" ", "\f", U+00A0...) is
 * TASKER_EINVAL. On success *out is the new handle; on failure *out is 0.
 * Ownership: config_json is borrowed for the call; the handle is the
 * caller's and must be released with tasker_destroy.
 * With a "source" key it starts the source in the background and returns
 * without waiting for the database.
 * Returns: TASKER_OK; TASKER_EINVAL (out NULL, bad JSON, unknown key, bad
 * value — the message names the key); TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_new(const char *config_json, tasker_t *out);

/**
 * Shuts the channel down with no drain (tasker_shutdown(h, 0): queued and
 * pending events are cancelled), discards completions not yet taken and
 * releases the handle. Threads blocked on h wake up. Once it has returned,
 * every call with h returns TASKER_EBADF. Of concurrent destroys of one
 * handle, one returns TASKER_OK and the others TASKER_EBADF.
 * Ownership: releases the handle.
 * Returns: TASKER_OK; TASKER_EBADF; TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_destroy(tasker_t h);

/* ==== Producing ==== */

/**
 * Queues one step event (see Dispatch input above). event_json is exactly
 * len bytes. Waits up to timeout_ms for room in the dispatch queue, then
 * fails with TASKER_EFULL having queued nothing. On success the event id
 * (36 characters and a NUL) is written to event_id_out unless it is NULL; on
 * failure event_id_out (if given) is set to "".
 * Ownership: event_json is borrowed for the call; event_id_out is the
 * caller's buffer of at least 37 bytes.
 * Returns: TASKER_OK; TASKER_EINVAL (NULL event_json, bad JSON/UTF-8,
 * unknown key, missing task_uuid/step_uuid/handler, bad UUID, duplicate live
 * event_id, bad timeout_ms); TASKER_ETOOBIG; TASKER_EFULL; TASKER_ESHUTDOWN;
 * TASKER_EBADF; TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_dispatch(tasker_t h, const char *event_json, size_t len, int32_t timeout_ms,
                    char event_id_out[37]);

/* ==== Working ==== */

/**
 * Takes one event (see Polled event above). It becomes pending and its
 * deadline (now + its timeout_ms) starts; end it with tasker_complete. Waits
 * up to timeout_ms for an event and for room under the in-flight bounds.
 * Ownership: on TASKER_OK *event_json is a NUL-terminated buffer of *len
 * bytes owned by the caller, freed with tasker_free; otherwise NULL/0.
 * Returns: TASKER_OK; TASKER_EMPTY (nothing within timeout_ms, or a bound
 * reached); TASKER_CLOSED (shutdown began and no queued event is left: stop
 * polling); TASKER_EINVAL (NULL out-pointer, bad timeout_ms); TASKER_EBADF;
 * TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_poll(tasker_t h, int32_t timeout_ms, char **event_json, size_t *len);

/**
 * Takes up to max events as one JSON array, waiting only for the first; the
 * rest are those available at once within the bounds. *count is the number
 * of events in the array.
 * Ownership: on TASKER_OK *events_json is the caller's, freed with
 * tasker_free; otherwise NULL/0/0.
 * Returns: as tasker_poll; TASKER_EINVAL also for max == 0 or a NULL count.
 */
int tasker_poll_batch(tasker_t h, uint32_t max, int32_t timeout_ms, char **events_json, size_t *len,
                      uint32_t *count);

/**
 * As tasker_poll, but copies the event into the caller's buffer: no
 * allocation to free, so a worker can reuse one buffer for every event.
 * On TASKER_OK buf holds the event document and a NUL, and *len is its
 * length without the NUL (so cap must be at least *len + 1).
 * Too small a buffer loses nothing: when the event (already taken, so
 * pending, its deadline running) does not fit, the call returns
 * TASKER_ETOOBIG with *len set to the document's length and buf[0] = '\0'
 * (the document is built in buf, so the rest of buf may hold the part of
 * it that fitted), and the library keeps the event: the next tasker_poll,
 * tasker_poll_batch (as a one-element array) or tasker_poll_into on this
 * handle, from any thread, hands it out before any other. Call again with
 * a buffer of at least *len + 1 bytes, at once: the readiness descriptor
 * (tasker_event_fd) does not count a kept event (it has left the queue),
 * so do not wait on the descriptor before taking it. A kept event that is
 * never taken again times out like any pending event; destroy frees it. buf may be
 * NULL only with cap 0 (which always answers TASKER_ETOOBIG once an event
 * is there, and keeps it: a way to learn its size).
 * Ownership: buf (cap bytes) and len are the caller's, written during the
 * call only. Thread-safe; use one buffer per thread.
 * Returns: as tasker_poll; TASKER_ETOOBIG (buffer too small, see above);
 * TASKER_EINVAL also for a NULL len, or a NULL buf with cap > 0.
 */
int tasker_poll_into(tasker_t h, int32_t timeout_ms, char *buf, size_t cap, size_t *len);

/**
 * Ends a pending event with the caller's result (see Result above): status
 * "completed" when success is true, "failed" otherwise. Never waits. An
 * invalid result changes nothing: the event stays pending, and a corrected
 * call succeeds. A result for an event that is not pending (never polled,
 * already completed, expired, cancelled, unknown) returns TASKER_ENOENT and
 * counts in late_completions; the first end stands.
 * Ownership: event_id (a NUL-terminated 36-character UUID) and result_json
 * (exactly len bytes) are borrowed for the call.
 * Returns: TASKER_OK; TASKER_EINVAL (NULL pointer, bad event_id, bad JSON or
 * result document — the message names the key); TASKER_ETOOBIG;
 * TASKER_ENOENT; TASKER_EBADF; TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_complete(tasker_t h, const char *event_id, const char *result_json, size_t len);

/**
 * Ends the current run of a pending event without a completion (ABI minor
 * 1; see Checkpoints above): the event goes back to the end of the dispatch
 * queue with checkpoint_json (see Checkpoint above) and the next poll hands
 * it out again with a "checkpoint" object, its deadline restarting at that
 * poll. Never waits, and never fails for lack of room in the queue. An
 * invalid document changes nothing: the event stays pending. A checkpoint
 * that would exceed max_checkpoints ends the event instead, as "failed"
 * (error_type "too_many_checkpoints", not retryable), and returns TASKER_OK:
 * either way this run is over. A checkpoint for an event that is not
 * pending (never polled, already ended, queued again after a checkpoint,
 * unknown) returns TASKER_ENOENT and counts in late_completions.
 * Ownership: event_id (a NUL-terminated 36-character UUID) and
 * checkpoint_json (exactly len bytes) are borrowed for the call.
 * Returns: TASKER_OK; TASKER_EINVAL (NULL pointer, bad event_id, bad JSON or
 * checkpoint document — the message names the key); TASKER_ETOOBIG;
 * TASKER_ENOENT; TASKER_EBADF; TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_checkpoint(tasker_t h, const char *event_id, const char *checkpoint_json, size_t len);

/**
 * Ends every pending event past its deadline with a "timeout" completion
 * (error_type "ffi_timeout", retryable). Never waits. Optional: the reaper
 * does the same every cleanup_interval_ms. *expired (if not NULL) is the
 * number ended by this call.
 * Ownership: expired is the caller's and may be NULL.
 * Returns: TASKER_OK; TASKER_EBADF; TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_cleanup_timeouts(tasker_t h, uint32_t *expired);

/* ==== Consuming ==== */

/**
 * Takes the next completion from the stream (see Completion above), waiting
 * up to timeout_ms. Taking one frees room under completion_buffer_size.
 * Ownership: on TASKER_OK *completion_json is the caller's, freed with
 * tasker_free; otherwise NULL/0.
 * Returns: TASKER_OK; TASKER_EMPTY; TASKER_CLOSED (shutdown began, every
 * event has ended and the stream is empty); TASKER_EINVAL (NULL out-pointer,
 * bad timeout_ms); TASKER_EBADF; TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_next_completion(tasker_t h, int32_t timeout_ms, char **completion_json, size_t *len);

/**
 * As tasker_next_completion, but copies the completion into the caller's
 * buffer (see tasker_poll_into for the buffer rules). A completion that
 * does not fit is not lost: the call returns TASKER_ETOOBIG with *len set
 * to its length, and the library keeps it and hands it out first to the
 * next tasker_next_completion or tasker_next_completion_into on this
 * handle, from any thread (it is counted as delivered in the stats from
 * the moment it left the stream). As for tasker_poll_into, take it again
 * at once: tasker_completion_fd does not count it. destroy frees a kept
 * completion with the other completions not yet taken.
 * Ownership: buf (cap bytes) and len are the caller's, written during the
 * call only. Thread-safe; use one buffer per thread.
 * Returns: as tasker_next_completion; TASKER_ETOOBIG; TASKER_EINVAL also for
 * a NULL len, or a NULL buf with cap > 0.
 */
int tasker_next_completion_into(tasker_t h, int32_t timeout_ms, char *buf, size_t cap, size_t *len);

/* ==== Shutdown and observation ==== */

/**
 * Stops intake and drains (see Shutdown recipe above): dispatch returns
 * TASKER_ESHUTDOWN from now on; workers may poll queued events and complete
 * pending ones until now + drain_timeout_ms; then every event still queued
 * or pending is completed as "cancelled" (error_type "shutdown"). Returns
 * once every event has ended. drain_timeout_ms: 0 cancels at once, -1 waits
 * until every event has ended. Idempotent; a second call may bring the
 * deadline closer, never push it back. Completions stay in the stream for
 * tasker_next_completion.
 * Ownership: nothing changes hands.
 * Returns: TASKER_OK; TASKER_EINVAL (drain_timeout_ms < -1); TASKER_EBADF;
 * TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_shutdown(tasker_t h, int32_t drain_timeout_ms);

/**
 * Returns counters and gauges as a JSON object (see Stats above), one
 * consistent snapshot.
 * Ownership: on TASKER_OK *stats_json is the caller's, freed with
 * tasker_free; otherwise NULL/0.
 * Returns: TASKER_OK; TASKER_EINVAL (NULL out-pointer); TASKER_EBADF;
 * TASKER_EFORKED; TASKER_EINTERNAL.
 */
int tasker_stats(tasker_t h, char **stats_json, size_t *len);

/* ==== Readiness descriptors (see "Readiness descriptors" above) ==== */

/**
 * Sets *fd to the channel's event readiness descriptor: readable when
 * tasker_poll(h, 0, ...) would return TASKER_OK or TASKER_CLOSED, updated
 * right after each change (level-triggered; see above for spurious
 * wake-ups). The first call opens
 * it; every call returns the same descriptor until destroy. *fd is -1 on any
 * status but TASKER_OK.
 * Ownership: the descriptor is the library's, closed by tasker_destroy; the
 * caller only waits on it (never reads, writes or closes it) and stops
 * waiting before destroy, or waits on its own dup(). Thread-safe.
 * Returns: TASKER_OK; TASKER_EINVAL (fd NULL); TASKER_EBADF; TASKER_EFORKED
 * (in a forked child: do not use a descriptor inherited from the parent);
 * TASKER_EINTERNAL (also when the system refuses a descriptor, e.g. EMFILE;
 * tasker_last_error says which).
 */
int tasker_event_fd(tasker_t h, int *fd);

/**
 * Sets *fd to the channel's completion readiness descriptor: readable when
 * tasker_next_completion(h, 0, ...) would return TASKER_OK or
 * TASKER_CLOSED, updated right after each change. Everything else as
 * tasker_event_fd.
 * Ownership: as tasker_event_fd. Thread-safe.
 * Returns: as tasker_event_fd.
 */
int tasker_completion_fd(tasker_t h, int *fd);

#ifdef __cplusplus
}
#endif

#endif /* TASKER_H */
