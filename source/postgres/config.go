package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/strictjson"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// Config is the `source.postgres` object of tasker_new's config document
// (docs/QUEUE.md, "Configuration"). Make one with ParseConfig, or fill one in
// and call Validate (which also fills in the defaults of zero fields).
type Config struct {
	DSN                 string // required: a libpq URL or key=value string
	Queue               string // required: steps are read from <Schema>.q_<Queue>
	Schema              string // default "pgmq"
	ResultsQueue        string // default <Queue>_results
	DeadLetterQueue     string // default <Queue>_dlq
	CreateQueues        bool   // default true (ParseConfig); create schema, tables and notify trigger when missing
	VisibilityTimeoutMs int    // the lease; default 30000
	HeartbeatMs         int    // default VisibilityTimeoutMs/3
	BatchSize           int    // most messages per read; default 20
	PollIntervalMs      int    // fallback polling; default 500
	MaxAttempts         int    // default 5

	// set by Validate
	explicitResults, explicitDLQ bool
}

// Limits of the names and numbers (docs/QUEUE.md: queue names are lowercase
// [a-z0-9_], at most 47 characters, derived names included).
const (
	MaxQueueName  = 47
	maxSchemaName = 63
	maxBatch      = 10000
	maxMs         = math.MaxInt32
	notifyMax     = 63 // PostgreSQL's longest channel name (NAMEDATALEN-1)
)

var nameRE = regexp.MustCompile(`^[a-z0-9_]+$`)

const keyPrefix = "config: source.postgres"

func invalid(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: key %q: %s", channel.ErrInvalid, keyPrefix, key, fmt.Sprintf(format, args...))
}

var knownKeys = []string{"dsn", "queue", "schema", "results_queue", "dead_letter_queue", "create_queues",
	"visibility_timeout_ms", "heartbeat_ms", "batch_size", "poll_interval_ms", "max_attempts"}

