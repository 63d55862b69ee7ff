//go:build linux

package runtime_test

import (
	"context"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	rt "github.com/tasker-systems/libtasker/runtime"
)

// readable asks ppoll(2) with a zero timeout whether fd is readable; false
// also for a closed descriptor (POLLNVAL), which closed reports.
func readable(t *testing.T, fd int) (ok bool, closed bool) {
	t.Helper()
	type pollFd struct {
		fd      int32
		events  int16
		revents int16
	}
	p := pollFd{fd: int32(fd), events: 0x1}
	var ts syscall.Timespec
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		require.Zero(t, errno)
		return n == 1 && p.revents&0x1 != 0, p.revents&0x20 != 0
	}
}

// TestReadyFDFollowsGoHandlers: Go handlers share the running bound, so
// while they hold every slot the event descriptor is unreadable even with
// FFI events queued; it turns readable when they return. Close makes both
// descriptors readable-then-closed and ReadyFD then fails with EBADF.
func TestReadyFDFollowsGoHandlers(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 1; c.CompletionBufferSize = 4 },
		rt.WithHandler("slow", rt.HandlerFunc(func(ctx context.Context, _ *channel.Event) (channel.Result, error) {
			started <- struct{}{}
			<-release
			return channel.Result{Success: true}, nil
		})))
	efd, err := d.ReadyFD(channel.StreamEvents)
	require.NoError(t, err)
	again, err := d.ReadyFD(channel.StreamEvents)
	require.NoError(t, err)
	require.Equal(t, efd, again, "one descriptor per stream")
	cfd, err := d.ReadyFD(channel.StreamCompletions)
	require.NoError(t, err)
	require.NotEqual(t, efd, cfd)

	dispatch(t, d, ev("slow"))
	<-started
	dispatch(t, d, ev("ffi"))
	r, _ := readable(t, efd)
	require.False(t, r, "the Go handler holds the only slot: poll would be EMPTY")
	_, err = d.Poll(context.Background(), 0)
	require.ErrorIs(t, err, channel.ErrEmpty)
	close(release)
	require.Eventually(t, func() bool { r, _ := readable(t, efd); return r }, 10*time.Second, time.Millisecond)
	r, _ = readable(t, cfd)
	require.True(t, r, "the Go handler's completion is in the stream")

	d.Close()
	_, closedE := readable(t, efd)
	_, closedC := readable(t, cfd)
	require.True(t, closedE && closedC, "Close closes both descriptors")
	_, err = d.ReadyFD(channel.StreamEvents)
	require.ErrorIs(t, err, rt.ErrReadyClosed)
}
