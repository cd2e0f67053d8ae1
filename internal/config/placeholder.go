package config

import (
	"regexp"
	"strings"
)

// placeholder reports whether v is one of the placeholders shipped in
// deploy/ and the README (REPLACE-WITH-…, YOUR-…), so that a config copied
// without filling them in stops at start, naming the key, instead of
// starting a server that answers every request 401.
func placeholder(v string) bool {
	u := strings.ToUpper(strings.TrimSpace(v))
	return strings.Contains(u, "REPLACE-WITH") || strings.Contains(u, "REPLACE_WITH") ||
		strings.HasPrefix(u, "YOUR-") || strings.HasPrefix(u, "YOUR_") || strings.Contains(u, "CHANGE-ME") || u == "CHANGEME"
}

// knownHashes are SHA-256 values no real API key has: the examples' and
// those of trivial keys.
var knownHashes = map[string]string{
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": "the SHA-256 of an empty key",
	"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": `the README's example, the SHA-256 of "test"`,
}

// placeholderHash says why a 64-hex-digit sha256 cannot be a real key's
// hash, or "".
func placeholderHash(h string) string {
	h = strings.ToLower(h)
	if strings.Trim(h, h[:1]) == "" {
		return "one digit repeated, like deploy/authserver.yaml's all-zero placeholder"
	}
	return knownHashes[h]
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
