package signer

import "errors"

// ErrInvalidInput is matched (errors.Is) by every InputError: the request
// asked for something Sinch would refuse, so no credential is made.
var ErrInvalidInput = errors.New("invalid input")

// InputError names the field that was refused and why. Its text never
// contains a secret.
type InputError struct {
	Field  string // request field, e.g. "userId", "ttlSeconds"
	Reason string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalidInput) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

func inputErr(field, reason string) error { return &InputError{Field: field, Reason: reason} }
