package authserver_test

import (
	"go/build"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/authserver-dev/authserver"

// allowedImports is ARCHITECTURE.md's table: the packages of this module
// each package may import directly (module-relative; "." is the root).
// Packages not listed (test support: pgtest, oidctest, ...) are not checked.
var allowedImports = map[string][]string{
	"internal/signer":   {},
	"internal/metrics":  {},
	"internal/tlsutil":  {},
	"internal/logbuf":   {},
	"internal/core":     {"internal/signer"},
	"internal/auth":     {"internal/core"},
	"internal/sequence": {"internal/core"},
	"internal/config":   {"internal/auth", "internal/signer"},
	"internal/httpapi":  {"internal/auth", "internal/core", "internal/metrics", "internal/signer"},
	"internal/app": {"internal/auth", "internal/config", "internal/core", "internal/httpapi", "internal/logbuf",
		"internal/metrics", "internal/sequence", "internal/signer", "internal/tlsutil", "migrations"},
	"cmd/authserver": {".", "internal/app", "internal/config", "internal/signer"},
}

// neverDependsOn are rules on all dependencies, direct or not: the domain
// and the transport never see the configuration file's shape.
var neverDependsOn = map[string][]string{
	"internal/core":    {"internal/config", "internal/httpapi", "internal/app"},
	"internal/httpapi": {"internal/config", "internal/app", "internal/sequence"},
	"internal/auth":    {"internal/config", "internal/httpapi"},
}

// moduleImports returns the module-relative non-test imports of pkg.
func moduleImports(t *testing.T, pkg string) []string {
	t.Helper()
	p, err := build.Default.Import(path.Join(module, pkg), ".", 0)
	if err != nil {
		t.Fatalf("%s: %v", pkg, err)
	}
	var out []string
	for _, imp := range p.Imports {
		switch {
		case imp == module:
			out = append(out, ".")
		case strings.HasPrefix(imp, module+"/"):
			out = append(out, strings.TrimPrefix(imp, module+"/"))
		}
	}
	return out
}

// TestImportRules keeps ARCHITECTURE.md true.
func TestImportRules(t *testing.T) {
	for pkg, allowed := range allowedImports {
		for _, imp := range moduleImports(t, pkg) {
			if !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s: not allowed by ARCHITECTURE.md", pkg, imp)
			}
		}
	}
	for pkg, banned := range neverDependsOn {
		seen := map[string]bool{}
		var walk func(p string, via []string)
		walk = func(p string, via []string) {
			for _, imp := range moduleImports(t, p) {
				if seen[imp] {
					continue
				}
				seen[imp] = true
				chain := append(slices.Clone(via), imp)
				if slices.Contains(banned, imp) {
					t.Errorf("%s depends on %s (%s)", pkg, imp, strings.Join(chain, " -> "))
				}
				walk(imp, chain)
			}
		}
		walk(pkg, []string{pkg})
	}
}
