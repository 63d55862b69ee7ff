package runtime

import (
	"encoding/json"

	"github.com/tasker-systems/libtasker/channel"
)

// Stats is the channel's snapshot (channel.Stats, whose fields are
// promoted) plus the dispatcher's own counters. encoding/json writes it as
// one flat object: the channel's keys, then the dispatcher's.
type Stats struct {
	channel.Stats
	// Post-handler callbacks: run to completion, panicked (recovered), and
	// dropped (the callback queue was full, or the drain deadline passed).
	CallbacksRun      uint64 `json:"callbacks_run"`
	CallbacksPanicked uint64 `json:"callbacks_panicked"`
	CallbacksDropped  uint64 `json:"callbacks_dropped"`
	// ConfigSources says where each setting of the config came from (see
	// ParseConfigEnv); absent when the dispatcher was made without
	// WithConfigSources. Shared and read-only.
	ConfigSources map[string]string `json:"config_sources,omitempty"`
	// Source is the source's snapshot (docs/QUEUE.md rule 9); nil without a
	// source. Its keys (source_*) join the flat JSON object.
	Source *SourceStats `json:"-"`
}

// MarshalJSON writes one flat object: the channel's keys, the dispatcher's,
// then the source's when there is one.
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats // without this method
	return json.Marshal(struct {
		plain
		*SourceStats
	}{plain(s), s.Source})
}
