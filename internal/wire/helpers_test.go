package wire_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
)

var bg = context.Background()

// newChan makes a channel from the defaults, modified by mod (for the tests
// that feed parsed documents to the state machine).
func newChan(t testing.TB, mod func(*channel.Config)) *channel.Channel {
	t.Helper()
	cfg := channel.DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := channel.New(cfg)
	require.NoError(t, err)
	return c
}
