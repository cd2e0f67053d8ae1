// Package faults holds fault-injection tests that drive real authserver
// processes: the binary is built once, started with generated configs
// against a throwaway PostgreSQL (internal/pgtest) or the embedded store,
// served over TLS with a real self-signed certificate, and hammered by a
// load generator while PostgreSQL or authserver itself is killed, signalled,
// reconfigured or abused.
//
// The tests are behind the build tag "faults" so that a plain go test ./...
// stays fast:
//
//	go test -tags faults -v ./test/...              # everything, soak 2m
//	go test -tags faults -v -soak=0 ./test/...      # without the soak
//	go test -tags faults -v -run Soak -soak=10m ./test/faults
package faults
