package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockThread keeps the test's goroutine on one OS thread: tasker_last_error
// is per OS thread, and a goroutine that moved between a failing call and
// the read of its message (or between two calls whose messages it compares)
// would read another thread's.
func lockThread(t *testing.T) {
	goruntime.LockOSThread()
	t.Cleanup(goruntime.UnlockOSThread)
}

const evDoc = `{"task_uuid":"0190a0a0-0000-7000-8000-000000000001","step_uuid":"0190a0a0-0000-7000-8000-000000000002","handler":"h","payload":{"n":1}}`

// Rule 12: a panic inside any export is recovered and becomes
// TASKER_EINTERNAL with a message; out-pointers stay NULL/0. A zero
// dispatcher in the registry makes every method panic (nil dereference).
func TestRule12_EveryExportRecoversPanics(t *testing.T) {
	lockThread(t)
	h := registerBroken()
	const einternal = -8
	calls := map[string]func() callResult{
		"dispatch": func() callResult { _, r := callDispatch(h, evDoc, 0); return r },
		"poll":     func() callResult { return callPoll(h, 0) },
		"poll_batch": func() callResult {
			n, r := callPollBatch(h, 4, 0)
			assert.Equal(t, 0, n, "count after a panic")
			return r
		},
		"complete": func() callResult {
			return callComplete(h, "0190a0a0-0000-7000-8000-000000000009", `{"success":true}`)
		},
		"checkpoint": func() callResult {
			return callCheckpoint(h, "0190a0a0-0000-7000-8000-000000000009", `{"cursor":1,"items_processed":1}`)
		},
		"cleanup_timeouts": func() callResult { _, r := callCleanup(h); return r },
		"next_completion":  func() callResult { return callNext(h, 0) },
		"shutdown":         func() callResult { return callShutdown(h, 0) },
		"stats":            func() callResult { return callStats(h) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			lockThread(t) // a subtest is a goroutine of its own: the call and its last error on one thread
			r := call()
			assert.Equal(t, einternal, r.status)
			assert.Contains(t, r.lastErr, "panic")
			assert.Contains(t, r.lastErr, "tasker_"+name)
			switch name {
			case "poll", "poll_batch", "next_completion", "stats":
				assert.True(t, r.outNil, "out-pointer must be NULL after EINTERNAL")
				assert.Zero(t, r.outLen)
			}
		})
	}
	r := callDestroy(h) // removes it, then panics on Close
	assert.Equal(t, einternal, r.status)
	assert.Equal(t, -2, callDestroy(h).status, "the handle is gone after the failed destroy")
}

// Rule 5: handles are never reused, 0 is never valid, destroyed handles are EBADF.
func TestRule5_HandlesNeverReused(t *testing.T) {
	lockThread(t)
	seen := map[uint64]bool{}
	for range 50 {
		h, r := callNew(`{"cleanup_interval_ms":0}`)
		require.Equal(t, 0, r.status, r.lastErr)
		require.NotZero(t, h)
		require.False(t, seen[h], "handle %d reused", h)
		seen[h] = true
		require.Equal(t, 0, callDestroy(h).status)
		assert.Equal(t, -2, callStats(h).status)
		assert.Equal(t, -2, callDestroy(h).status)
	}
	assert.Equal(t, -2, callStats(0).status)
	assert.Contains(t, callStats(0).lastErr, "handle 0")
}

// Concurrent destroys of one handle: exactly one wins.
func TestRule5_ConcurrentDestroyOneWins(t *testing.T) {
	lockThread(t)
	for range 20 {
		h, r := callNew("")
		require.Equal(t, 0, r.status)
		var wg sync.WaitGroup
		results := make([]int, 8)
		for i := range results {
			wg.Add(1)
			go func() { defer wg.Done(); results[i] = callDestroy(h).status }()
		}
		wg.Wait()
		ok := 0
		for _, st := range results {
			if st == 0 {
				ok++
			} else {
				assert.Equal(t, -2, st)
			}
		}
		assert.Equal(t, 1, ok)
	}
}

// Timeouts: -1 waits, < -1 is EINVAL with a message.
func TestTimeoutArgument(t *testing.T) {
	lockThread(t)
	h, _ := callNew("")
	defer callDestroy(h)
	r := callPoll(h, -2)
	assert.Equal(t, -1, r.status)
	assert.Contains(t, r.lastErr, "timeout_ms")
	assert.Equal(t, -1, callShutdown(h, -7).status)
	r = callPoll(h, 0)
	assert.Equal(t, 1, r.status, "EMPTY")
	assert.True(t, r.outNil)
}

