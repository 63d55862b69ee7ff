package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
	"github.com/tasker-systems/libtasker/internal/wire"
)

func TestParseCheckpoint(t *testing.T) {
	for _, c := range []struct{ doc, cursor, acc string }{
		{`{"cursor":{"a":[1,"é"]},"items_processed":0}`, `{"a":[1,"é"]}`, ""},
		{`{"items_processed":9223372036854775807,"cursor":null,"accumulated_results":null}`, `null`, ""},
		{` {"cursor":12345678901234567890.000001,"items_processed":3,"accumulated_results":{"sum":1e400}} `, `12345678901234567890.000001`, `{"sum":1e400}`},
	} {
		got, err := wire.ParseCheckpoint([]byte(c.doc), 0)
		require.NoError(t, err, c.doc)
		assert.Equal(t, c.cursor, string(got.Cursor), c.doc)
		assert.Equal(t, c.acc, string(got.AccumulatedResults), c.doc)
	}
	for _, c := range []struct{ doc, key string }{
		{`{"items_processed":1}`, "cursor"},
		{`{"cursor":1}`, "items_processed"},
		{`{"cursor":1,"items_processed":-1}`, "items_processed"},
		{`{"cursor":1,"items_processed":1.0}`, "items_processed"},
		{`{"cursor":1,"items_processed":true}`, "items_processed"},
		{`{"cursor":1,"items_processed":null}`, "items_processed"},
		{`{"cursor":1,"items_processed":1,"count":1}`, "count"},
		{`{"cursor":1,"cursor":2,"items_processed":1}`, "cursor"},
		{`{"cursor":"\xff","items_processed":1}`, ""},
		{`[]`, ""},
		{``, ""},
	} {
		_, err := wire.ParseCheckpoint([]byte(c.doc), 0)
		ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
		assert.Contains(t, err.Error(), c.key, c.doc)
	}
	_, err := wire.ParseCheckpoint([]byte(`{"cursor":1,"items_processed":1}`), 10)
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
}

// The polled event carries "checkpoint" only after a checkpoint; every
// completion carries "checkpoints".
func TestCheckpoint_Documents(t *testing.T) {
	e := channel.Event{EventID: uuid.New(), TaskUUID: uuid.New(), StepUUID: uuid.New(), CorrelationID: uuid.New(), Handler: "h"}
	var m map[string]any
	require.NoError(t, json.Unmarshal(wire.AppendEventJSON(nil, &e), &m))
	assert.NotContains(t, m, "checkpoint")
	k := channel.Checkpoint{Cursor: json.RawMessage(`{"page":2}`), ItemsProcessed: 40, AccumulatedResults: json.RawMessage(`[1]`)}
	k.Count = 3
	e.Checkpoint = &k
	out := wire.AppendEventJSON(nil, &e)
	assert.Contains(t, string(out), `"checkpoint":{"cursor":{"page":2},"items_processed":40,"accumulated_results":[1],"count":3}`)
	k.AccumulatedResults = nil
	assert.Contains(t, string(wire.AppendEventJSON(nil, &e)), `"accumulated_results":null,"count":3}`)

	comp := channel.Completion{EventID: e.EventID, Status: channel.StatusCompleted, Success: true, Checkpoints: 5}
	assert.Contains(t, string(wire.AppendCompletionJSON(nil, &comp)), `"checkpoints":5}`)
	comp.Checkpoints = 0
	assert.Contains(t, string(wire.AppendCompletionJSON(nil, &comp)), `"checkpoints":0}`)
}

// The checkpoint of a step message: ParseCheckpoint's keys plus count.
func TestParseSourceCheckpoint(t *testing.T) {
	cp, err := wire.ParseSourceCheckpoint([]byte(`{"cursor":{"p":1},"items_processed":5,"accumulated_results":[1],"count":7}`), 0)
	require.NoError(t, err)
	assert.Equal(t, 7, cp.Count)
	assert.Equal(t, `{"p":1}`, string(cp.Cursor))
	back := wire.AppendCheckpointJSON(nil, &cp)
	again, err := wire.ParseSourceCheckpoint(back, 0)
	require.NoError(t, err)
	assert.Equal(t, cp, again)
	for _, bad := range []string{`{"cursor":1,"items_processed":1,"count":-1}`, `{"cursor":1,"items_processed":1,"count":"2"}`,
		`{"cursor":1,"items_processed":1,"extra":0}`, `{"items_processed":1}`, `[1]`} {
		_, err := wire.ParseSourceCheckpoint([]byte(bad), 0)
		ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
		assert.Contains(t, err.Error(), "message.checkpoint", bad)
	}
	_, err = wire.ParseCheckpoint([]byte(`{"cursor":1,"items_processed":1,"count":2}`), 0)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid) // a worker does not set the count
}
