package runtime

import (
	"fmt"
	"time"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// Config is a dispatcher's configuration: the channel's limits plus the
// dispatcher's own settings. Its fields are promoted, so cfg.MaxPayloadBytes
// reads the channel's.
type Config struct {
	channel.Config
	// CleanupIntervalMs is the reaper's period; 0 turns the reaper off.
	CleanupIntervalMs int `json:"cleanup_interval_ms"`
	// Source is the config document's "source" object as written (nil:
	// no source): {"<kind>": {...}} with a kind registered by
	// RegisterSource. ParseConfig checks it; New opens it.
	Source []byte `json:"source,omitempty"`
}

// DefaultConfig returns ABI.md's defaults.
func DefaultConfig() Config {
	return Config{Config: channel.DefaultConfig(), CleanupIntervalMs: 1000}
}

// Validate reports the first impossible value, naming its key.
func (c Config) Validate() error {
	if c.CleanupIntervalMs < 0 || c.CleanupIntervalMs > channel.MaxTimeoutMs {
		return fmt.Errorf("%w: config: cleanup_interval_ms = %d is out of range [0, %d]",
			channel.ErrInvalid, c.CleanupIntervalMs, channel.MaxTimeoutMs)
	}
	return c.Config.Validate()
}

// CleanupInterval is CleanupIntervalMs as a duration.
func (c Config) CleanupInterval() time.Duration {
	return time.Duration(c.CleanupIntervalMs) * time.Millisecond
}

// ParseConfig decodes a JSON config document (ABI.md, "Config") over the
// defaults. An empty document means defaults. Unknown keys, wrong types,
// duplicate keys and impossible values are channel.ErrInvalid with a message
// naming the key; then the returned Config is zero.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	err := wire.ParseConfig(data, []wire.ConfigKey{
		{Name: "dispatch_buffer_size", Int: &cfg.DispatchBufferSize},
		{Name: "completion_buffer_size", Int: &cfg.CompletionBufferSize},
		{Name: "max_concurrent_handlers", Int: &cfg.MaxConcurrentHandlers},
		{Name: "handler_timeout_ms", Int: &cfg.HandlerTimeoutMs},
		{Name: "cleanup_interval_ms", Int: &cfg.CleanupIntervalMs},
		{Name: "starvation_warning_threshold_ms", Int: &cfg.StarvationWarningThresholdMs},
		{Name: "max_payload_bytes", Int: &cfg.MaxPayloadBytes},
		{Name: "worker_id", Str: &cfg.WorkerID},
		{Name: "source", Raw: &cfg.Source},
	})
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil && cfg.Source != nil {
		_, err = openSource(cfg.Source) // checks the document; connects nowhere
	}
	if err != nil {
		return Config{}, err
	}
	return cfg, nil
}
