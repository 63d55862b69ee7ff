package channel_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
)

// A checkpoint of a source event is held back (still running, not
// pollable, not completable) until the source says it was saved; then it
// is queued again with its checkpoint, or, the lease lost, ends cancelled.
func TestSourceCheckpoint_HeldUntilSaved(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 2 })
	e := ev("walk")
	e.Checkpoint = &channel.Checkpoint{Cursor: json.RawMessage(`3`), ItemsProcessed: 3, Count: 3}
	id, err := c.FeedSource(e, channel.KindFFI)
	require.NoError(t, err)
	p, err := c.Poll(bg, wait)
	require.NoError(t, err)
	require.Equal(t, 3, p.Checkpoint.Count, "a fed checkpoint is handed out")

	require.NoError(t, c.Checkpoint(id, channel.Checkpoint{Cursor: json.RawMessage(`4`), ItemsProcessed: 4}))
	_, err = c.Poll(bg, 50*time.Millisecond)
	require.ErrorIs(t, err, channel.ErrEmpty, "a checkpointed source event was handed out before it was saved")
	require.ErrorIs(t, c.Complete(id, channel.Result{Success: true}), channel.ErrNotPending)
	require.ErrorIs(t, c.Checkpoint(id, channel.Checkpoint{ItemsProcessed: 5}), channel.ErrNotPending)
	st := c.Stats()
	assert.Equal(t, 1, st.Pending, "a saving event holds its running slot")
	assert.Equal(t, 0, c.CleanupTimeouts())

	w, err := c.TakeSourceWork(bg, 8, wait)
	require.NoError(t, err)
	require.Len(t, w.Checkpoints, 1)
	assert.Equal(t, id, w.Checkpoints[0].EventID)
	assert.Equal(t, 4, w.Checkpoints[0].Checkpoint.Count, "the count continues from the fed checkpoint")

	require.NoError(t, c.SourceCheckpointSaved(id, true))
	require.ErrorIs(t, c.SourceCheckpointSaved(id, true), channel.ErrNotPending, "answered twice")
	p, err = c.Poll(bg, wait)
	require.NoError(t, err)
	assert.Equal(t, `4`, string(p.Checkpoint.Cursor))

	// lease lost: ends cancelled, to the source only
	require.NoError(t, c.Checkpoint(id, channel.Checkpoint{Cursor: json.RawMessage(`5`), ItemsProcessed: 5}))
	w, err = c.TakeSourceWork(bg, 8, wait)
	require.NoError(t, err)
	require.Len(t, w.Checkpoints, 1)
	require.NoError(t, c.SourceCheckpointSaved(id, false))
	w, err = c.TakeSourceWork(bg, 8, wait)
	require.NoError(t, err)
	require.Len(t, w.Completions, 1)
	assert.Equal(t, channel.StatusCancelled, w.Completions[0].Status)
	assert.Equal(t, 5, w.Completions[0].Checkpoints)
	_, err = c.NextCompletion(bg, 0)
	require.ErrorIs(t, err, channel.ErrEmpty)
}

// At the drain deadline a saving event is cancelled like a running one;
// its checkpoint is still handed to the source, before the cancellation.
func TestSourceCheckpoint_ShutdownCancelsSaving(t *testing.T) {
	c := newChan(t, nil)
	id, err := c.FeedSource(ev("walk"), channel.KindFFI)
	require.NoError(t, err)
	_, err = c.Poll(bg, wait)
	require.NoError(t, err)
	require.NoError(t, c.Checkpoint(id, channel.Checkpoint{Cursor: json.RawMessage(`1`), ItemsProcessed: 1}))
	c.Shutdown(10 * time.Millisecond)
	w, err := c.TakeSourceWork(bg, 8, wait)
	require.NoError(t, err)
	require.Len(t, w.Checkpoints, 1)
	require.Len(t, w.Completions, 1)
	assert.Equal(t, channel.StatusCancelled, w.Completions[0].Status)
	require.ErrorIs(t, c.SourceCheckpointSaved(id, true), channel.ErrNotPending)
	_, err = c.TakeSourceWork(bg, 8, wait)
	require.ErrorIs(t, err, channel.ErrClosed)
}
