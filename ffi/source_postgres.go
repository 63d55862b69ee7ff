//go:build !tasker_nopg

package main

// The "postgres" kind of the config's "source" key (docs/QUEUE.md). It brings
// pgx (and with it crypto/tls, net, x/text) into the library: about 8 MB of
// its 11 MB. Build with -tags tasker_nopg for a library without sources
// (make build GOTAGS=tasker_nopg): a "source" key is then EINVAL, "unknown
// kind of source".
import _ "github.com/tasker-systems/libtasker/source/postgres"
