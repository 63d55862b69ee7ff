package readyfd

import (
	"encoding/binary"
	"syscall"
)

const (
	efdCloexec  = syscall.O_CLOEXEC
	efdNonblock = syscall.O_NONBLOCK
)

// open makes an eventfd (counter 0: not readable), close-on-exec and
// non-blocking.
func open() (r, w int, err error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, efdCloexec|efdNonblock, 0)
	if errno != 0 {
		return -1, -1, errno
	}
	return int(fd), int(fd), nil
}

// raise adds 1 to the counter: readable. The counter is 0 before (Set calls
// it only on a change), so it cannot overflow.
func raise(fd int) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_ = retry(func() error { _, err := syscall.Write(fd, one[:]); return err })
}

// drain resets the counter to 0: not readable. EAGAIN (already 0) is fine.
func drain(fd int) {
	var buf [8]byte
	_ = retry(func() error { _, err := syscall.Read(fd, buf[:]); return err })
}
