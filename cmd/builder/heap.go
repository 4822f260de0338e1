package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// startGCPercent is the GOGC of a run's first collection cycle. The
// runtime starts a cycle once the heap reaches 4 MB times GOGC/100; at the
// default a cached build of a big context ran two to four cycles in its
// first 40 ms, each with the write barrier on and its mark assists on the
// walk's goroutines. At 400 the first cycle waits for 16 MB, about what a
// cached build of 20,000 files allocates; after it the user's GOGC
// (default 100) applies again, so a long build's peak heap, twice what is
// live after a cycle, is what it was (small-files cold: the same peak RSS
// within noise; 800 added 2 MB to it).
const startGCPercent = 400

// tuneStartHeap lets the heap reach startGCPercent's goal before the first
// collection; a GOGC the user set is left alone.
func tuneStartHeap() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	prev := debug.SetGCPercent(startGCPercent)
	sentinel := new([16]byte) // not tiny-allocated, so it dies alone
	runtime.SetFinalizer(sentinel, func(*[16]byte) { debug.SetGCPercent(prev) })
}
