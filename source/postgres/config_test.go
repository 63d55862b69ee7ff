package postgres

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/runtime"
)

const dsn = "postgres://u@/db?host=/nonexistent/libtasker-test"

func TestConfig_Defaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"dsn":"` + dsn + `","queue":"orders"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{DSN: dsn, Queue: "orders", Schema: "pgmq", ResultsQueue: "orders_results", DeadLetterQueue: "orders_dlq",
		CreateQueues: true, VisibilityTimeoutMs: 30000, HeartbeatMs: 10000, BatchSize: 20, PollIntervalMs: 500, MaxAttempts: 5}
	c.explicitResults, c.explicitDLQ = false, false
	if c != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	c, err = ParseConfig([]byte(`{"dsn":"host=/tmp dbname=x","queue":"q","visibility_timeout_ms":900,"create_queues":false,
		"results_queue":"r","dead_letter_queue":"d","schema":"s1","batch_size":1,"poll_interval_ms":5,"max_attempts":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeartbeatMs != 300 || c.CreateQueues || c.ResultsQueue != "r" || c.Schema != "s1" {
		t.Fatalf("parsed %+v", c)
	}
}

// Every bad document is EINVAL and names the key (docs/QUEUE.md, "Configuration").
func TestConfig_Strict(t *testing.T) {
	long := strings.Repeat("q", 45) // + "_results" and + "_dlq" are too long
	for _, tc := range []struct{ doc, key string }{
		{`{"queue":"q"}`, "dsn"},
		{`{"dsn":"` + dsn + `"}`, "queue"},
		{`{"dsn":"` + dsn + `","queue":"q","bogus":1}`, "bogus"},
		{`{"dsn":"` + dsn + `","queue":"q","queue":"r"}`, "queue"},
		{`{"dsn":1,"queue":"q"}`, "dsn"},
		{`{"dsn":"","queue":"q"}`, "dsn"},
		{`{"dsn":"postgres://a:b@[::1","queue":"q"}`, "dsn"},
		{`{"dsn":"` + dsn + `","queue":"Orders"}`, "queue"},
		{`{"dsn":"` + dsn + `","queue":"a-b"}`, "queue"},
		{`{"dsn":"` + dsn + `","queue":""}`, "queue"},
		{`{"dsn":"` + dsn + `","queue":"` + strings.Repeat("q", 48) + `"}`, "queue"},
		{`{"dsn":"` + dsn + `","queue":"` + long + `"}`, "results_queue"},
		{`{"dsn":"` + dsn + `","queue":"` + long + `","results_queue":"r"}`, "dead_letter_queue"},
		{`{"dsn":"` + dsn + `","queue":"q","results_queue":"q"}`, "results_queue"},
		{`{"dsn":"` + dsn + `","queue":"q","dead_letter_queue":"Bad"}`, "dead_letter_queue"},
		{`{"dsn":"` + dsn + `","queue":"q","schema":""}`, "schema"},
		{`{"dsn":"` + dsn + `","queue":"q","schema":"pg mq"}`, "schema"},
		{`{"dsn":"` + dsn + `","queue":"q","create_queues":"yes"}`, "create_queues"},
		{`{"dsn":"` + dsn + `","queue":"q","create_queues":1}`, "create_queues"},
		{`{"dsn":"` + dsn + `","queue":"q","visibility_timeout_ms":"1"}`, "visibility_timeout_ms"},
		{`{"dsn":"` + dsn + `","queue":"q","visibility_timeout_ms":1.5}`, "visibility_timeout_ms"},
		{`{"dsn":"` + dsn + `","queue":"q","visibility_timeout_ms":0}`, "visibility_timeout_ms"},
		{`{"dsn":"` + dsn + `","queue":"q","heartbeat_ms":30000}`, "heartbeat_ms"},
		{`{"dsn":"` + dsn + `","queue":"q","batch_size":0}`, "batch_size"},
		{`{"dsn":"` + dsn + `","queue":"q","batch_size":100000}`, "batch_size"},
		{`{"dsn":"` + dsn + `","queue":"q","poll_interval_ms":-1}`, "poll_interval_ms"},
		{`{"dsn":"` + dsn + `","queue":"q","max_attempts":null}`, "max_attempts"},
		{`{"dsn":"` + dsn + `","queue":"q","max_attempts":3000000000}`, "max_attempts"},
	} {
		_, err := ParseConfig([]byte(tc.doc))
		if !errors.Is(err, channel.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", tc.doc, err)
			continue
		}
		if !strings.Contains(err.Error(), `"`+tc.key+`"`) {
			t.Errorf("%s: error %q does not name %q", tc.doc, err, tc.key)
		}
	}
	// a derived name too long: the message says to name it explicitly
	_, err := ParseConfig([]byte(`{"dsn":"` + dsn + `","queue":"` + long + `"}`))
	if err == nil || !strings.Contains(err.Error(), "explicitly") {
		t.Errorf("derived-name error %v does not say to set it explicitly", err)
	}
	// long queues work when the derived names are given
	if _, err := ParseConfig([]byte(`{"dsn":"` + dsn + `","queue":"` + strings.Repeat("q", 47) + `","results_queue":"r","dead_letter_queue":"d"}`)); err != nil {
		t.Errorf("a 47-character queue with explicit derived names: %v", err)
	}
}

// The config document's "source" key (tasker_new): the kind must be known,
// and the kind's own document is checked strictly, all without connecting.
func TestConfig_SourceKeyOfTheChannelConfig(t *testing.T) {
	good := `{"max_concurrent_handlers":4,"source":{"postgres":{"dsn":"` + dsn + `","queue":"orders"}}}`
	cfg, err := runtime.ParseConfig([]byte(good))
	if err != nil || cfg.Source == nil {
		t.Fatalf("%v %+v", err, cfg)
	}
	for _, tc := range []struct{ doc, want string }{
		{`{"source":1}`, `"source"`},
		{`{"source":{}}`, `"source"`},
		{`{"source":{"kafka":{}}}`, `"kafka"`},
		{`{"source":{"postgres":{},"other":{}}}`, `"source"`},
		{`{"source":{"postgres":[]}}`, `source.postgres`},
		{`{"source":{"postgres":{"dsn":"` + dsn + `","queue":"orders","heartbeat_ms":true}}}`, `"heartbeat_ms"`},
	} {
		_, err := runtime.ParseConfig([]byte(tc.doc))
		if !errors.Is(err, channel.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want EINVAL naming %s", tc.doc, err, tc.want)
		}
	}
}

// tasker_new never waits for the database: with nothing listening it
// returns at once, the source keeps trying in the background and says so
// in its stats, and shutdown stops it promptly.
func TestSource_NewDoesNotWaitForTheDatabase(t *testing.T) {
	cfg, err := runtime.ParseConfig([]byte(`{"source":{"postgres":{"dsn":"` + dsn + `","queue":"orders"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d, err := runtime.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	made := time.Since(start)
	s := d.Stats()
	if s.Source == nil || (s.Source.State != StateConnecting && s.Source.State != StateReconnecting) {
		t.Fatalf("stats right after New: %+v", s.Source)
	}
	waitFor(t, "a connection error in the stats", func() bool { st := d.Stats().Source; return st.Errors > 0 && st.LastError != nil })
	b, _ := json.Marshal(d.Stats())
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"source_state", "source_read", "source_acked", "source_released", "source_lease_lost",
		"source_dead_lettered", "source_heartbeats", "source_errors", "source_last_error"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("stats document lacks %q", k)
		}
	}
	d.Shutdown(0)
	if st := d.Stats().Source.State; st != StateStopped {
		t.Fatalf("state after shutdown: %s", st)
	}
	t.Logf("runtime.New with an unreachable database took %v", made)
}
