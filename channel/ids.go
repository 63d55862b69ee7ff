package channel

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// idGen makes UUIDv7s (RFC 9562): 48 bits of Unix milliseconds, then a
// 12-bit counter that keeps the ids of one generator strictly increasing
// within a millisecond (method 1 of section 6.2), then 62 random bits from a
// ChaCha8 stream seeded from crypto/rand. It takes the time from the caller,
// so a dispatch reads the clock once for its timestamp and both of its ids:
// on some virtual machines a clock read costs more than the rest of Enqueue.
//
// The counter starts at a random value below 0x200 in each new millisecond,
// leaving at least 3,584 ids before it runs out; then the generator borrows
// the next millisecond (counter 0), so ids stay increasing even at more
// than 4 million per second or when the clock steps back.
//
// Each Channel has its own generator, guarded by the Channel's mu (it has
// no lock of its own: a dispatch already holds mu, and a second lock pair
// per id cost more than the rest of making it). So ids increase within a
// channel; ids of different channels are unique by their random bits (62,
// and the counter's random start), as UUIDv7s of different generators are.
type idGen struct {
	rng    *rand.ChaCha8
	lastMs int64  // the millisecond of the last id (may run ahead of the clock)
	seq    uint16 // the counter of the last id, <= 0xfff
}

func newIDGen(rng *rand.ChaCha8) idGen { return idGen{rng: rng} }

func newSeededChaCha8() *rand.ChaCha8 {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic("channel: crypto/rand failed: " + err.Error())
	}
	return rand.NewChaCha8(seed)
}

// next returns a UUIDv7 for time now, greater than every id g made before.
// The caller serializes calls (the Channel's mu).
func (g *idGen) next(now time.Time) uuid.UUID {
	ms := now.UnixMilli()
	if ms > g.lastMs {
		g.lastMs, g.seq = ms, uint16(g.rng.Uint64()&0x1ff) // random start, room to count
	} else {
		g.seq++
		if g.seq > 0xfff { // counter exhausted: borrow the next millisecond
			g.lastMs++
			g.seq = 0
		}
	}
	ms, seq, r := g.lastMs, g.seq, g.rng.Uint64()
	var u uuid.UUID
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(seq>>8) // version 7
	u[7] = byte(seq)
	binary.BigEndian.PutUint64(u[8:], r)
	u[8] = 0x80 | u[8]&0x3f // variant 10
	return u
}
