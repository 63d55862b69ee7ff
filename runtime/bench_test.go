package runtime_test

import (
	"context"
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

// BenchmarkJSONRoundTrip: what one event costs across the C boundary:
// DispatchJSON -> Poll -> AppendEventJSON -> CompleteJSON -> NextCompletion ->
// AppendCompletionJSON.
func BenchmarkJSONRoundTrip(b *testing.B) {
	d := benchDisp(b)
	doc := []byte(`{"task_uuid":"` + uuid.NewString() + `","step_uuid":"` + uuid.NewString() +
		`","handler":"process_order","payload":{"order":12345,"items":[1,2,3]},"timeout_ms":5000}`)
	res := []byte(`{"success":true,"result":{"charged":12.5},"metadata":{"worker":"w1"}}`)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DispatchJSON(bg, doc, 0); err != nil {
			b.Fatal(err)
		}
		e, err := d.Poll(bg, 0)
		if err != nil {
			b.Fatal(err)
		}
		buf = wire.AppendEventJSON(buf[:0], &e)
		if err := d.CompleteJSON(e.EventID, res); err != nil {
			b.Fatal(err)
		}
		c, err := d.NextCompletion(bg, 0)
		if err != nil {
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
