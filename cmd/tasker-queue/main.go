// Command tasker-queue is the producer's side of libtasker's PostgreSQL
// source (docs/QUEUE.md): it creates queues, sends steps, shows a queue's state
// and tails results. It uses pgmq's table layout directly, so it works the
// same on a database where pgmq made the queues.
//
//	tasker-queue [flags] create QUEUE             create QUEUE, QUEUE_results and QUEUE_dlq
//	tasker-queue [flags] send QUEUE < steps.jsonl one dispatch document per line; prints msg_ids
//	tasker-queue [flags] stats QUEUE              depth, oldest age, in flight, archived, results, dead letters
//	tasker-queue [flags] tail QUEUE               print result messages as JSON lines (-f: keep following)
//
// Flags: -dsn (default $TASKER_DSN, then $DATABASE_URL), -schema (default pgmq), and per command
// -delay-ms (send: vt in the future), -raw (send: do not check lines are dispatch documents),
// -f, -from (tail), -json (stats).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tasker-systems/libtasker/internal/wire"
	"github.com/tasker-systems/libtasker/source/postgres"
)

const usage = `usage: tasker-queue [-dsn DSN] [-schema SCHEMA] COMMAND [flags] QUEUE

commands:
  create QUEUE          create the queue, its results queue and its dead-letter queue (pgmq layout)
  send [-delay-ms N] [-raw] [-results Q] QUEUE
                        send one step per line of stdin (JSON dispatch documents); prints each msg_id
  stats [-json] QUEUE   depth, oldest age, in flight, archived, results and dead letters
  tail [-f] [-from MSG_ID] [-results Q] QUEUE
                        print the queue's result messages as JSON lines (-f: wait for more)

DSN defaults to $TASKER_DSN, then $DATABASE_URL; SCHEMA to pgmq.
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tasker-queue:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	top := flag.NewFlagSet("tasker-queue", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	dsn := top.String("dsn", firstEnv("TASKER_DSN", "DATABASE_URL"), "connection string")
	schema := top.String("schema", "pgmq", "schema of the queue tables")
	if err := top.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	rest := top.Args()
	if len(rest) == 0 {
		return usageError{"missing command"}
	}
	cmd, rest := rest[0], rest[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	delay := fs.Int("delay-ms", 0, "send: make the messages visible this many ms from now")
	raw := fs.Bool("raw", false, "send: send lines as they are (any JSON), without checking they are dispatch documents")
	follow := fs.Bool("f", false, "tail: keep waiting for new results")
	from := fs.Int64("from", 0, "tail: start after this msg_id of the results queue")
	results := fs.String("results", "", "send/tail: results queue (default QUEUE_results)")
	asJSON := fs.Bool("json", false, "stats: one JSON object instead of a table")
	if err := fs.Parse(rest); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{cmd + ": want exactly one QUEUE"}
	}
	queue := fs.Arg(0)
	cfg := postgres.Config{DSN: *dsn, Queue: queue, Schema: *schema, ResultsQueue: *results}
	if *dsn == "" {
		return usageError{"no DSN: pass -dsn or set TASKER_DSN"}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch cmd {
	case "create":
		if err := postgres.CreateQueues(ctx, pool, cfg.Schema, cfg.Queue, cfg.ResultsQueue, cfg.DeadLetterQueue); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s.q_%s, %s.q_%s and %s.q_%s (with their a_ archive tables)\n",
			cfg.Schema, cfg.Queue, cfg.Schema, cfg.ResultsQueue, cfg.Schema, cfg.DeadLetterQueue)
		return nil
	case "send":
		return send(ctx, pool, cfg, stdin, stdout, *delay, *raw)
	case "stats":
		return stats(ctx, pool, cfg, stdout, *asJSON)
	case "tail":
		return tail(ctx, pool, cfg, stdout, *from, *follow)
	}
	return usageError{"unknown command " + cmd}
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// send inserts one message per non-empty line, in batches of up to 1000 (one
// INSERT each), and prints each msg_id.
func send(ctx context.Context, pool *pgxpool.Pool, cfg postgres.Config, in io.Reader, out io.Writer, delayMs int, raw bool) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	w := bufio.NewWriter(out)
	defer w.Flush()
	sql := `INSERT INTO ` + postgres.Table(cfg.Schema, "q", cfg.Queue) + ` (vt, message)
		SELECT clock_timestamp() + $2 * interval '1 millisecond', m FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(m, i) ORDER BY i
		RETURNING msg_id`
	var batch []json.RawMessage
	sent, bad, line := 0, 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rows, err := pool.Query(ctx, sql, batch, delayMs)
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			fmt.Fprintln(w, id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	for sc.Scan() {
		line++
		b := []byte(strings.TrimSpace(sc.Text()))
		if len(b) == 0 {
			continue
		}
		var err error
		if raw {
			if !json.Valid(b) {
				err = errors.New("not valid JSON")
			}
		} else {
			_, err = wire.ParseDispatch(b, 0)
		}
		if err != nil {
			bad++
			fmt.Fprintf(os.Stderr, "tasker-queue: send: line %d skipped: %v\n", line, err)
			continue
		}
		batch = append(batch, append(json.RawMessage(nil), b...))
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("send: reading stdin: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("send: %d lines skipped (%d sent); use -raw to send any JSON", bad, sent)
	}
	return nil
}

// QueueStats is one row of `stats`.
type QueueStats struct {
	Queue        string   `json:"queue"`
	Depth        int64    `json:"depth"`        // messages in q_
	Visible      int64    `json:"visible"`      // of which readable now
	InFlight     int64    `json:"in_flight"`    // of which leased (read, vt in the future)
	Delayed      int64    `json:"delayed"`      // never read, vt in the future
	OldestAgeSec *float64 `json:"oldest_age_s"` // age of the oldest message in q_
	Archived     int64    `json:"archived"`     // rows in a_
	MaxReadCt    int64    `json:"max_read_ct"`  // highest read_ct in q_ (redeliveries)
	Missing      bool     `json:"missing,omitempty"`
}

func queueStats(ctx context.Context, pool *pgxpool.Pool, schema, queue string) (QueueStats, error) {
	st := QueueStats{Queue: queue}
	var q, a *string
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1)::text, to_regclass($2)::text`,
		postgres.Table(schema, "q", queue), postgres.Table(schema, "a", queue)).Scan(&q, &a); err != nil {
		return st, err
	}
	if q == nil {
		st.Missing = true
		return st, nil
	}
	err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE vt <= now()),
			count(*) FILTER (WHERE vt > now() AND read_ct > 0), count(*) FILTER (WHERE vt > now() AND read_ct = 0),
			extract(epoch FROM now() - min(enqueued_at))::float8, coalesce(max(read_ct), 0)
		FROM `+postgres.Table(schema, "q", queue)).Scan(&st.Depth, &st.Visible, &st.InFlight, &st.Delayed, &st.OldestAgeSec, &st.MaxReadCt)
	if err != nil {
		return st, fmt.Errorf("stats of %s.q_%s: %w", schema, queue, err)
	}
	if a != nil {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+postgres.Table(schema, "a", queue)).Scan(&st.Archived); err != nil {
			return st, fmt.Errorf("stats of %s.a_%s: %w", schema, queue, err)
		}
	}
	return st, nil
}

func stats(ctx context.Context, pool *pgxpool.Pool, cfg postgres.Config, out io.Writer, asJSON bool) error {
	var rows []QueueStats
	for _, qn := range []string{cfg.Queue, cfg.ResultsQueue, cfg.DeadLetterQueue} {
		st, err := queueStats(ctx, pool, cfg.Schema, qn)
		if err != nil {
			return err
		}
		rows = append(rows, st)
	}
	if asJSON {
		return json.NewEncoder(out).Encode(map[string]any{"steps": rows[0], "results": rows[1], "dead_letters": rows[2]})
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tqueue\tdepth\tvisible\tin flight\tdelayed\toldest age\tmax read_ct\tarchived\t")
	for i, st := range rows {
		role := []string{"steps", "results", "dead letters"}[i]
		if st.Missing {
			fmt.Fprintf(tw, "%s\t%s.q_%s\t(missing)\t\t\t\t\t\t\t\n", role, cfg.Schema, st.Queue)
			continue
		}
		age := "-"
		if st.OldestAgeSec != nil {
			age = (time.Duration(*st.OldestAgeSec * float64(time.Second))).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t\n", role, st.Queue, st.Depth, st.Visible, st.InFlight, st.Delayed, age, st.MaxReadCt, st.Archived)
	}
	return tw.Flush()
}

// tail prints result messages (non-destructively: they stay in the results
// queue for the orchestrator) as JSON lines {"msg_id","enqueued_at","message"}.
func tail(ctx context.Context, pool *pgxpool.Pool, cfg postgres.Config, out io.Writer, from int64, follow bool) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	sql := `SELECT msg_id, enqueued_at, message::text FROM ` + postgres.Table(cfg.Schema, "q", cfg.ResultsQueue) + `
		WHERE msg_id > $1 ORDER BY msg_id LIMIT 1000`
	last := from
	for {
		rows, err := pool.Query(ctx, sql, last)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		n := 0
		for rows.Next() {
			var id int64
			var at time.Time
			var msg *string
			if err := rows.Scan(&id, &at, &msg); err != nil {
				return err
			}
			m := "null"
			if msg != nil {
				m = *msg
			}
			fmt.Fprintf(w, `{"msg_id":%d,"enqueued_at":%q,"message":%s}`+"\n", id, at.UTC().Format(time.RFC3339Nano), m)
			last, n = id, n+1
		}
		if err := rows.Err(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		if n == 1000 {
			continue
		}
		if !follow {
			return nil
		}
		w.Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
