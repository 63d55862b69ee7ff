/* t_dlopen.c — the library stays loadable with dlopen(), as Python (ctypes)
 * and Ruby (ffi) load it. A regression test: a 4 KiB __thread buffer in the
 * shim once made the library's static TLS segment larger than glibc keeps
 * for libraries loaded after start-up, and every dlopen failed with "cannot
 * allocate memory in static TLS block" while linked C programs worked. */
#include <link.h>
#include <string.h>

#include "harness.h"

static size_t tls_memsz = (size_t)-1;

static int find_tls(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libtasker.so") == NULL) return 0;
    tls_memsz = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) tls_memsz = info->dlpi_phdr[i].p_memsz;
    return 1;
}

/* glibc reserves 512 bytes of static TLS for dlopen'd libraries by default
 * (glibc.rtld.optional_static_tls), shared by every such library. */
static void dlopen_static_tls_small(void) {
    CHECK(tasker_abi_version() == TASKER_ABI_VERSION); /* the library is mapped */
    dl_iterate_phdr(find_tls, NULL);
    CHECKF(tls_memsz != (size_t)-1, "libtasker.so not found among the loaded objects");
    H_NOTE("libtasker.so static TLS: %zu bytes", tls_memsz);
    CHECKF(tls_memsz <= 128, "static TLS segment of %zu bytes: dlopen (ctypes, ffi) would fail", tls_memsz);
}

static const scenario_t SCENARIOS[] = {
    {"dlopen_static_tls_small", dlopen_static_tls_small, 30},
};
HARNESS_MAIN(SCENARIOS)
