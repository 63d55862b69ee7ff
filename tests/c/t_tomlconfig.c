/*
 * tasker-core's TOML configuration through tasker_new's "tasker_config" key.
 *
 *   toml_path          {"path": file}: the dispatch settings of a pre-merged
 *                      file apply (the dispatch bound holds at the TOML value)
 *                      and config_sources names "<file>:<table>.<key>" for
 *                      each, "default" for the others.
 *   toml_json_wins     a key given in the JSON document wins over TOML and
 *                      shows as "json".
 *   toml_root          {"root", "environment"}: base/ then environments/<env>/
 *                      overlays; the overlay's max_concurrent_handlers is the
 *                      in-flight bound; completion_timeout_ms (ffi_dispatch)
 *                      is the polled events' timeout.
 *   toml_env           "env": TASKER_CONFIG_PATH wins, else TASKER_CONFIG_ROOT
 *                      with TASKER_ENV (default development); neither set is
 *                      EINVAL naming them.
 *   toml_errors        wrong type (names file and key), unset ${VAR} (names
 *                      it), a bad tasker_config value (names tasker_config),
 *                      an impossible combination (names where each value came
 *                      from): EINVAL, *out == 0.
 */
#include "harness.h"

#include <sys/stat.h>

static char dir[64];

static void write_file(const char *rel, const char *content) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        CHECKF(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s", path);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    CHECKF(f != NULL, "cannot write %s", path);
    fputs(content, f);
    fclose(f);
}

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/tasker-toml-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* the stats document (caller frees) */
static char *stats_doc(tasker_t h, size_t *n) {
    char *js = NULL;
    CHECK_OK(tasker_stats(h, &js, n));
    return js;
}

/* config_sources[key] is want */
static void check_source(tasker_t h, const char *key, const char *want) {
    size_t n;
    char *js = stats_doc(h, &n);
    jv_t src = json_get(js, n, "config_sources");
    CHECKF(jv_has(src), "stats has no config_sources: %s", js);
    char got[1024];
    CHECKF(jv_str(jv_get(src, key), got, sizeof got) && strcmp(got, want) == 0,
           "config_sources[%s] should be \"%s\": %s", key, want, js);
    tasker_free(js);
}

static long long stat_of(tasker_t h, const char *key) {
    size_t n;
    char *js = stats_doc(h, &n);
    long long v = h_stat_field(js, n, key);
    tasker_free(js);
    return v;
}

static tasker_t new_with(const char *fmt, const char *arg) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg, fmt, arg);
    return h_new(cfg);
}

static const char MERGED[] =
    "[common.database]\nurl = \"${DATABASE_URL}\"\n"
    "[worker.mpsc_channels.handler_dispatch]\n"
    "dispatch_buffer_size = 5\ncompletion_buffer_size = 40\nmax_concurrent_handlers = 3\nhandler_timeout_ms = 4500\n"
    "unknown_setting = \"ignored\"\n"
    "[worker.mpsc_channels.handler_dispatch._docs.dispatch_buffer_size]\ndescription = \"ignored\"\n"
    "[worker.mpsc_channels.ffi_dispatch]\nstarvation_warning_threshold_ms = 777\ncallback_timeout_ms = 1\n";

