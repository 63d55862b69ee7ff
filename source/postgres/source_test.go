package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/pgtest"
	"github.com/tasker-systems/libtasker/runtime"
)

// rig is one source feeding one real dispatcher (runtime.New with
// WithSource), with helpers playing the worker threads.
type rig struct {
	t    testing.TB
	db   *testDB
	cfg  Config
	src  *Source
	d    *runtime.Dispatcher
	once sync.Once
}

func startRig(t testing.TB, db *testDB, cfg Config, slots int) *rig {
	t.Helper()
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := runtime.DefaultConfig()
	rc.MaxConcurrentHandlers, rc.DispatchBufferSize, rc.CompletionBufferSize = slots, slots*10, slots*10
	d, err := runtime.New(rc, runtime.WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, db: db, cfg: src.Config(), src: src, d: d}
	t.Cleanup(func() { r.shutdown(0) })
	waitFor(t, "the source to connect", func() bool { return src.Stats().State == StateConnected })
	return r
}

// shutdown is tasker_shutdown: stop reading, drain until the deadline,
// release the rest; it returns when the source has finished.
func (r *rig) shutdown(drain time.Duration) {
	r.once.Do(func() { r.d.Shutdown(drain) })
}

func (r *rig) poll(timeout time.Duration) (channel.Event, bool) {
	ev, err := r.d.Poll(context.Background(), timeout)
	return ev, err == nil
}

func (r *rig) complete(id uuid.UUID, res channel.Result) bool { return r.d.Complete(id, res) == nil }

func ok(v string) channel.Result {
	return channel.Result{Success: true, Result: json.RawMessage(v)}
}

// work polls and completes events with fn in n goroutines until stop.
func (r *rig) work(n int, fn func(ev channel.Event) channel.Result) (stop func()) {
	var wg sync.WaitGroup
	quit := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				ev, got := r.poll(50 * time.Millisecond)
				if got {
					r.complete(ev.EventID, fn(ev))
				}
			}
		}()
	}
	return func() { close(quit); wg.Wait() }
}

// waitFor polls cond until it holds (or fails the test after 30s).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) results() map[int64][]map[string]any {
	r.t.Helper()
	rows, err := r.db.pool.Query(context.Background(), `SELECT message FROM `+Table(r.cfg.Schema, "q", r.cfg.ResultsQueue))
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]map[string]any{}
	for rows.Next() {
		var m map[string]any
		if err := rows.Scan(&m); err != nil {
			r.t.Fatal(err)
		}
		id := int64(m["msg_id"].(float64))
		out[id] = append(out[id], m)
	}
	return out
}

// exactlyOne checks rule 1 for ids: one result each, message archived, not in q_.
func (r *rig) exactlyOne(ids []int64) {
	r.t.Helper()
	res := r.results()
	for _, id := range ids {
		if len(res[id]) != 1 {
			r.t.Errorf("msg_id %d has %d results", id, len(res[id]))
		}
	}
	if q := r.db.count(`SELECT count(*) FROM `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` WHERE msg_id = ANY($1)`, ids); q != 0 {
		r.t.Errorf("%d messages still in q_", q)
	}
	if a := r.db.count(`SELECT count(*) FROM `+Table(r.cfg.Schema, "a", r.cfg.Queue)+` WHERE msg_id = ANY($1)`, ids); a != len(ids) {
		r.t.Errorf("%d of %d messages archived", a, len(ids))
	}
}

