//go:build profile

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a CPU profile to path until stopCPUProfile.
func startCPUProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create cpu profile: %w", err)
	}
	return pprof.StartCPUProfile(f)
}

func stopCPUProfile() { pprof.StopCPUProfile() }
