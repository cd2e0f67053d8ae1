package core_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/core"
	"github.com/authserver-dev/authserver/internal/signer"
)

const (
	appDef   = "app-default"
	appOther = "app-other"
	appNoSig = "app-nosig"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type countStore struct {
	n     uint64
	calls int
	err   error
}

func (s *countStore) Next(context.Context, string, string) (uint64, error) {
	s.calls++
	if s.err != nil {
		return 0, s.err
	}
	s.n++
	return s.n, nil
}

// budget allows n requests in all, and records the keys it was asked for.
type budget struct {
	n    int
	keys []string
}

func (b *budget) Allow(key string) (bool, time.Duration) {
	b.keys = append(b.keys, key)
	if b.n == 0 {
		return false, 7 * time.Second
	}
	b.n--
	return true, 0
}

func newIssuer(store core.SequenceStore, limit core.Limiter, apps ...core.Application) *core.Issuer {
	if apps == nil {
		sec := []signer.Secret{signer.MustParseSecret("oYdgGRXoxEuJhGDY2KQ/HQ==")}
		apps = []core.Application{
			{Key: appDef, Default: true, TokenTTL: 10 * time.Minute, MaxTokenTTL: time.Hour, Signatures: true, Secrets: sec},
			{Key: appOther, TokenTTL: 10 * time.Minute, Signatures: true, Secrets: sec},
			{Key: appNoSig, TokenTTL: 10 * time.Minute, Secrets: sec},
		}
	}
	return core.NewIssuer(core.IssuerOptions{
		Applications: apps, Signer: signer.New(func() time.Time { return now }, rand.Reader),
		Store: store, UserLimit: limit,
	})
}

var (
	alice     = core.Principal{Kind: core.KindUser, Name: "idp", UserID: "alice", Applications: []string{"*"}}
	aliceB    = core.Principal{Kind: core.KindUser, Name: "idp", UserID: "alice", Applications: []string{appOther}}
	badUser   = core.Principal{Kind: core.KindUser, Name: "idp", UserID: "no spaces", Applications: []string{"*"}}
	backend   = core.Principal{Kind: core.KindAPIKey, Name: "backend", Applications: []string{"*"}}
	backendNo = core.Principal{Kind: core.KindAPIKey, Name: "backend-b", Applications: []string{appOther}}
)

func dur(d time.Duration) *time.Duration { return &d }

// TestIssuerPolicy: who may ask for what, without HTTP. want is the error
// (errors.Is for sentinels; for an *InputError, its field), or nil.
func TestIssuerPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		p         core.Principal
		req       core.TokenRequest
		wantErr   error
		wantField string
		wantApp   string
		wantUser  string
	}{
		{name: "user for itself, defaults", p: alice, wantApp: appDef, wantUser: "alice"},
		{name: "user names itself", p: alice, req: core.TokenRequest{UserID: "alice"}, wantApp: appDef, wantUser: "alice"},
		{name: "user for another user", p: alice, req: core.TokenRequest{UserID: "bob"}, wantErr: core.ErrOtherUser, wantApp: appDef},
		{name: "user with an invalid id", p: badUser, wantErr: core.ErrInvalidTokenUserID, wantApp: appDef},
		{name: "user outside its applications", p: aliceB, wantErr: core.ErrApplicationNotAllowed, wantApp: appDef},
		{name: "user inside its applications", p: aliceB, req: core.TokenRequest{ApplicationKey: appOther}, wantApp: appOther, wantUser: "alice"},
		{name: "unknown application", p: alice, req: core.TokenRequest{ApplicationKey: "nope"}, wantErr: core.ErrUnknownApplication},
		{name: "api key without userId", p: backend, wantField: "userId", wantApp: appDef},
		{name: "api key with invalid userId", p: backend, req: core.TokenRequest{UserID: "a b"}, wantField: "userId", wantApp: appDef},
		{name: "api key for a user", p: backend, req: core.TokenRequest{UserID: "bob"}, wantApp: appDef, wantUser: "bob"},
		{name: "api key outside its applications", p: backendNo, req: core.TokenRequest{UserID: "bob"}, wantErr: core.ErrApplicationNotAllowed, wantApp: appDef},
		{name: "ttl above the application's max", p: alice, req: core.TokenRequest{TTL: dur(2 * time.Hour)}, wantField: "ttlSeconds", wantApp: appDef, wantUser: "alice"},
		{name: "ttl zero", p: alice, req: core.TokenRequest{TTL: dur(0)}, wantField: "ttlSeconds", wantApp: appDef, wantUser: "alice"},
		{name: "short instance ttl", p: alice, req: core.TokenRequest{InstanceTTL: dur(time.Hour)}, wantField: "instanceTtlSeconds", wantApp: appDef, wantUser: "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := &budget{n: 10}
			tok, err := newIssuer(&countStore{}, lim).IssueToken(context.Background(), tc.p, tc.req)
			var ie *signer.InputError
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			case tc.wantField != "" && (!errors.As(err, &ie) || ie.Field != tc.wantField):
				t.Fatalf("error %v, want an input error on %s", err, tc.wantField)
			case tc.wantErr == nil && tc.wantField == "" && err != nil:
				t.Fatalf("error %v", err)
			}
			if tok.Application != tc.wantApp || tok.UserID != tc.wantUser || tok.Credential != core.CredentialJWT {
				t.Errorf("record %+v, want application %q user %q", tok.Record, tc.wantApp, tc.wantUser)
			}
			if err != nil && len(lim.keys) != 0 {
				t.Errorf("a refused request spent the user's limit: %v", lim.keys)
			}
			if err == nil && (tok.JWT == "" || tok.Detail.Key != "kid" || len(lim.keys) != 1 || lim.keys[0] != tc.wantApp+"/"+tc.wantUser) {
				t.Errorf("issued %+v with limit keys %v", tok, lim.keys)
			}
		})
	}
}

