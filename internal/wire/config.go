package wire

import (
	"math"
	"strings"

	"github.com/tasker-systems/libtasker/channel"
)

// ConfigKey is one key of the config document and where its value goes:
// exactly one of Int, Str and Raw is set. An integer must fit in
// [math.MinInt32, channel.MaxTimeoutMs] here; its owner's Validate checks
// the real range. A string may be null (meaning ""). Raw receives a copy of
// the value's JSON text (nil for null), for a key whose owner parses it
// (tasker_config: ParseTaskerConfig; source: runtime's openSource).
type ConfigKey struct {
	Name string
	Int  *int
	Str  *string
	Raw  *[]byte
	// Seen, when not nil, is set to true when the document has the key.
	Seen *bool
}

// ParseConfig decodes a config document (docs/ABI.md, "Config") into the
// destinations of keys, leaving keys the document does not mention as they
// were (their defaults). Only an empty document (no bytes: tasker_new's NULL
// or "") changes nothing; anything else must be a JSON object, with JSON
// whitespace (space, tab, LF, CR) around it at most, so a document of
// whitespace alone ("\f", U+00A0, even " ") is ErrInvalid. Unknown keys
// (the message lists the known ones in the order of keys), wrong types and
// duplicate keys are channel.ErrInvalid naming the key. Ranges and the
// relations between keys are their owners' to check afterwards
// (runtime.Config.Validate).
func ParseConfig(data []byte, keys []ConfigKey) error {
	if len(data) == 0 {
		return nil
	}
	return scanObject(data, "config", func(key string, raw []byte) error {
		for _, k := range keys {
			if k.Name != key {
				continue
			}
			if k.Seen != nil {
				*k.Seen = true
			}
			if k.Raw != nil {
				*k.Raw = nil
				if !isNull(raw) {
					*k.Raw = append([]byte(nil), raw...)
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

// TaskerConfig is the value of the config document's "tasker_config" key:
// where tasker-core's TOML configuration is (internal/tomlconfig reads it).
type TaskerConfig struct {
	// Env: the string "env", follow TASKER_CONFIG_PATH / TASKER_CONFIG_ROOT
	// / TASKER_ENV.
	Env bool
	// Path is a pre-merged file; Root a folder with base/ and
	// environments/, Environment its environment ("" = development).
	Path, Root, Environment string
}

// ParseTaskerConfig decodes the value of "tasker_config": the string "env"
// or an object {"path": string} | {"root": string, "environment": string}.
// null is the zero TaskerConfig (no TOML). Anything else, an unknown key, a
// wrong type, an empty string or a mix of path and root is
// channel.ErrInvalid naming the key.
func ParseTaskerConfig(raw []byte) (TaskerConfig, error) {
	const doc = "config: tasker_config"
	var tc TaskerConfig
	switch {
	case isNull(raw):
		return tc, nil
	case len(raw) > 0 && raw[0] == '"':
		s, err := rawString("config", "tasker_config", raw)
		if err != nil {
			return tc, err
		}
		if s != "env" {
			return tc, invalidf(`%s: the string %q is not "env" (or give an object: {"path": ...} or {"root": ..., "environment": ...})`, doc, s)
		}
		return TaskerConfig{Env: true}, nil
	case len(raw) == 0 || raw[0] != '{':
		return tc, invalidf(`%s: expected "env" or an object {"path": ...} | {"root": ..., "environment": ...}, got %s`, doc, KindOf(raw))
	}
	err := scanObject(raw, doc, func(key string, v []byte) error {
		var dst *string
		switch key {
		case "path":
			dst = &tc.Path
		case "root":
			dst = &tc.Root
		case "environment":
			dst = &tc.Environment
		default:
			return invalidf("%s: unknown key %q (known: path, root, environment)", doc, key)
		}
		s, err := rawString(doc, key, v)
		if err == nil && s == "" {
			err = invalidf("%s: key %q must be a non-empty string", doc, key)
		}
		*dst = s
		return err
	})
	switch {
	case err != nil:
		return TaskerConfig{}, err
	case tc.Path != "" && tc.Root != "":
		return TaskerConfig{}, invalidf("%s: give either path or root, not both", doc)
	case tc.Path == "" && tc.Root == "":
		return TaskerConfig{}, invalidf(`%s: give path (a pre-merged file) or root (a folder with base/ and environments/)`, doc)
	case tc.Path != "" && tc.Environment != "":
		return TaskerConfig{}, invalidf("%s: environment goes with root, not with path", doc)
	}
	return tc, nil
}
