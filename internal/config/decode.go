package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decode reads YAML into cfg. It walks the document against Config's shape
// before decoding, so that every mistake is an *Error that names the key
// path and the line, in the words of the file and never of Go's types:
// `applications[0]: unknown key "secrt_file" (did you mean "secret_file"?), line 7`.
// All such mistakes are returned (errors.Join), in document order.
func Decode(r io.Reader, cfg *Config) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return errf("file", "%v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// A syntax error: yaml.v3 says "yaml: line 9: did not find ...".
		return errf("file", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	var errs []error
	walk(root, reflect.TypeFor[Config](), "", &errs)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if isNull(root) {
		return nil
	}
	if err := root.Decode(cfg); err != nil {
		// walk accepts only what decodes; this is a bug, but still one line.
		return errf("file", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// walk checks node n against type t at path, appending one *Error per
// mistake. It also rewrites a bare 0 given for a duration (instance_ttl: 0,
// as the documented example writes it) to "0s": yaml.v3 refuses integers
// for time.Duration, but 0 is unambiguous; 600 (seconds or nanoseconds?)
// stays an error.
func walk(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fail := func(format string, args ...any) {
		key := path
		if key == "" {
			key = "file"
		}
		*errs = append(*errs, errf(key, "%s, line %d", fmt.Sprintf(format, args...), n.Line))
	}
	if isNull(n) {
		return // an empty value leaves the default
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			fail("must be a duration like 10m or 500us")
			return
		}
		if n.ShortTag() == "!!int" {
			if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil && v == 0 {
				n.Tag, n.Value = "!!str", "0s"
				return
			}
			fail("%q has no unit: write it like 600s or 10m", n.Value)
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			fail("%q is not a duration like 10m or 500us", n.Value)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("must be a mapping of keys (%s)", strings.Join(yamlKeys(t), ", "))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := k.Value
			if name == "<<" && k.Kind == yaml.ScalarNode && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
				// A merge key (<<: *defaults): its mapping, or each of a
				// list of them, holds keys of this mapping.
				for v.Kind == yaml.AliasNode && v.Alias != nil {
					v = v.Alias
				}
				merged := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode {
					merged = v.Content
				}
				for _, m := range merged {
					walk(m, t, path, errs)
				}
				continue
			}
			f, ok := fieldByYAMLName(t, name)
			if !ok {
				// At the top level the key itself is named; below, the
				// mapping that holds it (the key may be a typo).
				key, msg := path, fmt.Sprintf("unknown key %q", name)
				if path == "" {
					key, msg = name, "unknown key"
				}
				if s := suggest(name, yamlKeys(t)); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*errs = append(*errs, errf(key, "%s, line %d", msg, k.Line))
				continue
			}
			child := join(path, name)
			if seen[name] {
				*errs = append(*errs, errf(child, "given twice, line %d", k.Line))
				continue
			}
			seen[name] = true
			walk(v, f.Type, child, errs)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			fail("must be a mapping")
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := fmt.Sprintf("%s[%q]", path, k.Value)
			if seen[k.Value] {
				*errs = append(*errs, errf(child, "given twice, line %d", k.Line))
				continue
			}
			seen[k.Value] = true
			walk(v, t.Elem(), child, errs)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			fail("must be a list")
			return
		}
		for i, c := range n.Content {
			walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case n.Kind != yaml.ScalarNode:
		switch t.Kind() {
		case reflect.Bool:
			fail("must be true or false")
		case reflect.Int, reflect.Int64:
			fail("must be an integer")
		default:
			fail("must be a single value, not a list or mapping")
		}
	case t.Kind() == reflect.Bool:
		// yaml.v3 also takes YAML 1.1's yes/no/on/off for a bool.
		switch n.Value {
		case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF":
			return
		}
		if n.ShortTag() != "!!bool" {
			fail("must be true or false, not %q", n.Value)
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		if n.ShortTag() != "!!int" {
			fail("must be an integer, not %q", n.Value)
		}
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fieldByYAMLName finds t's field whose yaml tag is name.
func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlKeys lists the keys a mapping of type t accepts.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}

// suggest returns the candidate closest to s when it is close enough to be
// a typo (edit distance at most 1 per 3 characters, and at least 1).
func suggest(s string, candidates []string) string {
	best, bestD := "", max(1, len(s)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// LoadDatabaseURL reads only what `authserver migrate` needs: the file and
// the environment are checked as Load checks them (unknown keys and
// variables), but nothing else is resolved, so migrating needs neither TLS
// files nor the Sinch secret.
func LoadDatabaseURL(path string, env Env) (string, error) {
	cfg, err := Read(path, env)
	if err != nil {
		return "", err
	}
	switch {
	case cfg.DatabaseURL == "":
		return "", errf("database_url", "is not set (--config FILE, AUTHSERVER_CONFIG or AUTHSERVER_DATABASE_URL): migrate needs Postgres; the embedded store needs no migrations")
	case !strings.HasPrefix(cfg.DatabaseURL, "postgres://") && !strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		return "", errf("database_url", "must be a postgres:// or postgresql:// URL")
	}
	return cfg.DatabaseURL, nil
}
