package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpareProcessor: the library runs with one P more than the runtime's
// own choice, unless the environment set GOMAXPROCS (procs.go).
func TestSpareProcessor(t *testing.T) {
	want, cur := procsWanted("", 2)
	require.Equal(t, 3, want)
	require.Equal(t, 2, cur)
	want, _ = procsWanted("2", 2)
	require.Equal(t, 2, want, "GOMAXPROCS in the environment is left alone")
}
