package channel

import (
	"bytes"
	"math"
	"time"
	"unicode/utf8"
)

// Config holds the limits of one channel. Key names and defaults are those of
// ABI.md ("Config") and of tasker-core's handler_dispatch TOML section.
type Config struct {
	// DispatchBufferSize bounds the events dispatched and not yet started.
	DispatchBufferSize int `json:"dispatch_buffer_size"`
	// CompletionBufferSize bounds running events plus ended events not yet
	// taken from the completion stream. Must be >= MaxConcurrentHandlers.
	CompletionBufferSize int `json:"completion_buffer_size"`
	// MaxConcurrentHandlers bounds the events running at once (polled and not
	// ended, plus Go handlers running).
	MaxConcurrentHandlers int `json:"max_concurrent_handlers"`
	// HandlerTimeoutMs is the default per-event timeout, counted from poll.
	HandlerTimeoutMs int `json:"handler_timeout_ms"`
	// CleanupIntervalMs is the reaper's period; 0 turns the reaper off.
	CleanupIntervalMs int `json:"cleanup_interval_ms"`
	// StarvationWarningThresholdMs is the age past which a queued or pending
	// event counts as starving in Stats.
	StarvationWarningThresholdMs int `json:"starvation_warning_threshold_ms"`
	// MaxPayloadBytes bounds the length of every JSON input (dispatch, result).
	MaxPayloadBytes int `json:"max_payload_bytes"`
	// WorkerID names this worker in Stats; free text.
	WorkerID string `json:"worker_id"`
}

// Upper bounds that keep a typo from allocating gigabytes.
const (
	maxBufferSize  = 1 << 24
	maxTimeoutMs   = 1<<31 - 1
	maxPayloadSize = 1 << 30
)

// DefaultConfig returns ABI.md's defaults.
func DefaultConfig() Config {
	return Config{
		DispatchBufferSize:           1000,
		CompletionBufferSize:         1000,
		MaxConcurrentHandlers:        10,
		HandlerTimeoutMs:             30000,
		CleanupIntervalMs:            1000,
		StarvationWarningThresholdMs: 10000,
		MaxPayloadBytes:              1 << 20,
	}
}

// ParseConfig decodes a JSON config object over the defaults. Empty input
// means defaults. Unknown keys, wrong types, duplicate keys and impossible
// values are ErrInvalid with a message naming the key.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	ints := map[string]*int{
		"dispatch_buffer_size":            &cfg.DispatchBufferSize,
		"completion_buffer_size":          &cfg.CompletionBufferSize,
		"max_concurrent_handlers":         &cfg.MaxConcurrentHandlers,
		"handler_timeout_ms":              &cfg.HandlerTimeoutMs,
		"cleanup_interval_ms":             &cfg.CleanupIntervalMs,
		"starvation_warning_threshold_ms": &cfg.StarvationWarningThresholdMs,
		"max_payload_bytes":               &cfg.MaxPayloadBytes,
	}
	err := scanObject(data, "config", func(key string, raw []byte) error {
		if p, ok := ints[key]; ok {
			n, err := rawInt("config", key, raw, math.MinInt32, math.MaxInt64)
			if err != nil {
				return err
			}
			if n > maxTimeoutMs {
				return invalidf("config: key %q: %d is too large", key, n)
			}
			*p = int(n)
			return nil
		}
		if key == "worker_id" {
			if isNull(raw) {
				cfg.WorkerID = ""
				return nil
			}
			s, err := rawString("config", key, raw)
			cfg.WorkerID = s
			return err
		}
		return invalidf("config: unknown key %q (known: dispatch_buffer_size, completion_buffer_size, "+
			"max_concurrent_handlers, handler_timeout_ms, cleanup_interval_ms, "+
			"starvation_warning_threshold_ms, max_payload_bytes, worker_id)", key)
	})
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first impossible value, naming its key.
func (c Config) Validate() error {
	check := func(key string, v, lo, hi int) error {
		if v < lo || v > hi {
			return invalidf("config: %s = %d is out of range [%d, %d]", key, v, lo, hi)
		}
		return nil
	}
	for _, e := range []error{
		check("dispatch_buffer_size", c.DispatchBufferSize, 1, maxBufferSize),
		check("completion_buffer_size", c.CompletionBufferSize, 1, maxBufferSize),
		check("max_concurrent_handlers", c.MaxConcurrentHandlers, 1, maxBufferSize),
		check("handler_timeout_ms", c.HandlerTimeoutMs, 1, maxTimeoutMs),
		check("cleanup_interval_ms", c.CleanupIntervalMs, 0, maxTimeoutMs),
		check("starvation_warning_threshold_ms", c.StarvationWarningThresholdMs, 0, maxTimeoutMs),
		check("max_payload_bytes", c.MaxPayloadBytes, 1, maxPayloadSize),
	} {
		if e != nil {
			return e
		}
	}
	if c.CompletionBufferSize < c.MaxConcurrentHandlers {
		return invalidf("config: completion_buffer_size (%d) must be >= max_concurrent_handlers (%d): "+
			"every running event needs room for its completion", c.CompletionBufferSize, c.MaxConcurrentHandlers)
	}
	if !utf8.ValidString(c.WorkerID) {
		return invalidf("config: worker_id is not valid UTF-8")
	}
	return nil
}

// HandlerTimeout is HandlerTimeoutMs as a duration.
func (c Config) HandlerTimeout() time.Duration {
	return time.Duration(c.HandlerTimeoutMs) * time.Millisecond
}
