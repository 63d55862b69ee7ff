package runtime

import (
	"fmt"
	"os"
	"time"

	"github.com/tasker-systems/libtasker/channel"
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

// DefaultConfig returns docs/ABI.md's defaults.
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

// ParseConfig decodes a JSON config document (docs/ABI.md, "Config") over the
// defaults. Only an empty document (no bytes) means defaults; anything else
// must be a JSON object (whitespace alone is ErrInvalid). Unknown keys, wrong types,
// duplicate keys and impossible values are channel.ErrInvalid with a message
// naming the key; then the returned Config is zero.
func ParseConfig(data []byte) (Config, error) {
	cfg, _, err := ParseConfigEnv(data, os.LookupEnv)
	return cfg, err
}
