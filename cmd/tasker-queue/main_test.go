package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/tasker-systems/libtasker/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, strings.NewReader(stdin), &out)
	return out.String(), err
}

// create, send (a bad line is skipped and reported), stats, tail.
func TestCLI_CreateSendStatsTail(t *testing.T) {
	srv := pgtest.StartShared(t)
	d := "-dsn=" + srv.DSN
	if _, err := cli(t, "", d, "create", "cli_q"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "", d, "create", "cli_q"); err != nil {
		t.Fatalf("create is not idempotent: %v", err)
	}
	step := `{"task_uuid":"0190a0f0-0000-7000-8000-000000000001","step_uuid":"0190a0f0-0000-7000-8000-000000000002","handler":"h"}`
	out, err := cli(t, step+"\n\n"+`{"nope":1}`+"\n"+step+"\n", d, "send", "cli_q")
	if err == nil || !strings.Contains(err.Error(), "1 lines skipped (2 sent)") {
		t.Fatalf("send with a bad line: %v", err)
	}
	if ids := strings.Fields(out); len(ids) != 2 || ids[0] != "1" || ids[1] != "2" {
		t.Fatalf("send printed %q, want the two msg_ids", out)
	}
	if _, err := cli(t, `[1]`+"\n", d, "send", "-raw", "-delay-ms", "60000", "cli_q"); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "", d, "stats", "-json", "cli_q")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]QueueStats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if s := st["steps"]; s.Depth != 3 || s.Visible != 2 || s.Delayed != 1 || s.InFlight != 0 || s.Archived != 0 {
		t.Fatalf("stats %+v", s)
	}
	if st["results"].Queue != "cli_q_results" || st["dead_letters"].Queue != "cli_q_dlq" {
		t.Fatalf("stats %+v", st)
	}
	if out, err := cli(t, "", d, "stats", "cli_q"); err != nil || !strings.Contains(out, "dead letters") {
		t.Fatalf("stats table: %v %s", err, out)
	}
	// a result, as the source writes them, shows up in tail
	if _, err := cli(t, `{"msg_id":1,"queue":"cli_q","read_ct":1,"completion":{}}`+"\n", d, "send", "-raw", "cli_q_results"); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "", d, "tail", "cli_q")
	if err != nil {
		t.Fatal(err)
	}
	var line struct {
		MsgID   int64          `json:"msg_id"`
		Message map[string]any `json:"message"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &line); err != nil || line.Message["queue"] != "cli_q" {
		t.Fatalf("tail printed %q (%v)", out, err)
	}
	if out, _ := cli(t, "", d, "tail", "-from", "1", "cli_q"); out != "" {
		t.Fatalf("tail -from 1 printed %q", out)
	}
}

func TestCLI_Usage(t *testing.T) {
	for _, args := range [][]string{{}, {"-dsn=x"}, {"-dsn=host=/tmp", "bogus", "q"}, {"-dsn=host=/tmp", "stats"}} {
		if _, err := cli(t, "", args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := cli(t, "", "-dsn=host=/tmp", "stats", "Bad-Name"); err == nil || !strings.Contains(err.Error(), `"queue"`) {
		t.Errorf("a bad queue name: %v", err)
	}
}
