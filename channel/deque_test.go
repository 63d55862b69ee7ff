package channel

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The deque against a slice: random pushes, pops and reserves (so the ring
// wraps and grows with elements on both sides of its end), every element
// checked after each step. Its positions wrap with a mask, which is right
// only while the buffer's length is a power of two.
func TestDeque_MatchesASliceThroughWrapsAndGrowth(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var d deque[int]
	var model []int
	next := 0
	for step := range 4000 {
		pushes := 5 // of 10: phases that grow the deque and phases that drain it
		if step/500%2 == 1 {
			pushes = 3
		}
		switch op := r.IntN(10); {
		case op < pushes:
			d.push(next)
			model = append(model, next)
			next++
		case op < 9 && len(model) > 0:
			require.Equal(t, model[0], *d.front(), "step %d", step)
			require.Equal(t, model[0], d.pop(), "step %d", step)
			model = model[1:]
		case op == 9:
			n := len(model) + r.IntN(40)
			d.reserve(n)
			require.GreaterOrEqual(t, len(d.buf), n)
		}
		require.Equal(t, len(model), d.len())
		require.Zero(t, len(d.buf)&(len(d.buf)-1), "buffer length %d is not a power of two", len(d.buf))
		for i, v := range model {
			require.Equal(t, v, *d.at(i), "step %d, element %d", step, i)
		}
		if len(model) > 0 {
			require.Equal(t, model[len(model)-1], *d.back(), "step %d", step)
		}
	}
}
