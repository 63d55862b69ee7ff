package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the SQL layer of the source: every statement that touches the
// queue tables, each one transaction (one statement, or one explicit
// transaction), each checking the lease (msg_id, read_ct) where docs/QUEUE.md
// says so. It reads and writes columns by name. Safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config

	// table names, quoted
	q, a, rq, dq string
	// whether the tables have pgmq's headers column (pgmq < 1.5 has none)
	qHeaders, aHeaders, dHeaders bool

	sqlRead, sqlHeartbeat, sqlRelease, sqlAck, sqlDead, sqlCheckpoint string
}

// Lease identifies one read of one message (docs/QUEUE.md rule 2).
type Lease struct {
	MsgID  int64
	ReadCt int32
}

// Message is one message read with a lease.
type Message struct {
	Lease
	EnqueuedAt time.Time
	// Body is the message column as JSON text without its "checkpoint"
	// key; nil when SQL NULL.
	Body []byte
	// Checkpoint is the message's "checkpoint" value as JSON text (written
	// by Store.Checkpoint or by the producer), nil when it has none.
	Checkpoint []byte
}

// SavedCheckpoint is one checkpoint to write into its leased message.
type SavedCheckpoint struct {
	Lease
	Checkpoint []byte // the checkpoint object (wire.AppendCheckpointJSON)
}

// Ack is one result to write for a leased message.
type Ack struct {
	Lease
	Result []byte // the result message document (docs/QUEUE.md rule 4)
}

// DeadLetter is a message to retire with a failed result plus a copy of it
// in the dead-letter queue (docs/QUEUE.md rule 5).
type DeadLetter struct {
	Ack
	ErrorType string
	Reason    string
}

func qident(s string) string { return `"` + s + `"` }

// Table returns the quoted name of <schema>.<prefix>_<queue>.
func Table(schema, prefix, queue string) string {
	return qident(schema) + "." + qident(prefix+"_"+queue)
}

// NewStore binds a pool to a validated config. It runs no SQL: call Prepare.
func NewStore(pool *pgxpool.Pool, cfg Config) *Store {
	return &Store{
		pool: pool,
		cfg:  cfg,
		q:    Table(cfg.Schema, "q", cfg.Queue),
		a:    Table(cfg.Schema, "a", cfg.Queue),
		rq:   Table(cfg.Schema, "q", cfg.ResultsQueue),
		dq:   Table(cfg.Schema, "q", cfg.DeadLetterQueue),
	}
}

// Prepare makes sure the three queues exist (creating them when missing and
// create_queues is true), checks their columns, and builds the statements.
func (s *Store) Prepare(ctx context.Context) error {
	if err := s.ensureQueues(ctx); err != nil {
		return err
	}
	cols, err := s.columns(ctx)
	if err != nil {
		return err
	}
	need := []string{"msg_id", "read_ct", "enqueued_at", "vt", "message"}
	for _, t := range []string{"q_" + s.cfg.Queue, "a_" + s.cfg.Queue, "q_" + s.cfg.ResultsQueue, "q_" + s.cfg.DeadLetterQueue} {
		for _, c := range need {
			if !cols[t][c] {
				return fmt.Errorf("table %s.%s has no column %q: not pgmq's queue layout", s.cfg.Schema, t, c)
			}
		}
	}
	s.qHeaders = cols["q_"+s.cfg.Queue]["headers"]
	s.aHeaders = cols["a_"+s.cfg.Queue]["headers"] && s.qHeaders
	s.dHeaders = cols["q_"+s.cfg.DeadLetterQueue]["headers"]
	s.build()
	return nil
}

