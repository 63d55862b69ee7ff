package channel

import (
	"time"
	"unicode/utf8"
)

// Config holds the limits of one channel. Key names and defaults are those of
// docs/ABI.md ("Config") and of tasker-core's handler_dispatch TOML section; the
// document is parsed by runtime.ParseConfig (internal/wire reads it), and
// the runtime's own settings (cleanup_interval_ms) live in runtime.Config.
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
	// StarvationWarningThresholdMs is the age past which a queued or pending
	// event counts as starving in Stats.
	StarvationWarningThresholdMs int `json:"starvation_warning_threshold_ms"`
	// MaxPayloadBytes bounds the length of every JSON input (dispatch, result).
	MaxPayloadBytes int `json:"max_payload_bytes"`
	// WorkerID names this worker in Stats; free text.
	WorkerID string `json:"worker_id"`
	// MaxCheckpoints bounds the checkpoints of one event: the one that
	// would exceed it ends the event as failed (too_many_checkpoints).
	MaxCheckpoints int `json:"max_checkpoints"`
	// CompletionTimeoutMs is the default timeout of events polled over FFI
	// (tasker-core's ffi_dispatch completion_timeout_ms); 0 means
	// HandlerTimeoutMs. Go handlers always default to HandlerTimeoutMs.
	CompletionTimeoutMs int `json:"completion_timeout_ms"`
}

// Upper bounds that keep a typo from allocating gigabytes.
const (
	maxBufferSize  = 1 << 24
	maxPayloadSize = 1 << 30
)

// MaxTimeoutMs bounds every *_ms setting and an event's timeout_ms.
const MaxTimeoutMs = 1<<31 - 1

// DefaultConfig returns docs/ABI.md's defaults for the channel's keys.
func DefaultConfig() Config {
	return Config{
		DispatchBufferSize:           1000,
		CompletionBufferSize:         1000,
		MaxConcurrentHandlers:        10,
		HandlerTimeoutMs:             30000,
		StarvationWarningThresholdMs: 10000,
		MaxPayloadBytes:              1 << 20,
		MaxCheckpoints:               100000,
	}
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
		check("handler_timeout_ms", c.HandlerTimeoutMs, 1, MaxTimeoutMs),
		check("starvation_warning_threshold_ms", c.StarvationWarningThresholdMs, 0, MaxTimeoutMs),
		check("max_payload_bytes", c.MaxPayloadBytes, 1, maxPayloadSize),
		check("max_checkpoints", c.MaxCheckpoints, 0, MaxTimeoutMs),
		check("completion_timeout_ms", c.CompletionTimeoutMs, 0, MaxTimeoutMs),
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
