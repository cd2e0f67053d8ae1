package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/authserver-dev/authserver/internal/servertest"
)

// Servers of the "cost flat as the work grows" scenarios: authserver with
// many more applications, API keys or identity providers configured than
// the one each request uses.
const (
	authBoltApps serverKind = "authserver-1000apps" // 1,000 applications
	authBoltKeys serverKind = "authserver-1000keys" // 1,000 API keys
	authBoltIdPs serverKind = "authserver-100idps"  // 100 identity providers
)

// wide is how many extra entries of a config section a kind adds.
var wide = map[serverKind]map[string]int{
	authBoltApps: {"applications": 999},
	authBoltKeys: {"api_keys": 999},
	authBoltIdPs: {"identity_providers": 99},
}

// writeWide appends kind's extra entries of section to a YAML config: more
// applications sharing the bench secret, API keys with random digests (no
// caller holds their keys), HS256 providers with distinct issuers (no
// network at start).
func writeWide(b *bytes.Buffer, e *env, kind serverKind, section string) {
	n := wide[kind][section]
	for i := range n {
		switch section {
		case "applications":
			fmt.Fprintf(b, "  - key: %s-%d\n    secret_file: %q\n", benchAppKey, i, e.secretFile)
		case "api_keys":
			fmt.Fprintf(b, "  - name: extra-%d\n    sha256: %s\n    applications: [%s]\n", i, servertest.RandomHex(32), benchAppKey)
		case "identity_providers":
			fmt.Fprintf(b, "  - issuer: https://idp-%d.bench.invalid/\n    audience: %s\n    hs256_secret_file: %q\n", i, benchAudience, e.hs256File())
		}
	}
}

// hs256File writes (once) a 32-byte secret for the extra HS256 providers.
func (e *env) hs256File() string {
	p := filepath.Join(e.dir, "hs256-secret")
	if _, err := os.Stat(p); err != nil {
		_ = os.WriteFile(p, []byte(servertest.RandomHex(32)+"\n"), 0o600)
	}
	return p
}

// Yardsticks: each scenario's sides also run, in the same rounds, against
// the hello-world TLS server (the stack's limit) and the lean mint
// (bench/baseline -mode jwt), unless a side already is one of them.
func yardstickSides(sc scenario) []side {
	load := loadJWTKey
	if sc.A.Load == loadNewConn {
		load = loadNewConn
	}
	var out []side
	has := func(k serverKind) bool { return sc.A.Server == k || sc.B != nil && sc.B.Server == k }
	if !has(baselineHello) {
		out = append(out, side{"yardstick: hello-world TLS", baselineHello, load})
	}
	if !has(baselineJWT) {
		out = append(out, side{"yardstick: lean mint", baselineJWT, load})
	}
	return out
}

// yardstickRatios sets every side's median-of-rounds ratio to the hello and
// the mint sides of the same scenario (each round's sides run back to back).
func yardstickRatios(res *scenarioResult) {
	hello, mint := -1, -1
	for i, s := range res.Sides {
		switch s.Server {
		case baselineHello:
			hello = i
		case baselineJWT:
			if mint < 0 {
				mint = i
			}
		}
	}
	ratio := func(i, j int) float64 {
		if j < 0 {
			return 0
		}
		var rs []float64
		for r := range res.Sides[i].Rounds {
			if b := res.Sides[j].Rounds[r].ReqPerSec; b > 0 {
				rs = append(rs, res.Sides[i].Rounds[r].ReqPerSec/b)
			}
		}
		return median(rs)
	}
	for i := range res.Sides {
		res.Sides[i].VsHello = ratio(i, hello)
		res.Sides[i].VsMint = ratio(i, mint)
	}
}

// fmtRatio prints a ratio, or "" when there is none.
func fmtRatio(x float64) string {
	if x == 0 {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "x"
}
