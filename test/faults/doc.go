// Package faults holds fault-injection tests that drive real authserver
// processes: the binary is built once, started with generated configs
// against a throwaway PostgreSQL (internal/pgtest) or the embedded store,
// served over TLS with a real self-signed certificate, and hammered by a
// load generator while PostgreSQL or authserver itself is killed, signalled,
// reconfigured or abused.
//
// The tests are behind the build tag "faults" so that a plain go test ./...
// stays fast. The -soak flag belongs to the test binary, so it goes after
// the package pattern:
//
//	go test -tags faults -v ./test/...                 # everything, soak 2m (about 3 minutes)
//	go test -tags faults -v ./test/... -soak=0         # without the soak (about 1 minute)
//	go test -tags faults -v -run Soak ./test/faults -soak=10m
package faults
