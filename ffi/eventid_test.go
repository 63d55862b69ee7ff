package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guardedPage maps a readable page followed by one that is not: bytes
// placed at the end of the first (place) are followed by memory whose
// read faults, so a parser that reads one byte too far crashes the test.
func guardedPage(t *testing.T) (place func(b []byte) unsafe.Pointer) {
	page := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	require.NoError(t, syscall.Mprotect(mem[page:], syscall.PROT_NONE))
	return func(b []byte) unsafe.Pointer {
		off := page - len(b)
		copy(mem[off:page], b)
		return unsafe.Pointer(&mem[off])
	}
}

// slowID is what tasker_complete accepted before cUUID: the bytes up to
// the NUL (at most 64), 36 of them, parsed by uuid.ParseBytes.
func slowID(b []byte) (uuid.UUID, bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) != 36 {
		return uuid.Nil, false
	}
	u, err := uuid.ParseBytes(b)
	if err != nil {
		return uuid.Nil, false
	}
	return u, true
}

// cUUID accepts exactly what the slow path accepts, with the same value,
// and reads no byte past the first one that does not belong to the form:
// every input sits at the end of a readable page.
func TestCUUID_AgreesWithTheSlowPathAndReadsNothingPastTheForm(t *testing.T) {
	place := guardedPage(t)
	valid := []byte("0b7e6f9c-1d2a-4c3b-8e9f-0A1B2C3D4E5F")

	// a well-formed id and its NUL, the NUL the last readable byte
	u, ok := cUUIDAt(place(append(append([]byte(nil), valid...), 0)))
	require.True(t, ok)
	assert.Equal(t, uuid.MustParse(string(valid)), uuid.UUID(u))

	// every prefix of it, then a byte that cannot come next, the last readable one
	for k := 0; k <= 36; k++ {
		for _, bad := range []byte{0, 'g', 0xff, '-', 'a', ' '} {
			want := k == 36 && bad == 0
			dash := k == 8 || k == 13 || k == 18 || k == 23
			if !want && ((dash && bad == '-') || (!dash && k < 36 && bad == 'a')) {
				continue // that byte would belong to the form
			}
			b := append(append([]byte(nil), valid[:k]...), bad)
			_, ok := cUUIDAt(place(b))
			assert.Equal(t, want, ok, "%q", b)
		}
	}

	// random near-ids, each ending in a NUL: the same answer as the slow path
	rng := rand.New(rand.NewPCG(1, 2))
	// the hex digits, their neighbours in ASCII, and bytes whose low 7 bits
	// are hex digits ('0', 'A', 'a' with bit 7 set)
	alphabet := []byte("0123456789abcdefABCDEF-gG/:@`\x00\xff\xb0\xc1\xe1")
	for i := range 20_000 {
		b := append([]byte(nil), valid...)
		switch i % 3 {
		case 0: // one byte changed
			b[rng.IntN(len(b))] = alphabet[rng.IntN(len(alphabet))]
		case 1: // cut or lengthened
			b = b[:rng.IntN(len(b)+1)]
			for range rng.IntN(3) {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			}
		default: // anything
			b = b[:0]
			for range rng.IntN(40) {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			}
		}
		b = append(b, 0)
		// at each of the 8 alignments: bytes after the NUL move the id's start
		b = append(b, make([]byte, i%8)...)
		got, gotOK := cUUIDAt(place(b))
		want, wantOK := slowID(b)
		require.Equal(t, wantOK, gotOK, "%q", b)
		require.Equal(t, want, uuid.UUID(got), "%q", b)
	}

	// the id, and the id followed by a byte other than its NUL, at each alignment
	for pad := range 8 {
		for _, end := range []byte{0, 'a', '0', 0xff} {
			b := append(append(append([]byte(nil), valid...), end), make([]byte, pad)...)
			_, ok := cUUIDAt(place(b))
			assert.Equal(t, end == 0, ok, "end %q, %d bytes after it", end, pad)
		}
	}
}
