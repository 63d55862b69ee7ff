// Package strictjson is the strict JSON scanner of the documents that cross
// the C boundary. encoding/json v1 is lenient where docs/ABI.md is strict (it keeps
// the last of duplicate keys, replaces invalid UTF-8 and lone surrogate
// escapes) and slow on the hot path, so the top level of dispatch, result and
// config documents is walked here. Values that are carried as written
// (payload, result, metadata) are validated and kept as raw bytes, so numbers
// are never rounded.
//
// Strict means: RFC 8259 JSON text, valid UTF-8 everywhere, no lone UTF-16
// surrogate in a \u escape, nesting at most MaxDepth, and (ScanObject) no
// duplicate key. The package has no dependency on the rest of the module;
// its errors are *SyntaxError, which callers wrap with their own context.
package strictjson

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth bounds the nesting of arrays and objects.
const MaxDepth = 1000

// SyntaxError is why a document is not strict JSON. Msg says what and
// where; callers prefix it with the document's name.
type SyntaxError struct {
	Msg string
}

func (e *SyntaxError) Error() string { return e.Msg }

func syntaxf(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

type scanError struct {
	off int
	msg string
}

func (e *scanError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg) }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the offset of the first byte at or after i that is not
// JSON whitespace (space, tab, LF, CR).
func SkipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// Valid reports whether d is exactly one strict JSON value, with optional
// JSON whitespace around it.
func Valid(d []byte) bool {
	end, err := skipValue(d, SkipSpace(d, 0), 1)
	return err == nil && SkipSpace(d, end) == len(d)
}

// ScanObject walks one JSON object that must make up all of d (surrounding
// JSON whitespace allowed), calling fn with each key (unescaped) and the raw
// bytes of its value, in document order. The key may alias d: fn must not
// keep it past the call. A duplicate key, a syntax error or trailing data is
// a *SyntaxError; an error from fn stops the walk and is returned as it is.
func ScanObject(d []byte, fn func(key string, raw []byte) error) error {
	i := SkipSpace(d, 0)
	if i >= len(d) {
		return syntaxf("empty document, expected a JSON object")
	}
	if d[i] != '{' {
		return syntaxf("expected a JSON object")
	}
	i = SkipSpace(d, i+1)
	var seen [16]string
	nseen := 0
	var seenMap map[string]struct{}
	if i < len(d) && d[i] == '}' {
		i++
	} else {
		for {
			if i >= len(d) || d[i] != '"' {
				return &SyntaxError{(&scanError{i, "expected a key string"}).Error()}
			}
			kend, err := skipString(d, i)
			if err != nil {
				return &SyntaxError{err.Error()}
			}
			// The key is a view of d when it has no escapes (no copy): fn
			// and the duplicate check use it only during this call.
			key, err := unquoteView(d[i:kend])
			if err != nil {
				return &SyntaxError{err.Error()}
			}
			// duplicate check: linear for the usual handful of keys
			dup := false
			if seenMap != nil {
				_, dup = seenMap[key]
			} else {
				for _, s := range seen[:nseen] {
					if s == key {
						dup = true
						break
					}
				}
			}
			if dup {
				return syntaxf("duplicate key %q", key)
			}
			if nseen < len(seen) {
				seen[nseen] = key
				nseen++
			} else {
				if seenMap == nil {
					seenMap = make(map[string]struct{}, 2*len(seen))
					for _, s := range seen {
						seenMap[s] = struct{}{}
					}
				}
				seenMap[key] = struct{}{}
			}
			i = SkipSpace(d, kend)
			if i >= len(d) || d[i] != ':' {
				return &SyntaxError{(&scanError{i, "expected ':' after key"}).Error()}
			}
			i = SkipSpace(d, i+1)
			vend, err := skipValue(d, i, 1)
			if err != nil {
				return syntaxf("key %q: %v", key, err)
			}
			if err := fn(key, d[i:vend]); err != nil {
				return err
			}
			i = SkipSpace(d, vend)
			if i < len(d) && d[i] == ',' {
				i = SkipSpace(d, i+1)
				continue
			}
			if i < len(d) && d[i] == '}' {
				i++
				break
			}
			return &SyntaxError{(&scanError{i, "expected ',' or '}'"}).Error()}
		}
	}
	if i = SkipSpace(d, i); i != len(d) {
		return syntaxf("trailing data after the JSON object at byte %d", i)
	}
	return nil
}

