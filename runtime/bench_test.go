package runtime_test

import (
	"context"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
	rt "github.com/tasker-systems/libtasker/runtime"
)

func benchDisp(b *testing.B, opts ...rt.Option) *rt.Dispatcher {
	cfg := rt.DefaultConfig()
	cfg.CleanupIntervalMs = 0
	d, err := rt.New(cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Shutdown(0) })
	return d
}

// BenchmarkJSONRoundTrip: what one event costs in Go, with the calls the C
// layer makes for tasker_dispatch, tasker_poll_into, tasker_complete and
// tasker_next_completion_into: DispatchJSON -> PollInto -> AppendEventJSON ->
// CompleteJSON -> NextCompletionInto -> AppendCompletionJSON. With
// BENCH_EVENT and BENCH_RESULT set (tests/bench/run.sh exports them) it uses
// the benchmark's documents, for comparison with the C round trip and the
// one-slot floor (tests/bench/NOTES.md, 23).
func BenchmarkJSONRoundTrip(b *testing.B) {
	d := benchDisp(b)
	doc := []byte(`{"task_uuid":"` + uuid.NewString() + `","step_uuid":"` + uuid.NewString() +
		`","handler":"process_order","payload":{"order":12345,"items":[1,2,3]},"timeout_ms":5000}`)
	res := []byte(`{"success":true,"result":{"charged":12.5},"metadata":{"worker":"w1"}}`)
	if ev, r := os.Getenv("BENCH_EVENT"), os.Getenv("BENCH_RESULT"); ev != "" && r != "" {
		doc, res = []byte(ev), []byte(r)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DispatchJSON(bg, doc, 0); err != nil {
			b.Fatal(err)
		}
		var e channel.Event
		if err := d.PollInto(bg, 0, &e); err != nil {
			b.Fatal(err)
		}
		buf = wire.AppendEventJSON(buf[:0], &e)
		if err := d.CompleteJSON(e.EventID, res); err != nil {
			b.Fatal(err)
		}
		var c channel.Completion
		if err := d.NextCompletionInto(bg, 0, &c); err != nil {
			b.Fatal(err)
		}
		buf = wire.AppendCompletionJSON(buf[:0], &c)
	}
}

// BenchmarkGoHandlerRoundTrip: Dispatch -> Go handler goroutine ->
// NextCompletion.
func BenchmarkGoHandlerRoundTrip(b *testing.B) {
	d := benchDisp(b, rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
		return channel.Result{Success: true}, nil
	})))
	e := channel.Event{TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "go"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Dispatch(bg, e, -1); err != nil {
			b.Fatal(err)
		}
		if _, err := d.NextCompletion(bg, -1); err != nil {
			b.Fatal(err)
		}
	}
}
