// Command pgsource measures the PostgreSQL source for `make bench` (section
// "PostgreSQL source"). It reports; nothing here asserts a time. Each mode
// prints one JSON line per figure on stdout.
//
//	pgsource throughput -dsn D -kind source|floor -procs P -n N -worker PATH [-threads T] [-batch B]
//	    P worker processes on one queue; N messages inserted in one statement once every worker
//	    is connected; the time from that commit until all N are in a_<queue>. kind "source": the
//	    C worker (pgworker work) over libtasker's source; kind "floor": this program's
//	    floorworker, a plain pgx loop doing the same reads (the source's Store, same batch size)
//	    and the same one-statement acks, with no channel in between.
//	pgsource latency -dsn D -worker PATH -n N [-notify=false] [-poll-ms MS]
//	    send -> poll return: N messages sent one at a time (payload.sent_ns taken just before
//	    the INSERT), the C worker prints when its poll returned. Without -notify the queue has no
//	    notify trigger, so the source finds messages by polling every poll_interval_ms.
//	pgsource idle -dsn D -worker PATH [-seconds S] [-cmd python|c]
//	    CPU time used by a connected worker process with an empty queue over S seconds.
//	pgsource floorworker -dsn D -queue Q -batch B
//	    (started by throughput)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tasker-systems/libtasker/source/postgres"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pgsource throughput|latency|idle|floorworker [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "throughput":
		err = throughput(os.Args[2:])
	case "latency":
		err = latency(os.Args[2:])
	case "idle":
		err = idle(os.Args[2:])
	case "floorworker":
		err = floorWorker(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgsource:", err)
		os.Exit(1)
	}
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// sourceConfig is tasker_new's config document for a C worker on queue.
func sourceConfig(dsn, queue string, batch, pollMs int, create bool) string {
	doc := map[string]any{
		"dispatch_buffer_size":    64,
		"max_concurrent_handlers": 64,
		"completion_buffer_size":  64,
		"source": map[string]any{"postgres": map[string]any{
			"dsn": dsn, "queue": queue, "batch_size": batch, "poll_interval_ms": pollMs, "create_queues": create,
		}},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

type proc struct {
	cmd   *exec.Cmd
	lines chan string
}

// start runs a worker process and waits for its "ready" line.
func start(ctx context.Context, name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				_ = cmd.Wait()
				return nil, fmt.Errorf("%s ended before it was ready", name)
			}
			if l == "ready" {
				return p, nil
			}
		case <-ctx.Done():
			p.kill()
			return nil, fmt.Errorf("%s: not ready in time", name)
		}
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// stop sends SIGTERM and waits up to 30 s.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("worker did not stop within 30 s")
	}
}

// freshQueue connects to dsn and makes the queue name, with its results
// and dead-letter queues, in pgmq's layout: every bench mode starts so.
func freshQueue(ctx context.Context, dsn, name string) (*pgxpool.Pool, string, error) {
	db, err := pool(ctx, dsn)
	if err != nil {
		return nil, "", err
	}
	if err := postgres.CreateQueues(ctx, db, "pgmq", name, name+"_results", name+"_dlq"); err != nil {
		db.Close()
		return nil, "", err
	}
	return db, name, nil
}

func pool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	p, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return p, p.Ping(ctx)
}

const step = `jsonb_build_object('task_uuid', gen_random_uuid(), 'step_uuid', gen_random_uuid(), 'handler', 'bench',
	'payload', jsonb_build_object('order_id', g, 'items', jsonb_build_array(jsonb_build_object('sku', 'A-1', 'qty', 2)), 'note', 'hello'))`

