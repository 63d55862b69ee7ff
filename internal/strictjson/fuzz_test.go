package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tasker-systems/libtasker/internal/strictjson"
)

// The strict scanner and encoding/json must never disagree on what is JSON.
// encoding/json (v1) is lenient in three ways docs/ABI.md is not, so the oracle
// is encoding/json plus those three checks, each written independently of
// the scanner:
//
//   - utf8.Valid: encoding/json accepts invalid UTF-8 inside strings;
//   - loneSurrogate: it accepts a \uD800-\uDFFF escape that is not half of a
//     pair (and decodes it to U+FFFD);
//   - topLevelKeys: it keeps the last of duplicate keys.
//
// Inputs nested deeper than the scanner's MaxDepth are outside the
// comparison (encoding/json allows 10,000 levels); TestMaxDepth covers them.

// oracleValid is what strictjson.Valid must answer.
func oracleValid(d []byte) bool {
	return json.Valid(d) && utf8.Valid(d) && !loneSurrogate(d)
}

// loneSurrogate reports whether the (valid) JSON text d has a \u escape of
// a UTF-16 surrogate that is not a high one followed directly by a low one.
func loneSurrogate(d []byte) bool {
	inStr := false
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !inStr {
			inStr = c == '"'
			continue
		}
		switch c {
		case '"':
			inStr = false
		case '\\':
			if d[i+1] != 'u' {
				i++ // a one-character escape
				continue
			}
			r := hexVal(d[i+2 : i+6])
			switch {
			case r >= 0xD800 && r <= 0xDBFF:
				if i+12 > len(d) || d[i+6] != '\\' || d[i+7] != 'u' {
					return true
				}
				if lo := hexVal(d[i+8 : i+12]); lo < 0xDC00 || lo > 0xDFFF {
					return true
				}
				i += 11
			case r >= 0xDC00 && r <= 0xDFFF:
				return true
			default:
				i += 5
			}
		}
	}
	return false
}

func hexVal(h []byte) int {
	n := 0
	for _, c := range h {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			n |= int(c-'A') + 10
		default:
			return -1
		}
	}
	return n
}

// nesting is the deepest bracket nesting of d outside strings.
func nesting(d []byte) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '[' || c == '{'):
			depth++
			deepest = max(deepest, depth)
		case !inStr && (c == ']' || c == '}'):
			depth--
		}
	}
	return deepest
}

type member struct {
	key string
	raw json.RawMessage
}

// topLevelKeys reads the members of the (oracle-valid) JSON object d with
// encoding/json's tokenizer; ok is false when d is not an object.
func topLevelKeys(d []byte) (ms []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(d))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		ms = append(ms, member{k.(string), raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return ms, true
}

func hasDuplicate(ms []member) bool {
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.key] {
			return true
		}
		seen[m.key] = true
	}
	return false
}

// compactEqual reports whether two JSON texts are the same value written
// with the same tokens (whitespace aside).
func compactEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

func checkAgainstEncodingJSON(t *testing.T, d []byte) {
	if nesting(d) >= strictjson.MaxDepth-1 {
		return
	}
	want := oracleValid(d)
	if got := strictjson.Valid(d); got != want {
		t.Fatalf("Valid(%q) = %v, encoding/json+utf8+surrogates says %v", d, got, want)
	}
	var got []member
	err := strictjson.ScanObject(d, func(key string, raw []byte) error {
		got = append(got, member{strings.Clone(key), bytes.Clone(raw)})
		return nil
	})
	var se *strictjson.SyntaxError
	if err != nil && !errors.As(err, &se) {
		t.Fatalf("ScanObject(%q): error %v is not a *SyntaxError", d, err)
	}
	ms, isObject := topLevelKeys(d)
	wantObj := want && isObject && !hasDuplicate(ms)
	if (err == nil) != wantObj {
		t.Fatalf("ScanObject(%q) err = %v, oracle accepts: %v (valid %v, object %v, duplicate key %v)",
			d, err, wantObj, want, isObject, isObject && hasDuplicate(ms))
	}
	if err != nil {
		return
	}
	if len(got) != len(ms) {
		t.Fatalf("ScanObject(%q): %d members, encoding/json %d", d, len(got), len(ms))
	}
	for i := range got {
		if got[i].key != ms[i].key || !compactEqual(got[i].raw, ms[i].raw) {
			t.Fatalf("ScanObject(%q) member %d: %q=%s, encoding/json %q=%s", d, i, got[i].key, got[i].raw, ms[i].key, ms[i].raw)
		}
	}
}

// strictSeeds: each strictness rule on both sides of its edge, at the top
// level and nested. The committed corpus (testdata/fuzz) holds more.
var strictSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"b":1,"b":2}}`,
	`[]`, `[1,2,]`, `{"a":1,}`, `{"a" 1}`, `{'a':1}`, `{"a":01}`, `{"a":-0}`, `{"a":1.}`, `{"a":.5}`,
	`{"a":1e5}`, `{"a":1E+5}`, `{"a":1e}`, `{"a":tru}`, `{"a":nul}`, `null`, `true`, `"s"`, `1`, ``, ` `,
	`{"a":"\ud83d\ude00"}`, `{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud800\u0041"}`, `{"a":"\\ud800"}`,
	"{\"a\":\"\xff\"}", "{\"\xed\xa0\x80\":1}", "{\"a\":\"\x01\"}", "{\"a\":\"\t\"}", `{"a":"\t"}`,
	"\f{}", "{}\v", "\u00a0{}", `{"a":[1,{"b":[]}],"c":null}`, `{} {}`, `{}x`, `{"a":"\x"}`, `{"a":"\u12"}`,
	`{"a":1}` + "\n", "\t\r\n{\"k\":[true,false,null]}",
}

// FuzzStrictVsEncodingJSON: the strict scanner accepts exactly what
// encoding/json accepts after the three strictness checks, and
// ScanObject hands out the same members, in order, as encoding/json reads.
func FuzzStrictVsEncodingJSON(f *testing.F) {
	for _, s := range strictSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) { checkAgainstEncodingJSON(t, d) })
}

// The depth limit, which the fuzz target leaves out: MaxDepth nested arrays
// are accepted, one more is not.
func TestMaxDepth(t *testing.T) {
	ok := strings.Repeat("[", strictjson.MaxDepth) + strings.Repeat("]", strictjson.MaxDepth)
	if !strictjson.Valid([]byte(ok)) {
		t.Fatalf("%d nested arrays rejected", strictjson.MaxDepth)
	}
	deep := "[" + ok + "]"
	if strictjson.Valid([]byte(deep)) {
		t.Fatalf("%d nested arrays accepted", strictjson.MaxDepth+1)
	}
	if !json.Valid([]byte(deep)) {
		t.Fatal("encoding/json rejects it too: the limit is not the scanner's own")
	}
}
