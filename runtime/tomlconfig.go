package runtime

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/strictjson"
	"github.com/tasker-systems/libtasker/internal/tomlconfig"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// Where a setting came from, as ParseConfigEnv reports it; a setting read
// from tasker-core's TOML has "<file>:<table>.<key>" instead.
const (
	SourceDefault = "default"
	SourceJSON    = "json"
)

// WithConfigSources records where each setting came from (ParseConfigEnv's
// second result), for Stats.ConfigSources (tasker_stats' config_sources).
func WithConfigSources(sources map[string]string) Option {
	return func(o *options) { o.sources = sources }
}

// configKeys lists the config document's keys and their destinations in
// cfg, in the order error messages list them.
func configKeys(cfg *Config) []wire.ConfigKey {
	return []wire.ConfigKey{
		{Name: "dispatch_buffer_size", Int: &cfg.DispatchBufferSize},
		{Name: "completion_buffer_size", Int: &cfg.CompletionBufferSize},
		{Name: "max_concurrent_handlers", Int: &cfg.MaxConcurrentHandlers},
		{Name: "handler_timeout_ms", Int: &cfg.HandlerTimeoutMs},
		{Name: "cleanup_interval_ms", Int: &cfg.CleanupIntervalMs},
		{Name: "starvation_warning_threshold_ms", Int: &cfg.StarvationWarningThresholdMs},
		{Name: "max_payload_bytes", Int: &cfg.MaxPayloadBytes},
		{Name: "worker_id", Str: &cfg.WorkerID},
		{Name: "max_checkpoints", Int: &cfg.MaxCheckpoints},
		{Name: "completion_timeout_ms", Int: &cfg.CompletionTimeoutMs},
	}
}