// Exists reports whether the tables of a queue (q_ and a_) exist.
func (s *Store) exists(ctx context.Context, queue string) (bool, error) {
	var q, a *string
	err := s.pool.QueryRow(ctx, `SELECT to_regclass($1)::text, to_regclass($2)::text`,
		Table(s.cfg.Schema, "q", queue), Table(s.cfg.Schema, "a", queue)).Scan(&q, &a)
	if err != nil {
		return false, fmt.Errorf("checking queue %s.%s: %w", s.cfg.Schema, queue, err)
	}
	return q != nil && a != nil, nil
}

func (s *Store) ensureQueues(ctx context.Context) error {
	var missing []string
	for _, qn := range []string{s.cfg.Queue, s.cfg.ResultsQueue, s.cfg.DeadLetterQueue} {
		ok, err := s.exists(ctx, qn)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, qn)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !s.cfg.CreateQueues {
		return fmt.Errorf("queue tables %s.q_%s / a_%s are missing and create_queues is false", s.cfg.Schema, missing[0], missing[0])
	}
	return CreateQueues(ctx, s.pool, s.cfg.Schema, missing...)
}

// CreateQueues creates the schema and, for each queue, the tables
// <schema>.q_<queue> and <schema>.a_<queue> in pgmq's layout plus an insert
// trigger notifying on "<schema>.q_<queue>.INSERT", where missing. When
// pgmq itself is installed in schema (a meta table and a create(text)
// function), it calls <schema>.create(queue) instead, so that pgmq knows the
// queue (pgmq's own notify trigger is then pgmq's business: polling covers
// a queue without it). Safe to run concurrently from
// several processes (one advisory lock serializes them).
func CreateQueues(ctx context.Context, pool *pgxpool.Pool, schema string, queues ...string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating queues: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('libtasker.create_queues'))`); err != nil {
		return fmt.Errorf("creating queues: advisory lock: %w", err)
	}
	// pgmq (as an extension or installed as plain SQL) keeps a meta table
	// and makes queues with <schema>.create(text)
	var hasPgmq bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regprocedure($2) IS NOT NULL`,
		qident(schema)+".meta", qident(schema)+`."create"(text)`).Scan(&hasPgmq); err != nil {
		return fmt.Errorf("creating queues: looking for pgmq in schema %s: %w", schema, err)
	}
	sch := qident(schema)
	if !hasPgmq {
		stmts := []string{
			`CREATE SCHEMA IF NOT EXISTS ` + sch,
			`CREATE OR REPLACE FUNCTION ` + sch + `.libtasker_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $f$
			BEGIN
				PERFORM pg_notify(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || '.' || TG_OP, NULL);
				RETURN NULL;
			END $f$`,
		}
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st); err != nil {
				return fmt.Errorf("creating queues: %s: %w", firstLine(st), err)
			}
		}
	}
	for _, qn := range queues {
		if hasPgmq {
			if _, err := tx.Exec(ctx, `SELECT `+sch+`."create"($1)`, qn); err != nil {
				return fmt.Errorf("creating queue %s with %s.create: %w", qn, schema, err)
			}
			continue
		}
		q, a := Table(schema, "q", qn), Table(schema, "a", qn)
		stmts := []string{
			`CREATE TABLE IF NOT EXISTS ` + q + ` (
				msg_id      bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
				read_ct     int NOT NULL DEFAULT 0,
				enqueued_at timestamptz NOT NULL DEFAULT now(),
				vt          timestamptz NOT NULL DEFAULT now(),
				message     jsonb,
				headers     jsonb)`,
			`CREATE INDEX IF NOT EXISTS ` + qident("q_"+qn+"_vt_idx") + ` ON ` + q + ` (vt ASC)`,
			`CREATE TABLE IF NOT EXISTS ` + a + ` (
				msg_id      bigint PRIMARY KEY,
				read_ct     int NOT NULL DEFAULT 0,
				enqueued_at timestamptz NOT NULL DEFAULT now(),
				archived_at timestamptz NOT NULL DEFAULT now(),
				vt          timestamptz NOT NULL,
				message     jsonb,
				headers     jsonb)`,
			`CREATE INDEX IF NOT EXISTS ` + qident("archived_at_idx_"+qn) + ` ON ` + a + ` (archived_at)`,
			`DO $d$ BEGIN
				IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'libtasker_notify_insert'
				               AND tgrelid = '` + q + `'::regclass) THEN
					CREATE TRIGGER libtasker_notify_insert AFTER INSERT ON ` + q + `
						FOR EACH STATEMENT EXECUTE FUNCTION ` + sch + `.libtasker_notify_insert();
				END IF;
			END $d$`,
		}
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st); err != nil {
				return fmt.Errorf("creating queue %s.%s: %s: %w", schema, qn, firstLine(st), err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("creating queues: commit: %w", err)
	}
	return nil
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' || c == '(' {
			return s[:i]
		}
	}
	return s
}

