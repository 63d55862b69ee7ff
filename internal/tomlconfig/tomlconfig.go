// Package tomlconfig reads the handler-dispatch and queue settings out of
// tasker-core's own TOML configuration, so that users of tasker-core can
// point libtasker at the files they already have.
//
// # Where the files are (as in tasker-core)
//
//   - One pre-merged file (tasker-core's TASKER_CONFIG_PATH): Location.Path.
//   - A root folder (TASKER_CONFIG_ROOT) holding base/*.toml and
//     environments/<env>/*.toml: Location.Root and Location.Environment
//     (TASKER_ENV: test, development, production; default development).
//     The base files are read in name order, then the environment's files in
//     name order; each one is merged over what came before: tables merge key
//     by key, recursively; a scalar or an array replaces what was there (so
//     does a table replacing a scalar, and the reverse). base/ must hold at
//     least one .toml file and environments/<env>/ must exist (a mistyped
//     environment is an error listing the ones that exist, not a silent
//     fall-back to base).
//
// LocationFromEnv follows the environment variables like tasker-core:
// TASKER_CONFIG_PATH wins when set and non-empty, else TASKER_CONFIG_ROOT
// with TASKER_ENV.
//
// # What is read
//
// Only the keys listed in the table below (the Postgres ones only when
// Options.Postgres asks for them). Everything else in the files is
// ignored without being looked at: other tables, unknown keys and
// sub-tables inside the tables read (tasker-core's files carry `_docs`
// sub-tables), and ${VAR} references in values not read. Every setting has
// an order of candidates; the first one present wins and the others are not
// read at all.
//
//	setting (config document key)     TOML table . key (first present wins)
//	Channel["dispatch_buffer_size"]   worker.mpsc_channels.handler_dispatch . dispatch_buffer_size
//	                                  mpsc_channels.worker.handler_dispatch . dispatch_buffer_size  (the seed's older path)
//	Channel["completion_buffer_size"] same two tables . completion_buffer_size
//	Channel["max_concurrent_handlers"] same two tables . max_concurrent_handlers
//	Channel["handler_timeout_ms"]     same two tables . handler_timeout_ms
//	Channel["starvation_warning_threshold_ms"] worker.mpsc_channels.ffi_dispatch . starvation_warning_threshold_ms
//	Channel["completion_timeout_ms"]  worker.mpsc_channels.ffi_dispatch . completion_timeout_ms
//	Postgres["dsn"]                   common.pgmq_database . url when non-empty, else common.database . url when non-empty
//	Postgres["visibility_timeout_ms"] worker.event_systems.worker . timing.visibility_timeout_seconds (x 1000)
//	                                  common.queues . default_visibility_timeout_seconds (x 1000)
//	Postgres["poll_interval_ms"]      worker.event_systems.worker . metadata.fallback_poller.polling_interval_ms
//	                                  common.queues . pgmq.poll_interval_ms
//	Postgres["batch_size"]            worker.event_systems.worker . processing.batch_size
//
// The worker's own event-system settings win over the shared common.queues
// defaults because that is the more specific place, as in tasker-core.
//
// # Values
//
// Integer settings take a TOML integer in [0, 2147483647] (after the x 1000
// of the seconds keys), or a string that contains a ${...} reference and
// reads as such an integer once substituted (so `max_concurrent_handlers =
// "${HANDLERS:-10}"` works). A plain string, a float, a boolean, an array or
// a table there is an error naming the file and the key; so is a table on
// the way to a key read (`[worker] mpsc_channels = 5`). The dsn takes a
// string.
//
// In the values read, ${NAME} is replaced by the environment variable NAME
// and ${NAME:-default} by NAME when it is set and non-empty, else by
// default (the shell's rule). An unset NAME without a default is an error
// naming NAME, the file and the key; so is a "${" that does not start a
// well-formed reference (a NAME is [A-Za-z_][A-Za-z0-9_]*).
//
// # Result
//
// Load returns Settings: for each setting found, its value and its origin,
// "<file>:<table>.<key>" with <file> the path as opened. Settings.Channel
// is keyed like tasker_new's config document; Settings.Postgres like
// docs/QUEUE.md's source.postgres document, so a source applies them with
// ApplyDefaults under the keys its JSON document did not give.
//
// # For the PostgreSQL source
//
// runtime.ParseConfigEnv applies Settings.Channel (under the JSON keys it
// did not get). A source that wants tasker-core's queue settings calls
//
//	s, err := tomlconfig.Load(loc, tomlconfig.Options{LookupEnv: lookup, Postgres: true})
//	origins, err := tomlconfig.ApplyDefaults(s.Postgres, keysGivenInSourceJSON, func(k string, v Value) error {
//		// set source.postgres[k] to v.Any() (an int64, or the dsn string)
//	})
//
// with the same Location (wire.ParseTaskerConfig, LocationFromEnv) and lookup
// (the C layer's getenv) as the channel, only when the config document has a
// source, so that a channel without one never needs DATABASE_URL. The keys
// match docs/QUEUE.md's source.postgres document: dsn, visibility_timeout_ms,
// poll_interval_ms, batch_size; origins feed config_sources ("source.postgres.<key>").
//
// Every error returned by this package is a configuration error (the C ABI
// maps it to TASKER_EINVAL) and names the file, and the key when there is
// one. The package is safe for concurrent use: it keeps no state.
package tomlconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Location says where tasker-core's configuration is: either Path (one
// pre-merged file) or Root (+ Environment), never both.
type Location struct {
	// Path is a pre-merged TOML file (tasker-core's TASKER_CONFIG_PATH).
	Path string
	// Root is a folder with base/ and environments/ (TASKER_CONFIG_ROOT).
	Root string
	// Environment picks environments/<Environment>/ under Root; "" means
	// DefaultEnvironment.
	Environment string
}

