package channel

import (
	"strconv"

	"github.com/google/uuid"
)

// Checkpoint ends the current run of a pending FFI event without a
// completion and sends the event back to the end of its queue with cp: the
// next poll hands it out again (same EventID) with cp in Event.Checkpoint,
// Count set to its checkpoints so far, and its deadline restarts at that
// poll. An accepted dispatch still ends exactly once (rule 1), however many
// checkpoints it takes; its Completion carries their number and the time
// of its first poll.
//
// It never waits and never fails for lack of room: the event keeps the
// place it held, so a queue may hold up to MaxConcurrentHandlers events
// beyond DispatchBufferSize (Enqueue still sees it full while it does).
// A checkpoint beyond MaxCheckpoints ends the event instead, as failed with
// error_type too_many_checkpoints, and returns nil: the run is over either
// way. An invalid cp is ErrInvalid or ErrTooBig and changes nothing; an
// event that is not pending (never polled, queued again after a
// checkpoint, ended, unknown, or run by a Go handler) is ErrNotPending and
// counts in late_completions.
//
// A source event (FeedSource) is not queued again at once: it is held,
// still counted as running, until its source has persisted cp
// (TakeSourceWork hands the checkpoint over, SourceCheckpointSaved queues
// the event again), so that the progress a worker sees on its next run is
// already durable. Checkpoint itself still never waits.
func (c *Channel) Checkpoint(id uuid.UUID, cp Checkpoint) error {
	if err := ValidateCheckpoint(&cp, c.cfg.MaxPayloadBytes); err != nil {
		return err
	}
	return c.checkpoint(id, cp)
}

// CheckpointParser decodes a checkpoint document. Like ResultParser it
// must reject every document whose Checkpoint ValidateCheckpoint would
// reject. wire.ParseCheckpoint is the module's one.
type CheckpointParser func(doc []byte, maxBytes int) (Checkpoint, error)

// CheckpointJSON parses a checkpoint document with parse and applies it
// like Checkpoint. A document that does not parse changes nothing.
func (c *Channel) CheckpointJSON(id uuid.UUID, doc []byte, parse CheckpointParser) error {
	cp, err := parse(doc, c.cfg.MaxPayloadBytes)
	if err != nil {
		return err
	}
	return c.checkpoint(id, cp)
}

// checkpoint applies a validated checkpoint.
func (c *Channel) checkpoint(id uuid.UUID, cp Checkpoint) error {
	c.mu.Lock()
	defer c.unlock()
	e := c.live.get(id)
	if e == nil || e.state != statePending || e.kind != KindFFI || e.saving {
		return c.notPendingLocked(id, e)
	}
	if e.checkpoints >= c.cfg.MaxCheckpoints {
		c.endLocked(e, StatusFailed, Result{Error: &ErrorInfo{
			Message: "checkpoint " + strconv.Itoa(e.checkpoints+1) + " exceeds max_checkpoints = " +
				strconv.Itoa(c.cfg.MaxCheckpoints) + ": the step was ended",
			ErrorType: ErrorTypeTooManyCheckpoints,
		}}, true)
		c.kickLocked()
		return nil
	}
	e.checkpoints++
	cp.Count = e.checkpoints
	e.ev.Checkpoint = &cp // a new value: events handed out earlier keep theirs
	c.st.Checkpoints++
	if e.src {
		c.holdForSourceLocked(e, cp) // source.go: back to the queue once persisted
		return nil
	}
	c.requeueLocked(e)
	return nil
}

// requeueLocked sends the pending event e back to the end of its queue,
// keeping its room (after a checkpoint, or once its source saved one), and
// kicks the waiters. c.mu is held.
func (c *Channel) requeueLocked(e *entry) {
	c.unlinkPendingLocked(e)
	e.state = stateQueued
	e.queuedAt = Now()
	c.queues[e.kind].push(e)
	c.kickLocked()
}