func throughput(args []string) error {
	fs := flag.NewFlagSet("throughput", flag.ExitOnError)
	dsn := fs.String("dsn", "", "")
	kind := fs.String("kind", "source", "source or floor")
	procs := fs.Int("procs", 1, "")
	n := fs.Int("n", 20000, "")
	worker := fs.String("worker", "", "the pgworker binary")
	threads := fs.Int("threads", 2, "threads per C worker")
	batch := fs.Int("batch", 20, "batch_size")
	_ = fs.Parse(args)
	ctx := context.Background()
	db, queue, err := freshQueue(ctx, *dsn, fmt.Sprintf("bench_%s_%d_%d", *kind, *procs, rand.Intn(1e6)))
	if err != nil {
		return err
	}
	defer db.Close()
	var ps []*proc
	defer func() {
		for _, p := range ps {
			p.kill()
		}
	}()
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	self, _ := os.Executable()
	for i := 0; i < *procs; i++ {
		var p *proc
		if *kind == "floor" {
			p, err = start(readyCtx, self, "floorworker", "-dsn", *dsn, "-queue", queue, "-batch", strconv.Itoa(*batch))
		} else {
			p, err = start(readyCtx, *worker, "work", sourceConfig(*dsn, queue, *batch, 500, false), strconv.Itoa(*threads))
		}
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	q, a := postgres.Table("pgmq", "q", queue), postgres.Table("pgmq", "a", queue)
	if _, err := db.Exec(ctx, `INSERT INTO `+q+` (vt, message) SELECT now(), `+step+` FROM generate_series(1, $1) g`, *n); err != nil {
		return err
	}
	t0 := time.Now()
	var done int
	for done < *n {
		time.Sleep(5 * time.Millisecond)
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+a).Scan(&done); err != nil {
			return err
		}
		if time.Since(t0) > 10*time.Minute {
			return fmt.Errorf("%d of %d archived after 10 minutes", done, *n)
		}
	}
	dt := time.Since(t0)
	for _, p := range ps {
		if err := p.stop(); err != nil {
			return fmt.Errorf("stopping a worker: %w", err)
		}
	}
	ps = nil
	var results int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM `+postgres.Table("pgmq", "q", queue+"_results")).Scan(&results); err != nil {
		return err
	}
	emit(map[string]any{"bench": "pg_throughput", "kind": *kind, "procs": *procs, "batch": *batch, "messages": *n,
		"results": results, "seconds": dt.Seconds(), "msgs_per_s": float64(*n) / dt.Seconds()})
	return nil
}

// floorWorker: the source's reads and acks with nothing in between.
func floorWorker(args []string) error {
	fs := flag.NewFlagSet("floorworker", flag.ExitOnError)
	dsn := fs.String("dsn", "", "")
	queue := fs.String("queue", "", "")
	batch := fs.Int("batch", 20, "")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg := postgres.Config{DSN: *dsn, Queue: *queue, BatchSize: *batch, CreateQueues: false}
	if err := cfg.Validate(); err != nil {
		return err
	}
	db, err := pool(context.Background(), *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	store := postgres.NewStore(db, cfg)
	if err := store.Prepare(context.Background()); err != nil {
		return err
	}
	fmt.Println("ready")
	// a completion document of the size the source writes (ABI.md's completion, every key present)
	completion := []byte(`{"event_id":"0190a0a0-0000-7000-8000-000000000003","task_uuid":"0190a0a0-0000-7000-8000-000000000001",` +
		`"step_uuid":"0190a0a0-0000-7000-8000-000000000002","correlation_id":"0190a0a0-0000-7000-8000-000000000004",` +
		`"handler":"bench","status":"completed","success":true,"result":{"ok":true,"total":42.5},"error":null,` +
		`"metadata":{"worker":"c"},"dispatched_at":"2026-01-01T00:00:00.000000000Z","polled_at":"2026-01-01T00:00:00.000000000Z",` +
		`"completed_at":"2026-01-01T00:00:00.000000000Z","execution_time_ms":0}`)
	for ctx.Err() == nil {
		msgs, err := store.Read(context.Background(), *batch)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		acks := make([]postgres.Ack, len(msgs))
		for i, m := range msgs {
			// the same checks the source makes before it dispatches: the body is JSON
			var v map[string]json.RawMessage
			if err := json.Unmarshal(m.Body, &v); err != nil {
				return err
			}
			r := fmt.Appendf(nil, `{"msg_id":%d,"queue":%q,"read_ct":%d,"completion":%s}`, m.MsgID, *queue, m.ReadCt, completion)
			acks[i] = postgres.Ack{Lease: m.Lease, Result: r}
		}
		if _, err := store.Ack(context.Background(), acks); err != nil {
			return err
		}
	}
	return nil
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(p * float64(len(xs)-1))
	return xs[i]
}

func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	dsn := fs.String("dsn", "", "")
	worker := fs.String("worker", "", "")
	n := fs.Int("n", 200, "")
	notify := fs.Bool("notify", true, "keep the notify trigger")
	pollMs := fs.Int("poll-ms", 500, "poll_interval_ms")
	_ = fs.Parse(args)
	ctx := context.Background()
	db, queue, err := freshQueue(ctx, *dsn, fmt.Sprintf("bench_lat_%d", rand.Intn(1e6)))
	if err != nil {
		return err
	}
	defer db.Close()
	q := postgres.Table("pgmq", "q", queue)
	if !*notify {
		if _, err := db.Exec(ctx, `DROP TRIGGER libtasker_notify_insert ON `+q); err != nil {
			return err
		}
	}
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	p, err := start(readyCtx, *worker, "latency", sourceConfig(*dsn, queue, 20, *pollMs, false), strconv.Itoa(*n))
	if err != nil {
		return err
	}
	defer p.kill()
	var lat []float64
	for i := 0; i < *n; i++ {
		// a pause of random length, so that sends do not lock step with the poll timer
		gap := 5 * time.Millisecond
		if !*notify {
			gap = time.Duration(rand.Intn(*pollMs)) * time.Millisecond
		}
		time.Sleep(gap)
		sent := time.Now().UnixNano()
		if _, err := db.Exec(ctx, `INSERT INTO `+q+` (vt, message) VALUES (now(), jsonb_build_object(
			'task_uuid', gen_random_uuid(), 'step_uuid', gen_random_uuid(), 'handler', 'bench',
			'payload', jsonb_build_object('sent_ns', $1::bigint)))`, sent); err != nil {
			return err
		}
		select {
		case l, ok := <-p.lines:
			if !ok {
				return fmt.Errorf("the worker ended early")
			}
			var v struct {
				LatUs float64 `json:"lat_us"`
			}
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				return fmt.Errorf("worker line %q: %w", l, err)
			}
			lat = append(lat, v.LatUs/1000)
		case <-time.After(30 * time.Second):
			return fmt.Errorf("no poll return within 30 s")
		}
	}
	sort.Float64s(lat)
	mode := "notify"
	if !*notify {
		mode = "poll_only"
	}
	emit(map[string]any{"bench": "pg_latency", "mode": mode, "poll_interval_ms": *pollMs, "samples": len(lat),
		"p50_ms": pct(lat, 0.5), "p90_ms": pct(lat, 0.9), "p99_ms": pct(lat, 0.99), "max_ms": lat[len(lat)-1]})
	return nil
}

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k, nil
}

func idle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	dsn := fs.String("dsn", "", "")
	worker := fs.String("worker", "", "")
	seconds := fs.Float64("seconds", 10, "")
	which := fs.String("cmd", "c", "c (pgworker, 2 threads) or python (tests/cluster/worker.py, 4 threads)")
	_ = fs.Parse(args)
	ctx := context.Background()
	db, queue, err := freshQueue(ctx, *dsn, fmt.Sprintf("bench_idle_%d", rand.Intn(1e6)))
	if err != nil {
		return err
	}
	defer db.Close()
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var p *proc
	if *which == "python" {
		src, _ := json.Marshal(map[string]any{"postgres": map[string]any{"dsn": *dsn, "queue": queue, "create_queues": false}})
		root, _ := filepath.Abs(filepath.Join(filepath.Dir(*worker), "..", ".."))
		p, err = startPython(readyCtx, filepath.Join(root, "tests", "cluster", "worker.py"), string(src))
	} else {
		p, err = start(readyCtx, *worker, "work", sourceConfig(*dsn, queue, 20, 500, false), "2")
	}
	if err != nil {
		return err
	}
	defer p.kill()
	time.Sleep(time.Second)
	pid := p.cmd.Process.Pid
	c0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	c1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	dt := time.Since(t0).Seconds()
	const hz = 100 // USER_HZ on Linux
	cpu := float64(c1-c0) / hz
	emit(map[string]any{"bench": "pg_idle_cpu", "worker": *which, "seconds": dt, "cpu_seconds": cpu,
		"cpu_percent": 100 * cpu / dt})
	return p.stop()
}

// startPython runs the cluster's Python worker; it is ready once its first status line says connected.
func startPython(ctx context.Context, script, src string) (*proc, error) {
	cmd := exec.Command("python3", script, "idle", src, "4")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // status lines nobody reads any more
			}
		}
		close(p.lines)
	}()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				_ = cmd.Wait()
				return nil, fmt.Errorf("python worker ended before it was ready")
			}
			if strings.Contains(l, `"source_state": "connected"`) {
				return p, nil
			}
		case <-ctx.Done():
			p.kill()
			return nil, fmt.Errorf("python worker: not ready in time")
		}
	}
}
