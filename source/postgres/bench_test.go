package postgres

import (
	"context"
	"slices"
	"testing"
	"time"
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
