package config

import (
	"errors"
	"reflect"
	"strings"
)

// KeyOf returns the key an error concerns: the Key of the first *Error in
// its chain, "" when there is none.
func KeyOf(err error) string {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Key
	}
	return ""
}

// KeepRestartOnly puts the running values of the restart-only keys (the
// rows of envVars marked restartOnly) into next, and names those that
// differed, in table order. Values derived from such a key follow it: the
// parsed trusted proxies, and the TLS files when insecure_http changed
// (whether to serve TLS is decided at start).
func KeepRestartOnly(old, next *Config) []string {
	var keys []string
	for _, e := range envVars {
		if e.reload == reloads {
			continue
		}
		o, n := field(old, e.key), field(next, e.key)
		if o.Kind() == reflect.Slice && o.Len() == 0 && n.Len() == 0 || reflect.DeepEqual(o.Interface(), n.Interface()) {
			continue
		}
		n.Set(o)
		keys = append(keys, e.key)
		switch e.key {
		case "trusted_proxies":
			next.Proxies = old.Proxies
		case "insecure_http":
			next.TLS = old.TLS
		}
	}
	return keys
}

// field is the field of c that key ("log.level") names by its YAML tags.
// It panics for a key that names none: a row of envVars with a typo, which
// TestEveryRowNamesAField catches.
func field(c *Config, key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for name := range strings.SplitSeq(key, ".") {
		f, ok := fieldByYAMLName(v.Type(), name)
		if !ok {
			panic("config: no field for key " + key)
		}
		v = v.FieldByIndex(f.Index)
	}
	return v
}
