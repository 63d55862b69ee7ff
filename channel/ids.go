package channel

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ids makes UUIDv7s (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit
// counter that keeps ids from one process strictly increasing within a
// millisecond (method 1 of section 6.2), then 62 random bits from a ChaCha8
// stream seeded from crypto/rand. It takes the time from the caller, so a
// dispatch reads the clock once for its timestamp and both of its ids: on
// some virtual machines a clock read costs more than the rest of Enqueue.
var ids = struct {
	sync.Mutex
	rng    *rand.ChaCha8
	lastMs int64
	seq    uint16
}{rng: newSeededChaCha8()}

func newSeededChaCha8() *rand.ChaCha8 {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic("channel: crypto/rand failed: " + err.Error())
	}
	return rand.NewChaCha8(seed)
}

// newIDAt returns a UUIDv7 for time now, greater than every id this process
// made before.
func newIDAt(now time.Time) uuid.UUID {
	ms := now.UnixMilli()
	ids.Lock()
	if ms > ids.lastMs {
		ids.lastMs, ids.seq = ms, uint16(ids.rng.Uint64()&0x1ff) // random start, room to count
	} else {
		ids.seq++
		if ids.seq > 0xfff { // counter exhausted: borrow the next millisecond
			ids.lastMs++
			ids.seq = 0
		}
	}
	ms, seq, r := ids.lastMs, ids.seq, ids.rng.Uint64()
	ids.Unlock()
	var u uuid.UUID
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(seq>>8) // version 7
	u[7] = byte(seq)
	binary.BigEndian.PutUint64(u[8:], r)
	u[8] = 0x80 | u[8]&0x3f // variant 10
	return u
}
