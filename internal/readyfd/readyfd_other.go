//go:build unix && !linux

package readyfd

import "syscall"

// open makes a pipe: the read end is handed out, one byte in it means
// readable. Both ends close-on-exec and non-blocking.
func open() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = syscall.Pipe(p[:])
	if err == nil {
		syscall.CloseOnExec(p[0])
		syscall.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, err
	}
	for _, fd := range p {
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(p[0])
			syscall.Close(p[1])
			return -1, -1, err
		}
	}
	return p[0], p[1], nil
}

// raise writes the one byte that makes the read end readable.
func raise(fd int) {
	_ = retry(func() error { _, err := syscall.Write(fd, []byte{1}); return err })
}

// drain reads what is in the pipe (one byte; more only if someone else
// wrote, which the contract forbids).
func drain(fd int) {
	var buf [64]byte
	for {
		n, err := syscall.Read(fd, buf[:])
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 || err != nil {
			return
		}
	}
}
