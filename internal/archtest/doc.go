// Package archtest holds the tests that keep the module's structure true
// to docs/architecture.md: the package graph the page draws is the one
// `go list` reports, and the wire-format leaf imports no HTTP or metrics
// code. It has no code of its own.
package archtest