func (s *Store) columns(ctx context.Context) (map[string]map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = ANY($2)`, s.cfg.Schema,
		[]string{"q_" + s.cfg.Queue, "a_" + s.cfg.Queue, "q_" + s.cfg.ResultsQueue, "q_" + s.cfg.DeadLetterQueue})
	if err != nil {
		return nil, fmt.Errorf("reading the queue tables' columns: %w", err)
	}
	cols := map[string]map[string]bool{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		if cols[t] == nil {
			cols[t] = map[string]bool{}
		}
		cols[t][c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the queue tables' columns: %w", err)
	}
	return cols, nil
}

// build writes the statements. Every statement is one transaction; the
// lease check is "read_ct still equals the read_ct of our read": any later
// read (after our vt expired) increments it, and the row lock taken by the
// UPDATE or DELETE serializes us with that read.
func (s *Store) build() {
	// Read: the oldest visible messages, skipping rows another reader holds.
	s.sqlRead = `WITH c AS (
			SELECT msg_id FROM ` + s.q + `
			WHERE vt <= clock_timestamp()
			ORDER BY msg_id
			LIMIT $1
			FOR UPDATE SKIP LOCKED)
		UPDATE ` + s.q + ` m
		SET vt = clock_timestamp() + $2 * interval '1 millisecond', read_ct = m.read_ct + 1
		FROM c WHERE m.msg_id = c.msg_id
		RETURNING m.msg_id, m.read_ct, m.enqueued_at,
			(CASE WHEN jsonb_typeof(m.message) = 'object' THEN m.message - 'checkpoint' ELSE m.message END)::text,
			(CASE WHEN jsonb_typeof(m.message) = 'object' THEN m.message -> 'checkpoint' END)::text`
	leases := `unnest($1::bigint[], $2::int[]) AS l(msg_id, read_ct)`
	s.sqlHeartbeat = `UPDATE ` + s.q + ` m SET vt = clock_timestamp() + $3 * interval '1 millisecond'
		FROM ` + leases + ` WHERE m.msg_id = l.msg_id AND m.read_ct = l.read_ct
		RETURNING m.msg_id`
	// Checkpoint: the message's "checkpoint" key replaced and the lease
	// extended, only while the lease holds (a message that is not an
	// object was never dispatched, so never checkpointed).
	s.sqlCheckpoint = `UPDATE ` + s.q + ` m
		SET message = m.message || jsonb_build_object('checkpoint', l.cp),
			vt = clock_timestamp() + $4 * interval '1 millisecond'
		FROM unnest($1::bigint[], $2::int[], $3::jsonb[]) AS l(msg_id, read_ct, cp)
		WHERE m.msg_id = l.msg_id AND m.read_ct = l.read_ct AND jsonb_typeof(m.message) = 'object'
		RETURNING m.msg_id`
	s.sqlRelease = `UPDATE ` + s.q + ` m SET vt = clock_timestamp()
		FROM ` + leases + ` WHERE m.msg_id = l.msg_id AND m.read_ct = l.read_ct
		RETURNING m.msg_id`

	hcol, hsel, hret := "", "", ""
	if s.qHeaders {
		hret = ", m.headers"
	}
	if s.aHeaders {
		hcol, hsel = ", headers", ", d.headers"
	}
	// Ack: one statement, so one transaction: the message leaves q_ only
	// together with its archive row and its result row.
	moved := `WITH d AS (
			DELETE FROM ` + s.q + ` m USING unnest($1::bigint[], $2::int[], $3::jsonb[]) AS l(msg_id, read_ct, result)
			WHERE m.msg_id = l.msg_id AND m.read_ct = l.read_ct
			RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message` + hret + `, l.result),
		arch AS (
			INSERT INTO ` + s.a + ` (msg_id, read_ct, enqueued_at, vt, message` + hcol + `)
			SELECT d.msg_id, d.read_ct, d.enqueued_at, d.vt, d.message` + hsel + ` FROM d),
		res AS (
			INSERT INTO ` + s.rq + ` (vt, message) SELECT clock_timestamp(), d.result FROM d ORDER BY d.msg_id)`
	s.sqlAck = moved + `
		SELECT msg_id FROM d`
	dcol, dsel := "", ""
	if s.dHeaders {
		dcol = ", headers"
		orig := "'{}'::jsonb"
		if s.qHeaders {
			orig = "coalesce(d.headers, '{}'::jsonb)"
		}
		dsel = `, ` + orig + ` || jsonb_build_object('libtasker_dead_letter', jsonb_build_object(
			'queue', x.queue, 'msg_id', d.msg_id, 'read_ct', d.read_ct, 'error_type', x.error_type, 'reason', x.reason))`
	}
	s.sqlDead = moved + `,
		x AS (SELECT x.*, $5::text AS queue FROM unnest($1::bigint[], $4::text[], $6::text[]) AS x(msg_id, error_type, reason)),
		dl AS (
			INSERT INTO ` + s.dq + ` (vt, message` + dcol + `)
			SELECT clock_timestamp(), d.message` + dsel + ` FROM d JOIN x ON x.msg_id = d.msg_id ORDER BY d.msg_id)
		SELECT msg_id FROM d`
}

// Read leases up to n visible messages for the visibility timeout, oldest
// first (docs/QUEUE.md rule 2).
func (s *Store) Read(ctx context.Context, n int) ([]Message, error) {
	rows, err := s.pool.Query(ctx, s.sqlRead, n, s.cfg.VisibilityTimeoutMs)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.q, err)
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
		var m Message
		var body, cp *string
		if err := r.Scan(&m.MsgID, &m.ReadCt, &m.EnqueuedAt, &body, &cp); err != nil {
			return m, err
		}
		if body != nil {
			m.Body = []byte(*body)
		}
		if cp != nil {
			m.Checkpoint = []byte(*cp)
		}
		return m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.q, err)
	}
	sortMessages(msgs)
	return msgs, nil
}

func sortMessages(m []Message) {
	for i := 1; i < len(m); i++ { // insertion sort: a batch is small
		for j := i; j > 0 && m[j].MsgID < m[j-1].MsgID; j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}

func split(ls []Lease) ([]int64, []int32) {
	ids, cts := make([]int64, len(ls)), make([]int32, len(ls))
	for i, l := range ls {
		ids[i], cts[i] = l.MsgID, l.ReadCt
	}
	return ids, cts
}

func held(rows pgx.Rows, err error) (map[int64]bool, error) {
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m, nil
}

// Heartbeat extends the vt of every lease that still holds to now +
// visibility timeout, and returns the msg_ids whose lease held.
func (s *Store) Heartbeat(ctx context.Context, ls []Lease) (map[int64]bool, error) {
	ids, cts := split(ls)
	m, err := held(s.pool.Query(ctx, s.sqlHeartbeat, ids, cts, s.cfg.VisibilityTimeoutMs))
	if err != nil {
		return nil, fmt.Errorf("heartbeat on %s: %w", s.q, err)
	}
	return m, nil
}

// Checkpoint writes each checkpoint into its message (the "checkpoint" key
// replaced) and extends its vt to now + visibility timeout, in one
// statement, only where the lease still holds; it returns the msg_ids
// written. The others' leases were lost and nothing was written for them.
func (s *Store) Checkpoint(ctx context.Context, cps []SavedCheckpoint) (map[int64]bool, error) {
	ids, cts := make([]int64, len(cps)), make([]int32, len(cps))
	docs := make([]json.RawMessage, len(cps))
	for i, c := range cps {
		ids[i], cts[i], docs[i] = c.MsgID, c.ReadCt, c.Checkpoint
	}
	m, err := held(s.pool.Query(ctx, s.sqlCheckpoint, ids, cts, docs, s.cfg.VisibilityTimeoutMs))
	if err != nil {
		return nil, fmt.Errorf("saving checkpoints on %s: %w", s.q, err)
	}
	return m, nil
}

// Release makes every message whose lease still holds visible again at
// once (vt = now), and returns the msg_ids released.
func (s *Store) Release(ctx context.Context, ls []Lease) (map[int64]bool, error) {
	ids, cts := split(ls)
	m, err := held(s.pool.Query(ctx, s.sqlRelease, ids, cts))
	if err != nil {
		return nil, fmt.Errorf("releasing on %s: %w", s.q, err)
	}
	return m, nil
}

// Ack retires every message whose lease still holds, each in the same
// transaction as its result (docs/QUEUE.md rule 3), and returns the msg_ids
// acked; the others' leases were lost and nothing was written for them.
func (s *Store) Ack(ctx context.Context, acks []Ack) (map[int64]bool, error) {
	ids, cts := make([]int64, len(acks)), make([]int32, len(acks))
	res := make([]json.RawMessage, len(acks))
	for i, a := range acks {
		ids[i], cts[i], res[i] = a.MsgID, a.ReadCt, a.Result
	}
	m, err := held(s.pool.Query(ctx, s.sqlAck, ids, cts, res))
	if err != nil {
		return nil, fmt.Errorf("acking on %s: %w", s.q, err)
	}
	return m, nil
}

// DeadLetter retires every message whose lease still holds with its failed
// result and a copy in the dead-letter queue, all in one transaction, and
// returns the msg_ids retired.
func (s *Store) DeadLetter(ctx context.Context, ds []DeadLetter) (map[int64]bool, error) {
	ids, cts := make([]int64, len(ds)), make([]int32, len(ds))
	res := make([]json.RawMessage, len(ds))
	types, reasons := make([]string, len(ds)), make([]string, len(ds))
	for i, d := range ds {
		ids[i], cts[i], res[i], types[i], reasons[i] = d.MsgID, d.ReadCt, d.Result, d.ErrorType, d.Reason
	}
	m, err := held(s.pool.Query(ctx, s.sqlDead, ids, cts, res, types, s.cfg.Queue, reasons))
	if err != nil {
		return nil, fmt.Errorf("dead-lettering on %s: %w", s.q, err)
	}
	return m, nil
}

// Archived reports which of the given leases are in the archive with the
// same read_ct: an ack whose commit succeeded although the client saw an
// error (the connection dropped) is found there on retry.
func (s *Store) Archived(ctx context.Context, ls []Lease) (map[int64]bool, error) {
	ids, cts := split(ls)
	m, err := held(s.pool.Query(ctx, `SELECT a.msg_id FROM `+s.a+` a JOIN unnest($1::bigint[], $2::int[]) AS l(msg_id, read_ct)
		ON a.msg_id = l.msg_id AND a.read_ct = l.read_ct`, ids, cts))
	if err != nil {
		return nil, fmt.Errorf("checking the archive %s: %w", s.a, err)
	}
	return m, nil
}
