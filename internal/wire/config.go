package wire

import (
	"bytes"
	"math"
	"strings"

	"github.com/tasker-systems/libtasker/channel"
)

// ConfigKey is one key of the config document and where its value goes:
// exactly one of Int, Str and Raw is set. An integer must fit in
// [math.MinInt32, channel.MaxTimeoutMs] here; its owner's Validate checks
// the real range. A string may be null (meaning ""). Raw takes a JSON
// object as written (a copy; null means nil), for its owner to parse.
type ConfigKey struct {
	Name string
	Int  *int
	Str  *string
	Raw  *[]byte
}

// ParseConfig decodes a config document (ABI.md, "Config") into the
// destinations of keys, leaving keys the document does not mention as they
// were (their defaults). An empty document changes nothing. Unknown keys
// (the message lists the known ones in the order of keys), wrong types and
// duplicate keys are channel.ErrInvalid naming the key. Ranges and the
// relations between keys are their owners' to check afterwards
// (runtime.Config.Validate).
func ParseConfig(data []byte, keys []ConfigKey) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return scanObject(data, "config", func(key string, raw []byte) error {
		for _, k := range keys {
			if k.Name != key {
				continue
			}
			if k.Raw != nil {
				switch {
				case isNull(raw):
					*k.Raw = nil
				case raw[0] == '{':
					*k.Raw = append([]byte(nil), raw...)
				default:
					return invalidf("config: key %q: expected an object, got %s", key, kindOf(raw))
				}
				return nil
			}
			if k.Int != nil {
				n, err := rawInt("config", key, raw, math.MinInt32, math.MaxInt64)
				if err != nil {
					return err
				}
				if n > channel.MaxTimeoutMs {
					return invalidf("config: key %q: %d is too large", key, n)
				}
				*k.Int = int(n)
				return nil
			}
			if isNull(raw) {
				*k.Str = ""
				return nil
			}
			s, err := rawString("config", key, raw)
			*k.Str = s
			return err
		}
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Name
		}
		return invalidf("config: unknown key %q (known: %s)", key, strings.Join(names, ", "))
	})
}