// The export layer is a thin conversion: a round trip through it yields the
// documents of docs/ABI.md.
func TestRoundTripThroughExports(t *testing.T) {
	lockThread(t)
	h, r := callNew(`{"max_concurrent_handlers":4,"completion_buffer_size":8}`)
	require.Equal(t, 0, r.status, r.lastErr)
	defer callDestroy(h)
	id, r := callDispatch(h, evDoc, 0)
	require.Equal(t, 0, r.status, r.lastErr)
	require.Len(t, id, 36)
	p := callPoll(h, 1000)
	require.Equal(t, 0, p.status, p.lastErr)
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(p.out), &ev))
	assert.Equal(t, id, ev["event_id"])
	assert.Equal(t, len(p.out), p.outLen)
	require.Equal(t, 0, callComplete(h, id, `{"success":false,"error":{"message":"boom"}}`).status)
	c := callNext(h, 1000)
	require.Equal(t, 0, c.status)
	var comp map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.out), &comp))
	assert.Equal(t, "failed", comp["status"])
	assert.Equal(t, map[string]any{"message": "boom", "error_type": "handler_error", "retryable": true}, comp["error"])
	s := callStats(h)
	require.Equal(t, 0, s.status)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(s.out), &st))
	assert.EqualValues(t, 1, st["failed"])
	assert.Equal(t, 0, callShutdown(h, 0).status)
	assert.Equal(t, 2, callNext(h, 0).status, "CLOSED")
	assert.Equal(t, 2, callPoll(h, -1).status, "CLOSED wakes a -1 poll at once")
	_, r = callDispatch(h, evDoc, 0)
	assert.Equal(t, -5, r.status, "ESHUTDOWN")
}

// tasker_poll_batch takes its events into a reused slice (pollBatchJSON):
// each batch holds exactly the events it took, in dispatch order, never one
// of an earlier batch, also when a smaller batch follows a larger one.
func TestPollBatchThroughExports_EachBatchItsOwn(t *testing.T) {
	lockThread(t)
	h, r := callNew(`{"cleanup_interval_ms":0,"max_concurrent_handlers":100,"completion_buffer_size":100}`)
	require.Equal(t, 0, r.status, r.lastErr)
	defer callDestroy(h)
	batchIDs := func(max uint32, want int) []string {
		t.Helper()
		n, r := callPollBatch(h, max, 0)
		require.Equal(t, 0, r.status, r.lastErr)
		require.Equal(t, want, n)
		var evs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.out), &evs))
		require.Len(t, evs, want)
		ids := make([]string, len(evs))
		for i, ev := range evs {
			ids[i] = ev["event_id"].(string)
		}
		return ids
	}
	var sent []string
	for range 70 {
		id, r := callDispatch(h, evDoc, 0)
		require.Equal(t, 0, r.status, r.lastErr)
		sent = append(sent, id)
	}
	assert.Equal(t, sent[:66], batchIDs(66, 66), "more than the 64 a batch holds without growing")
	assert.Equal(t, sent[66:68], batchIDs(2, 2))
	assert.Equal(t, sent[68:], batchIDs(10, 2), "a batch smaller than max: only what was queued")
	n, r := callPollBatch(h, 4, 0)
	assert.Equal(t, 1, r.status, "EMPTY")
	assert.Equal(t, 0, n)
}

// The event id of complete and checkpoint is read in Go, as strnlen(id, 64)
// would: up to the NUL or 64 bytes, whichever comes first. A bad one is
// EINVAL naming what is wrong with it; a UUID that is not pending ENOENT.
func TestEventIDReading(t *testing.T) {
	id := []byte("0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5f")
	assert.Equal(t, id, bytesUpTo(append(append([]byte(nil), id...), 0, 'x'), 64), "stops at the NUL")
	assert.Empty(t, bytesUpTo([]byte{0, 'a'}, 64), "a NUL first: nothing")
	long := make([]byte, 64)
	for i := range long {
		long[i] = 'a'
	}
	assert.Equal(t, long, bytesUpTo(long, 64), "no NUL in the first 64 bytes: 64, nothing past them read")
	assert.Equal(t, []byte("ab"), bytesUpTo([]byte("abc"), 2))

	lockThread(t)
	h, r := callNew(`{"cleanup_interval_ms":0}`)
	require.Equal(t, 0, r.status, r.lastErr)
	defer callDestroy(h)
	shape := "must be a NUL-terminated 36-character UUID string"
	badUTF8 := append([]byte("0b7e6f9c-1d2a-4c3b-8e9f-0a1b2c3d4e5"), 0xff)
	for _, c := range []struct {
		id   []byte
		want string
	}{
		{[]byte("short"), shape},
		{append(append([]byte(nil), id...), '0'), shape},
		{long, shape},
		{badUTF8, shape},
		{[]byte("zzzzzzzz-1d2a-4c3b-8e9f-0a1b2c3d4e5f"), "is not a UUID"},
	} {
		r := callCompleteRaw(h, c.id, `{"success":true}`)
		assert.Equal(t, -1, r.status, "%q: EINVAL", c.id)
		assert.Contains(t, r.lastErr, c.want, "%q", c.id)
	}
	r = callCompleteRaw(h, id, `{"success":true}`)
	assert.Equal(t, -3, r.status, "a well-formed id that is not pending: ENOENT (%s)", r.lastErr)
}