// DefaultEnvironment is tasker-core's default TASKER_ENV.
const DefaultEnvironment = "development"

// Value is one effective setting.
type Value struct {
	// Int holds an integer setting (IsString false).
	Int int64
	// Str holds a string setting (IsString true): the dsn.
	Str      string
	IsString bool
	// Origin is "<file>:<table>.<key>", the place the value came from.
	Origin string
}

// Any returns the value as an int64 or a string.
func (v Value) Any() any {
	if v.IsString {
		return v.Str
	}
	return v.Int
}

// Settings are the effective settings found in the files.
type Settings struct {
	// Channel holds the dispatch settings found, keyed like tasker_new's
	// config document (dispatch_buffer_size, completion_buffer_size,
	// max_concurrent_handlers, handler_timeout_ms,
	// starvation_warning_threshold_ms, completion_timeout_ms).
	Channel map[string]Value
	// Postgres holds the PostgreSQL source settings found, keyed like
	// docs/QUEUE.md's source.postgres document (dsn, visibility_timeout_ms,
	// poll_interval_ms, batch_size).
	Postgres map[string]Value
	// Files lists the files read, in merge order.
	Files []string
}

// ApplyDefaults calls set for every setting of group (Channel or Postgres)
// whose key is not in given, in key order; given holds the keys the JSON
// document set itself, which win over TOML. It returns the origins of the
// settings applied, keyed like group.
func ApplyDefaults(group map[string]Value, given map[string]bool, set func(key string, v Value) error) (map[string]string, error) {
	keys := make([]string, 0, len(group))
	for k := range group {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	origins := map[string]string{}
	for _, k := range keys {
		if given[k] {
			continue
		}
		v := group[k]
		if err := set(k, v); err != nil {
			return nil, fmt.Errorf("%s (from %s)", err, v.Origin)
		}
		origins[k] = v.Origin
	}
	return origins, nil
}

// LocationFromEnv resolves the location the way tasker-core does, from
// TASKER_CONFIG_PATH (wins when set and non-empty), else TASKER_CONFIG_ROOT
// with TASKER_ENV (default development). lookup is os.LookupEnv in
// production; tests pass their own.
func LocationFromEnv(lookup func(string) (string, bool)) (Location, error) {
	if p, _ := lookup("TASKER_CONFIG_PATH"); p != "" {
		return Location{Path: p}, nil
	}
	if r, _ := lookup("TASKER_CONFIG_ROOT"); r != "" {
		env, _ := lookup("TASKER_ENV")
		return Location{Root: r, Environment: env}, nil
	}
	return Location{}, errors.New(`tasker_config "env": neither TASKER_CONFIG_PATH nor TASKER_CONFIG_ROOT is set`)
}

var envName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Files returns the files of loc in merge order, or an error naming what is
// missing.
func (loc Location) Files() ([]string, error) {
	switch {
	case loc.Path != "" && loc.Root != "":
		return nil, errors.New("tasker_config: give either path or root, not both")
	case loc.Path != "":
		if loc.Environment != "" {
			return nil, errors.New("tasker_config: environment goes with root, not with path (a pre-merged file has no environments)")
		}
		st, err := os.Stat(loc.Path)
		if err != nil {
			return nil, fmt.Errorf("tasker_config: path: %w", err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("tasker_config: path: %s is a folder (use root for a folder with base/ and environments/)", loc.Path)
		}
		return []string{loc.Path}, nil
	case loc.Root != "":
		env := loc.Environment
		if env == "" {
			env = DefaultEnvironment
		}
		if !envName.MatchString(env) {
			return nil, fmt.Errorf("tasker_config: environment %q is not a folder name (letters, digits, _ . -)", env)
		}
		base, err := tomlFiles(filepath.Join(loc.Root, "base"))
		if err != nil {
			return nil, err
		}
		if len(base) == 0 {
			return nil, fmt.Errorf("tasker_config: root: %s holds no .toml file", filepath.Join(loc.Root, "base"))
		}
		envDir := filepath.Join(loc.Root, "environments", env)
		over, err := tomlFiles(envDir)
		if errors.Is(err, fs.ErrNotExist) {
			have, _ := os.ReadDir(filepath.Join(loc.Root, "environments"))
			var names []string
			for _, e := range have {
				if e.IsDir() {
					names = append(names, e.Name())
				}
			}
			return nil, fmt.Errorf("tasker_config: environment %q: %s does not exist (environments there: %s)",
				env, envDir, strings.Join(names, ", "))
		}
		if err != nil {
			return nil, err
		}
		return append(base, over...), nil
	}
	return nil, errors.New("tasker_config: give path or root")
}

// tomlFiles lists dir's regular *.toml files in name order.
func tomlFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tasker_config: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".toml") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil // ReadDir sorts by name
}

