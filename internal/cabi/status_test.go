package cabi_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
)

func TestStatus_Mapping(t *testing.T) {
	for err, code := range map[error]int{
		nil:                    cabi.OK,
		channel.ErrEmpty:       cabi.Empty,
		channel.ErrClosed:      cabi.Closed,
		channel.ErrInvalid:     cabi.Invalid,
		cabi.ErrBadHandle:      cabi.BadHandle,
		channel.ErrNotPending:  cabi.NotFound,
		channel.ErrFull:        cabi.Full,
		channel.ErrShutdown:    cabi.Shutdown,
		channel.ErrTooBig:      cabi.TooBig,
		cabi.ErrForked:         cabi.Forked,
		channel.ErrInternal:    cabi.Internal,
		errors.New("surprise"): cabi.Internal,
	} {
		assert.Equal(t, code, cabi.Status(err), "%v", err)
		if err != nil {
			assert.Equal(t, code, cabi.Status(fmt.Errorf("wrapped: %w", err)), "wrapped %v", err)
		}
	}
	// the numbers are the C ABI's
	assert.Equal(t, []int{0, 1, 2, -1, -2, -3, -4, -5, -6, -7, -8}, []int{cabi.OK, cabi.Empty,
		cabi.Closed, cabi.Invalid, cabi.BadHandle, cabi.NotFound, cabi.Full,
		cabi.Shutdown, cabi.TooBig, cabi.Forked, cabi.Internal})
}