// skipValue returns the end offset of the JSON value starting at d[i].
func skipValue(d []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, &scanError{i, "nested too deeply"}
	}
	if i >= len(d) {
		return 0, &scanError{i, "unexpected end of input"}
	}
	switch c := d[i]; {
	case c == '"':
		return skipString(d, i)
	case c == '{':
		i = SkipSpace(d, i+1)
		if i < len(d) && d[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(d) || d[i] != '"' {
				return 0, &scanError{i, "expected a key string"}
			}
			e, err := skipString(d, i)
			if err != nil {
				return 0, err
			}
			i = SkipSpace(d, e)
			if i >= len(d) || d[i] != ':' {
				return 0, &scanError{i, "expected ':'"}
			}
			i = SkipSpace(d, i+1)
			if i, err = skipValue(d, i, depth+1); err != nil {
				return 0, err
			}
			i = SkipSpace(d, i)
			if i < len(d) && d[i] == ',' {
				i = SkipSpace(d, i+1)
				continue
			}
			if i < len(d) && d[i] == '}' {
				return i + 1, nil
			}
			return 0, &scanError{i, "expected ',' or '}'"}
		}
	case c == '[':
		i = SkipSpace(d, i+1)
		if i < len(d) && d[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = skipValue(d, i, depth+1); err != nil {
				return 0, err
			}
			i = SkipSpace(d, i)
			if i < len(d) && d[i] == ',' {
				i = SkipSpace(d, i+1)
				continue
			}
			if i < len(d) && d[i] == ']' {
				return i + 1, nil
			}
			return 0, &scanError{i, "expected ',' or ']'"}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(d, i)
	case c == 't':
		return skipLit(d, i, "true")
	case c == 'f':
		return skipLit(d, i, "false")
	case c == 'n':
		return skipLit(d, i, "null")
	}
	return 0, &scanError{i, fmt.Sprintf("unexpected character %q", d[i])}
}

func skipLit(d []byte, i int, lit string) (int, error) {
	if len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	return 0, &scanError{i, "invalid literal"}
}

func skipNumber(d []byte, i int) (int, error) {
	start := i
	if d[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i - s
	}
	if i < len(d) && d[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, &scanError{start, "invalid number"}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return 0, &scanError{start, "invalid number"}
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, &scanError{start, "invalid number"}
		}
	}
	return i, nil
}

// skipString validates the string starting at d[i] (which is '"'): escapes,
// no control characters, valid UTF-8. It returns the offset after the quote.
func skipString(d []byte, i int) (int, error) {
	start := i
	i++
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(d) {
				return 0, &scanError{i, "unterminated escape"}
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(d, i)
				if !ok {
					return 0, &scanError{i, "bad \\u escape"}
				}
				switch {
				case r >= 0xD800 && r <= 0xDBFF: // high surrogate: a low one must follow
					if lo, ok := hex4(d, i+6); !ok || i+7 >= len(d) || d[i+6] != '\\' || lo < 0xDC00 || lo > 0xDFFF {
						return 0, &scanError{i, "lone UTF-16 surrogate in \\u escape (not valid Unicode)"}
					}
					i += 12
				case r >= 0xDC00 && r <= 0xDFFF:
					return 0, &scanError{i, "lone UTF-16 surrogate in \\u escape (not valid Unicode)"}
				default:
					i += 6
				}
			default:
				return 0, &scanError{i, "bad escape"}
			}
		case c < 0x20:
			return 0, &scanError{i, "control character in string"}
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, &scanError{i, "invalid UTF-8"}
			}
			i += size
		}
	}
	return 0, &scanError{start, "unterminated string"}
}

// hex4 reads the \uXXXX escape starting at d[i] (the backslash).
func hex4(d []byte, i int) (rune, bool) {
	if i+6 > len(d) || d[i] != '\\' || d[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, h := range d[i+2 : i+6] {
		if !isHex(h) {
			return 0, false
		}
		r <<= 4
		switch {
		case h <= '9':
			r |= rune(h - '0')
		case h >= 'a':
			r |= rune(h-'a') + 10
		default:
			r |= rune(h-'A') + 10
		}
	}
	return r, true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// Unquote decodes a JSON string literal (with its quotes) that the scanner
// has validated.
func Unquote(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// unquoteView is unquote without a copy when raw has no escapes: the result
// aliases raw and must not outlive it.
func unquoteView(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	if len(inner) == 0 {
		return "", nil
	}
	for _, c := range inner {
		if c == '\\' {
			return Unquote(raw)
		}
	}
	return unsafe.String(&inner[0], len(inner)), nil
}
