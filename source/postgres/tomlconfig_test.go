package postgres

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/runtime"
)

// tasker-core's TOML for the source (issue 10 part 2), through
// runtime.ParseConfigEnv as tasker_new calls it.

const mergedTOML = "../../internal/tomlconfig/testdata/merged/complete-worker.toml"

func noEnv(string) (string, bool) { return "", false }

func sourceOf(t *testing.T, cfg runtime.Config) Config {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(cfg.Source, &doc); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(doc["postgres"])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The source's keys not in JSON come from the TOML; JSON keys win; every
// source key has an origin in config_sources.
func TestTOML_SourceKeysFromTaskerCore(t *testing.T) {
	cfg, src, err := runtime.ParseConfigEnv([]byte(`{"tasker_config":{"path":"`+mergedTOML+`"},"source":{"postgres":{"queue":"orders"}}}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := sourceOf(t, cfg)
	if c.DSN != "postgresql://pgmq@/queues?host=/run/postgresql" || c.VisibilityTimeoutMs != 90000 || c.PollIntervalMs != 750 || c.BatchSize != 25 {
		t.Fatalf("source config from TOML: %+v", c)
	}
	want := map[string]string{
		"source.postgres.dsn":                   mergedTOML + ":common.pgmq_database.url",
		"source.postgres.visibility_timeout_ms": mergedTOML + ":worker.event_systems.worker.timing.visibility_timeout_seconds",
		"source.postgres.poll_interval_ms":      mergedTOML + ":worker.event_systems.worker.metadata.fallback_poller.polling_interval_ms",
		"source.postgres.batch_size":            mergedTOML + ":worker.event_systems.worker.processing.batch_size",
		"source.postgres.queue":                 runtime.SourceJSON,
		"source.postgres.schema":                runtime.SourceDefault,
		"source.postgres.max_attempts":          runtime.SourceDefault,
	}
	for k, v := range want {
		if src[k] != v {
			t.Errorf("config_sources[%q] = %q, want %q", k, src[k], v)
		}
	}

	// JSON wins
	cfg, src, err = runtime.ParseConfigEnv([]byte(`{"tasker_config":{"path":"`+mergedTOML+`"},"source":{"postgres":{"queue":"orders",
		"dsn":"`+dsn+`","batch_size":3}}}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c := sourceOf(t, cfg); c.DSN != dsn || c.BatchSize != 3 || c.VisibilityTimeoutMs != 90000 {
		t.Fatalf("JSON keys must win: %+v", c)
	}
	if src["source.postgres.dsn"] != runtime.SourceJSON || src["source.postgres.batch_size"] != runtime.SourceJSON {
		t.Fatalf("config_sources: %v", src)
	}

	// without tasker_config: json and default only, no TOML read
	_, src, err = runtime.ParseConfigEnv([]byte(`{"source":{"postgres":{"queue":"orders","dsn":"`+dsn+`"}}}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if src["source.postgres.dsn"] != runtime.SourceJSON || src["source.postgres.visibility_timeout_ms"] != runtime.SourceDefault {
		t.Fatalf("config_sources without tasker_config: %v", src)
	}

	// the dispatcher reports them in its stats
	d, err := runtime.New(cfg, runtime.WithConfigSources(src))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, _ := json.Marshal(d.Stats())
	var st struct {
		ConfigSources map[string]string `json:"config_sources"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.ConfigSources["source.postgres.dsn"] != runtime.SourceJSON ||
		st.ConfigSources["source.postgres.schema"] != runtime.SourceDefault {
		t.Fatalf("tasker_stats config_sources: %v (%v)", st.ConfigSources, err)
	}
}

// Without a dsn anywhere the error names the key and where it looked; a
// bad TOML value for the source names its origin.
func TestTOML_SourceErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nourl := write("nourl.toml", "[common.pgmq_database]\nurl = \"\"\n[common.database]\ndatabase = \"x\"\n")
	zero := write("zero.toml", "[common.database]\nurl = \"host=/tmp\"\n[worker.event_systems.worker.processing]\nbatch_size = 0\n")
	unset := write("unset.toml", "[common.database]\nurl = \"${DATABASE_URL}\"\n")
	for _, c := range []struct {
		doc      string
		mentions []string
	}{
		{`{"tasker_config":{"path":"` + nourl + `"},"source":{"postgres":{"queue":"orders"}}}`,
			[]string{`"dsn"`, nourl, "[common.pgmq_database] url", "[common.database] url"}},
		{`{"source":{"postgres":{"queue":"orders"}}}`, []string{`"dsn"`, "tasker_config"}},
		{`{"tasker_config":{"path":"` + zero + `"},"source":{"postgres":{"queue":"orders"}}}`,
			[]string{`"batch_size"`, "batch_size from " + zero + ":worker.event_systems.worker.processing.batch_size"}},
		{`{"tasker_config":{"path":"` + unset + `"},"source":{"postgres":{"queue":"orders"}}}`, []string{"DATABASE_URL", unset}},
	} {
		_, _, err := runtime.ParseConfigEnv([]byte(c.doc), noEnv)
		if !errors.Is(err, channel.ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", c.doc, err)
		}
		for _, m := range c.mentions {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %q", c.doc, err, m)
			}
		}
	}
	// the source's TOML keys are not read for a channel without a source
	if _, _, err := runtime.ParseConfigEnv([]byte(`{"tasker_config":{"path":"`+unset+`"}}`), noEnv); err != nil {
		t.Fatalf("a channel without a source read ${DATABASE_URL}: %v", err)
	}
}
