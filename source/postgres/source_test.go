package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
)

// rig is one source feeding one link, with helpers for worker threads.
type rig struct {
	t      *testing.T
	db     *testDB
	cfg    Config
	src    *Source
	link   *fakeLink
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startRig(t *testing.T, db *testDB, cfg Config, slots int) *rig {
	t.Helper()
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, db: db, cfg: src.Config(), src: src, link: newFakeLink(slots*10, slots), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); src.Run(ctx, r.link) }()
	t.Cleanup(func() { r.shutdown(0) })
	waitFor(t, "the source to connect", func() bool { return src.Stats().State == StateConnected })
	return r
}

// shutdown does what the dispatcher's shutdown does: stop reading, drain
// until the deadline, cancel the rest, wait for the source to finish.
func (r *rig) shutdown(drain time.Duration) {
	r.once.Do(func() {
		r.cancel()
		r.link.shutdown(drain)
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			r.t.Error("source did not stop within 60s of shutdown")
		}
	})
}

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
				ev, got := r.link.poll(50 * time.Millisecond)
				if got {
					r.link.complete(ev.EventID, fn(ev))
				}
			}
		}()
	}
	return func() { close(quit); wg.Wait() }
}

// waitFor polls cond until it holds (or fails the test after 30s).
func waitFor(t *testing.T, what string, cond func() bool) {
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
	cfg.VisibilityTimeoutMs, cfg.HeartbeatMs = 600, 150
	r := startRig(t, db, cfg, 2)
	other := prepared(t, db, cfg)
	ids := db.send(r.cfg.Schema, steps(1, "slow")...)
	var ev channel.Event
	waitFor(t, "the event", func() bool { var got bool; ev, got = r.link.poll(10 * time.Millisecond); return got })
	for range 8 { // 1.6 s, well past the 600 ms lease
		time.Sleep(200 * time.Millisecond)
		if m, err := other.Read(context.Background(), 10); err != nil || len(m) != 0 {
			t.Fatalf("another reader got the message of a running event (lease not extended): %v %+v", err, m)
		}
	}
	r.link.complete(ev.EventID, ok(`1`))
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
	waitFor(t, "the event", func() bool { var got bool; ev, got = r.link.poll(10 * time.Millisecond); return got })
	// another worker's read after our vt passed
	db.exec(`UPDATE `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` SET read_ct = read_ct + 1, vt = now() + interval '1 hour' WHERE msg_id = $1`, ids[0])
	r.link.complete(ev.EventID, ok(`1`))
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
