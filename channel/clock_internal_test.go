package channel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// within checks that t's wall reading lies between before's and after's
// (time.Now readings taken around it), give or take slack: an anchor's two
// clock reads are not simultaneous. slack is a tolerance of the reading,
// not a performance bound; no load can make this fail.
func within(t *testing.T, got, before, after time.Time) {
	t.Helper()
	const slack = time.Millisecond
	w := got.Round(0) // the wall reading alone
	require.False(t, w.Before(before.Round(0).Add(-slack)), "wall %v before %v", w, before)
	require.False(t, w.After(after.Round(0).Add(slack)), "wall %v after %v", w, after)
	require.NotEqual(t, got.String(), w.String(), "a monotonic reading")
}

func TestNow_IsTheWallClockWithAMonotonicReading(t *testing.T) {
	prev := Now()
	for range 10_000 {
		before := time.Now()
		got := Now()
		after := time.Now()
		within(t, got, before, after)
		require.False(t, got.Before(prev), "readings never go back")
		require.GreaterOrEqual(t, got.Sub(prev), time.Duration(0))
		prev = got
	}
}

func TestNow_TakesANewAnchorOnlyWhenItsAnchorIsOld(t *testing.T) {
	fresh := time.Now()
	anchor.Store(&fresh)
	Now()
	if time.Since(fresh) < anchorAge { // (unless this test stalled that long)
		require.Same(t, &fresh, anchor.Load(), "a fresh anchor is kept")
	}

	old := time.Now().Add(-anchorAge) // as if the last anchor were anchorAge old
	anchor.Store(&old)
	before := time.Now()
	got := Now()
	after := time.Now()
	within(t, got, before, after)
	require.NotSame(t, &old, anchor.Load(), "an old anchor is replaced")
	require.Equal(t, got, *anchor.Load(), "by the time.Now reading returned")
}
