package wire

import "time"

// appendTime writes t as a quoted RFC 3339 timestamp in UTC with exactly
// nine fraction digits ("2006-01-02T15:04:05.000000000Z"), or null for the
// zero time. It uses the standard library's fast path for time.RFC3339
// (there is none for a layout with a fixed fraction) and writes the
// fraction itself. Measured against the hand-rolled civil-date encoder it
// replaced: BenchmarkAppendTime in time_internal_test.go.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339) // ends in 'Z' (UTC)
	b = b[:len(b)-1]
	var frac [12]byte // .nnnnnnnnnZ"
	frac[0] = '.'
	ns := t.Nanosecond()
	for i := 9; i >= 1; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	frac[10], frac[11] = 'Z', '"'
	return append(b, frac[:]...)
}