static void toml_path(void) {
    static uint64_t rng = 1;
    make_dir();
    write_file("tasker.toml", MERGED);
    char file[256], want[512];
    snprintf(file, sizeof file, "%s/tasker.toml", dir);
    tasker_t h = new_with("{\"tasker_config\":{\"path\":\"%s\"},\"cleanup_interval_ms\":0}", file);
    /* the dispatch bound is the TOML's 5 */
    for (int i = 0; i < 5; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    CHECK_ST(h_dispatch(h, &rng, NULL, 0, NULL), TASKER_EFULL);
    CHECK(stat_of(h, "max_concurrent_handlers") == 3);
    /* the default timeout is the TOML's handler_timeout_ms */
    char *ev = NULL;
    size_t n;
    CHECK_OK(tasker_poll(h, 0, &ev, &n));
    CHECKF(jv_int(json_get(ev, n, "timeout_ms")) == 4500, "timeout_ms: %s", ev);
    tasker_free(ev);
    static const char *keys[] = {"dispatch_buffer_size", "completion_buffer_size", "max_concurrent_handlers",
                                 "handler_timeout_ms"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(want, sizeof want, "%s:worker.mpsc_channels.handler_dispatch.%s", file, keys[i]);
        check_source(h, keys[i], want);
    }
    snprintf(want, sizeof want, "%s:worker.mpsc_channels.ffi_dispatch.starvation_warning_threshold_ms", file);
    check_source(h, "starvation_warning_threshold_ms", want);
    check_source(h, "cleanup_interval_ms", "json");
    check_source(h, "max_payload_bytes", "default");
    check_source(h, "worker_id", "default");
    check_source(h, "max_checkpoints", "default");
    check_source(h, "completion_timeout_ms", "default");
    CHECK_OK(tasker_destroy(h));
    remove_dir();
}

static void toml_json_wins(void) {
    make_dir();
    write_file("tasker.toml", MERGED);
    char file[256], want[512];
    snprintf(file, sizeof file, "%s/tasker.toml", dir);
    tasker_t h = new_with("{\"max_concurrent_handlers\":7,\"tasker_config\":{\"path\":\"%s\"}}", file);
    CHECK(stat_of(h, "max_concurrent_handlers") == 7);
    check_source(h, "max_concurrent_handlers", "json");
    snprintf(want, sizeof want, "%s:worker.mpsc_channels.handler_dispatch.completion_buffer_size", file);
    check_source(h, "completion_buffer_size", want);
    CHECK_OK(tasker_destroy(h));
    remove_dir();
}

static void write_root(void) {
    write_file("base/common.toml", "[common.database]\nurl = \"${DATABASE_URL}\"\n");
    write_file("base/worker.toml",
               "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = 10\nhandler_timeout_ms = 9000\n"
               "[worker.mpsc_channels.handler_dispatch._docs.max_concurrent_handlers]\ndescription = \"x\"\n"
               "[worker.mpsc_channels.ffi_dispatch]\ncompletion_timeout_ms = 30000\n");
    write_file("environments/test/worker.toml",
               "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = \"${T_HANDLERS:-2}\"\n"
               "[worker.mpsc_channels.ffi_dispatch]\ncompletion_timeout_ms = 1234\n");
    write_file("environments/development/worker.toml", "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = 6\n");
}

static void toml_root(void) {
    static uint64_t rng = 2;
    make_dir();
    write_root();
    unsetenv("T_HANDLERS");
    char cfg[512], want[512];
    snprintf(cfg, sizeof cfg, "{\"tasker_config\":{\"root\":\"%s\",\"environment\":\"test\"},\"cleanup_interval_ms\":0}",
             dir);
    tasker_t h = h_new(cfg);
    for (int i = 0; i < 4; i++) CHECK_OK(h_dispatch(h, &rng, NULL, 0, NULL));
    char *ev = NULL;
    size_t n;
    CHECK_OK(tasker_poll(h, 0, &ev, &n));
    CHECKF(jv_int(json_get(ev, n, "timeout_ms")) == 1234, "polled timeout_ms (completion_timeout_ms): %s", ev);
    tasker_free(ev);
    CHECK_OK(h_poll_id(h, 0, NULL));
    CHECK_ST(h_poll_id(h, 0, NULL), TASKER_EMPTY); /* in-flight bound 2 from the overlay's default */
    snprintf(want, sizeof want, "%s/environments/test/worker.toml:worker.mpsc_channels.handler_dispatch.max_concurrent_handlers", dir);
    check_source(h, "max_concurrent_handlers", want);
    snprintf(want, sizeof want, "%s/base/worker.toml:worker.mpsc_channels.handler_dispatch.handler_timeout_ms", dir);
    check_source(h, "handler_timeout_ms", want);
    CHECK_OK(tasker_destroy(h));

    /* the variable set: it wins over the default */
    setenv("T_HANDLERS", "3", 1);
    h = h_new(cfg);
    CHECK(stat_of(h, "max_concurrent_handlers") == 3);
    CHECK_OK(tasker_destroy(h));
    unsetenv("T_HANDLERS");

    /* environment omitted: development */
    h = new_with("{\"tasker_config\":{\"root\":\"%s\"}}", dir);
    CHECK(stat_of(h, "max_concurrent_handlers") == 6);
    CHECK_OK(tasker_destroy(h));
    remove_dir();
}

static void toml_env(void) {
    make_dir();
    write_root();
    write_file("merged.toml", MERGED);
    char file[256];
    snprintf(file, sizeof file, "%s/merged.toml", dir);
    unsetenv("TASKER_CONFIG_PATH");
    unsetenv("TASKER_ENV");
    unsetenv("T_HANDLERS");
    setenv("TASKER_CONFIG_ROOT", dir, 1);
    tasker_t h = h_new("{\"tasker_config\":\"env\"}");
    CHECK(stat_of(h, "max_concurrent_handlers") == 6); /* development */
    CHECK_OK(tasker_destroy(h));
    setenv("TASKER_ENV", "test", 1);
    h = h_new("{\"tasker_config\":\"env\"}");
    CHECK(stat_of(h, "max_concurrent_handlers") == 2);
    CHECK_OK(tasker_destroy(h));
    setenv("TASKER_CONFIG_PATH", file, 1); /* wins over the root */
    h = h_new("{\"tasker_config\":\"env\"}");
    CHECK(stat_of(h, "max_concurrent_handlers") == 3 && stat_of(h, "dispatch_buffer_size") == 5);
    CHECK_OK(tasker_destroy(h));
    unsetenv("TASKER_CONFIG_PATH");
    unsetenv("TASKER_CONFIG_ROOT");
    tasker_t x = 99;
    EXPECT_FAIL(tasker_new("{\"tasker_config\":\"env\"}", &x), TASKER_EINVAL);
    CHECK_MSG_HAS("TASKER_CONFIG_PATH");
    CHECK_MSG_HAS("TASKER_CONFIG_ROOT");
    CHECK(x == 0);
    unsetenv("TASKER_ENV");
    remove_dir();
}

static void expect_bad(const char *cfg, const char *m1, const char *m2) {
    tasker_t x = 99;
    EXPECT_FAIL(tasker_new(cfg, &x), TASKER_EINVAL);
    CHECK(x == 0);
    if (m1) CHECK_MSG_HAS(m1);
    if (m2) CHECK_MSG_HAS(m2);
}

static void toml_errors(void) {
    make_dir();
    char cfg[1024], file[256];
    write_file("bad.toml", "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = \"ten\"\n");
    snprintf(file, sizeof file, "%s/bad.toml", dir);
    snprintf(cfg, sizeof cfg, "{\"tasker_config\":{\"path\":\"%s\"}}", file);
    expect_bad(cfg, file, "worker.mpsc_channels.handler_dispatch.max_concurrent_handlers");

    write_file("unset.toml", "[worker.mpsc_channels.ffi_dispatch]\ncompletion_timeout_ms = \"${TASKER_NOT_SET_ANYWHERE}\"\n");
    snprintf(file, sizeof file, "%s/unset.toml", dir);
    snprintf(cfg, sizeof cfg, "{\"tasker_config\":{\"path\":\"%s\"}}", file);
    unsetenv("TASKER_NOT_SET_ANYWHERE");
    expect_bad(cfg, "TASKER_NOT_SET_ANYWHERE", "completion_timeout_ms");

    write_file("syntax.toml", "[worker]\nx = = 1\n");
    snprintf(file, sizeof file, "%s/syntax.toml", dir);
    snprintf(cfg, sizeof cfg, "{\"tasker_config\":{\"path\":\"%s\"}}", file);
    expect_bad(cfg, file, "line 2");

    /* TOML max_concurrent_handlers 3 with a JSON completion_buffer_size 2 */
    write_file("m.toml", MERGED);
    snprintf(file, sizeof file, "%s/m.toml", dir);
    snprintf(cfg, sizeof cfg, "{\"completion_buffer_size\":2,\"tasker_config\":{\"path\":\"%s\"}}", file);
    expect_bad(cfg, "max_concurrent_handlers", file);

    expect_bad("{\"tasker_config\":5}", "tasker_config", NULL);
    expect_bad("{\"tasker_config\":\"environment\"}", "tasker_config", "\"env\"");
    expect_bad("{\"tasker_config\":{}}", "tasker_config", "give path");
    expect_bad("{\"tasker_config\":{\"paht\":\"x.toml\"}}", "tasker_config", "paht");
    expect_bad("{\"tasker_config\":{\"path\":1}}", "tasker_config", "path");
    expect_bad("{\"tasker_config\":{\"path\":\"/nonexistent/x.toml\"}}", "/nonexistent/x.toml", NULL);
    write_root();
    snprintf(cfg, sizeof cfg, "{\"tasker_config\":{\"root\":\"%s\",\"environment\":\"staging\"}}", dir);
    expect_bad(cfg, "staging", NULL);
    expect_bad("{\"tasker_config\":{\"path\":\"a.toml\",\"root\":\"/x\"}}", "either path or root", NULL);
    remove_dir();
}

static const scenario_t scenarios[] = {
    {"toml_path", toml_path, 30},
    {"toml_json_wins", toml_json_wins, 30},
    {"toml_root", toml_root, 30},
    {"toml_env", toml_env, 30},
    {"toml_errors", toml_errors, 30},
};

HARNESS_MAIN(scenarios)