// TestIssuerSignatureOrder: signatures disabled is refused before the
// limit; the limit before the store; a store failure is a StoreError and
// no signature.
func TestIssuerSignatureOrder(t *testing.T) {
	ctx := context.Background()
	req := core.SignatureRequest{UserID: "bob"}

	store, lim := &countStore{}, &budget{n: 1}
	_, err := newIssuer(store, lim).IssueSignature(ctx, backend, core.SignatureRequest{ApplicationKey: appNoSig, UserID: "bob"})
	if !errors.Is(err, core.ErrSignaturesDisabled) || len(lim.keys) != 0 || store.calls != 0 {
		t.Fatalf("disabled: %v, limit %v, store calls %d", err, lim.keys, store.calls)
	}

	sig, err := newIssuer(store, lim).IssueSignature(ctx, backend, req)
	if err != nil || sig.Sequence != 1 || sig.Signature == "" || sig.Detail.Key != "sequence" {
		t.Fatalf("first: %+v, %v", sig, err)
	}
	_, err = newIssuer(store, lim).IssueSignature(ctx, backend, req)
	var le *core.LimitError
	if !errors.As(err, &le) || le.Scope != "user" || le.Retry != 7*time.Second || store.calls != 1 {
		t.Fatalf("over the limit: %v, store calls %d", err, store.calls)
	}

	down := &countStore{err: errors.New("connection refused")}
	sig, err = newIssuer(down, nil).IssueSignature(ctx, backend, req)
	var se *core.StoreError
	if !errors.As(err, &se) || sig.Signature != "" || sig.Application != appDef || sig.UserID != "bob" {
		t.Fatalf("store down: %+v, %v", sig, err)
	}
}

// TestIssuerNoDefaultApplication: without a default, the application key
// is required.
func TestIssuerNoDefaultApplication(t *testing.T) {
	sec := []signer.Secret{signer.MustParseSecret("oYdgGRXoxEuJhGDY2KQ/HQ==")}
	is := newIssuer(&countStore{}, nil, core.Application{Key: "a", TokenTTL: time.Minute, Secrets: sec}, core.Application{Key: "b", TokenTTL: time.Minute, Secrets: sec})
	_, err := is.IssueToken(context.Background(), alice, core.TokenRequest{})
	var ie *signer.InputError
	if !errors.As(err, &ie) || ie.Field != "applicationKey" {
		t.Fatalf("error %v, want an input error on applicationKey", err)
	}
	if _, err := is.IssueToken(context.Background(), alice, core.TokenRequest{ApplicationKey: "b"}); err != nil {
		t.Fatal(err)
	}
}
