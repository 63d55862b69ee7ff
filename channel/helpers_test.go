package channel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
)

// wait is the generous upper limit for anything a test awaits. It is a
// deadlock detector, never a performance threshold.
const wait = 20 * time.Second

var bg = context.Background()

// tb is what both *testing.T and *rapid.T provide.
type tb interface {
	Helper()
	require.TestingT
}

// newChan makes a channel from the defaults, modified by mod.
func newChan(t tb, mod func(*channel.Config)) *channel.Channel {
	t.Helper()
	cfg := channel.DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := channel.New(cfg)
	require.NoError(t, err)
	return c
}

// ev returns a valid event with fresh task and step UUIDs.
func ev(handler string) channel.Event {
	return channel.Event{TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: handler}
}

func ok() channel.Result {
	return channel.Result{Success: true, Result: []byte(`{"ok":true}`)}
}

func failed(msg string) channel.Result {
	return channel.Result{Error: &channel.ErrorInfo{Message: msg, ErrorType: "custom", Retryable: false}}
}

// enqueue dispatches e (FFI) without waiting and requires success.
func enqueue(t testing.TB, c *channel.Channel, e channel.Event) uuid.UUID {
	t.Helper()
	id, err := c.Enqueue(bg, e, channel.KindFFI, 0)
	require.NoError(t, err)
	require.NotEqual(t, uuid.Nil, id)
	return id
}

// enqueueN dispatches n events and returns their ids in dispatch order.
func enqueueN(t testing.TB, c *channel.Channel, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = enqueue(t, c, ev("h"))
	}
	return ids
}

// poll takes one event without waiting and requires success.
func poll(t testing.TB, c *channel.Channel) channel.Event {
	t.Helper()
	e, err := c.Poll(bg, 0)
	require.NoError(t, err)
	return e
}

// next takes one completion without waiting and requires success.
func next(t testing.TB, c *channel.Channel) channel.Completion {
	t.Helper()
	comp, err := c.NextCompletion(bg, 0)
	require.NoError(t, err)
	return comp
}

// drain takes every completion currently in the stream.
func drain(t testing.TB, c *channel.Channel) []channel.Completion {
	t.Helper()
	var out []channel.Completion
	for {
		comp, err := c.NextCompletion(bg, 0)
		if err != nil {
			require.True(t, errors.Is(err, channel.ErrEmpty) || errors.Is(err, channel.ErrClosed), "unexpected error %v", err)
			return out
		}
		out = append(out, comp)
	}
}

func ids(cs []channel.Completion) []uuid.UUID {
	out := make([]uuid.UUID, len(cs))
	for i := range cs {
		out[i] = cs[i].EventID
	}
	return out
}

type result struct {
	id  uuid.UUID
	err error
}
