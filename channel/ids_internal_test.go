package channel

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testGen() *idGen { g := newIDGen(rand.NewChaCha8([32]byte{7})); return &g }

// fields splits a UUIDv7 into what RFC 9562 puts in it.
func fields(u uuid.UUID) (ms int64, ver, seq, variant int, random uint64) {
	var b [8]byte
	copy(b[2:], u[0:6])
	ms = int64(binary.BigEndian.Uint64(b[:]))
	ver = int(u[6] >> 4)
	seq = int(u[6]&0x0f)<<8 | int(u[7])
	variant = int(u[8] >> 6)
	random = binary.BigEndian.Uint64(u[8:]) & (1<<62 - 1)
	return
}

// The bit layout of RFC 9562 section 5.7: unix_ts_ms (48 bits, big
// endian), ver 0b0111, rand_a (here the 12-bit counter), var 0b10, rand_b
// (62 bits).
func TestUUIDv7_BitLayout(t *testing.T) {
	g := testGen()
	randoms := map[uint64]bool{}
	for _, tm := range []time.Time{
		time.UnixMilli(0x0123456789ab), // every byte of the timestamp distinct
		time.Date(2026, 12, 2, 5, 30, 0, 999_999_999, time.UTC),
		time.UnixMilli(1<<48 - 1), // the last millisecond a UUIDv7 can hold
	} {
		u := g.next(tm)
		ms, ver, seq, variant, random := fields(u)
		assert.Equal(t, tm.UnixMilli(), ms, "timestamp of %v in %s", tm, u)
		assert.Equal(t, 7, ver, "version nibble of %s", u)
		assert.Equal(t, 0b10, variant, "variant bits of %s", u)
		assert.Less(t, seq, 0x200, "a new millisecond's counter starts below 0x200: %s", u)
		assert.Equal(t, uuid.Version(7), u.Version())
		assert.Equal(t, uuid.RFC4122, u.Variant())
		assert.False(t, randoms[random], "random bits repeated")
		randoms[random] = true
		// canonical text form round-trips
		back, err := uuid.Parse(u.String())
		require.NoError(t, err)
		assert.Equal(t, u, back)
	}
	// the timestamp field is the first 48 bits, big endian
	u := testGen().next(time.UnixMilli(0x0123456789ac))
	assert.Equal(t, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xac}, u[0:6])
}

// Within one millisecond the counter counts up by one per id; when it passes
// 0xfff the generator borrows the next millisecond with counter 0, and every
// id stays strictly greater than the one before, also when the clock then
// reaches the borrowed millisecond or steps back.
func TestUUIDv7_CounterOverflowWithinOneMillisecond(t *testing.T) {
	g := testGen()
	t0 := time.UnixMilli(1_800_000_000_000)
	prev := g.next(t0)
	ms0, _, seq0, _, _ := fields(prev)
	require.Equal(t, t0.UnixMilli(), ms0)
	wantMs, wantSeq := ms0, seq0
	borrowed := 0
	for i := range 10_000 { // more than two counters' worth at the same instant
		u := g.next(t0)
		if wantSeq == 0xfff {
			wantMs, wantSeq = wantMs+1, 0
			borrowed++
		} else {
			wantSeq++
		}
		ms, ver, seq, variant, _ := fields(u)
		require.Equal(t, wantMs, ms, "id %d: millisecond", i)
		require.Equal(t, wantSeq, seq, "id %d: counter", i)
		require.Equal(t, 7, ver)
		require.Equal(t, 0b10, variant)
		require.Positive(t, bytes.Compare(u[:], prev[:]), "id %d not greater than the one before", i)
		prev = u
	}
	assert.GreaterOrEqual(t, borrowed, 2, "the counter overflowed at least twice")
	// the clock reaches the borrowed milliseconds, then steps back: still increasing
	for _, tm := range []time.Time{t0.Add(time.Millisecond), time.UnixMilli(wantMs), t0.Add(-time.Second)} {
		u := g.next(tm)
		require.Positive(t, bytes.Compare(u[:], prev[:]), "id at %v not greater than the one before", tm)
		prev = u
	}
	// a millisecond past the borrowed ones starts afresh, counter below 0x200
	u := g.next(time.UnixMilli(wantMs + 1))
	ms, _, seq, _, _ := fields(u)
	assert.Equal(t, wantMs+1, ms)
	assert.Less(t, seq, 0x200)
}

// Each channel has its own generator (no lock shared between channels), so
// ids of two channels made at the same instant must still differ: each
// generator is seeded on its own from crypto/rand.
func TestUUIDv7_TwoChannelsAtTheSameInstantNeverShareAnID(t *testing.T) {
	a, err := New(DefaultConfig())
	require.NoError(t, err)
	b, err := New(DefaultConfig())
	require.NoError(t, err)
	at := time.UnixMilli(1_800_000_000_000)
	seen := map[uuid.UUID]bool{}
	for range 1000 {
		for _, c := range []*Channel{a, b} {
			c.mu.Lock()
			u := c.ids.next(at)
			c.mu.Unlock()
			require.False(t, seen[u], "id %s made twice", u)
			seen[u] = true
		}
	}
}