func steps(n int, handler string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"task_uuid":"0190a0f0-0000-7000-8000-%012d","step_uuid":"0190a0f0-0000-7000-9000-%012d","handler":%q,"payload":{"i":%d}}`,
			i+1, i+1, handler, i)
	}
	return out
}

// Rules 1, 3 and 4: every message gets exactly one result of the documented
// shape, in the same transaction that archives it.
func TestSource_Rule4_ResultShape(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	r := startRig(t, db, cfg, 4)
	stop := r.work(2, func(ev channel.Event) channel.Result {
		if ev.Handler == "fail" {
			return channel.Result{Error: &channel.ErrorInfo{Message: "boom", ErrorType: "x", Retryable: true}}
		}
		return ok(`{"echo":` + string(ev.Payload) + `}`)
	})
	defer stop()
	waitFor(t, "the queues", func() bool { return r.src.Stats().State == StateConnected })
	ids := db.send(cfg.Schema, append(steps(5, "ok"), steps(1, "fail")...)...)
	waitFor(t, "6 acks", func() bool { return r.src.Stats().Acked == 6 })
	r.exactlyOne(ids)
	res := r.results()
	for i, id := range ids {
		m := res[id][0]
		if m["queue"] != cfg.Queue || m["read_ct"] != float64(1) {
			t.Fatalf("result %v: queue/read_ct wrong", m)
		}
		c := m["completion"].(map[string]any)
		for _, k := range []string{"event_id", "task_uuid", "step_uuid", "correlation_id", "handler", "status", "success", "result",
			"error", "metadata", "dispatched_at", "polled_at", "completed_at", "execution_time_ms"} {
			if _, ok := c[k]; !ok {
				t.Fatalf("completion lacks %q: %v", k, c)
			}
		}
		if i < 5 {
			if c["status"] != "completed" || c["result"].(map[string]any)["echo"].(map[string]any)["i"] != float64(i) {
				t.Fatalf("completion %v", c)
			}
		} else if c["status"] != "failed" || c["error"].(map[string]any)["message"] != "boom" {
			t.Fatalf("a failed step's result: %v", c)
		}
	}
	if s := r.src.Stats(); s.Read != 6 || s.Acked != 6 || s.LeaseLost != 0 || s.Errors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Rule 2: while an event runs, heartbeats keep its lease: another reader
// does not get the message although the step outlives visibility_timeout_ms.
func TestSource_Rule2_HeartbeatKeepsLease(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.VisibilityTimeoutMs, cfg.HeartbeatMs = 1500, 300
	r := startRig(t, db, cfg, 2)
	other := prepared(t, db, cfg)
	ids := db.send(r.cfg.Schema, steps(1, "slow")...)
	var ev channel.Event
	waitFor(t, "the event", func() bool { var got bool; ev, got = r.poll(10 * time.Millisecond); return got })
	for range 14 { // 3.5 s, well past the 1.5 s lease
		time.Sleep(250 * time.Millisecond)
		if m, err := other.Read(context.Background(), 10); err != nil || len(m) != 0 {
			t.Fatalf("another reader got the message of a running event (lease not extended): %v %+v", err, m)
		}
	}
	r.complete(ev.EventID, ok(`1`))
	waitFor(t, "the ack", func() bool { return r.src.Stats().Acked == 1 })
	r.exactlyOne(ids)
	if s := r.src.Stats(); s.Heartbeats == 0 || s.LeaseLost != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Rule 2: an ack whose lease was lost (the message was read again after its
// vt passed) writes nothing and counts in source_lease_lost.
func TestSource_Rule2_LostLeaseWritesNothing(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	r := startRig(t, db, cfg, 2)
	ids := db.send(r.cfg.Schema, steps(1, "h")...)
	var ev channel.Event
	waitFor(t, "the event", func() bool { var got bool; ev, got = r.poll(10 * time.Millisecond); return got })
	// another worker's read after our vt passed
	db.exec(`UPDATE `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` SET read_ct = read_ct + 1, vt = now() + interval '1 hour' WHERE msg_id = $1`, ids[0])
	r.complete(ev.EventID, ok(`1`))
	waitFor(t, "the lost lease", func() bool { return r.src.Stats().LeaseLost == 1 })
	if n := len(r.results()[ids[0]]); n != 0 {
		t.Fatalf("an ack without its lease wrote %d results", n)
	}
	if q := db.count(`SELECT count(*) FROM `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` WHERE msg_id = $1 AND read_ct = 2`, ids[0]); q != 1 {
		t.Fatal("the message left q_ without its lease")
	}
	if s := r.src.Stats(); s.Acked != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Rule 5: invalid messages and messages read more than max_attempts times
// are not dispatched; each gets one failed result and a copy in the
// dead-letter queue, and is archived.
func TestSource_Rule5_PoisonAndInvalid(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.MaxAttempts = 3
	r := startRig(t, db, cfg, 4)
	var dispatched sync.Map
	stop := r.work(2, func(ev channel.Event) channel.Result { dispatched.Store(ev.StepUUID, true); return ok(`1`) })
	defer stop()
	waitFor(t, "the queues", func() bool { return r.src.Stats().State == StateConnected })
	q := Table(r.cfg.Schema, "q", r.cfg.Queue)
	invalid := db.send(r.cfg.Schema, `{"x":1}`, `[1,2]`, `{"task_uuid":"nope","step_uuid":"0190a0f0-0000-7000-8000-000000000002","handler":"h"}`)
	var nullID, poisonID, lastTryID int64
	good := steps(2, "h")
	if err := db.pool.QueryRow(context.Background(), `INSERT INTO `+q+` (vt, message) VALUES (now(), NULL) RETURNING msg_id`).Scan(&nullID); err != nil {
		t.Fatal(err)
	}
	if err := db.pool.QueryRow(context.Background(), `INSERT INTO `+q+` (vt, message, read_ct) VALUES (now(), $1, 3) RETURNING msg_id`, good[0]).Scan(&poisonID); err != nil {
		t.Fatal(err)
	}
	if err := db.pool.QueryRow(context.Background(), `INSERT INTO `+q+` (vt, message, read_ct) VALUES (now(), $1, 2) RETURNING msg_id`, good[1]).Scan(&lastTryID); err != nil {
		t.Fatal(err)
	}
	all := append(invalid, nullID, poisonID, lastTryID)
	waitFor(t, "every message retired", func() bool { s := r.src.Stats(); return s.DeadLettered == 5 && s.Acked == 1 })
	r.exactlyOne(all)
	res := r.results()
	for _, id := range append(invalid, nullID, poisonID) {
		c := res[id][0]["completion"].(map[string]any)
		e := c["error"].(map[string]any)
		want := ErrorTypeInvalidMessage
		if id == poisonID {
			want = ErrorTypeMaxAttemptsExceeded
		}
		if c["status"] != "failed" || c["success"] != false || e["error_type"] != want || e["retryable"] != false || e["message"] == "" {
			t.Fatalf("msg %d: result %v, want a failed %s", id, c, want)
		}
	}
	if c := res[poisonID][0]["completion"].(map[string]any); c["step_uuid"] != "0190a0f0-0000-7000-9000-000000000001" {
		t.Fatalf("the poisoned step's result does not name its step: %v", c)
	}
	if _, ran := dispatched.Load(mustUUID("0190a0f0-0000-7000-9000-000000000001")); ran {
		t.Fatal("a message past max_attempts was dispatched")
	}
	if _, ran := dispatched.Load(mustUUID("0190a0f0-0000-7000-9000-000000000002")); !ran {
		t.Fatal("a message on its last allowed attempt was not dispatched")
	}
	dq := Table(r.cfg.Schema, "q", r.cfg.DeadLetterQueue)
	if n := db.count(`SELECT count(*) FROM ` + dq); n != 5 {
		t.Fatalf("dead-letter queue holds %d copies, want 5", n)
	}
	if n := db.count(`SELECT count(*) FROM `+dq+` WHERE message = $1::jsonb`, `{"x":1}`); n != 1 {
		t.Fatal("the dead-letter copy is not the original message")
	}
}

func mustUUID(s string) uuid.UUID { return uuid.MustParse(s) }

// Rule 6: the source never reads more than the channel has room for: with
// nobody polling, it holds exactly as many leases as there are handler slots.
func TestSource_Rule6_Backpressure(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.PollIntervalMs = 20
	r := startRig(t, db, cfg, 3)
	ids := db.sendAll(r.cfg.Schema, steps(12, "h")...) // all visible at once: one read could take them all
	q := Table(r.cfg.Schema, "q", r.cfg.Queue)
	waitFor(t, "the first reads", func() bool { return r.src.Stats().Read >= 3 })
	time.Sleep(300 * time.Millisecond) // many poll intervals and notifications later
	if n := db.count(`SELECT count(*) FROM ` + q + ` WHERE read_ct > 0`); n != 3 {
		t.Fatalf("%d messages leased with 3 handler slots and nobody polling", n)
	}
	if s := r.src.Stats(); s.Read != 3 {
		t.Fatalf("source_read = %d, want 3", s.Read)
	}
	stop := r.work(2, func(channel.Event) channel.Result { return ok(`1`) })
	defer stop()
	waitFor(t, "all acked", func() bool { return r.src.Stats().Acked == 12 })
	r.exactlyOne(ids)
}

// Rule 7: shutdown stops reading; an event that ends before the drain
// deadline is acked; events still queued or running at the deadline are
// released (vt = now, lease checked) with no result written.
func TestSource_Rule7_ShutdownReleases(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	r := startRig(t, db, cfg, 3)
	ids := db.send(r.cfg.Schema, steps(3, "h")...)
	var a, b channel.Event
	waitFor(t, "two events", func() bool {
		if a.EventID == (uuid.UUID{}) {
			a, _ = r.poll(10 * time.Millisecond)
		} else if b.EventID == (uuid.UUID{}) {
			b, _ = r.poll(10 * time.Millisecond)
		}
		return b.EventID != (uuid.UUID{})
	})
	waitFor(t, "three reads", func() bool { return r.src.Stats().Read == 3 })
	db.send(r.cfg.Schema, steps(1, "late")...) // no room for it now, and none after shutdown began: never read
	go func() {
		// a ends during the drain
		waitFor(t, "shutdown to begin", func() bool { return r.d.Stats().State != "running" })
		r.complete(a.EventID, ok(`"a"`))
	}()
	r.shutdown(500 * time.Millisecond)
	s := r.src.Stats()
	if s.Acked != 1 || s.Released != 2 || s.State != StateStopped || s.Read != 3 {
		t.Fatalf("after shutdown: %+v (want 1 acked, 2 released, 3 read, stopped)", s)
	}
	res := r.results()
	if len(res) != 1 || len(res[ids[0]]) != 1 {
		t.Fatalf("results after shutdown: %v", res)
	}
	q := Table(r.cfg.Schema, "q", r.cfg.Queue)
	if n := db.count(`SELECT count(*) FROM ` + q + ` WHERE vt <= now() AND read_ct = 1`); n != 2 {
		t.Fatalf("%d released messages visible again, want 2", n)
	}
	if n := db.count(`SELECT count(*) FROM ` + q + ` WHERE read_ct = 0`); n != 1 {
		t.Fatal("a message sent during shutdown was read")
	}
}

// Rule 8: a notification wakes the reader (the poll interval is a minute,
// so the message arrives only because of it) ...
func TestSource_Rule8_NotifyWakesReader(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.PollIntervalMs = 60000
	r := startRig(t, db, cfg, 2)
	stop := r.work(1, func(channel.Event) channel.Result { return ok(`1`) })
	defer stop()
	time.Sleep(300 * time.Millisecond) // the first (empty) reads are over; the reader sleeps
	before := r.src.Stats().Read
	ids := db.send(r.cfg.Schema, steps(1, "h")...)
	waitFor(t, "the notified read", func() bool { return r.src.Stats().Acked == 1 })
	r.exactlyOne(ids)
	if before != 0 {
		t.Fatalf("read %d before sending", before)
	}
}

// ... and polling finds messages no notification announced (no trigger,
// or vt in the future).
func TestSource_Rule8_PollingFallback(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.PollIntervalMs = 50
	r := startRig(t, db, cfg, 2)
	stop := r.work(1, func(channel.Event) channel.Result { return ok(`1`) })
	defer stop()
	q := Table(r.cfg.Schema, "q", r.cfg.Queue)
	db.exec(`DROP TRIGGER libtasker_notify_insert ON ` + q)
	var delayed int64
	if err := db.pool.QueryRow(context.Background(), `INSERT INTO `+q+` (vt, message) VALUES (now() + interval '300 milliseconds', $1) RETURNING msg_id`,
		steps(1, "h")[0]).Scan(&delayed); err != nil {
		t.Fatal(err)
	}
	ids := append(db.send(r.cfg.Schema, steps(1, "h")...), delayed)
	waitFor(t, "both acked", func() bool { return r.src.Stats().Acked == 2 })
	r.exactlyOne(ids)
}

// Several sources on one queue (as several worker processes would be):
// every message gets exactly one result.
func TestSource_Rule1_ManyConsumers(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.BatchSize = 7
	var rigs []*rig
	for range 3 {
		r := startRig(t, db, cfg, 5)
		stop := r.work(3, func(ev channel.Event) channel.Result { return ok(`1`) })
		defer stop()
		rigs = append(rigs, r)
	}
	ids := db.send(cfg.Schema, steps(300, "h")...)
	waitFor(t, "300 acks", func() bool {
		var n uint64
		for _, r := range rigs {
			n += r.src.Stats().Acked
		}
		return n == 300
	})
	rigs[0].exactlyOne(ids)
	for i, r := range rigs {
		if s := r.src.Stats(); s.LeaseLost != 0 || s.Errors != 0 {
			t.Errorf("source %d: %+v", i, s)
		}
	}
}

// Reconnect: the database goes away under a running source (every
// connection dropped, LISTEN included) while events run; their acks fail
// and are retried with backoff until it is back, then the database
// restarts once more. Every message, sent before and after, gets exactly
// one result, and none had to be redelivered (no ack was dropped).
func TestSource_DatabaseRestart(t *testing.T) {
	srv := pgtest.Start(t) // its own server: stopping it must not disturb other tests
	db := newTestDBOn(t, srv)
	cfg := db.cfg()
	cfg.PollIntervalMs = 100
	r := startRig(t, db, cfg, 4)
	var hold atomic.Bool
	hold.Store(true)
	stop := r.work(3, func(ev channel.Event) channel.Result {
		for hold.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		return ok(`1`)
	})
	defer stop()
	before := db.send(r.cfg.Schema, steps(20, "h")...)
	waitFor(t, "events running", func() bool { return r.src.Stats().Read >= 3 })
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	hold.Store(false) // these completions meet a database that is away
	waitFor(t, "failed writes", func() bool { return r.src.Stats().Errors > 0 })
	waitFor(t, "source_state reconnecting", func() bool { return r.src.Stats().State == StateReconnecting })
	time.Sleep(200 * time.Millisecond)
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	db.pool.Reset()
	waitFor(t, "20 results", func() bool { return r.src.Stats().Acked == 20 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	db.pool.Reset()
	after := db.send(r.cfg.Schema, steps(20, "h")...)
	waitFor(t, "40 results", func() bool { return r.src.Stats().Acked == 40 })
	r.exactlyOne(append(before, after...))
	for id, res := range r.results() {
		if res[0]["read_ct"] != float64(1) {
			t.Errorf("msg %d was redelivered (read_ct %v): an ack was lost", id, res[0]["read_ct"])
		}
	}
	s := r.src.Stats()
	if s.Errors == 0 || s.LastError == nil || s.LeaseLost != 0 {
		t.Fatalf("stats after the restarts: %+v", s)
	}
	waitFor(t, "connected again", func() bool { return r.src.Stats().State == StateConnected })
}

// Rule 10: local dispatch still works beside a source; its events are the
// only ones in the local completion stream, and source events never are.
func TestSource_Rule10_LocalDispatchBesideSource(t *testing.T) {
	db := newTestDB(t)
	r := startRig(t, db, db.cfg(), 6)
	stop := r.work(2, func(ev channel.Event) channel.Result { return ok(`"` + ev.Handler + `"`) })
	defer stop()
	local := map[uuid.UUID]bool{}
	for range 5 {
		id, err := r.d.DispatchJSON(context.Background(), []byte(steps(1, "local")[0]), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		local[id] = true
	}
	ids := db.sendAll(r.cfg.Schema, steps(5, "queued")...)
	waitFor(t, "5 acks", func() bool { return r.src.Stats().Acked == 5 })
	for range 5 {
		c, err := r.d.NextCompletion(context.Background(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !local[c.EventID] || c.Handler != "local" {
			t.Fatalf("the local stream gave %s (%s), not a local event", c.EventID, c.Handler)
		}
	}
	if c, err := r.d.NextCompletion(context.Background(), 100*time.Millisecond); !errors.Is(err, channel.ErrEmpty) {
		t.Fatalf("a sixth completion in the local stream: %v %+v", err, c)
	}
	r.exactlyOne(ids)
	if n := db.count(`SELECT count(*) FROM ` + Table(r.cfg.Schema, "q", r.cfg.ResultsQueue) + ` WHERE message->'completion'->>'handler' = 'local'`); n != 0 {
		t.Fatalf("%d local events' results were written to the results queue", n)
	}
}

// Shutdown while the database is away: the source retries its last writes
// for CloseTimeout, then gives up (the messages come back when their vt
// passes; nothing is written twice) and stops, so that destroy returns.
func TestSource_ShutdownWithTheDatabaseAway(t *testing.T) {
	srv := pgtest.Start(t)
	db := newTestDBOn(t, srv)
	r := startRig(t, db, db.cfg(), 2)
	r.src.CloseTimeout = 300 * time.Millisecond
	ids := db.send(r.cfg.Schema, steps(1, "h")...)
	var ev channel.Event
	waitFor(t, "the event", func() bool { var got bool; ev, got = r.poll(10 * time.Millisecond); return got })
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	r.complete(ev.EventID, ok(`1`))
	done := make(chan struct{})
	go func() { r.shutdown(0); close(done) }()
	select {
	case <-done:
	case <-time.After(25 * time.Second):
		t.Fatal("shutdown still waiting for a database that is away")
	}
	s := r.src.Stats()
	if s.State != StateStopped || s.LastError == nil || !strings.Contains(*s.LastError, "gave up") || s.Acked != 0 {
		t.Fatalf("stats: %+v (last error %v)", s, s.LastError)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	db.pool.Reset()
	if n := db.count(`SELECT count(*) FROM `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` WHERE msg_id = $1`, ids[0]); n != 1 {
		t.Fatal("the message left the queue without its result")
	}
}
