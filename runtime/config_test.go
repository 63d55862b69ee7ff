package runtime_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
	rt "github.com/tasker-systems/libtasker/runtime"
)

func TestParseConfig_Defaults(t *testing.T) {
	want := rt.Config{Config: channel.Config{
		DispatchBufferSize:           1000,
		CompletionBufferSize:         1000,
		MaxConcurrentHandlers:        10,
		HandlerTimeoutMs:             30000,
		StarvationWarningThresholdMs: 10000,
		MaxPayloadBytes:              1 << 20,
	}, CleanupIntervalMs: 1000}
	assert.Equal(t, want, rt.DefaultConfig())
	for _, doc := range []string{"", " ", "\n\t", "{}", " { } "} {
		cfg, err := rt.ParseConfig([]byte(doc))
		require.NoError(t, err, "%q", doc)
		assert.Equal(t, want, cfg, "%q", doc)
	}
	cfg, err := rt.ParseConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, want, cfg)
	assert.Equal(t, 30*time.Second, cfg.HandlerTimeout())
}

func TestParseConfig_AllKeys(t *testing.T) {
	cfg, err := rt.ParseConfig([]byte(`{"dispatch_buffer_size":5,"completion_buffer_size":7,
		"max_concurrent_handlers":7,"handler_timeout_ms":1,"cleanup_interval_ms":0,
		"starvation_warning_threshold_ms":3,"max_payload_bytes":64,"worker_id":"w-\u00e9"}`))
	require.NoError(t, err)
	assert.Equal(t, rt.Config{Config: channel.Config{
		DispatchBufferSize: 5, CompletionBufferSize: 7, MaxConcurrentHandlers: 7,
		HandlerTimeoutMs: 1, StarvationWarningThresholdMs: 3,
		MaxPayloadBytes: 64, WorkerID: "w-é",
	}, CleanupIntervalMs: 0}, cfg)
	// keys left out keep their defaults
	cfg, err = rt.ParseConfig([]byte(`{"worker_id":null,"max_concurrent_handlers":1}`))
	require.NoError(t, err)
	want := rt.DefaultConfig()
	want.MaxConcurrentHandlers = 1
	assert.Equal(t, want, cfg)
}

func TestParseConfig_BadInput(t *testing.T) {
	cases := []struct{ name, doc, mention string }{
		{"null", `null`, "object"},
		{"array", `[]`, "object"},
		{"unknown key", `{"max_concurrency":5}`, `"max_concurrency"`},
		{"duplicate key", `{"dispatch_buffer_size":5,"dispatch_buffer_size":6}`, `duplicate key "dispatch_buffer_size"`},
		{"completion < max concurrent", `{"completion_buffer_size":9,"max_concurrent_handlers":10}`, "completion_buffer_size"},
		{"completion < default max concurrent", `{"completion_buffer_size":5}`, "completion_buffer_size"},
		{"string int", `{"dispatch_buffer_size":"5"}`, `"dispatch_buffer_size"`},
		{"float int", `{"handler_timeout_ms":1.5}`, `"handler_timeout_ms"`},
		{"exp int", `{"handler_timeout_ms":1e3}`, `"handler_timeout_ms"`},
		{"bool int", `{"cleanup_interval_ms":true}`, `"cleanup_interval_ms"`},
		{"null int", `{"max_payload_bytes":null}`, `"max_payload_bytes"`},
		{"worker_id number", `{"worker_id":5}`, `"worker_id"`},
		{"worker_id bad utf8", "{\"worker_id\":\"\xff\"}", "UTF-8"},
		{"too large", `{"handler_timeout_ms":2147483648}`, `"handler_timeout_ms"`},
		{"overflow", `{"dispatch_buffer_size":99999999999999999999}`, `"dispatch_buffer_size"`},
		{"buffer too large", `{"dispatch_buffer_size":2147483647}`, `dispatch_buffer_size`},
		{"zero dispatch", `{"dispatch_buffer_size":0}`, "dispatch_buffer_size"},
		{"zero completion", `{"completion_buffer_size":0}`, "completion_buffer_size"},
		{"zero max concurrent", `{"max_concurrent_handlers":0}`, "max_concurrent_handlers"},
		{"zero handler timeout", `{"handler_timeout_ms":0}`, "handler_timeout_ms"},
		{"zero max payload", `{"max_payload_bytes":0}`, "max_payload_bytes"},
		{"trailing", `{} {}`, "trailing"},
	}
	for _, key := range []string{"dispatch_buffer_size", "completion_buffer_size", "max_concurrent_handlers",
		"handler_timeout_ms", "cleanup_interval_ms", "starvation_warning_threshold_ms", "max_payload_bytes"} {
		cases = append(cases,
			struct{ name, doc, mention string }{"negative " + key, `{"` + key + `":-1}`, key},
			struct{ name, doc, mention string }{"very negative " + key, `{"` + key + `":-9223372036854775808}`, key},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := rt.ParseConfig([]byte(tc.doc))
			ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
			assert.Contains(t, err.Error(), tc.mention)
			assert.Equal(t, rt.Config{}, cfg)
		})
	}
	// equal sizes are allowed
	_, err := rt.ParseConfig([]byte(`{"completion_buffer_size":10,"max_concurrent_handlers":10}`))
	require.NoError(t, err)
	// New validates too, in both packages
	bad := rt.DefaultConfig()
	bad.CompletionBufferSize = 1
	_, err = channel.New(bad.Config)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	_, err = rt.New(bad)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	bad = rt.DefaultConfig()
	bad.CleanupIntervalMs = -1
	_, err = rt.New(bad)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
}

func TestStats_JSONHasABIKeys(t *testing.T) {
	d := newDisp(t, nil)
	var m map[string]any
	b, err := json.Marshal(d.Stats())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"dispatched", "polled", "completed", "failed", "timed_out", "cancelled",
		"late_completions", "rejected_full", "queued", "pending", "undelivered", "max_concurrent_handlers",
		"oldest_pending_age_ms", "oldest_pending_event_id", "oldest_queued_age_ms", "starvation_detected",
		"starving_event_count", "overdue_go_handlers", "rejected_invalid",
		"callbacks_run", "callbacks_panicked", "callbacks_dropped"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, float64(10), m["max_concurrent_handlers"])
	assert.Nil(t, m["oldest_pending_event_id"])
}