// EMPTY and CLOSED are not failures: they leave the thread's last error alone.
func TestLastErrorOnlySetByFailures(t *testing.T) {
	lockThread(t)
	h, _ := callNew("")
	defer callDestroy(h)
	r := callComplete(h, "not-a-uuid", `{}`)
	require.Equal(t, -1, r.status)
	msg := r.lastErr
	require.NotEmpty(t, msg)
	assert.Equal(t, msg, callPoll(h, 0).lastErr)
	assert.Equal(t, msg, callStats(h).lastErr)
	_, r = callNew(`{"bogus":1}`)
	assert.Contains(t, r.lastErr, `"bogus"`)
	assert.NotEqual(t, msg, r.lastErr, fmt.Sprintf("new failure replaces %q", msg))
}

// rejected_invalid counts a dispatch refused for its document, ETOOBIG
// included (the C layer refuses an oversized length before reading it);
// an argument error that is not the document (a bad timeout) is not counted.
func TestRejectedInvalid_CountsTooBig(t *testing.T) {
	h, r := callNew(`{"max_payload_bytes":128,"cleanup_interval_ms":0}`)
	require.Equal(t, 0, r.status, r.lastErr)
	defer callDestroy(h)
	rejected := func() float64 {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(callStats(h).out), &m))
		return m["rejected_invalid"].(float64)
	}
	_, r = callDispatch(h, `{"nope":1}`, 0)
	require.Equal(t, -1, r.status)
	assert.Equal(t, 1.0, rejected(), "EINVAL")
	big := fmt.Sprintf(`{"task_uuid":"0190a0a0-0000-7000-8000-000000000001","step_uuid":"0190a0a0-0000-7000-8000-000000000002","handler":"h","payload":"%0200d"}`, 7)
	_, r = callDispatch(h, big, 0)
	require.Equal(t, -6, r.status)
	assert.Equal(t, 2.0, rejected(), "ETOOBIG")
	_, r = callDispatch(h, evDoc, -2)
	require.Equal(t, -1, r.status)
	assert.Equal(t, 2.0, rejected(), "a bad timeout argument")
}

// The Go mirror of shim.c's park slot (park.go) has the C layout: Go bumps
// and reads the very words C threads sleep on.
func TestParkSlotLayout(t *testing.T) {
	c, g := parkLayout()
	require.Equal(t, c, g, "sizeof and offsets of struct park_slot (C) vs parkSlot (Go)")
}

// outStoresKeep holds the live object whose span's tail gives the bad old
// value of TestOutStoresLeaveTheOldCValueAlone (a global: on the heap).
var outStoresKeep []byte

// The out-variables Go writes a document's address into (tasker_poll's
// *event_json and the rest) are C memory. Go must store into them without
// the garbage collector's write barrier, which reads the old value and
// marks it as a Go pointer: an uninitialized C variable may hold anything.
// Here the old value is the last word of the span of a live 40,000-byte
// object (five 8 KiB pages), past the object's end; a store with the
// barrier, made while the collector marks, dies with "found bad pointer in
// Go heap" (either collector: a large object's span has no inline mark
// bits). That cannot be recovered, so the stores run in a child process.
// The bug it guards against crashed one benchmark run in 20 to 80 with
// GOMAXPROCS=3 (tests/bench/NOTES.md 13).
func TestOutStoresLeaveTheOldCValueAlone(t *testing.T) {
	if os.Getenv("TASKER_TEST_OUTSTORES_CHILD") == "1" {
		outStoresKeep = make([]byte, 40000) // its span: five 8 KiB pages from the object's first byte
		old := uintptr(unsafe.Pointer(&outStoresKeep[0])) + 5*8192 - 8
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					goruntime.GC()
				}
			}
		}()
		outStores(old, 300000)
		close(stop)
		<-done
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutStoresLeaveTheOldCValueAlone$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TASKER_TEST_OUTSTORES_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child process failed:\n%s", out)
}
