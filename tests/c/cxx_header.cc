// cxx_header.cc — include/tasker.h from a C++ translation unit.
//
// run.sh compiles it twice: with -fsyntax-only (g++ -Wall -Wextra -Werror
// -x c++) and into a tiny program it runs as the scenario "cxx_header". It
// proves that the header is valid C++ (extern "C", no C-only constructs),
// that the symbols link with C linkage, and that a C++ caller gets the same
// answers as a C caller.
#include "tasker.h"

#include <cstdio>
#include <cstring>
#include <string>

static int failures = 0;

#define EXPECT(cond)                                                                \
    do {                                                                            \
        if (!(cond)) {                                                              \
            std::fprintf(stderr, "%s:%d: EXPECT(%s) failed\n", __FILE__, __LINE__, #cond); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

int main() {
    static_assert(sizeof(tasker_t) == 8, "tasker_t is a uint64_t");
    static_assert(TASKER_ABI_VERSION == 1, "ABI version 1");
    EXPECT(tasker_abi_version() == TASKER_ABI_VERSION);
    EXPECT(std::string(tasker_version()) == TASKER_VERSION_STRING);
    EXPECT(std::strstr(tasker_strerror(TASKER_EINVAL), "TASKER_EINVAL") != nullptr);

    tasker_t h = 0;
    EXPECT(tasker_new(R"({"dispatch_buffer_size": 4, "cleanup_interval_ms": 0})", &h) == TASKER_OK);
    EXPECT(h != 0);
    const std::string ev = R"({"task_uuid":"0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f",)"
                           R"("step_uuid":"1c8f7a0d-2e3b-4d4c-9f0a-1b2c3d4e5f60","handler":"cxx","payload":[1,"two"]})";
    char id[37] = {0};
    EXPECT(tasker_dispatch(h, ev.data(), ev.size(), 0, id) == TASKER_OK);
    EXPECT(std::strlen(id) == 36);
    char *js = nullptr;
    size_t len = 0;
    EXPECT(tasker_poll(h, 0, &js, &len) == TASKER_OK);
    EXPECT(js != nullptr && std::strstr(js, R"("payload":[1,"two"])") != nullptr);
    tasker_free(js);
    const std::string res = R"({"success":true,"result":{"from":"c++"}})";
    EXPECT(tasker_complete(h, id, res.data(), res.size()) == TASKER_OK);
    EXPECT(tasker_next_completion(h, 0, &js, &len) == TASKER_OK);
    EXPECT(js != nullptr && std::strstr(js, R"("result":{"from":"c++"})") != nullptr);
    tasker_free(js);
    EXPECT(tasker_complete(h, id, res.data(), res.size()) == TASKER_ENOENT);
    char msg[256];
    EXPECT(tasker_last_error(msg, sizeof msg) > 0);
    EXPECT(tasker_destroy(h) == TASKER_OK);
    EXPECT(tasker_destroy(h) == TASKER_EBADF);
    if (failures == 0) std::printf("ok cxx_header\n");
    return failures == 0 ? 0 : 1;
}
