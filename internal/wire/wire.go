// Package wire is libtasker's wire format: the JSON documents of docs/ABI.md
// ("JSON documents") and their parts, in both directions.
//
//   - decode.go: dispatch and result documents into channel.Event and
//     channel.Result (strict: unknown keys, duplicate keys, wrong types, bad
//     UUIDs and invalid UTF-8 are channel.ErrInvalid naming the key; an input
//     over max_payload_bytes is channel.ErrTooBig);
//   - encode.go: polled events and completions out, every key present;
//   - time.go: RFC 3339 UTC timestamps with nine fraction digits;
//   - config.go: the config document (its keys belong to channel and runtime);
//   - the strict scanner underneath is internal/strictjson.
//
// It depends on channel for the Go types and sentinel errors; channel does
// not depend on it (the state machine takes parsers as arguments, see
// channel.EnqueueJSON). UUIDv7 ids are made by channel at enqueue (ids.go).
package wire

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/strictjson"
)

// invalidf returns a channel.ErrInvalid carrying a message a user can act on.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", channel.ErrInvalid, fmt.Sprintf(format, args...))
}

// scanObject walks the JSON object d (strictjson.ScanObject), turning a
// syntax error into ErrInvalid prefixed with the document's name. Errors
// from fn pass through.
func scanObject(d []byte, doc string, fn func(key string, raw []byte) error) error {
	err := strictjson.ScanObject(d, fn)
	if se, ok := err.(*strictjson.SyntaxError); ok { // never wrapped; no errors.As: it would allocate per call
		return invalidf("%s: %s", doc, se.Msg)
	}
	return err
}

// parseUUID accepts only the canonical 36-character form (any case).
func parseUUID(doc, key, s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.UUID{}, invalidf("%s: key %q: %q is not a UUID (want the 36-character form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", doc, key, s)
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, invalidf("%s: key %q: %q is not a UUID: %v", doc, key, s, err)
	}
	return u, nil
}

// rawUUID decodes a JSON string holding a canonical UUID, without copying
// in the common case (no escapes).
func rawUUID(doc, key string, raw []byte) (uuid.UUID, error) {
	if len(raw) == 38 && raw[0] == '"' && raw[37] == '"' && bytes.IndexByte(raw[1:37], '\\') < 0 {
		if u, err := uuid.ParseBytes(raw[1:37]); err == nil {
			return u, nil
		}
	}
	s, err := rawString(doc, key, raw)
	if err != nil {
		return uuid.UUID{}, err
	}
	return parseUUID(doc, key, s)
}

// rawString decodes raw as a JSON string, or reports the key's type error.
func rawString(doc, key string, raw []byte) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", invalidf("%s: key %q: expected a string, got %s", doc, key, KindOf(raw))
	}
	return strictjson.Unquote(raw)
}

func rawBool(doc, key string, raw []byte) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, invalidf("%s: key %q: expected a boolean, got %s", doc, key, KindOf(raw))
}

// rawInt decodes raw as an integer in [lo, hi].
func rawInt(doc, key string, raw []byte, lo, hi int64) (int64, error) {
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, invalidf("%s: key %q: expected an integer, got %s", doc, key, KindOf(raw))
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, invalidf("%s: key %q: expected an integer, got %s", doc, key, raw)
	}
	if n < lo || n > hi {
		return 0, invalidf("%s: key %q: %d is out of range [%d, %d]", doc, key, n, lo, hi)
	}
	return n, nil
}

// KindOf names the JSON kind of a raw value for error messages ("a string",
// "an object", ..., "nothing" for no bytes).
func KindOf(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(raw []byte) bool { return string(raw) == "null" }