// ParseConfigEnv is ParseConfig plus the "tasker_config" key: the
// handler-dispatch settings of tasker-core's own TOML configuration
// (internal/tomlconfig reads it; see include/tasker.h, "tasker-core TOML").
// Keys given in the JSON document win over the TOML; the TOML wins over the
// defaults. lookup reads environment variables (for "env" and for ${VAR}):
// the C layer passes getenv, because Go's own view of the environment is a
// copy made when the library was loaded.
//
// The second result maps every config key to where its value came from:
// SourceDefault, SourceJSON or "<file>:<table>.<key>". A TOML error, or an
// impossible value, is channel.ErrInvalid naming the file and key; an
// impossible value that came from TOML also names where it came from.
func ParseConfigEnv(data []byte, lookup func(string) (string, bool)) (Config, map[string]string, error) {
	cfg := DefaultConfig()
	keys := configKeys(&cfg)
	seen := make([]bool, len(keys))
	for i := range keys {
		keys[i].Seen = &seen[i]
	}
	var tcRaw []byte
	all := append(keys, wire.ConfigKey{Name: "tasker_config", Raw: &tcRaw},
		wire.ConfigKey{Name: "source", Raw: &cfg.Source})
	if err := wire.ParseConfig(data, all); err != nil {
		return Config{}, nil, err
	}
	sources := make(map[string]string, len(keys))
	for i, k := range keys {
		sources[k.Name] = SourceDefault
		if seen[i] {
			sources[k.Name] = SourceJSON
		}
	}
	var settings *tomlconfig.Settings
	if tcRaw != nil {
		var err error
		// the source's settings are read only when there is a source, so
		// that a channel without one never needs ${DATABASE_URL}
		if settings, err = applyTOML(tcRaw, keys, seen, sources, lookup, cfg.Source != nil); err != nil {
			return Config{}, nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, nil, annotate(err, sources)
	}
	if cfg.Source != nil {
		merged, err := mergeSourceTOML(cfg.Source, settings, sources)
		if err != nil {
			return Config{}, nil, err
		}
		cfg.Source = merged
		if _, err := openSource(cfg.Source); err != nil { // checks the document; connects nowhere
			return Config{}, nil, annotateSource(err, sources)
		}
	}
	return cfg, sources, nil
}

// mergeSourceTOML applies tasker-core's queue settings (settings.Postgres,
// nil without tasker_config) under the keys the source's JSON document did
// not give, and records where every source key came from as
// "source.<kind>.<key>" in sources: "json", "<file>:<table>.<key>", or
// "default" for the kind's other keys (RegisterSourceKeys). It returns
// the document to open. A document of the wrong shape is returned as it is
// (openSource reports it). Only the "postgres" kind has TOML settings.
func mergeSourceTOML(doc []byte, settings *tomlconfig.Settings, sources map[string]string) ([]byte, error) {
	var kind string
	var body []byte
	n := 0
	if strictjson.ScanObject(doc, func(k string, raw []byte) error { n++; kind, body = k, raw; return nil }) != nil ||
		n != 1 || len(body) == 0 || body[0] != '{' {
		return doc, nil
	}
	type pair struct {
		key string
		raw []byte
	}
	var pairs []pair
	given := map[string]bool{}
	if strictjson.ScanObject(body, func(k string, raw []byte) error {
		pairs = append(pairs, pair{k, raw})
		given[k] = true
		return nil
	}) != nil {
		return doc, nil
	}
	prefix := "source." + kind + "."
	for _, k := range sourceKindKeys(kind) {
		if !given[k] {
			sources[prefix+k] = SourceDefault
		}
	}
	for k := range given {
		sources[prefix+k] = SourceJSON
	}
	if settings == nil || kind != "postgres" {
		return doc, nil
	}
	origins, err := tomlconfig.ApplyDefaults(settings.Postgres, given, func(k string, v tomlconfig.Value) error {
		raw, err := json.Marshal(v.Any())
		if err != nil {
			return err
		}
		pairs = append(pairs, pair{k, raw})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: config: source.%s: %v", channel.ErrInvalid, kind, err)
	}
	for k, o := range origins {
		sources[prefix+k] = o
	}
	if !given["dsn"] && origins["dsn"] == "" {
		return nil, fmt.Errorf("%w: config: source.postgres: missing required key \"dsn\": it is not in the JSON document, and tasker_config "+
			"(%s) has no non-empty [common.pgmq_database] url nor [common.database] url", channel.ErrInvalid, strings.Join(settings.Files, ", "))
	}
	out := []byte(`{"` + kind + `":{`)
	for i, p := range pairs {
		if i > 0 {
			out = append(out, ',')
		}
		kq, _ := json.Marshal(p.key)
		out = append(append(append(out, kq...), ':'), p.raw...)
	}
	return append(out, "}}"...), nil
}

// annotateSource adds to a source document's error where the TOML
// settings it names came from ("batch_size from <file>:<table>.<key>").
func annotateSource(err error, sources map[string]string) error {
	msg := err.Error()
	var from []string
	for k, src := range sources {
		if !strings.HasPrefix(k, "source.") || src == SourceDefault || src == SourceJSON {
			continue
		}
		key := k[strings.LastIndexByte(k, '.')+1:]
		if strings.Contains(msg, `"`+key+`"`) {
			from = append(from, key+" from "+src)
		}
	}
	if len(from) == 0 {
		return err
	}
	slices.Sort(from)
	return fmt.Errorf("%w (%s)", err, strings.Join(from, "; "))
}

// applyTOML loads the TOML that tcRaw (the value of "tasker_config") points
// at and sets every setting it has that the JSON document did not give.
func applyTOML(tcRaw []byte, keys []wire.ConfigKey, seen []bool, sources map[string]string, lookup func(string) (string, bool),
	withSource bool) (*tomlconfig.Settings, error) {
	tc, err := wire.ParseTaskerConfig(tcRaw)
	if err != nil {
		return nil, err
	}
	loc := tomlconfig.Location{Path: tc.Path, Root: tc.Root, Environment: tc.Environment}
	switch {
	case tc.Env:
		if loc, err = tomlconfig.LocationFromEnv(lookup); err != nil {
			return nil, fmt.Errorf("%w: config: %v", channel.ErrInvalid, err)
		}
	case tc.Path == "" && tc.Root == "":
		return nil, nil // null: no TOML
	}
	settings, err := tomlconfig.Load(loc, tomlconfig.Options{LookupEnv: lookup, Postgres: withSource})
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", channel.ErrInvalid, err)
	}
	for i, k := range keys {
		v, ok := settings.Channel[k.Name]
		if !ok || seen[i] {
			continue
		}
		if k.Int == nil { // every TOML setting is an integer one
			return nil, fmt.Errorf("%w: config: %s from %s is not an integer setting", channel.ErrInternal, k.Name, v.Origin)
		}
		*k.Int = int(v.Int) // tomlconfig keeps it within [0, MaxInt32]
		sources[k.Name] = v.Origin
	}
	return settings, nil
}

// annotate adds to a validation error where the TOML settings it names
// came from, so that "completion_buffer_size (2) must be >=
// max_concurrent_handlers (3)" says which file set the 3.
func annotate(err error, sources map[string]string) error {
	msg := err.Error()
	var from []string
	for k, src := range sources {
		if src != SourceDefault && src != SourceJSON && strings.Contains(msg, k) {
			from = append(from, k+" from "+src)
		}
	}
	if len(from) == 0 {
		return err
	}
	slices.Sort(from)
	return fmt.Errorf("%w (%s)", err, strings.Join(from, "; "))
}
