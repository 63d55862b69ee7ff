package runtime

import "github.com/tasker-systems/libtasker/channel"

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
	// The source's keys (QUEUE.md rule 9); absent without a source.
	*SourceStats
}
