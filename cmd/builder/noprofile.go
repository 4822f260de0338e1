//go:build !profile

package main

import "errors"

// The hidden --cpuprofile flag works in a binary built with -tags profile
// (profile.go). Linking runtime/pprof into every binary kept the runtime's
// memory profiling on, which samples an allocation every 512 KB with a
// stack walk, in every run, `builder --help` included.
func startCPUProfile(string) error {
	return errors.New("--cpuprofile: this builder was built without profiling (go build -tags profile ./cmd/builder)")
}

func stopCPUProfile() {}
