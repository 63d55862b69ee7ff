package tomlconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

// env is a fake environment that records every name looked up.
type env struct {
	mu     sync.Mutex
	vars   map[string]string
	looked []string
}

func newEnv(kv ...string) *env {
	e := &env{vars: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.vars[kv[i]] = kv[i+1]
	}
	return e
}

func (e *env) lookup(name string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.looked = append(e.looked, name)
	v, ok := e.vars[name]
	return v, ok
}

const fixture = "testdata/tasker"

func load(t *testing.T, loc Location, e *env) *Settings {
	t.Helper()
	s, err := Load(loc, Options{LookupEnv: e.lookup, Postgres: true})
	if err != nil {
		t.Fatalf("Load(%+v): %v", loc, err)
	}
	return s
}

func loadErr(t *testing.T, loc Location, e *env, wants ...string) {
	t.Helper()
	_, err := Load(loc, Options{LookupEnv: e.lookup, Postgres: true})
	if err == nil {
		t.Fatalf("Load(%+v) succeeded, want an error containing %q", loc, wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// writeTree writes files (path relative to a new temp dir -> content).
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	return filepath.Join(writeTree(t, map[string]string{"tasker.toml": content}), "tasker.toml")
}

func checkInt(t *testing.T, g map[string]Value, key string, want int64, origin string) {
	t.Helper()
	v, ok := g[key]
	if !ok {
		t.Errorf("%s: not set, want %d from %s", key, want, origin)
		return
	}
	if v.IsString || v.Int != want || v.Origin != origin {
		t.Errorf("%s = %+v, want %d from %s", key, v, want, origin)
	}
}

func checkStr(t *testing.T, g map[string]Value, key, want, origin string) {
	t.Helper()
	v, ok := g[key]
	if !ok {
		t.Errorf("%s: not set, want %q from %s", key, want, origin)
		return
	}
	if !v.IsString || v.Str != want || v.Origin != origin {
		t.Errorf("%s = %+v, want %q from %s", key, v, want, origin)
	}
}

func keys(g map[string]Value) []string {
	var out []string
	for k := range g {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func base(name string) string { return filepath.Join(fixture, "base", name) }
func envf(e, name string) string {
	return filepath.Join(fixture, "environments", e, name)
}

// A pre-merged file (TASKER_CONFIG_PATH): every setting read from its table,
// with the origin "<file>:<table>.<key>"; _docs sub-tables and unknown keys
// inside the tables read are ignored.
func TestLoad_PreMergedFile(t *testing.T) {
	f := "testdata/merged/complete-worker.toml"
	s := load(t, Location{Path: f}, newEnv())
	hd := f + ":worker.mpsc_channels.handler_dispatch."
	checkInt(t, s.Channel, "dispatch_buffer_size", 2048, hd+"dispatch_buffer_size")
	checkInt(t, s.Channel, "completion_buffer_size", 512, hd+"completion_buffer_size")
	checkInt(t, s.Channel, "max_concurrent_handlers", 32, hd+"max_concurrent_handlers")
	checkInt(t, s.Channel, "handler_timeout_ms", 45000, hd+"handler_timeout_ms")
	ffi := f + ":worker.mpsc_channels.ffi_dispatch."
	checkInt(t, s.Channel, "starvation_warning_threshold_ms", 15000, ffi+"starvation_warning_threshold_ms")
	checkInt(t, s.Channel, "completion_timeout_ms", 20000, ffi+"completion_timeout_ms")
	ev := f + ":worker.event_systems.worker."
	checkInt(t, s.Postgres, "visibility_timeout_ms", 90000, ev+"timing.visibility_timeout_seconds")
	checkInt(t, s.Postgres, "poll_interval_ms", 750, ev+"metadata.fallback_poller.polling_interval_ms")
	checkInt(t, s.Postgres, "batch_size", 25, ev+"processing.batch_size")
	checkStr(t, s.Postgres, "dsn", "postgresql://pgmq@/queues?host=/run/postgresql", f+":common.pgmq_database.url")
	if want := []string{"completion_buffer_size", "completion_timeout_ms", "dispatch_buffer_size",
		"handler_timeout_ms", "max_concurrent_handlers", "starvation_warning_threshold_ms"}; !reflect.DeepEqual(keys(s.Channel), want) {
		t.Errorf("channel keys = %v, want exactly %v (nothing else is read)", keys(s.Channel), want)
	}
	if !reflect.DeepEqual(s.Files, []string{f}) {
		t.Errorf("Files = %v", s.Files)
	}
}

// Root + environment: base/*.toml then environments/<env>/*.toml, merged
// table by table; each value keeps the file that set it last.
func TestLoad_RootOverlaysEnvironmentOnBase(t *testing.T) {
	e := newEnv()
	s := load(t, Location{Root: fixture, Environment: "test"}, e)
	wantFiles := []string{base("common.toml"), base("orchestration.toml"), base("worker.toml"),
		envf("test", "common.toml"), envf("test", "worker.toml")}
	if !reflect.DeepEqual(s.Files, wantFiles) {
		t.Errorf("Files = %v, want %v", s.Files, wantFiles)
	}
	hd := ":worker.mpsc_channels.handler_dispatch."
	// Overridden by the overlay.
	checkInt(t, s.Channel, "dispatch_buffer_size", 100, envf("test", "worker.toml")+hd+"dispatch_buffer_size")
	checkInt(t, s.Channel, "max_concurrent_handlers", 4, envf("test", "worker.toml")+hd+"max_concurrent_handlers")
	checkInt(t, s.Channel, "handler_timeout_ms", 5000, envf("test", "worker.toml")+hd+"handler_timeout_ms")
	// Same table, key not in the overlay: the table merged, base's value stays.
	checkInt(t, s.Channel, "completion_buffer_size", 1000, base("worker.toml")+hd+"completion_buffer_size")
	ffi := ":worker.mpsc_channels.ffi_dispatch."
	checkInt(t, s.Channel, "completion_timeout_ms", 2000, envf("test", "worker.toml")+ffi+"completion_timeout_ms")
	checkInt(t, s.Channel, "starvation_warning_threshold_ms", 10000, base("worker.toml")+ffi+"starvation_warning_threshold_ms")
	ev := ":worker.event_systems.worker."
	checkInt(t, s.Postgres, "batch_size", 5, envf("test", "worker.toml")+ev+"processing.batch_size")
	checkInt(t, s.Postgres, "poll_interval_ms", 100, envf("test", "worker.toml")+ev+"metadata.fallback_poller.polling_interval_ms")
	// Worker's own visibility timeout (base, 45 s) wins over common.queues' (test overlay, 5 s).
	checkInt(t, s.Postgres, "visibility_timeout_ms", 45000, base("worker.toml")+ev+"timing.visibility_timeout_seconds")
	// PGMQ_DATABASE_URL unset: pgmq url "" -> database url with its default.
	checkStr(t, s.Postgres, "dsn", "postgresql://tasker:tasker@localhost:5432/tasker_rust_test",
		envf("test", "common.toml")+":common.database.url")
}

// Environment "" is development (tasker-core's default TASKER_ENV).
func TestLoad_DefaultEnvironmentIsDevelopment(t *testing.T) {
	s := load(t, Location{Root: fixture}, newEnv())
	checkInt(t, s.Channel, "max_concurrent_handlers", 8,
		envf("development", "worker.toml")+":worker.mpsc_channels.handler_dispatch.max_concurrent_handlers")
	checkInt(t, s.Channel, "dispatch_buffer_size", 1000,
		base("worker.toml")+":worker.mpsc_channels.handler_dispatch.dispatch_buffer_size")
}

// Production: ${VAR:-default} inside an integer key, ${VAR} without a
// default in the database url, the pgmq url taking over when set.
func TestLoad_ProductionSubstitution(t *testing.T) {
	loc := Location{Root: fixture, Environment: "production"}
	hd := envf("production", "worker.toml") + ":worker.mpsc_channels.handler_dispatch.max_concurrent_handlers"

	s := load(t, loc, newEnv("DATABASE_URL", "postgres://prod@db/tasker"))
	checkInt(t, s.Channel, "max_concurrent_handlers", 64, hd)
	checkStr(t, s.Postgres, "dsn", "postgres://prod@db/tasker", envf("production", "common.toml")+":common.database.url")
	checkInt(t, s.Postgres, "visibility_timeout_ms", 120000,
		envf("production", "worker.toml")+":worker.event_systems.worker.timing.visibility_timeout_seconds")

	s = load(t, loc, newEnv("DATABASE_URL", "x", "TASKER_MAX_CONCURRENT_HANDLERS", "12"))
	checkInt(t, s.Channel, "max_concurrent_handlers", 12, hd)

	// Set but empty: the default applies (the shell's ${VAR:-default}).
	s = load(t, loc, newEnv("DATABASE_URL", "x", "TASKER_MAX_CONCURRENT_HANDLERS", ""))
	checkInt(t, s.Channel, "max_concurrent_handlers", 64, hd)

	loadErr(t, loc, newEnv("DATABASE_URL", "x", "TASKER_MAX_CONCURRENT_HANDLERS", "lots"),
		hd, `"lots"`, "not an integer")

	// Unset without a default: an error naming the variable, file and key.
	loadErr(t, loc, newEnv(), "DATABASE_URL is not set", envf("production", "common.toml")+":common.database.url")

	// The pgmq url non-empty: it is the dsn, and the database url is not read
	// (so its unset ${DATABASE_URL} is no error).
	e := newEnv("PGMQ_DATABASE_URL", "postgres://queues@q/pgmq")
	s = load(t, loc, e)
	checkStr(t, s.Postgres, "dsn", "postgres://queues@q/pgmq", envf("production", "common.toml")+":common.pgmq_database.url")
	for _, n := range e.looked {
		if n == "DATABASE_URL" {
			t.Errorf("DATABASE_URL was looked up although the pgmq url was used")
		}
	}
}

// Without Options.Postgres the source keys are not read: production's
// ${DATABASE_URL} (no default) is no error then, and is never looked up.
func TestLoad_SourceKeysOnlyWhenAsked(t *testing.T) {
	e := newEnv()
	s, err := Load(Location{Root: fixture, Environment: "production"}, Options{LookupEnv: e.lookup})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Postgres) != 0 {
		t.Errorf("Postgres = %v without Options.Postgres", s.Postgres)
	}
	if !reflect.DeepEqual(e.looked, []string{"TASKER_MAX_CONCURRENT_HANDLERS"}) {
		t.Errorf("looked up %v, want only TASKER_MAX_CONCURRENT_HANDLERS", e.looked)
	}
	checkInt(t, s.Channel, "max_concurrent_handlers", 64,
		envf("production", "worker.toml")+":worker.mpsc_channels.handler_dispatch.max_concurrent_handlers")
}

// ${VAR} is substituted only in the values read: the fixture's values that
// are not read carry references to unset variables without defaults.
func TestLoad_SubstitutesOnlyValuesRead(t *testing.T) {
	e := newEnv()
	load(t, Location{Root: fixture, Environment: "development"}, e)
	sort.Strings(e.looked)
	want := []string{"DATABASE_URL", "PGMQ_DATABASE_URL"}
	if !reflect.DeepEqual(e.looked, want) {
		t.Errorf("variables looked up = %v, want %v (only those in values read)", e.looked, want)
	}
}

func TestSubstitute(t *testing.T) {
	r := reader{lookup: newEnv("A", "alpha", "EMPTY", "", "B_2", "beta").lookup}
	for _, c := range []struct{ in, out, err string }{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-${B_2}-y", "x-alpha-beta-y", ""},
		{"${EMPTY}", "", ""},
		{"${EMPTY:-d}", "d", ""},
		{"${UNSET:-}", "", ""},
		{"${UNSET:-postgres://h:5432/db?x=1}", "postgres://h:5432/db?x=1", ""},
		{"${A:-d}", "alpha", ""},
		{"${UNSET}", "", "UNSET is not set"},
		{"${A:default}", "", "not a variable reference"},
		{"${1A}", "", "not a variable reference"},
		{"${}", "", "not a variable reference"},
		{"${A:-${B_2}}", "", "not a variable reference"},
		{"abc${A", "", "unterminated"},
	} {
		got, err := r.substitute(c.in, "f.toml:t.k")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "f.toml:t.k") {
				t.Errorf("substitute(%q) = %q, %v; want an error with %q naming f.toml:t.k", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.out {
			t.Errorf("substitute(%q) = %q, %v; want %q", c.in, got, err, c.out)
		}
	}
}

// The seed's older path [mpsc_channels.worker.handler_dispatch] is read;
// the current path wins key by key when both are present.
func TestLoad_SeedOlderPath(t *testing.T) {
	f := "testdata/seed/mpsc_channels.toml"
	s := load(t, Location{Path: f}, newEnv())
	old := f + ":mpsc_channels.worker.handler_dispatch."
	checkInt(t, s.Channel, "dispatch_buffer_size", 1000, old+"dispatch_buffer_size")
	checkInt(t, s.Channel, "completion_buffer_size", 1000, old+"completion_buffer_size")
	checkInt(t, s.Channel, "max_concurrent_handlers", 10, old+"max_concurrent_handlers")
	checkInt(t, s.Channel, "handler_timeout_ms", 30000, old+"handler_timeout_ms")

	both := writeFile(t, `
[mpsc_channels.worker.handler_dispatch]
max_concurrent_handlers = 3
handler_timeout_ms = 7
[worker.mpsc_channels.handler_dispatch]
max_concurrent_handlers = 5
`)
	s = load(t, Location{Path: both}, newEnv())
	checkInt(t, s.Channel, "max_concurrent_handlers", 5, both+":worker.mpsc_channels.handler_dispatch.max_concurrent_handlers")
	checkInt(t, s.Channel, "handler_timeout_ms", 7, both+":mpsc_channels.worker.handler_dispatch.handler_timeout_ms")
}

// Postgres: seconds become milliseconds; the worker's event-system keys win
// over common.queues; common.queues is used when they are absent.
func TestLoad_SourceKeysAndPriority(t *testing.T) {
	f := writeFile(t, `
[common.queues]
default_visibility_timeout_seconds = 7
[common.queues.pgmq]
poll_interval_ms = 33
`)
	s := load(t, Location{Path: f}, newEnv())
	checkInt(t, s.Postgres, "visibility_timeout_ms", 7000, f+":common.queues.default_visibility_timeout_seconds")
	checkInt(t, s.Postgres, "poll_interval_ms", 33, f+":common.queues.pgmq.poll_interval_ms")
	if _, ok := s.Postgres["batch_size"]; ok {
		t.Errorf("batch_size set without [worker.event_systems.worker] processing.batch_size")
	}
	if _, ok := s.Postgres["dsn"]; ok {
		t.Errorf("dsn set without any url")
	}

	// Both urls empty: no dsn. pgmq url empty: the database url.
	f = writeFile(t, `
[common.pgmq_database]
url = ""
[common.database]
url = "postgres://main/db"
`)
	s = load(t, Location{Path: f}, newEnv())
	checkStr(t, s.Postgres, "dsn", "postgres://main/db", f+":common.database.url")
	f = writeFile(t, "[common.pgmq_database]\nurl = \"\"\n[common.database]\nurl = \"${NOPE:-}\"\n")
	if s = load(t, Location{Path: f}, newEnv()); len(s.Postgres) != 0 {
		t.Errorf("Postgres = %v, want nothing", s.Postgres)
	}
}

// Within base/ (and within an environment) files merge in name order.
func TestLoad_FilesMergeInNameOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"base/a.toml":                     "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = 1\nhandler_timeout_ms = 100\n",
		"base/b.toml":                     "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = 2\n",
		"base/notes.txt":                  "max_concurrent_handlers = not toml",
		"environments/development/z.toml": "[worker.mpsc_channels.handler_dispatch]\nhandler_timeout_ms = 300\n",
		"environments/development/y.toml": "[worker.mpsc_channels.handler_dispatch]\nhandler_timeout_ms = 200\n",
	})
	s := load(t, Location{Root: dir}, newEnv())
	hd := ":worker.mpsc_channels.handler_dispatch."
	checkInt(t, s.Channel, "max_concurrent_handlers", 2, filepath.Join(dir, "base", "b.toml")+hd+"max_concurrent_handlers")
	checkInt(t, s.Channel, "handler_timeout_ms", 300, filepath.Join(dir, "environments", "development", "z.toml")+hd+"handler_timeout_ms")
}

// Tables merge recursively; scalars and arrays are replaced, never merged;
// a scalar may replace a table and the reverse.
func TestMerge_TablesMergeScalarsAndArraysReplace(t *testing.T) {
	root := &node{table: map[string]*node{}}
	root.merge(map[string]any{
		"t": map[string]any{"a": int64(1), "arr": []any{"x", "y", "z"}, "sub": map[string]any{"k": int64(1), "j": int64(2)}, "s": "scalar"},
	}, "base.toml")
	root.merge(map[string]any{
		"t": map[string]any{"arr": []any{"w"}, "sub": map[string]any{"k": int64(9)}, "s": map[string]any{"now": "a table"}, "a": []any{}},
	}, "env.toml")
	tb := root.table["t"]
	if got := tb.table["arr"]; !reflect.DeepEqual(got.value, []any{"w"}) || got.file != "env.toml" {
		t.Errorf("array = %v from %s, want [w] from env.toml (replaced, not merged)", got.value, got.file)
	}
	if got := tb.table["a"]; !reflect.DeepEqual(got.value, []any{}) || got.file != "env.toml" {
		t.Errorf("a = %v, want the overlay's empty array", got.value)
	}
	sub := tb.table["sub"]
	if sub.table["k"].value != int64(9) || sub.table["k"].file != "env.toml" || sub.table["j"].value != int64(2) || sub.table["j"].file != "base.toml" {
		t.Errorf("sub-table not merged key by key: k=%v(%s) j=%v(%s)", sub.table["k"].value, sub.table["k"].file, sub.table["j"].value, sub.table["j"].file)
	}
	if s := tb.table["s"]; s.table == nil || s.table["now"].value != "a table" {
		t.Errorf("a table did not replace the scalar: %+v", s)
	}
	root.merge(map[string]any{"t": "gone"}, "third.toml")
	if got := root.table["t"]; got.table != nil || got.value != "gone" {
		t.Errorf("a scalar did not replace the table: %+v", got)
	}
}

// A wrong type in a key read is an error naming the file and the key.
func TestLoad_WrongTypeNamesFileAndKey(t *testing.T) {
	for _, c := range []struct{ name, doc, key, found string }{
		{"string", "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = \"ten\"\n",
			"worker.mpsc_channels.handler_dispatch.max_concurrent_handlers", `the string "ten"`},
		{"quoted number", "[worker.mpsc_channels.handler_dispatch]\ndispatch_buffer_size = \"10\"\n",
			"worker.mpsc_channels.handler_dispatch.dispatch_buffer_size", `the string "10"`},
		{"float", "[worker.mpsc_channels.handler_dispatch]\nhandler_timeout_ms = 1.5\n",
			"worker.mpsc_channels.handler_dispatch.handler_timeout_ms", "a float"},
		{"bool", "[worker.mpsc_channels.ffi_dispatch]\ncompletion_timeout_ms = true\n",
			"worker.mpsc_channels.ffi_dispatch.completion_timeout_ms", "a boolean"},
		{"array", "[worker.mpsc_channels.ffi_dispatch]\nstarvation_warning_threshold_ms = [1]\n",
			"worker.mpsc_channels.ffi_dispatch.starvation_warning_threshold_ms", "an array"},
		{"table", "[mpsc_channels.worker.handler_dispatch.completion_buffer_size]\nx = 1\n",
			"mpsc_channels.worker.handler_dispatch.completion_buffer_size", "found a table"},
		{"date", "[common.queues]\ndefault_visibility_timeout_seconds = 2024-01-01\n",
			"common.queues.default_visibility_timeout_seconds", "a date or time"},
		{"negative", "[worker.event_systems.worker.processing]\nbatch_size = -1\n",
			"worker.event_systems.worker.processing.batch_size", "out of range"},
		{"too large after x1000", "[worker.event_systems.worker.timing]\nvisibility_timeout_seconds = 3000000\n",
			"worker.event_systems.worker.timing.visibility_timeout_seconds", "out of range"},
		{"sub-table key", "[common.queues]\npgmq = 5\n", "common.queues.pgmq", "expected a table, found an integer"},
		{"table on the way", "[worker]\nmpsc_channels = \"x\"\n", "worker.mpsc_channels", "expected a table, found a string"},
		{"dsn", "[common.pgmq_database]\nurl = 5\n", "common.pgmq_database.url", "expected a string, found an integer"},
		{"dsn fallback", "[common.database]\nurl = [\"a\"]\n", "common.database.url", "an array"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := writeFile(t, c.doc)
			loadErr(t, Location{Path: f}, newEnv(), f+":", c.key, c.found)
		})
	}
}

