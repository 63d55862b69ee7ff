package channel_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
)

// A checkpoint puts its event back in the queue and frees a running slot:
// both the waker (threads parked in C) and the readiness watchers
// (tasker_event_fd) must hear of it, or a poll waiting at the in-flight
// bound sleeps for ever (C harness: checkpoint_wakes_poll).
func TestCheckpointWakesParkedPollersAndReadiness(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 1 })
	l := watch(c)
	var w watcher
	c.WatchReady(channel.StreamEvents, w.fn)
	a := enqueue(t, c, ev("h"))
	poll(t, c)
	l.take()
	require.False(t, w.state, "at the running bound: nothing to poll")
	require.NoError(t, c.Checkpoint(a, channel.Checkpoint{Cursor: []byte(`1`), ItemsProcessed: 1}))
	require.Equal(t, [][3]bool{{true, false, false}}, l.take(), "the checkpoint tells the waker")
	require.True(t, w.state, "and the event descriptor is readable")
	require.Equal(t, a, poll(t, c).EventID)
}
