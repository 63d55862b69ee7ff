package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/tasker-systems/libtasker/internal/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv("TASKER_CKPT_HELPER") == "1" { // a worker process of TestSource_Checkpoint_KillNineResumes
		os.Exit(checkpointHelper())
	}
	code := m.Run()
	pgtest.StopShared()
	if code == 0 {
		// every source stopped its goroutines, every pool was closed
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var queueSeq atomic.Int64

// testDB is one test's view of the shared server: a pool and a fresh queue name.
type testDB struct {
	t     testing.TB
	srv   *pgtest.Server
	pool  *pgxpool.Pool
	queue string
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	return newTestDBOn(t, pgtest.StartShared(t))
}

func newTestDBOn(t testing.TB, srv *pgtest.Server) *testDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, srv.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &testDB{t: t, srv: srv, pool: pool, queue: fmt.Sprintf("t%d_%d", os.Getpid()%10000, queueSeq.Add(1))}
}

func (db *testDB) cfg() Config {
	c := Config{DSN: db.srv.DSN, Queue: db.queue, CreateQueues: true}
	if err := c.Validate(); err != nil {
		db.t.Fatal(err)
	}
	return c
}

func (db *testDB) exec(sql string, args ...any) {
	db.t.Helper()
	if _, err := db.pool.Exec(context.Background(), sql, args...); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

func (db *testDB) count(sql string, args ...any) int {
	db.t.Helper()
	var n int
	if err := db.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// send inserts messages with plain SQL, as any producer may.
func (db *testDB) send(schema string, docs ...string) []int64 {
	db.t.Helper()
	var ids []int64
	for _, d := range docs {
		var id int64
		if err := db.pool.QueryRow(context.Background(),
			`INSERT INTO `+Table(schema, "q", db.queue)+` (vt, message) VALUES (now(), $1::jsonb) RETURNING msg_id`, d).Scan(&id); err != nil {
			db.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sendAll inserts messages in one statement: they become visible together.
func (db *testDB) sendAll(schema string, docs ...string) []int64 {
	db.t.Helper()
	rows, err := db.pool.Query(context.Background(), `INSERT INTO `+Table(schema, "q", db.queue)+` (vt, message)
		SELECT now(), m FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(m, i) ORDER BY i RETURNING msg_id`, docs)
	if err != nil {
		db.t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		db.t.Fatal(err)
	}
	return ids
}

func step(handler string) string {
	return fmt.Sprintf(`{"task_uuid":"%s","step_uuid":"%s","handler":%q,"payload":{"n":1}}`,
		"0190a0f0-0000-7000-8000-000000000001", "0190a0f0-0000-7000-8000-000000000002", handler)
}

func prepared(t testing.TB, db *testDB, cfg Config) *Store {
	t.Helper()
	st := NewStore(db.pool, cfg)
	if err := st.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// Rule 2 and 3 at the SQL level: a read takes a lease (read_ct+1, vt in the
// future); a second read does not see the message; an ack with a stale
// read_ct writes nothing; the right ack moves the message and writes its
// result in one go.
func TestStore_LeaseAndAck(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	st := prepared(t, db, cfg)
	ctx := context.Background()
	ids := db.send(cfg.Schema, step("a"), step("b"))

	msgs, err := st.Read(ctx, 10)
	if err != nil || len(msgs) != 2 || msgs[0].MsgID != ids[0] || msgs[0].ReadCt != 1 {
		t.Fatalf("read: %v %+v", err, msgs)
	}
	if again, err := st.Read(ctx, 10); err != nil || len(again) != 0 {
		t.Fatalf("second read saw leased messages: %v %+v", err, again)
	}
	if n := db.count(`SELECT count(*) FROM ` + st.q + ` WHERE vt > now() + interval '20 seconds'`); n != 2 {
		t.Fatalf("vt not set to now + visibility timeout on %d messages", 2-n)
	}
	stale := Ack{Lease: Lease{MsgID: ids[0], ReadCt: 0}, Result: json.RawMessage(`{"x":1}`)}
	got, err := st.Ack(ctx, []Ack{stale})
	if err != nil || len(got) != 0 {
		t.Fatalf("stale ack: %v %v", err, got)
	}
	if n := db.count(`SELECT count(*) FROM ` + st.rq); n != 0 {
		t.Fatalf("a stale ack wrote %d results", n)
	}
	good := Ack{Lease: msgs[0].Lease, Result: json.RawMessage(`{"x":1}`)}
	got, err = st.Ack(ctx, []Ack{good})
	if err != nil || !got[ids[0]] {
		t.Fatalf("ack: %v %v", err, got)
	}
	if a, r, q := db.count(`SELECT count(*) FROM `+st.a+` WHERE msg_id=$1 AND read_ct=1`, ids[0]),
		db.count(`SELECT count(*) FROM `+st.rq+` WHERE message = '{"x":1}'`),
		db.count(`SELECT count(*) FROM `+st.q+` WHERE msg_id=$1`, ids[0]); a != 1 || r != 1 || q != 0 {
		t.Fatalf("after ack: archived %d, results %d, still queued %d", a, r, q)
	}
	// a second ack of the same lease finds nothing: never two results
	if got, _ := st.Ack(ctx, []Ack{good}); len(got) != 0 {
		t.Fatal("acked twice")
	}
	// heartbeat and release hold only for the current lease
	if h, err := st.Heartbeat(ctx, []Lease{msgs[1].Lease, {MsgID: ids[1], ReadCt: 7}}); err != nil || len(h) != 1 {
		t.Fatalf("heartbeat: %v %v", err, h)
	}
	if r, err := st.Release(ctx, []Lease{{MsgID: ids[1], ReadCt: 7}}); err != nil || len(r) != 0 {
		t.Fatalf("release with a stale lease: %v %v", err, r)
	}
	if r, err := st.Release(ctx, []Lease{msgs[1].Lease}); err != nil || !r[ids[1]] {
		t.Fatalf("release: %v %v", err, r)
	}
	again, err := st.Read(ctx, 10)
	if err != nil || len(again) != 1 || again[0].ReadCt != 2 {
		t.Fatalf("released message not readable at once: %v %+v", err, again)
	}
}

// Rule 5 at the SQL level: a dead letter writes the failed result, archives
// the message and copies it to the dead-letter queue, in one transaction.
func TestStore_DeadLetter(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	st := prepared(t, db, cfg)
	ctx := context.Background()
	ids := db.send(cfg.Schema, `{"bad":true}`)
	msgs, err := st.Read(ctx, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatal(err, msgs)
	}
	got, err := st.DeadLetter(ctx, []DeadLetter{{Ack: Ack{Lease: msgs[0].Lease, Result: json.RawMessage(`{"r":1}`)},
		ErrorType: "invalid_message", Reason: "no"}})
	if err != nil || !got[ids[0]] {
		t.Fatal(err, got)
	}
	if d := db.count(`SELECT count(*) FROM `+st.dq+` WHERE message = '{"bad":true}'
		AND headers->'libtasker_dead_letter'->>'error_type' = 'invalid_message'
		AND (headers->'libtasker_dead_letter'->>'msg_id')::bigint = $1`, ids[0]); d != 1 {
		t.Fatalf("dead-letter copies: %d", d)
	}
	if r, a := db.count(`SELECT count(*) FROM `+st.rq), db.count(`SELECT count(*) FROM `+st.a); r != 1 || a != 1 {
		t.Fatalf("results %d archived %d", r, a)
	}
}

// Queues made elsewhere, with pgmq's layout but without the headers column
// (pgmq before 1.5) and with extra columns, work: columns are used by name.
func TestStore_ForeignLayout(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.Schema = "other_" + db.queue
	cfg.CreateQueues = false
	for _, qn := range []string{cfg.Queue, cfg.ResultsQueue, cfg.DeadLetterQueue} {
		db.exec(`CREATE SCHEMA IF NOT EXISTS ` + qident(cfg.Schema))
		db.exec(`CREATE TABLE ` + Table(cfg.Schema, "q", qn) + ` (extra text, message jsonb, vt timestamptz NOT NULL DEFAULT now(),
			enqueued_at timestamptz NOT NULL DEFAULT now(), read_ct int NOT NULL DEFAULT 0,
			msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY)`)
		db.exec(`CREATE TABLE ` + Table(cfg.Schema, "a", qn) + ` (message jsonb, msg_id bigint PRIMARY KEY, vt timestamptz NOT NULL,
			read_ct int NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(), archived_at timestamptz NOT NULL DEFAULT now())`)
	}
	st := prepared(t, db, cfg)
	ctx := context.Background()
	db.send(cfg.Schema, step("x"), `[1]`)
	msgs, err := st.Read(ctx, 5)
	if err != nil || len(msgs) != 2 {
		t.Fatal(err, msgs)
	}
	if got, err := st.Ack(ctx, []Ack{{Lease: msgs[0].Lease, Result: json.RawMessage(`{}`)}}); err != nil || len(got) != 1 {
		t.Fatal(err, got)
	}
	if got, err := st.DeadLetter(ctx, []DeadLetter{{Ack: Ack{Lease: msgs[1].Lease, Result: json.RawMessage(`{}`)}, ErrorType: "invalid_message"}}); err != nil || len(got) != 1 {
		t.Fatal(err, got)
	}
}

// Where pgmq is installed (a meta table and create(text) in the schema),
// missing queues are made with pgmq's create, so that pgmq knows them.
func TestStore_CreatesThroughPgmq(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.Schema = "fakepgmq_" + db.queue
	sch := qident(cfg.Schema)
	db.exec(`CREATE SCHEMA ` + sch)
	db.exec(`CREATE TABLE ` + sch + `.meta (queue_name text PRIMARY KEY)`)
	db.exec(`CREATE FUNCTION ` + sch + `."create"(queue_name text) RETURNS void LANGUAGE plpgsql AS $f$
		BEGIN
			EXECUTE format('CREATE TABLE %I.%I (msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY, read_ct int NOT NULL DEFAULT 0,
				enqueued_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb)', '` + cfg.Schema + `', 'q_' || queue_name);
			EXECUTE format('CREATE TABLE %I.%I (msg_id bigint PRIMARY KEY, read_ct int NOT NULL DEFAULT 0,
				enqueued_at timestamptz NOT NULL DEFAULT now(), archived_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL,
				message jsonb)', '` + cfg.Schema + `', 'a_' || queue_name);
			INSERT INTO ` + sch + `.meta VALUES (queue_name);
		END $f$`)
	st := prepared(t, db, cfg)
	if n := db.count(`SELECT count(*) FROM ` + sch + `.meta`); n != 3 {
		t.Fatalf("pgmq's create made %d queues, want 3", n)
	}
	db.exec(`INSERT INTO `+Table(cfg.Schema, "q", cfg.Queue)+` (vt, message) VALUES (now(), $1)`, step("h"))
	msgs, err := st.Read(context.Background(), 5)
	if err != nil || len(msgs) != 1 {
		t.Fatal(err, msgs)
	}
	if got, err := st.Ack(context.Background(), []Ack{{Lease: msgs[0].Lease, Result: json.RawMessage(`{}`)}}); err != nil || len(got) != 1 {
		t.Fatal(err, got)
	}
}

// create_queues false with missing tables is an error naming the table.
func TestStore_MissingQueuesNotCreated(t *testing.T) {
	db := newTestDB(t)
	cfg := db.cfg()
	cfg.CreateQueues = false
	err := NewStore(db.pool, cfg).Prepare(context.Background())
	if err == nil {
		t.Fatal("missing tables accepted")
	}
	if want := "q_" + cfg.Queue; !contains(err.Error(), want) || !contains(err.Error(), "create_queues") {
		t.Fatalf("error %q does not name %s and create_queues", err, want)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}
