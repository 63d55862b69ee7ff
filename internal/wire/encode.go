package wire

import (
	"encoding/binary"
	"encoding/json"
	"strconv"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
)

// AppendUUIDText appends u in its canonical 36-character form (lower-case
// hex, no quotes). It never allocates when b has room for 36 more bytes:
// tasker_dispatch writes an event id straight into the caller's buffer.
// Eight ids go into every round trip's two documents, so it encodes four
// bytes at a time (hex8) instead of one nibble at a time.
func AppendUUIDText(b []byte, u uuid.UUID) []byte {
	var buf [36]byte
	be := binary.BigEndian
	be.PutUint64(buf[0:8], hex8(be.Uint32(u[0:4])))
	x := hex8(be.Uint32(u[4:8]))
	be.PutUint32(buf[9:13], uint32(x>>32))
	be.PutUint32(buf[14:18], uint32(x))
	x = hex8(be.Uint32(u[8:12]))
	be.PutUint32(buf[19:23], uint32(x>>32))
	be.PutUint32(buf[24:28], uint32(x))
	be.PutUint64(buf[28:36], hex8(be.Uint32(u[12:16])))
	buf[8], buf[13], buf[18], buf[23] = '-', '-', '-', '-'
	return append(b, buf[:]...)
}

// hex8 returns the 8 lower-case hex digits of v, most significant first,
// as the bytes of a big-endian uint64.
func hex8(v uint32) uint64 {
	n := uint64(v)
	// spread the 8 nibbles into the 8 bytes, keeping their order
	n = (n | n<<16) & 0x0000ffff0000ffff
	n = (n | n<<8) & 0x00ff00ff00ff00ff
	n = (n | n<<4) & 0x0f0f0f0f0f0f0f0f
	// each byte: '0'+d, plus 'a'-'0'-10 = 39 where d > 9
	letters := ((n + 0x0606060606060606) >> 4) & 0x0101010101010101
	return n + 0x3030303030303030 + letters*39
}

func appendUUID(b []byte, u uuid.UUID) []byte {
	b = append(b, '"')
	b = AppendUUIDText(b, u)
	return append(b, '"')
}

// appendString writes s as a JSON string. Invalid UTF-8 cannot reach here:
// every string is validated on the way in.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if raw == nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// AppendEventJSON appends the polled-event document of ev to b.
func AppendEventJSON(b []byte, ev *channel.Event) []byte {
	b = append(b, `{"event_id":`...)
	b = appendUUID(b, ev.EventID)
	b = append(b, `,"task_uuid":`...)
	b = appendUUID(b, ev.TaskUUID)
	b = append(b, `,"step_uuid":`...)
	b = appendUUID(b, ev.StepUUID)
	b = append(b, `,"correlation_id":`...)
	b = appendUUID(b, ev.CorrelationID)
	b = append(b, `,"handler":`...)
	b = appendString(b, ev.Handler)
	b = append(b, `,"payload":`...)
	b = appendRaw(b, ev.Payload)
	b = append(b, `,"timeout_ms":`...)
	b = strconv.AppendInt(b, int64(ev.TimeoutMs), 10)
	b = append(b, `,"trace_id":`...)
	b = appendOptString(b, ev.TraceID)
	b = append(b, `,"span_id":`...)
	b = appendOptString(b, ev.SpanID)
	b = append(b, `,"dispatched_at":`...)
	b = appendTime(b, ev.DispatchedAt)
	b = append(b, `,"polled_at":`...)
	b = appendTime(b, ev.PolledAt)
	if cp := ev.Checkpoint; cp != nil { // only after a checkpoint: older readers never see the key
		b = append(b, `,"checkpoint":`...)
		b = AppendCheckpointJSON(b, cp)
	}
	return append(b, '}')
}

// AppendCheckpointJSON appends the checkpoint object of a polled event:
// {"cursor", "items_processed", "accumulated_results", "count"}, every key
// present. ParseSourceCheckpoint reads it back.
func AppendCheckpointJSON(b []byte, cp *channel.Checkpoint) []byte {
	b = append(b, `{"cursor":`...)
	b = appendRaw(b, cp.Cursor)
	b = append(b, `,"items_processed":`...)
	b = strconv.AppendInt(b, cp.ItemsProcessed, 10)
	b = append(b, `,"accumulated_results":`...)
	b = appendRaw(b, cp.AccumulatedResults)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(cp.Count), 10)
	return append(b, '}')
}

// AppendEventsJSON appends a JSON array of polled-event documents.
func AppendEventsJSON(b []byte, evs []channel.Event) []byte {
	b = append(b, '[')
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendEventJSON(b, &evs[i])
	}
	return append(b, ']')
}

func appendErrorInfo(b []byte, e *channel.ErrorInfo) []byte {
	if e == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"error_type":`...)
	b = appendString(b, e.ErrorType)
	b = append(b, `,"retryable":`...)
	b = strconv.AppendBool(b, e.Retryable)
	return append(b, '}')
}

// AppendCompletionJSON appends the completion document of c to b. Every key
// of docs/ABI.md is present, null where it has no value.
func AppendCompletionJSON(b []byte, c *channel.Completion) []byte {
	b = append(b, `{"event_id":`...)
	b = appendUUID(b, c.EventID)
	b = append(b, `,"task_uuid":`...)
	b = appendUUID(b, c.TaskUUID)
	b = append(b, `,"step_uuid":`...)
	b = appendUUID(b, c.StepUUID)
	b = append(b, `,"correlation_id":`...)
	b = appendUUID(b, c.CorrelationID)
	b = append(b, `,"trace_id":`...)
	b = appendOptString(b, c.TraceID)
	b = append(b, `,"span_id":`...)
	b = appendOptString(b, c.SpanID)
	b = append(b, `,"handler":`...)
	b = appendString(b, c.Handler)
	b = append(b, `,"status":"`...)
	b = append(b, c.Status...)
	b = append(b, `","success":`...)
	b = strconv.AppendBool(b, c.Success)
	b = append(b, `,"result":`...)
	b = appendRaw(b, c.Result)
	b = append(b, `,"error":`...)
	b = appendErrorInfo(b, c.Error)
	b = append(b, `,"metadata":`...)
	b = appendRaw(b, c.Metadata)
	b = append(b, `,"dispatched_at":`...)
	b = appendTime(b, c.DispatchedAt)
	b = append(b, `,"polled_at":`...)
	b = appendTime(b, c.PolledAt)
	b = append(b, `,"completed_at":`...)
	b = appendTime(b, c.CompletedAt)
	b = append(b, `,"execution_time_ms":`...)
	if d, ok := c.ExecutionTime(); ok {
		// milliseconds with microsecond precision
		b = strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"checkpoints":`...)
	b = strconv.AppendInt(b, int64(c.Checkpoints), 10)
	return append(b, '}')
}
