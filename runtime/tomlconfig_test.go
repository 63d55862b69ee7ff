package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
	rt "github.com/tasker-systems/libtasker/runtime"
)

const merged = "../internal/tomlconfig/testdata/merged/complete-worker.toml"

func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func doc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TOML values apply under the defaults' keys; keys given in JSON win; every
// key has a source.
func TestParseConfigEnv_TOMLUnderJSON(t *testing.T) {
	cfg, src, err := rt.ParseConfigEnv(doc(t, map[string]any{
		"tasker_config":           map[string]any{"path": merged},
		"max_concurrent_handlers": 3,
		"cleanup_interval_ms":     0,
	}), envOf())
	require.NoError(t, err)
	hd := merged + ":worker.mpsc_channels.handler_dispatch."
	assert.Equal(t, 2048, cfg.DispatchBufferSize)
	assert.Equal(t, 512, cfg.CompletionBufferSize)
	assert.Equal(t, 3, cfg.MaxConcurrentHandlers, "JSON wins over TOML's 32")
	assert.Equal(t, 45000, cfg.HandlerTimeoutMs)
	assert.Equal(t, 15000, cfg.StarvationWarningThresholdMs)
	assert.Equal(t, 20000, cfg.CompletionTimeoutMs)
	assert.Equal(t, map[string]string{
		"dispatch_buffer_size":            hd + "dispatch_buffer_size",
		"completion_buffer_size":          hd + "completion_buffer_size",
		"max_concurrent_handlers":         "json",
		"handler_timeout_ms":              hd + "handler_timeout_ms",
		"cleanup_interval_ms":             "json",
		"starvation_warning_threshold_ms": merged + ":worker.mpsc_channels.ffi_dispatch.starvation_warning_threshold_ms",
		"max_payload_bytes":               "default",
		"worker_id":                       "default",
		"max_checkpoints":                 "default",
		"completion_timeout_ms":           merged + ":worker.mpsc_channels.ffi_dispatch.completion_timeout_ms",
	}, src)

	// without tasker_config (or with null) every source is default or json
	for _, d := range []string{`{"worker_id":"w"}`, `{"worker_id":"w","tasker_config":null}`} {
		cfg, src, err = rt.ParseConfigEnv([]byte(d), envOf())
		require.NoError(t, err)
		assert.Equal(t, rt.DefaultConfig().DispatchBufferSize, cfg.DispatchBufferSize)
		assert.Equal(t, "json", src["worker_id"])
		assert.Equal(t, "default", src["dispatch_buffer_size"])
	}
}

// "env" follows TASKER_CONFIG_PATH, else TASKER_CONFIG_ROOT + TASKER_ENV,
// through the lookup given (the C layer's getenv), also for ${VAR}.
func TestParseConfigEnv_Env(t *testing.T) {
	root := "../internal/tomlconfig/testdata/tasker"
	cfg, src, err := rt.ParseConfigEnv([]byte(`{"tasker_config":"env"}`),
		envOf("TASKER_CONFIG_ROOT", root, "TASKER_ENV", "production", "TASKER_MAX_CONCURRENT_HANDLERS", "48"))
	require.NoError(t, err)
	assert.Equal(t, 48, cfg.MaxConcurrentHandlers)
	assert.Equal(t, 5000, cfg.DispatchBufferSize)
	assert.Equal(t, filepath.Join(root, "environments/production/worker.toml")+
		":worker.mpsc_channels.handler_dispatch.max_concurrent_handlers", src["max_concurrent_handlers"])

	cfg, _, err = rt.ParseConfigEnv([]byte(`{"tasker_config":"env"}`),
		envOf("TASKER_CONFIG_ROOT", root, "TASKER_CONFIG_PATH", merged))
	require.NoError(t, err)
	assert.Equal(t, 32, cfg.MaxConcurrentHandlers, "TASKER_CONFIG_PATH wins")

	_, _, err = rt.ParseConfigEnv([]byte(`{"tasker_config":"env"}`), envOf())
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	assert.Contains(t, err.Error(), "TASKER_CONFIG_PATH")
}

// Every TOML error is ErrInvalid naming file and key; an impossible
// combination names where the TOML value came from.
func TestParseConfigEnv_Errors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("[worker.mpsc_channels.handler_dispatch]\ndispatch_buffer_size = 1.5\n"), 0o644))
	for _, c := range []struct {
		doc      string
		mentions []string
	}{
		{`{"tasker_config":{"path":"` + bad + `"}}`, []string{bad, "worker.mpsc_channels.handler_dispatch.dispatch_buffer_size", "a float"}},
		{`{"tasker_config":{"path":"` + merged + `"},"completion_buffer_size":8}`,
			[]string{"completion_buffer_size (8) must be >= max_concurrent_handlers (32)", "max_concurrent_handlers from " + merged}},
		{`{"tasker_config":{"path":"` + merged + `"},"max_payload_bytes":0}`, []string{"max_payload_bytes"}},
		{`{"tasker_config":5}`, []string{"tasker_config", "a number"}},
		{`{"tasker_config":"ENV"}`, []string{"tasker_config", `"ENV"`}},
		{`{"tasker_config":{"path":""}}`, []string{"tasker_config", `"path"`, "non-empty"}},
		{`{"tasker_config":{"root":"x","path":"y"}}`, []string{"either path or root"}},
		{`{"tasker_config":{"path":"x","environment":"test"}}`, []string{"environment goes with root"}},
		{`{"tasker_config":{"root":"x","environment":7}}`, []string{`"environment"`}},
		{`{"tasker_config":{"file":"x"}}`, []string{`unknown key "file"`}},
		{`{"tasker_config":{"path":"x","path":"y"}}`, []string{`duplicate key "path"`}},
		{`{"tasker_config":{}}`, []string{"give path"}},
		{`{"tasker_config":{"path":"/nonexistent.toml"}}`, []string{"/nonexistent.toml"}},
	} {
		cfg, src, err := rt.ParseConfigEnv([]byte(c.doc), envOf())
		ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
		for _, m := range c.mentions {
			assert.Contains(t, err.Error(), m, c.doc)
		}
		assert.Equal(t, rt.Config{}, cfg)
		assert.Nil(t, src)
	}
}

// tasker_stats' config_sources: the dispatcher reports what it was given.
func TestStats_ConfigSources(t *testing.T) {
	cfg, src, err := rt.ParseConfigEnv([]byte(`{"tasker_config":{"path":"`+merged+`"}}`), envOf())
	require.NoError(t, err)
	d, err := rt.New(cfg, rt.WithConfigSources(src))
	require.NoError(t, err)
	defer d.Close()
	var m map[string]any
	require.NoError(t, json.Unmarshal(doc(t, d.Stats()), &m))
	cs, ok := m["config_sources"].(map[string]any)
	require.True(t, ok, "stats has config_sources: %v", m)
	assert.Equal(t, "default", cs["worker_id"])
	assert.Equal(t, merged+":worker.mpsc_channels.handler_dispatch.dispatch_buffer_size", cs["dispatch_buffer_size"])
	assert.EqualValues(t, 32, m["max_concurrent_handlers"])
}
