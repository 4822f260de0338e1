package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// gcPercent reads GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestTuneStartHeap: the first cycle waits for startGCPercent's goal, the
// next ones run at the GOGC from before; a GOGC the user set is kept.
func TestTuneStartHeap(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	if v, ok := os.LookupEnv("GOGC"); ok {
		defer os.Setenv("GOGC", v)
	}

	t.Setenv("GOGC", "100")
	debug.SetGCPercent(150)
	tuneStartHeap()
	if got := gcPercent(); got != 150 {
		t.Fatalf("with GOGC set: GOGC %d, want 150 kept", got)
	}

	os.Unsetenv("GOGC")
	tuneStartHeap()
	if got := gcPercent(); got != startGCPercent {
		t.Fatalf("after tuneStartHeap: GOGC %d, want %d", got, startGCPercent)
	}
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != 150 {
		if time.Now().After(deadline) {
			t.Fatalf("after collections: GOGC %d, want 150 again", gcPercent())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
