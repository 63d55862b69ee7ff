// Command gofloor measures the JSON work a round trip cannot avoid, in a
// plain Go loop with no queue, lock or copy across the boundary: parse the
// dispatch document, build the polled-event document, parse the result
// document, build the completion document — the same documents and the same
// codec the library uses. Prints one JSON line. Used by `make bench`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
)

func main() {
	n := flag.Int("n", 1_000_000, "iterations")
	flag.Parse()
	evDoc := []byte(os.Getenv("BENCH_EVENT"))
	resDoc := []byte(os.Getenv("BENCH_RESULT"))
	if len(evDoc) == 0 || len(resDoc) == 0 {
		fmt.Fprintln(os.Stderr, "gofloor: set BENCH_EVENT and BENCH_RESULT")
		os.Exit(2)
	}
	id := uuid.Must(uuid.NewV7())
	buf := make([]byte, 0, 4096)
	run := func(iters int) time.Duration {
		start := time.Now()
		for range iters {
			var ev channel.Event
			if err := wire.ParseDispatchInto(evDoc, 1<<20, &ev); err != nil {
				panic(err)
			}
			ev.EventID, ev.CorrelationID = id, id
			now := channel.Now() // the library's clock (one clock read)
			ev.DispatchedAt, ev.PolledAt = now, now
			buf = wire.AppendEventJSON(buf[:0], &ev)
			r, err := wire.ParseResult(resDoc, 1<<20)
			if err != nil {
				panic(err)
			}
			c := channel.Completion{EventID: ev.EventID, TaskUUID: ev.TaskUUID, StepUUID: ev.StepUUID,
				CorrelationID: ev.CorrelationID, Handler: ev.Handler, Status: channel.StatusCompleted,
				Success: r.Success, Result: r.Result, Error: r.Error, Metadata: r.Metadata,
				DispatchedAt: now, PolledAt: now, CompletedAt: channel.Now()}
			buf = wire.AppendCompletionJSON(buf[:0], &c)
		}
		return time.Since(start)
	}
	run(*n / 10) // warm up
	d := run(*n)
	out, _ := json.Marshal(map[string]any{"bench": "go_json_floor", "ns_per_op": float64(d.Nanoseconds()) / float64(*n)})
	fmt.Println(string(out))
}
