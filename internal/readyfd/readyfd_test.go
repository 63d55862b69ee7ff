//go:build linux

package readyfd

import (
	"syscall"
	"testing"
	"unsafe"
)

// readable asks ppoll(2) with a zero timeout whether fd is readable.
func readable(t *testing.T, fd int) bool {
	t.Helper()
	type pollFd struct {
		fd      int32
		events  int16
		revents int16
	}
	p := pollFd{fd: int32(fd), events: 0x1} // POLLIN
	var ts syscall.Timespec
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1,
			uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			t.Fatalf("ppoll: %v", errno)
		}
		return n == 1 && p.revents&0x1 != 0
	}
}

func TestLevelFollowsSet(t *testing.T) {
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if readable(t, f.Fd()) {
		t.Fatal("a new fd must not be readable")
	}
	for i, want := range []bool{true, true, false, false, true, false, true} {
		f.Set(want)
		// level-triggered: asking twice gives the same answer
		for k := 0; k < 2; k++ {
			if got := readable(t, f.Fd()); got != want {
				t.Fatalf("step %d: readable = %v after Set(%v)", i, got, want)
			}
		}
		if f.Ready() != want {
			t.Fatalf("step %d: Ready() = %v", i, f.Ready())
		}
	}
}

func TestCloseOnExecAndNonblocking(t *testing.T) {
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(f.Fd()), syscall.F_GETFD, 0)
	if errno != 0 || fl&syscall.FD_CLOEXEC == 0 {
		t.Fatalf("FD_CLOEXEC not set (flags %#x, %v)", fl, errno)
	}
	fl, _, errno = syscall.Syscall(syscall.SYS_FCNTL, uintptr(f.Fd()), syscall.F_GETFL, 0)
	if errno != 0 || fl&syscall.O_NONBLOCK == 0 {
		t.Fatalf("O_NONBLOCK not set (flags %#x, %v)", fl, errno)
	}
}

func TestCloseKeepsADupInItsLastState(t *testing.T) {
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	f.Set(true)
	dup, err := syscall.Dup(f.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dup)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	f.Set(false) // after Close: a no-op, never touches a reused descriptor number
	if !readable(t, dup) {
		t.Fatal("a dup must stay readable after Close")
	}
}
