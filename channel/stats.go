package channel

import "time"

// Stats is a snapshot of a channel's counters and gauges. JSON keys are
// docs/ABI.md's. Counters only grow; gauges are read under the same lock, so one
// snapshot is consistent:
//
//	Dispatched == Queued + Pending + Completed + Failed + TimedOut + Cancelled
//	Completed + Failed + TimedOut + Cancelled == Delivered + Undelivered + Discarded + SourceHanded + SourceUntaken
//
// Events fed by a source count like dispatched ones in every counter and
// gauge above, except that their completions are handed to the source
// (SourceHanded, SourceUntaken) instead of the stream (Delivered,
// Undelivered, Discarded).
type Stats struct {
	Dispatched      uint64 `json:"dispatched"`
	Polled          uint64 `json:"polled"`
	StartedGo       uint64 `json:"started_go"`
	Completed       uint64 `json:"completed"`
	Failed          uint64 `json:"failed"`
	TimedOut        uint64 `json:"timed_out"`
	Cancelled       uint64 `json:"cancelled"`
	Delivered       uint64 `json:"delivered"`
	Discarded       uint64 `json:"discarded"`
	LateCompletions uint64 `json:"late_completions"`
	RejectedFull    uint64 `json:"rejected_full"`
	// RejectedInvalid counts dispatches refused for their event or document:
	// ErrInvalid (bad JSON, unknown key, a live event_id...) and ErrTooBig.
	RejectedInvalid uint64 `json:"rejected_invalid"`
	// Checkpoints counts the checkpoints accepted (events sent back to the
	// queue by Checkpoint).
	Checkpoints uint64 `json:"checkpoints"`

	Queued        int `json:"queued"`
	QueuedFFI     int `json:"queued_ffi"`
	QueuedGo      int `json:"queued_go"`
	Pending       int `json:"pending"`
	PendingFFI    int `json:"pending_ffi"`
	RunningGo     int `json:"running_go"`
	OverdueGo     int `json:"overdue_go_handlers"` // see Channel.overdueGo
	Undelivered   int `json:"undelivered"`
	InFlight      int `json:"in_flight"`
	MaxConcurrent int `json:"max_concurrent_handlers"`
	DispatchCap   int `json:"dispatch_buffer_size"`
	CompletionCap int `json:"completion_buffer_size"`

	OldestPendingAgeMs   int64   `json:"oldest_pending_age_ms"`
	OldestPendingEventID *string `json:"oldest_pending_event_id"`
	OldestQueuedAgeMs    int64   `json:"oldest_queued_age_ms"`
	StarvationDetected   bool    `json:"starvation_detected"`
	StarvingEventCount   int     `json:"starving_event_count"`

	State    string `json:"state"`
	WorkerID string `json:"worker_id"`

	// Source events (source.go). Not in the JSON document: the source's own
	// source_* keys describe it there.
	SourceFed     uint64 `json:"-"` // events fed by a source
	SourceHanded  uint64 `json:"-"` // their completions taken by the source
	SourceLive    int    `json:"-"` // queued or pending
	SourceUntaken int    `json:"-"` // ended, completion not yet taken
}

// Stats returns a consistent snapshot (docs/ABI.md, "Stats").
func (c *Channel) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := Now()
	s := c.st
	s.QueuedFFI, s.QueuedGo = c.queues[KindFFI].len(), c.queues[KindGo].len()
	s.Queued = s.QueuedFFI + s.QueuedGo
	s.PendingFFI, s.RunningGo = c.pendingN[KindFFI], c.pendingN[KindGo]
	s.Pending = s.PendingFFI + s.RunningGo
	s.OverdueGo = c.overdueGo
	s.Undelivered = c.stream.len()
	s.SourceLive, s.SourceUntaken = c.srcLive, c.srcDone.len()
	s.InFlight = s.Pending + s.OverdueGo + s.Undelivered + s.SourceUntaken
	s.MaxConcurrent = c.cfg.MaxConcurrentHandlers
	s.DispatchCap = c.cfg.DispatchBufferSize
	s.CompletionCap = c.cfg.CompletionBufferSize
	s.WorkerID = c.cfg.WorkerID
	thr := time.Duration(c.cfg.StarvationWarningThresholdMs) * time.Millisecond
	if e := c.pendList.next; e != &c.pendList {
		s.OldestPendingAgeMs = now.Sub(e.ev.PolledAt).Milliseconds()
		id := e.ev.EventID.String()
		s.OldestPendingEventID = &id
		for ; e != &c.pendList && now.Sub(e.ev.PolledAt) > thr; e = e.next {
			s.StarvingEventCount++
		}
	}
	for k := range c.queues {
		q := &c.queues[k]
		if q.len() == 0 {
			continue
		}
		s.OldestQueuedAgeMs = max(s.OldestQueuedAgeMs, now.Sub((*q.front()).queuedAt).Milliseconds())
		for i := 0; i < q.len() && now.Sub((*q.at(i)).queuedAt) > thr; i++ {
			s.StarvingEventCount++
		}
	}
	s.StarvationDetected = s.StarvingEventCount > 0
	switch {
	case !c.closing:
		s.State = "running"
	case !c.allEndedLocked():
		s.State = "draining"
	default:
		s.State = "closed"
	}
	return s
}
