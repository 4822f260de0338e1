package executor

import "context"

// A COPY of the build context that no cache lookup can answer makes its
// layer while its key is computed instead of after it: hashing the
// context reads every file the layer then reads again, and the two
// passes, each of them bound by the CPU's hashing, take the machine's
// cores together better than one after the other (a 10 GB context: the
// key's pass took a quarter of the step, the pack's pipeline left a fifth
// of the second core idle).
//
// No lookup can answer when the stage runs with --no-cache, or when the
// build began with no cache record in the store and imports none: every
// key of this build is then new, but for a step that repeats one this
// build already recorded (the same parent and sources), which drops the
// layer made ahead and takes the hit.
//
// The overlap holds both passes' per-entry state at once (about 120 bytes
// an entry more, at 50,000 files 6 MB more peak memory: the walk, the
// sorted sources and the stat results live while the packer runs). A
// context of more entries than speculateMaxEntries packs after its key, as
// memory per file stays bounded: the overlap pays by bytes, costs by
// entries.
const speculateMaxEntries = 1 << 15

// speculates reports whether a COPY in stage s of entries context entries
// makes its layer ahead.
func (bd *build) speculates(s *stage, entries int) bool {
	if bd.opts.HitsOnly || bd.opts.ExpectCached || entries == 0 || entries > speculateMaxEntries {
		return false // the step must hit, or fail; nothing to hash; too many entries
	}
	if bd.noCache(s) {
		return true
	}
	return bd.coldCache && len(bd.opts.CacheFrom) == 0
}

// speculation is a step's layer being made ahead of its cache lookup.
type speculation struct {
	cancel context.CancelFunc
	done   chan struct{}
	p      *produced
	err    error
	taken  bool
}

// speculate starts produce on its own goroutine.
func (bd *build) speculate(ctx context.Context, produce func(context.Context) (*produced, error)) *speculation {
	ctx, cancel := context.WithCancel(ctx)
	sp := &speculation{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		sp.p, sp.err = produce(ctx)
	}()
	return sp
}

// result waits for the layer: the step missed, and it is the step's.
func (sp *speculation) result() (*produced, error) {
	<-sp.done
	sp.taken = true
	return sp.p, sp.err
}

// drop stops a layer the step did not take (it hit, another step with the
// same key made it, or it failed before it needed one) and waits for it to
// end. A blob it stored, and uploaded with --cache-to, stays: it is
// most often the hit's own layer; else (a context file changed while the
// build ran) it is unreferenced until prune.
func (sp *speculation) drop() {
	if sp == nil || sp.taken {
		return
	}
	sp.cancel()
	<-sp.done
	sp.taken = true
	if sp.err == nil && sp.p != nil && sp.p.abort != nil {
		sp.p.abort()
	}
}
