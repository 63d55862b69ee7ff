package readyfd

import (
	"syscall"
	"testing"
)

// TestSetTrueIsAlwaysANewEdge: an edge-triggered waiter (EPOLLET) hears
// every Set(true), also one made while the descriptor is already readable
// (the channel owes it one after a not-ready gap it could not show).
func TestSetTrueIsAlwaysANewEdge(t *testing.T) {
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(ep)
	const epollET = 1 << 31 // syscall.EPOLLET is declared negative
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: int32(f.Fd())}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, f.Fd(), &ev); err != nil {
		t.Fatal(err)
	}
	edges := func() int {
		evs := make([]syscall.EpollEvent, 4)
		for {
			n, err := syscall.EpollWait(ep, evs, 0)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	if n := edges(); n != 0 {
		t.Fatalf("a new descriptor reported %d edges", n)
	}
	for i, step := range []struct {
		set   bool
		edges int
	}{{true, 1}, {true, 1}, {false, 0}, {false, 0}, {true, 1}} {
		f.Set(step.set)
		if n := edges(); n != step.edges {
			t.Fatalf("step %d: Set(%v) gave %d edges, want %d", i, step.set, n, step.edges)
		}
		if n := edges(); n != 0 {
			t.Fatalf("step %d: an edge reported twice", i)
		}
	}
}
