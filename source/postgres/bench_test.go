package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tasker-systems/libtasker/channel"
)

// BenchmarkSource_WakeLatency measures send -> poll return through the
// whole path (INSERT, notification, read with lease, feed, poll), one
// message at a time, with notifications (poll interval 60 s: only a
// notification wakes the reader). Reports p50/p99 in microseconds.
//
//	go test -run '^$' -bench WakeLatency -benchtime 200x ./source/postgres
func BenchmarkSource_WakeLatency(b *testing.B) {
	db := newTestDB(b)
	cfg := db.cfg()
	cfg.PollIntervalMs = 60000
	r := startRig(b, db, cfg, 4)
	doc := steps(1, "h")[0]
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := db.pool.Exec(ctx, `INSERT INTO `+Table(r.cfg.Schema, "q", r.cfg.Queue)+` (vt, message) VALUES (now(), $1)`, doc); err != nil {
			b.Fatal(err)
		}
		ev, err := r.d.Poll(ctx, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		if err := r.d.Complete(ev.EventID, ok(`1`)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}

// BenchmarkSource_Throughput measures messages per second through one
// source and one dispatcher (64 handler slots) with 4 Go goroutines polling in batches of 8
// and completing at once (no handler work): read with lease, feed, poll,
// complete, one-transaction ack. The messages are inserted before the
// timer starts.
//
//	go test -run '^$' -bench Throughput -benchtime 5000x ./source/postgres
func BenchmarkSource_Throughput(b *testing.B) {
	db := newTestDB(b)
	cfg := db.cfg()
	r := startRig(b, db, cfg, 16)
	r.shutdown(0) // only to make the queues; the measured run starts below
	docs := steps(b.N, "h")
	db.sendAll(r.cfg.Schema, docs...)
	b.ResetTimer()
	r = startRig(b, db, cfg, 64) // room for several reads of batch_size, like the floor's 4 readers
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				evs, err := r.d.PollBatch(context.Background(), 8, 50*time.Millisecond)
				if err != nil {
					if r.src.Stats().Acked >= uint64(b.N) {
						return
					}
					continue
				}
				for _, ev := range evs {
					_ = r.d.Complete(ev.EventID, ok(`1`))
				}
			}
		}()
	}
	waitFor(b, "every ack", func() bool { return r.src.Stats().Acked >= uint64(b.N) })
	b.StopTimer()
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkStore_Floor is the SQL floor under BenchmarkSource_Throughput:
// the same reads (batch_size 20) and the same one-statement acks, with no
// channel in between, from 4 goroutines.
//
//	go test -run '^$' -bench Floor -benchtime 5000x ./source/postgres
func BenchmarkStore_Floor(b *testing.B) {
	db := newTestDB(b)
	cfg := db.cfg()
	st := prepared(b, db, cfg)
	db.sendAll(cfg.Schema, steps(b.N, "h")...)
	var acked atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for acked.Load() < int64(b.N) {
				msgs, err := st.Read(ctx, cfg.BatchSize)
				if err != nil {
					b.Error(err)
					return
				}
				if len(msgs) == 0 {
					continue
				}
				acks := make([]Ack, len(msgs))
				for i, m := range msgs {
					acks[i] = Ack{Lease: m.Lease, Result: []byte(`{"msg_id":1,"queue":"q","read_ct":1,"completion":{}}`)}
				}
				done, err := st.Ack(ctx, acks)
				if err != nil {
					b.Error(err)
					return
				}
				acked.Add(int64(len(done)))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkSource_CheckpointRoundTrip measures tasker_checkpoint -> the
// next poll returning the event for a source event: the checkpoint is
// written into the message under the lease before the event is handed out
// again, so this is one UPDATE plus the hand-offs. Reports p50/p99 in
// microseconds. (A local event's checkpoint round trip has no database in
// it: see make bench.)
//
//	go test -run '^$' -bench CheckpointRoundTrip -benchtime 500x ./source/postgres
func BenchmarkSource_CheckpointRoundTrip(b *testing.B) {
	db := newTestDB(b)
	r := startRig(b, db, db.cfg(), 4)
	db.send(r.cfg.Schema, steps(1, "walk")...)
	ctx := context.Background()
	ev, err := r.d.Poll(ctx, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := r.d.Checkpoint(ev.EventID, channel.Checkpoint{Cursor: json.RawMessage(strconv.Itoa(i)), ItemsProcessed: int64(i)}); err != nil {
			b.Fatal(err)
		}
		if ev, err = r.d.Poll(ctx, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	if err := r.d.Complete(ev.EventID, ok(`1`)); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}
