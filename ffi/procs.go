package main

import "github.com/tasker-systems/libtasker/internal/goprocs"

// runtimeProcs is the Go runtime's own GOMAXPROCS choice, read as the
// library loads, before goprocs.Apply gave it one spare processor (unless
// the environment set GOMAXPROCS; internal/goprocs says why).
var runtimeProcs = goprocs.Apply()