// ParseConfig decodes the object under "postgres" of the `source` key,
// strictly: unknown keys, duplicate keys, wrong types and bad names are
// channel.ErrInvalid with a message naming the key. It does not connect.
func ParseConfig(doc []byte) (Config, error) {
	cfg := Config{CreateQueues: true}
	var haveDSN, haveQueue bool
	err := scanStrictObject(doc, keyPrefix, func(key string, raw json.RawMessage) error {
		var err error
		switch key {
		case "dsn":
			cfg.DSN, err = strField(key, raw)
			haveDSN = true
		case "queue":
			cfg.Queue, err = strField(key, raw)
			haveQueue = true
		case "schema":
			if cfg.Schema, err = strField(key, raw); err == nil && cfg.Schema == "" {
				return invalid(key, "must be a non-empty name (leave the key out for the default \"pgmq\")")
			}
		case "results_queue":
			cfg.ResultsQueue, err = strField(key, raw)
			cfg.explicitResults = true
		case "dead_letter_queue":
			cfg.DeadLetterQueue, err = strField(key, raw)
			cfg.explicitDLQ = true
		case "create_queues":
			if err = json.Unmarshal(raw, &cfg.CreateQueues); err != nil || (string(raw) != "true" && string(raw) != "false") {
				return invalid(key, "expected true or false, got %s", wire.KindOf(raw))
			}
		case "visibility_timeout_ms":
			cfg.VisibilityTimeoutMs, err = intField(key, raw, 1, maxMs)
		case "heartbeat_ms":
			cfg.HeartbeatMs, err = intField(key, raw, 1, maxMs)
		case "batch_size":
			cfg.BatchSize, err = intField(key, raw, 1, maxBatch)
		case "poll_interval_ms":
			cfg.PollIntervalMs, err = intField(key, raw, 1, maxMs)
		case "max_attempts":
			cfg.MaxAttempts, err = intField(key, raw, 1, maxMs)
		default:
			return fmt.Errorf("%w: %s: unknown key %q (known: %s)", channel.ErrInvalid, keyPrefix, key, strings.Join(knownKeys, ", "))
		}
		return err
	})
	if err != nil {
		return Config{}, err
	}
	if !haveDSN {
		return Config{}, fmt.Errorf("%w: %s: missing required key \"dsn\" (give it here, or have it read from tasker-core's TOML "+
			"[common.pgmq_database] url or [common.database] url with the config key tasker_config)", channel.ErrInvalid, keyPrefix)
	}
	if !haveQueue {
		return Config{}, fmt.Errorf("%w: %s: missing required key \"queue\"", channel.ErrInvalid, keyPrefix)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate fills in defaults for zero fields and reports the first bad
// value, naming its key (channel.ErrInvalid).
func (c *Config) Validate() error {
	if c.DSN == "" {
		return invalid("dsn", "must be a non-empty connection string")
	}
	if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		return invalid("dsn", "not a valid connection string: %v", err)
	}
	if c.Schema == "" {
		c.Schema = "pgmq"
	}
	if !c.explicitResults && c.ResultsQueue == "" {
		c.ResultsQueue = c.Queue + "_results"
	} else {
		c.explicitResults = true
	}
	if !c.explicitDLQ && c.DeadLetterQueue == "" {
		c.DeadLetterQueue = c.Queue + "_dlq"
	} else {
		c.explicitDLQ = true
	}
	if c.VisibilityTimeoutMs == 0 {
		c.VisibilityTimeoutMs = 30000
	}
	if c.HeartbeatMs == 0 {
		c.HeartbeatMs = max(c.VisibilityTimeoutMs/3, 1)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 20
	}
	if c.PollIntervalMs == 0 {
		c.PollIntervalMs = 500
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if err := checkName("schema", c.Schema, maxSchemaName, ""); err != nil {
		return err
	}
	if err := checkName("queue", c.Queue, MaxQueueName, ""); err != nil {
		return err
	}
	derived := func(key, suffix string, explicit bool) string {
		if explicit {
			return ""
		}
		return fmt.Sprintf(" (the default %s is \"<queue>%s\"; with a queue name this long, set %q explicitly)", key, suffix, key)
	}
	if err := checkName("results_queue", c.ResultsQueue, MaxQueueName, derived("results_queue", "_results", c.explicitResults)); err != nil {
		return err
	}
	if err := checkName("dead_letter_queue", c.DeadLetterQueue, MaxQueueName, derived("dead_letter_queue", "_dlq", c.explicitDLQ)); err != nil {
		return err
	}
	if c.ResultsQueue == c.Queue || c.DeadLetterQueue == c.Queue || c.ResultsQueue == c.DeadLetterQueue {
		return invalid("results_queue", "queue (%q), results_queue (%q) and dead_letter_queue (%q) must be three different queues",
			c.Queue, c.ResultsQueue, c.DeadLetterQueue)
	}
	for _, q := range []struct{ key, name string }{{"queue", c.Queue}, {"results_queue", c.ResultsQueue}, {"dead_letter_queue", c.DeadLetterQueue}} {
		if ch := NotifyChannel(c.Schema, q.name); len(ch) > notifyMax {
			return invalid(q.key, "schema and queue name together are too long: the notify channel %q is longer than %d characters", ch, notifyMax)
		}
	}
	for _, f := range []struct {
		key    string
		v, max int
	}{{"visibility_timeout_ms", c.VisibilityTimeoutMs, maxMs}, {"heartbeat_ms", c.HeartbeatMs, maxMs},
		{"batch_size", c.BatchSize, maxBatch}, {"poll_interval_ms", c.PollIntervalMs, maxMs}, {"max_attempts", c.MaxAttempts, maxMs}} {
		if f.v < 1 || f.v > f.max {
			return invalid(f.key, "%d is out of range [1, %d]", f.v, f.max)
		}
	}
	if c.HeartbeatMs >= c.VisibilityTimeoutMs {
		return invalid("heartbeat_ms", "%d must be less than visibility_timeout_ms (%d): the lease would expire between heartbeats",
			c.HeartbeatMs, c.VisibilityTimeoutMs)
	}
	return nil
}

func checkName(key, name string, maxLen int, hint string) error {
	switch {
	case name == "":
		return invalid(key, "must be a non-empty name")
	case !nameRE.MatchString(name):
		return invalid(key, "%q: names are lowercase letters, digits and _ only", name)
	case len(name) > maxLen:
		return invalid(key, "%q is %d characters, longer than %d%s", name, len(name), maxLen, hint)
	}
	return nil
}

// NotifyChannel is the channel pgmq notifies on for inserts into
// <schema>.q_<queue>.
func NotifyChannel(schema, queue string) string { return schema + ".q_" + queue + ".INSERT" }

// Interval helpers.
func (c *Config) visibility() time.Duration {
	return time.Duration(c.VisibilityTimeoutMs) * time.Millisecond
}
func (c *Config) heartbeat() time.Duration { return time.Duration(c.HeartbeatMs) * time.Millisecond }
func (c *Config) pollEvery() time.Duration { return time.Duration(c.PollIntervalMs) * time.Millisecond }

// ---- strict JSON helpers ----

func strField(key string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", invalid(key, "expected a string, got %s", wire.KindOf(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(key, "%v", err)
	}
	return s, nil
}

func intField(key string, raw json.RawMessage, lo, hi int64) (int, error) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		if wire.KindOf(raw) == "a number" {
			return 0, invalid(key, "expected an integer, got %s", raw)
		}
		return 0, invalid(key, "expected an integer, got %s", wire.KindOf(raw))
	}
	if n < lo || n > hi {
		return 0, invalid(key, "%d is out of range [%d, %d]", n, lo, hi)
	}
	return int(n), nil
}

// scanStrictObject walks one JSON object (all of doc) with the module's
// strict scanner: duplicate keys, invalid UTF-8 and trailing data are
// rejected.
func scanStrictObject(doc []byte, what string, fn func(key string, raw json.RawMessage) error) error {
	err := strictjson.ScanObject(doc, func(key string, raw []byte) error { return fn(key, raw) })
	var se *strictjson.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %s: %v", channel.ErrInvalid, what, err)
	}
	return err
}

// Keys lists the keys of the source document (for messages and docs).
func Keys() []string {
	k := append([]string(nil), knownKeys...)
	sort.Strings(k)
	return k
}
