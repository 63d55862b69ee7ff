/* Internal to libtasker: the C shim's private interface with the Go exports.
 * The public API is include/tasker.h. */
#ifndef TASKER_SHIM_H
#define TASKER_SHIM_H
#include <stddef.h>
#include <stdint.h>

/* Records msg (len bytes, need not be NUL-terminated) as the calling
 * thread's last error. Called by Go on every failing call. */
void tshim_set_error(const char *msg, size_t len);

#endif
