package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/runtime"
)

// Checkpoints of source events (issue 10, "With the PostgreSQL source"):
// the checkpoint is written into the leased message before the event is
// handed out again, so that a worker that dies resumes from it.

// rowCheckpoint returns the message's "checkpoint" value and read_ct, with
// the seconds left on its vt.
func (r *rig) rowCheckpoint(id int64) (cp map[string]any, readCt int, vtLeft float64) {
	r.t.Helper()
	var raw []byte
	err := r.db.pool.QueryRow(context.Background(), `SELECT (message->'checkpoint')::text, read_ct,
		extract(epoch FROM vt - clock_timestamp())::float8 FROM `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` WHERE msg_id = $1`, id).
		Scan(&raw, &readCt, &vtLeft)
	if err != nil {
		r.t.Fatal(err)
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &cp); err != nil {
			r.t.Fatal(err)
		}
	}
	return cp, readCt, vtLeft
}

func (r *rig) pollOne(what string) channel.Event {
	r.t.Helper()
	var ev channel.Event
	waitFor(r.t, what, func() bool { var got bool; ev, got = r.poll(10 * time.Millisecond); return got })
	return ev
}

func intCursor(t testing.TB, ev channel.Event) int {
	t.Helper()
	if ev.Checkpoint == nil {
		return 0
	}
	n, err := strconv.Atoi(string(ev.Checkpoint.Cursor))
	if err != nil {
		t.Fatalf("cursor %s: %v", ev.Checkpoint.Cursor, err)
	}
	return n
}

