package executor

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
)

// teeUpload writes a packed layer to the store's writer and, while it
// works, to the Options.LayerSink upload. The store write decides: an
// upload that fails is dropped (Aborted at the end) and the build goes on.
type teeUpload struct {
	w      io.Writer
	up     LayerUpload // nil: none, or no more
	failed bool
}

// teeUpload starts an upload of the layer written to w, if the build has
// a sink.
func (bd *build) teeUpload(ctx context.Context, w io.Writer) *teeUpload {
	t := &teeUpload{w: w}
	if bd.opts.LayerSink != nil {
		s, _ := ctx.Value(stageKey{}).(*stage)
		t.up = bd.opts.LayerSink(ctx, s != nil && s.inImage)
	}
	return t
}

// stageKey is the context key of the stage whose steps run.
type stageKey struct{}

// withStage marks ctx as running the steps of s.
func withStage(ctx context.Context, s *stage) context.Context {
	return context.WithValue(ctx, stageKey{}, s)
}

func (t *teeUpload) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if t.up != nil && !t.failed && n > 0 {
		if _, uerr := t.up.Write(p[:n]); uerr != nil {
			t.failed = true
		}
	}
	return n, err
}

// commit finishes the upload as blob d (a failed one is aborted).
func (t *teeUpload) commit(d digest.Digest) {
	if t.up == nil {
		return
	}
	if t.failed {
		t.up.Abort()
	} else {
		_ = t.up.Commit(d) // the export uploads what did not arrive
	}
	t.up = nil
}

// abort drops an upload that was not committed.
func (t *teeUpload) abort() {
	if t.up != nil {
		t.up.Abort()
		t.up = nil
	}
}
