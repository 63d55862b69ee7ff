package goprocs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWant: one P more than the runtime's own choice, unless the
// environment set GOMAXPROCS.
func TestWant(t *testing.T) {
	require.Equal(t, 3, Want("", 2))
	require.Equal(t, 2, Want("2", 2), "GOMAXPROCS in the environment is left alone")
	require.Equal(t, 5, Want("5", 5))
}