// A checkpoint is in the row (message.checkpoint replaced, vt extended)
// by the time the event can be polled again; the final result counts the
// checkpoints; one result.
func TestSource_Checkpoint_PersistedBeforeRequeue(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.VisibilityTimeoutMs, cfg.HeartbeatMs = 60000, 20000
	r := startRig(t, db, cfg, 2)
	ids := db.send(r.cfg.Schema, steps(1, "walk")...)
	ev := r.pollOne("the event")
	if ev.Checkpoint != nil {
		t.Fatalf("a first run with a checkpoint: %+v", ev.Checkpoint)
	}
	// shorten the lease in the row: the checkpoint write must extend it
	db.exec(`UPDATE `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` SET vt = clock_timestamp() + interval '5 seconds' WHERE msg_id = $1`, ids[0])
	for i := 1; i <= 3; i++ {
		acc := fmt.Sprintf(`[%s]`, strings.TrimSuffix(strings.Repeat("1,", i), ","))
		if err := r.d.Checkpoint(ev.EventID, channel.Checkpoint{Cursor: json.RawMessage(strconv.Itoa(i)), ItemsProcessed: int64(i * 10),
			AccumulatedResults: json.RawMessage(acc)}); err != nil {
			t.Fatal(err)
		}
		if err := r.d.Complete(ev.EventID, ok(`1`)); !errors.Is(err, channel.ErrNotPending) {
			t.Fatalf("complete of a checkpointed event: %v, want ErrNotPending", err)
		}
		ev = r.pollOne("the event again")
		// the poll returned: the row must already hold this checkpoint
		cp, readCt, vtLeft := r.rowCheckpoint(ids[0])
		if cp == nil || cp["cursor"] != float64(i) || cp["items_processed"] != float64(i*10) || cp["count"] != float64(i) ||
			len(cp["accumulated_results"].([]any)) != i {
			t.Fatalf("checkpoint %d: the row holds %v when the event is handed out again", i, cp)
		}
		if readCt != 1 || vtLeft < 30 {
			t.Fatalf("checkpoint %d: read_ct %d, vt %.1f s ahead: the lease was not extended to the visibility timeout", i, readCt, vtLeft)
		}
		if intCursor(t, ev) != i || ev.Checkpoint.Count != i {
			t.Fatalf("polled checkpoint %+v, want cursor and count %d", ev.Checkpoint, i)
		}
	}
	if !r.complete(ev.EventID, ok(`"done"`)) {
		t.Fatal("complete failed")
	}
	waitFor(t, "the ack", func() bool { return r.src.Stats().Acked == 1 })
	r.exactlyOne(ids)
	c := r.results()[ids[0]][0]["completion"].(map[string]any)
	if c["checkpoints"] != float64(3) || c["result"] != "done" {
		t.Fatalf("completion %v, want checkpoints 3", c)
	}
	if s := r.src.Stats(); s.LeaseLost != 0 || s.Errors != 0 || s.Read != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A message produced with a checkpoint starts from it: the polled event
// carries it, the count continues, and the final completion counts every
// checkpoint. A bad checkpoint in a message is an invalid message.
func TestSource_Checkpoint_MessageWithCheckpointResumes(t *testing.T) {
	db := newTestDB(t)
	r := startRig(t, db, db.cfg(), 2)
	base := strings.TrimSuffix(steps(1, "walk")[0], "}")
	ids := db.send(r.cfg.Schema,
		base+`,"checkpoint":{"cursor":{"page":7},"items_processed":70,"accumulated_results":[3,4],"count":3}}`,
		strings.Replace(steps(2, "walk")[1], `"payload"`, `"checkpoint":{"cursor":1,"items_processed":1,"extra":1},"payload"`, 1),
		strings.Replace(steps(3, "walk")[2], `"payload"`, `"checkpoint":{"cursor":1,"items_processed":-1},"payload"`, 1))
	ev := r.pollOne("the event")
	if ev.Checkpoint == nil || string(ev.Checkpoint.Cursor) != `{"page": 7}` || ev.Checkpoint.ItemsProcessed != 70 ||
		ev.Checkpoint.Count != 3 || string(ev.Checkpoint.AccumulatedResults) != `[3, 4]` {
		t.Fatalf("polled checkpoint %+v, want the message's", ev.Checkpoint)
	}
	if err := r.d.Checkpoint(ev.EventID, channel.Checkpoint{Cursor: json.RawMessage(`{"page":8}`), ItemsProcessed: 80}); err != nil {
		t.Fatal(err)
	}
	ev = r.pollOne("the event again")
	if ev.Checkpoint.Count != 4 || string(ev.Checkpoint.Cursor) != `{"page":8}` {
		t.Fatalf("after one more checkpoint: %+v, want count 4", ev.Checkpoint)
	}
	if cp, _, _ := r.rowCheckpoint(ids[0]); cp["count"] != float64(4) {
		t.Fatalf("row checkpoint %v, want count 4", cp)
	}
	r.complete(ev.EventID, ok(`1`))
	waitFor(t, "one ack and two dead letters", func() bool { s := r.src.Stats(); return s.Acked == 1 && s.DeadLettered == 2 })
	r.exactlyOne(ids)
	res := r.results()
	if c := res[ids[0]][0]["completion"].(map[string]any); c["checkpoints"] != float64(4) {
		t.Fatalf("completion %v, want checkpoints 4", c)
	}
	for _, id := range ids[1:] {
		e := res[id][0]["completion"].(map[string]any)["error"].(map[string]any)
		if e["error_type"] != ErrorTypeInvalidMessage || !strings.Contains(e["message"].(string), "message.checkpoint") {
			t.Fatalf("msg %d: %v, want invalid_message naming message.checkpoint", id, e)
		}
	}
}

// A checkpoint whose lease was lost (another reader took the message after
// the vt passed) writes nothing, counts in source_lease_lost, and the
// event is not run again here nor given a result.
func TestSource_Checkpoint_StaleLeaseWritesNothing(t *testing.T) {
	db := newTestDB(t)
	r := startRig(t, db, db.cfg(), 2)
	ids := db.send(r.cfg.Schema, steps(1, "walk")...)
	ev := r.pollOne("the event")
	db.exec(`UPDATE `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` SET read_ct = read_ct + 1, vt = now() + interval '1 hour' WHERE msg_id = $1`, ids[0])
	if err := r.d.Checkpoint(ev.EventID, channel.Checkpoint{Cursor: json.RawMessage(`5`), ItemsProcessed: 5}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lost lease", func() bool { return r.src.Stats().LeaseLost == 1 })
	waitFor(t, "the lease dropped", func() bool { return r.src.Held() == 0 })
	if cp, readCt, _ := r.rowCheckpoint(ids[0]); cp != nil || readCt != 2 {
		t.Fatalf("a checkpoint without its lease wrote %v (read_ct %d)", cp, readCt)
	}
	if ev2, got := r.poll(200 * time.Millisecond); got {
		t.Fatalf("the event of a lost lease was handed out again: %+v", ev2)
	}
	if n := len(r.results()[ids[0]]); n != 0 {
		t.Fatalf("%d results for a message whose lease was lost", n)
	}
	if s := r.src.Stats(); s.Acked != 0 || s.Released != 0 || s.LeaseLost != 1 {
		t.Fatalf("stats %+v", s)
	}
	if st := r.d.Stats(); st.Pending != 0 || st.Queued != 0 {
		t.Fatalf("channel stats %+v: the event is still live", st)
	}
}

// ---- kill -9 ----

// The helper process (this test binary, re-executed with
// TASKER_CKPT_HELPER=1): a worker that checkpoints every 20 ms from the
// cursor it is handed, never completes, and waits to be killed.
func checkpointHelper() int {
	cfg := Config{DSN: os.Getenv("TASKER_CKPT_DSN"), Queue: os.Getenv("TASKER_CKPT_QUEUE"), CreateQueues: true,
		VisibilityTimeoutMs: 1000, HeartbeatMs: 300, PollIntervalMs: 50}
	src, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rc := runtime.DefaultConfig()
	d, err := runtime.New(rc, runtime.WithSource(src))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		ev, err := d.Poll(context.Background(), time.Second)
		if err != nil {
			continue
		}
		n := 0
		var acc []int
		if ev.Checkpoint != nil {
			n, _ = strconv.Atoi(string(ev.Checkpoint.Cursor))
			_ = json.Unmarshal(ev.Checkpoint.AccumulatedResults, &acc)
		}
		time.Sleep(20 * time.Millisecond) // "work"
		acc = append(acc, n+1)
		accJSON, _ := json.Marshal(acc)
		if err := d.Checkpoint(ev.EventID, channel.Checkpoint{Cursor: json.RawMessage(strconv.Itoa(n + 1)),
			ItemsProcessed: int64(n + 1), AccumulatedResults: accJSON}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintf(out, "checkpoint %d\n", n+1)
		out.Flush()
	}
}

// A worker process killed (SIGKILL) after some checkpoints: once its lease
// expires, a second worker gets the message with the last checkpoint that
// was persisted, carries on from that cursor, and the one result is built
// from accumulated_results, counting every checkpoint of both workers.
func TestSource_Checkpoint_KillNineResumes(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.VisibilityTimeoutMs, cfg.HeartbeatMs, cfg.PollIntervalMs = 1000, 300, 50
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// the queues exist before anyone sends
	prepared(t, db, cfg)
	ids := db.send(cfg.Schema, steps(1, "walk")...)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "TASKER_CKPT_HELPER=1", "TASKER_CKPT_DSN="+cfg.DSN, "TASKER_CKPT_QUEUE="+cfg.Queue)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := bufio.NewScanner(stdout)
	seen := 0
	for seen < 6 && lines.Scan() {
		seen++
	}
	if seen < 6 {
		t.Fatalf("the worker process made %d checkpoints and stopped", seen)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	q := Table(cfg.Schema, "q", cfg.Queue)
	type ckptDoc struct {
		Cursor int   `json:"cursor"`
		Count  int   `json:"count"`
		Acc    []int `json:"accumulated_results"`
	}
	lastPersisted := func() ckptDoc {
		var raw []byte
		if err := db.pool.QueryRow(context.Background(), `SELECT (message->'checkpoint')::text FROM `+q+` WHERE msg_id = $1`, ids[0]).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var d ckptDoc
		if raw == nil || json.Unmarshal(raw, &d) != nil || d.Count < 4 || d.Cursor != d.Count || len(d.Acc) != d.Count {
			t.Fatalf("after 6 checkpoints of the killed worker (the 5th at least persisted: the 6th run began) the row holds %s", raw)
		}
		return d
	}
	lastPersisted()

	// the second worker: gets the message only once the dead one's lease expired
	r := startRig(t, db, cfg, 2)
	ev := r.pollOne("the message after the lease expired")
	// The row is read again now: the killed worker's last checkpoint may have been on its way
	// to the server when the kill came, and the server finishes a statement it has received
	// (CI saw the first read give count 5 and this worker get 6). By the time the lease
	// expired, a second later, it had landed.
	lastDoc := lastPersisted()
	if ev.Checkpoint == nil || intCursor(t, ev) != lastDoc.Cursor || ev.Checkpoint.Count != lastDoc.Count {
		t.Fatalf("the second worker got checkpoint %+v, want the last persisted one (cursor %d, count %d)", ev.Checkpoint, lastDoc.Cursor, lastDoc.Count)
	}
	const total = 12
	for {
		n := intCursor(t, ev)
		var acc []int
		if err := json.Unmarshal(ev.Checkpoint.AccumulatedResults, &acc); err != nil {
			t.Fatal(err)
		}
		if n == total {
			sum := 0
			for _, v := range acc {
				sum += v
			}
			if !r.complete(ev.EventID, ok(strconv.Itoa(sum))) {
				t.Fatal("complete failed")
			}
			break
		}
		acc = append(acc, n+1)
		accJSON, _ := json.Marshal(acc)
		if err := r.d.Checkpoint(ev.EventID, channel.Checkpoint{Cursor: json.RawMessage(strconv.Itoa(n + 1)), ItemsProcessed: int64(n + 1),
			AccumulatedResults: accJSON}); err != nil {
			t.Fatal(err)
		}
		ev = r.pollOne("the next run")
	}
	waitFor(t, "the ack", func() bool { return r.src.Stats().Acked == 1 })
	r.exactlyOne(ids)
	res := r.results()[ids[0]][0]
	c := res["completion"].(map[string]any)
	if c["result"] != float64(total*(total+1)/2) || c["checkpoints"] != float64(total) || res["read_ct"] != float64(2) {
		t.Fatalf("result %v: want sum %d of 1..%d built from accumulated_results, %d checkpoints, read_ct 2", res, total*(total+1)/2, total, total)
	}
}
