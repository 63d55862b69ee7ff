// Package pgtest starts a throwaway PostgreSQL server for Go tests, with
// tests/pg/pg.sh (one implementation for Go, the Makefile, demos and the
// other languages' tests).
//
// The server lives in <repo>/build/pgtest-<pid>-<n>/: initdb'd there, no TCP
// listener, a unix socket in that folder, fsync off. It is stopped and its
// folder removed by Stop, and also, through pg.sh's watchdog, when the test
// binary dies without running Stop (panic, timeout, kill -9).
//
// When the server binaries are missing, Start skips the test unless the
// environment variable TASKER_PG_REQUIRED is set to 1 (the Makefile sets it
// for `make test`): then a missing server is a test failure, never a skip.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server is one running throwaway server. Its methods are safe for
// concurrent use; Restart and Stop must not race each other.
type Server struct {
	Dir string // the server's folder (data directory, socket, logs)
	DSN string // a libpq URL for the superuser "postgres", database "postgres"

	script  string
	stopped atomic.Bool
}

var seq atomic.Int64

// Required reports whether a missing server must fail tests (TASKER_PG_REQUIRED=1).
func Required() bool { return os.Getenv("TASKER_PG_REQUIRED") == "1" }

// RepoRoot finds the module root (the folder holding go.mod) from the
// working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("pgtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ErrUnavailable is returned by Launch when the server binaries are not installed.
var ErrUnavailable = errors.New("pgtest: PostgreSQL server binaries not found (install: apt-get install -y postgresql)")

// Launch starts a new server. It does not register any cleanup: the caller
// must call Stop (the watchdog stops it anyway when this process exits).
func Launch() (*Server, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "tests", "pg", "pg.sh")
	if err := exec.Command("bash", script, "check").Run(); err != nil {
		return nil, ErrUnavailable
	}
	dir := filepath.Join(root, "build", fmt.Sprintf("pgtest-%d-%d", os.Getpid(), seq.Add(1)))
	out, err := run(script, "start", dir, fmt.Sprint(os.Getpid()))
	if err != nil {
		_, _ = run(script, "stop", dir)
		return nil, err
	}
	return &Server{Dir: dir, DSN: strings.TrimSpace(out), script: script}, nil
}

// Start launches a server for a test and stops it when the test ends
// (t.Cleanup runs also when the test fails or panics). Without server
// binaries it skips, or fails under TASKER_PG_REQUIRED=1.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch()
	if errors.Is(err, ErrUnavailable) && !Required() {
		t.Skipf("%v; set TASKER_PG_REQUIRED=1 to make this a failure", err)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Shared is one server per test binary, started on first use. Call
// StopShared from TestMain after m.Run.
var shared struct {
	sync.Mutex
	s   *Server
	err error
}

// StartShared returns the test binary's shared server, starting it on first
// use. Tests that restart the server must use Start instead.
func StartShared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = Launch()
	}
	if errors.Is(shared.err, ErrUnavailable) && !Required() {
		t.Skipf("%v; set TASKER_PG_REQUIRED=1 to make this a failure", shared.err)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.s
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.s != nil {
		shared.s.Stop()
		shared.s = nil
	}
}

// Restart stops the server (fast shutdown: every connection is dropped) and
// starts it again on the same data and socket.
func (s *Server) Restart() error {
	_, err := run(s.script, "restart", s.Dir)
	return err
}

// Halt stops the server (fast shutdown), keeping its data; Resume starts
// it again on the same socket.
func (s *Server) Halt() error {
	_, err := run(s.script, "halt", s.Dir)
	return err
}

// Resume starts a halted server.
func (s *Server) Resume() error {
	_, err := run(s.script, "start", s.Dir)
	return err
}

// Stop stops the server and removes its folder. Idempotent.
func (s *Server) Stop() {
	if s.stopped.Swap(true) {
		return
	}
	_, _ = run(s.script, "stop", s.Dir)
}

func run(script string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pgtest: pg.sh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
