// Package examples holds client examples of the Sinch SDK's credential hook
// fetching registration credentials from authserver (ios/, android/, web/;
// see README.md). It has no Go API: examples_test.go builds the real
// authserver binary, starts it, and runs the web example's test script
// (web/test.mjs) against it with Node.js.
package examples
