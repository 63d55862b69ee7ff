package wire_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// BenchmarkParseDispatch and BenchmarkAppendCompletionJSON: the codec alone.
func BenchmarkParseDispatch(b *testing.B) {
	doc := []byte(dispatchDoc(`"payload":{"order":12345,"items":[1,2,3],"note":"caf\u00e9"}`, `"timeout_ms":5000`))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := wire.ParseDispatch(doc, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendCompletionJSON(b *testing.B) {
	now := time.Now()
	comp := channel.Completion{EventID: uuid.New(), TaskUUID: uuid.New(), StepUUID: uuid.New(), CorrelationID: uuid.New(),
		Handler: "h", Status: channel.StatusCompleted, Success: true, Result: []byte(`{"ok":true}`), Metadata: []byte(`{"m":1}`),
		DispatchedAt: now, PolledAt: now, CompletedAt: now}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendCompletionJSON(buf[:0], &comp)
	}
}