// Options tune Load.
type Options struct {
	// LookupEnv resolves ${VAR}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Postgres asks for the PostgreSQL source settings as well. Without it
	// their keys are not read at all (so a ${DATABASE_URL} without a
	// default is no error for a channel that has no source).
	Postgres bool
}

// Load reads loc's files, merges them and returns the settings found.
func Load(loc Location, opt Options) (*Settings, error) {
	lookup := opt.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	files, err := loc.Files()
	if err != nil {
		return nil, err
	}
	root := &node{table: map[string]*node{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("tasker_config: %w", err)
		}
		var doc map[string]any
		if err := toml.Unmarshal(data, &doc); err != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("tasker_config: %s: line %d: %s", f, pe.Position.Line, pe.Message)
			}
			return nil, fmt.Errorf("tasker_config: %s: %w", f, err)
		}
		root.merge(doc, f)
	}
	r := reader{root: root, lookup: lookup}
	s := &Settings{Channel: map[string]Value{}, Postgres: map[string]Value{}, Files: files}
	for _, sp := range specs {
		if sp.group == "postgres" && !opt.Postgres {
			continue
		}
		v, ok, err := r.first(sp)
		if err != nil {
			return nil, err
		}
		if ok {
			s.group(sp.group)[sp.name] = v
		}
	}
	if opt.Postgres {
		dsn, ok, err := r.dsn()
		if err != nil {
			return nil, err
		}
		if ok {
			s.Postgres["dsn"] = dsn
		}
	}
	return s, nil
}

func (s *Settings) group(g string) map[string]Value {
	if g == "postgres" {
		return s.Postgres
	}
	return s.Channel
}

// ---- the merged tree ----

// node is a table (table != nil) or a leaf value, with the file that set it.
type node struct {
	table map[string]*node
	value any
	file  string
}

// merge lays doc (one decoded file) over n: tables merge recursively,
// anything else replaces.
func (n *node) merge(doc map[string]any, file string) {
	for k, v := range doc {
		if sub, ok := v.(map[string]any); ok {
			cur := n.table[k]
			if cur == nil || cur.table == nil {
				cur = &node{table: map[string]*node{}, file: file}
				n.table[k] = cur
			}
			cur.merge(sub, file)
			continue
		}
		n.table[k] = &node{value: v, file: file}
	}
}

// ---- what is read ----

type candidate struct {
	table string // dotted path of the table
	key   string // dotted path inside it
	scale int64  // 1000 for a seconds key feeding a _ms setting
}

type spec struct {
	group string // "channel" or "postgres"
	name  string // the config document's key
	from  []candidate
}

const (
	hdNew = "worker.mpsc_channels.handler_dispatch"
	hdOld = "mpsc_channels.worker.handler_dispatch" // the seed's path
	ffiT  = "worker.mpsc_channels.ffi_dispatch"
	evW   = "worker.event_systems.worker"
	cq    = "common.queues"
)

