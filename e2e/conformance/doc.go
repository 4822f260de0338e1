// Package conformance is a differential test of builder against BuildKit: a
// corpus of small Dockerfile cases (testdata/cases) is built with the real
// builder binary and each result is compared, config field by field and
// file by file, with BuildKit's result for the same case, recorded as a
// normalized text summary (testdata/golden). `make conformance` re-records
// the goldens from a live BuildKit; `make test` compares against them.
package conformance
