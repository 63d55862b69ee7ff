package main

import (
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpareProcessor: the library, as it loads, runs its runtime with one
// processor more than the runtime's own choice, and with exactly the
// environment's GOMAXPROCS when that is set (tasker.h, "How ... wait").
// Each case runs in a child process, whose environment the test controls.
func TestSpareProcessor(t *testing.T) {
	if want := os.Getenv("TASKER_TEST_PROCS_WANT"); want != "" {
		got := goruntime.GOMAXPROCS(0)
		if want == "spare" {
			require.Equal(t, runtimeProcs+1, got, "one processor more than the runtime's choice")
		} else {
			n, err := strconv.Atoi(want)
			require.NoError(t, err)
			require.Equal(t, n, got, "GOMAXPROCS from the environment, as set")
			require.Equal(t, n, runtimeProcs)
		}
		return
	}
	for _, c := range []struct{ env, want string }{{"", "spare"}, {"1", "1"}, {"3", "3"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpareProcessor$", "-test.count=1")
		cmd.Env = append(withoutEnv(os.Environ(), "GOMAXPROCS"), "TASKER_TEST_PROCS_WANT="+c.want)
		if c.env != "" {
			cmd.Env = append(cmd.Env, "GOMAXPROCS="+c.env)
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "GOMAXPROCS=%q:\n%s", c.env, out)
	}
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if len(kv) <= len(name) || kv[:len(name)+1] != name+"=" {
			out = append(out, kv)
		}
	}
	return out
}