var specs = []spec{
	{"channel", "dispatch_buffer_size", []candidate{{hdNew, "dispatch_buffer_size", 1}, {hdOld, "dispatch_buffer_size", 1}}},
	{"channel", "completion_buffer_size", []candidate{{hdNew, "completion_buffer_size", 1}, {hdOld, "completion_buffer_size", 1}}},
	{"channel", "max_concurrent_handlers", []candidate{{hdNew, "max_concurrent_handlers", 1}, {hdOld, "max_concurrent_handlers", 1}}},
	{"channel", "handler_timeout_ms", []candidate{{hdNew, "handler_timeout_ms", 1}, {hdOld, "handler_timeout_ms", 1}}},
	{"channel", "starvation_warning_threshold_ms", []candidate{{ffiT, "starvation_warning_threshold_ms", 1}}},
	{"channel", "completion_timeout_ms", []candidate{{ffiT, "completion_timeout_ms", 1}}},
	{"postgres", "visibility_timeout_ms", []candidate{
		{evW, "timing.visibility_timeout_seconds", 1000}, {cq, "default_visibility_timeout_seconds", 1000}}},
	{"postgres", "poll_interval_ms", []candidate{
		{evW, "metadata.fallback_poller.polling_interval_ms", 1}, {cq, "pgmq.poll_interval_ms", 1}}},
	{"postgres", "batch_size", []candidate{{evW, "processing.batch_size", 1}}},
}

type reader struct {
	root   *node
	lookup func(string) (string, bool)
}

// find walks to table.key. It returns nil when something on the way is
// absent, and an error when something on the way is not a table. A leaf
// that is a table comes back as a node whose value is nil ("a table").
func (r reader) find(c candidate) (*node, error) {
	path := strings.Split(c.table+"."+c.key, ".")
	n := r.root
	for i, p := range path {
		next := n.table[p]
		if next == nil {
			return nil, nil
		}
		if i < len(path)-1 && next.table == nil {
			return nil, fmt.Errorf("tasker_config: %s: %s: expected a table, found %s",
				next.file, strings.Join(path[:i+1], "."), typeName(next.value))
		}
		n = next
	}
	return n, nil
}

// first returns the value of the first candidate of sp that is present.
func (r reader) first(sp spec) (Value, bool, error) {
	for _, c := range sp.from {
		n, err := r.find(c)
		if err != nil {
			return Value{}, false, err
		}
		if n == nil {
			continue
		}
		v, err := r.integer(n, c)
		return v, err == nil, err
	}
	return Value{}, false, nil
}

func (r reader) where(n *node, c candidate) string {
	return n.file + ":" + c.table + "." + c.key
}

func (r reader) integer(n *node, c candidate) (Value, error) {
	origin := r.where(n, c)
	var v int64
	switch x := n.value.(type) {
	case int64:
		v = x
	case string:
		if !strings.Contains(x, "${") {
			return Value{}, fmt.Errorf("tasker_config: %s: expected an integer, found the string %q", origin, x)
		}
		s, err := r.substitute(x, origin)
		if err != nil {
			return Value{}, err
		}
		v, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Value{}, fmt.Errorf("tasker_config: %s: %q (from %q) is not an integer", origin, s, x)
		}
	default:
		return Value{}, fmt.Errorf("tasker_config: %s: expected an integer, found %s", origin, typeName(n.value))
	}
	if v < 0 || v > math.MaxInt32/c.scale {
		return Value{}, fmt.Errorf("tasker_config: %s: %d is out of range [0, %d]", origin, v, math.MaxInt32/c.scale)
	}
	return Value{Int: v * c.scale, Origin: origin}, nil
}

// dsn is common.pgmq_database.url when non-empty, else common.database.url
// when non-empty. The second is read only when the first gives nothing.
func (r reader) dsn() (Value, bool, error) {
	for _, c := range []candidate{{"common.pgmq_database", "url", 1}, {"common.database", "url", 1}} {
		n, err := r.find(c)
		if err != nil {
			return Value{}, false, err
		}
		if n == nil {
			continue
		}
		origin := r.where(n, c)
		s, ok := n.value.(string)
		if !ok {
			return Value{}, false, fmt.Errorf("tasker_config: %s: expected a string, found %s", origin, typeName(n.value))
		}
		s, err = r.substitute(s, origin)
		if err != nil {
			return Value{}, false, err
		}
		if s != "" {
			return Value{Str: s, IsString: true, Origin: origin}, true, nil
		}
	}
	return Value{}, false, nil
}

var refName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// substitute replaces ${NAME} and ${NAME:-default} in s.
func (r reader) substitute(s, origin string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("tasker_config: %s: unterminated ${ in %q", origin, s)
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !refName.MatchString(name) || strings.Contains(def, "${") {
			return "", fmt.Errorf("tasker_config: %s: ${%s} is not a variable reference (want ${NAME} or ${NAME:-default})", origin, ref)
		}
		val, set := r.lookup(name)
		switch {
		case hasDef && val == "":
			val = def
		case !hasDef && !set:
			return "", fmt.Errorf("tasker_config: %s: environment variable %s is not set (and ${%s} has no default; write ${%s:-default} for one)",
				origin, name, name, name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "a table"
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	default:
		return "a date or time"
	}
}