// Unknown keys and sub-tables inside the tables read, and everything outside
// them, are ignored, whatever their types.
func TestLoad_IgnoresEverythingElse(t *testing.T) {
	f := writeFile(t, `
title = 5
[worker.mpsc_channels.handler_dispatch]
max_concurrent_handlers = 6
max_concurrent_handler = "typo is not ours to judge"
future = [1, "two", 3.0]
[worker.mpsc_channels.handler_dispatch._docs.max_concurrent_handlers]
description = "x"
[worker.mpsc_channels.handler_dispatch.load_shedding]
enabled = true
[worker.event_systems.worker.timing]
health_check_interval_seconds = "not an int, not read"
[common.queues]
default_batch_size = "not read"
[common.database.pool]
max_connections = "not read"
[orchestration.mpsc_channels.handler_dispatch]
max_concurrent_handlers = "not read"
`)
	s := load(t, Location{Path: f}, newEnv())
	if len(s.Channel) != 1 || s.Channel["max_concurrent_handlers"].Int != 6 || len(s.Postgres) != 0 {
		t.Errorf("Channel = %v, Postgres = %v; want only max_concurrent_handlers = 6", s.Channel, s.Postgres)
	}
}

func TestLoad_ParseErrorNamesFileAndLine(t *testing.T) {
	f := writeFile(t, "[worker]\nok = 1\nbroken = = 2\n")
	loadErr(t, Location{Path: f}, newEnv(), f, "line 3")
	dup := writeFile(t, "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = 1\nmax_concurrent_handlers = 2\n")
	loadErr(t, Location{Path: dup}, newEnv(), dup, "line 3")
}

