package signer_test

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
)

func ExampleSigner_IssueToken() {
	at := time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC)
	s := signer.New(func() time.Time { return at }, rand.Reader)
	tok, err := s.IssueToken(signer.TokenParams{
		ApplicationKey: "196087a1-e815-4bc4-8984-60d8d8a43f1d",
		Secret:         signer.MustParseSecret("oYdgGRXoxEuJhGDY2KQ/HQ=="),
		UserID:         signer.MustParseUserID("alice"), // normally ParseUserID of the input
		Nonce:          "n-1",                           // normally left empty: a random UUIDv4
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.KeyID, tok.ExpiresAt.Format(time.RFC3339))
	// Output: hkdfv1-20261122 2026-11-23T00:09:59Z
}

func ExampleLegacySignature() {
	sig, _ := signer.LegacySignature("196087a1-e815-4bc4-8984-60d8d8a43f1d",
		signer.MustParseSecret("oYdgGRXoxEuJhGDY2KQ/HQ=="), signer.MustParseUserID("alice"), 1)
	fmt.Println(sig)
	// Output: 7NYSnv8J5/aLOjlQALjGY+OmdD4=
}
