package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestAPIKeysAuthenticate(t *testing.T) {
	keys, err := NewAPIKeys([]APIKey{
		{Name: "backend", SHA256: sha256Hex("key-backend"), Applications: []string{"*"}},
		{Name: "billing", SHA256: strings.ToUpper(sha256Hex("key-billing")), Applications: []string{"app-1"}},
	})
	if err != nil {
		t.Fatalf("NewAPIKeys: %v", err)
	}
	tests := []struct {
		name      string
		presented string
		wantName  string
		wantApps  []string
		wantErr   error
	}{
		{"first key", "key-backend", "backend", []string{"*"}, nil},
		{"second key, upper-case hex in config", "key-billing", "billing", []string{"app-1"}, nil},
		{"wrong key", "key-wrong", "", nil, ErrInvalidAPIKey},
		{"empty key", "", "", nil, ErrInvalidAPIKey},
		{"the hash itself", sha256Hex("key-backend"), "", nil, ErrInvalidAPIKey},
		{"prefix of a key", "key-back", "", nil, ErrInvalidAPIKey},
		{"key with a trailing newline", "key-backend\n", "", nil, ErrInvalidAPIKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := keys.Authenticate(tt.presented)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if p.Kind != 0 || p.Name != "" || p.Applications != nil {
					t.Errorf("Principal = %+v with an error, want zero", p)
				}
				return
			}
			if p.Kind != KindAPIKey || p.Name != tt.wantName || p.UserID != "" || !slices.Equal(p.Applications, tt.wantApps) {
				t.Errorf("Principal = %+v, want api key %q with %v", p, tt.wantName, tt.wantApps)
			}
		})
	}
}

func TestAPIKeysNoKeys(t *testing.T) {
	keys, err := NewAPIKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Authenticate("anything"); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("Authenticate with no keys configured = %v, want ErrInvalidAPIKey", err)
	}
}

// TestNewAPIKeysErrors: each refusal names the key (its index) and the
// field, which config turns into its api_keys[i].field path, and
// CheckAPIKeys refuses exactly what NewAPIKeys refuses.
func TestNewAPIKeysErrors(t *testing.T) {
	good := sha256Hex("k")
	tests := []struct {
		name  string
		keys  []APIKey
		index int
		field string
	}{
		{"empty name", []APIKey{{Name: "", SHA256: good, Applications: []string{"*"}}}, 0, "name"},
		{"duplicate name", []APIKey{
			{Name: "a", SHA256: good, Applications: []string{"*"}},
			{Name: "a", SHA256: sha256Hex("other"), Applications: []string{"*"}},
		}, 1, "name"},
		{"duplicate hash", []APIKey{
			{Name: "a", SHA256: good, Applications: []string{"*"}},
			{Name: "b", SHA256: strings.ToUpper(good), Applications: []string{"*"}},
		}, 1, "sha256"},
		{"short hash", []APIKey{{Name: "a", SHA256: good[:63], Applications: []string{"*"}}}, 0, "sha256"},
		{"long hash", []APIKey{{Name: "a", SHA256: good + "0", Applications: []string{"*"}}}, 0, "sha256"},
		{"not hex", []APIKey{{Name: "a", SHA256: "z" + good[1:], Applications: []string{"*"}}}, 0, "sha256"},
		{"key in clear", []APIKey{{Name: "a", SHA256: "my-secret-api-key", Applications: []string{"*"}}}, 0, "sha256"},
		{"no applications", []APIKey{{Name: "a", SHA256: good}}, 0, "applications"},
		{"empty application", []APIKey{{Name: "a", SHA256: good, Applications: []string{""}}}, 0, "applications"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAPIKeys(tt.keys)
			if err == nil {
				t.Fatal("NewAPIKeys accepted invalid keys")
			}
			var ke *APIKeyError
			if !errors.As(err, &ke) || ke.Index != tt.index || ke.Field != tt.field || ke.Problem == "" {
				t.Errorf("error %v (%#v), want an *APIKeyError for key %d's %s", err, err, tt.index, tt.field)
			}
			if strings.Contains(err.Error(), "my-secret-api-key") {
				t.Errorf("error %q repeats the configured value", err)
			}
			if cerr := CheckAPIKeys(tt.keys); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("CheckAPIKeys = %v, NewAPIKeys = %v", cerr, err)
			}
		})
	}
	if err := CheckAPIKeys([]APIKey{{Name: "a", SHA256: good, Applications: []string{"*"}}}); err != nil {
		t.Errorf("CheckAPIKeys of a valid key: %v", err)
	}
}

func TestAPIKeysCopiesConfig(t *testing.T) {
	apps := []string{"app-1"}
	keys, err := NewAPIKeys([]APIKey{{Name: "a", SHA256: sha256Hex("k"), Applications: apps}})
	if err != nil {
		t.Fatal(err)
	}
	apps[0] = "*"
	p, err := keys.Authenticate("k")
	if err != nil {
		t.Fatal(err)
	}
	if p.MayUse("app-2") {
		t.Error("changing the configuration slice widened the key's applications")
	}
}

func TestMayUse(t *testing.T) {
	tests := []struct {
		apps   []string
		appKey string
		want   bool
	}{
		{[]string{"*"}, "app-1", true},
		{[]string{"*"}, "", false},
		{[]string{"app-1", "app-2"}, "app-2", true},
		{[]string{"app-1", "app-2"}, "app-3", false},
		{[]string{"app-1"}, "APP-1", false},
		{[]string{"app-1"}, "app-1 ", false},
		{nil, "app-1", false},
		{[]string{}, "app-1", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%q", tt.apps, tt.appKey), func(t *testing.T) {
			p := Principal{Kind: KindAPIKey, Name: "k", Applications: tt.apps}
			if got := p.MayUse(tt.appKey); got != tt.want {
				t.Errorf("MayUse(%q) with %v = %v, want %v", tt.appKey, tt.apps, got, tt.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindUser, "user"},
		{KindAPIKey, "api_key"},
		{0, "Kind(0)"},
		{Kind(9), "Kind(9)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(tt.k), got, tt.want)
		}
	}
}

func ExampleAPIKeys() {
	// The configuration holds only the SHA-256 of each key.
	sum := sha256.Sum256([]byte("s3cret-backend-key"))
	keys, err := NewAPIKeys([]APIKey{
		{Name: "backend", SHA256: hex.EncodeToString(sum[:]), Applications: []string{"app-1"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := keys.Authenticate("s3cret-backend-key")
	fmt.Println(p.Kind, p.Name, p.MayUse("app-1"), p.MayUse("app-2"), err)
	_, err = keys.Authenticate("guess")
	fmt.Println(err)
	// Output:
	// api_key backend true false <nil>
	// auth: invalid API key
}