func TestLocation_Errors(t *testing.T) {
	e := newEnv()
	loadErr(t, Location{Root: fixture, Environment: "prodution"}, e,
		`environment "prodution"`, "does not exist", "development, production, test")
	loadErr(t, Location{Root: fixture, Environment: "../base"}, e, "not a folder name")
	loadErr(t, Location{Path: "testdata/merged/complete-worker.toml", Root: fixture}, e, "either path or root")
	loadErr(t, Location{Path: "testdata/merged/complete-worker.toml", Environment: "test"}, e, "environment goes with root")
	loadErr(t, Location{Path: "testdata/nope.toml"}, e, "testdata/nope.toml", "no such file")
	loadErr(t, Location{Path: fixture}, e, "is a folder", "use root")
	loadErr(t, Location{Root: "testdata/nowhere"}, e, "testdata/nowhere/base")
	loadErr(t, Location{Root: writeTree(t, map[string]string{"base/readme.md": "x", "environments/development/a.toml": ""})}, e, "holds no .toml file")
	loadErr(t, Location{}, e, "give path or root")
}

func TestLocationFromEnv(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want Location
		err  string
	}{
		{[]string{"TASKER_CONFIG_PATH", "/etc/t.toml", "TASKER_CONFIG_ROOT", "/cfg", "TASKER_ENV", "test"}, Location{Path: "/etc/t.toml"}, ""},
		{[]string{"TASKER_CONFIG_PATH", "", "TASKER_CONFIG_ROOT", "/cfg", "TASKER_ENV", "test"}, Location{Root: "/cfg", Environment: "test"}, ""},
		{[]string{"TASKER_CONFIG_ROOT", "/cfg"}, Location{Root: "/cfg"}, ""},
		{[]string{"TASKER_ENV", "test"}, Location{}, "neither TASKER_CONFIG_PATH nor TASKER_CONFIG_ROOT"},
	} {
		got, err := LocationFromEnv(newEnv(c.env...).lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err = %v, want %q", c.env, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v: %+v, %v; want %+v", c.env, got, err, c.want)
		}
	}
}

func TestApplyDefaults_JSONKeysWin(t *testing.T) {
	group := map[string]Value{
		"a": {Int: 1, Origin: "f:t.a"},
		"b": {Int: 2, Origin: "f:t.b"},
		"c": {Str: "x", IsString: true, Origin: "f:t.c"},
	}
	got := map[string]any{}
	origins, err := ApplyDefaults(group, map[string]bool{"b": true}, func(k string, v Value) error {
		got[k] = v.Any()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]any{"a": int64(1), "c": "x"}) {
		t.Errorf("applied %v, want a and c only", got)
	}
	if !reflect.DeepEqual(origins, map[string]string{"a": "f:t.a", "c": "f:t.c"}) {
		t.Errorf("origins %v", origins)
	}
	_, err = ApplyDefaults(group, nil, func(k string, v Value) error {
		if k == "b" {
			return os.ErrInvalid
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "f:t.b") {
		t.Errorf("err = %v, want it to name the origin f:t.b", err)
	}
}
