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
// a sink. out is what to pack into: w itself without an upload (so that
// Pack takes the digest the store's writer computes as it writes), else
// the tee, which also hands on w's digest.
func (bd *build) teeUpload(ctx context.Context, w io.Writer) (t *teeUpload, out io.Writer) {
	t = &teeUpload{w: w}
	if bd.opts.LayerSink != nil {
		s, _ := ctx.Value(stageKey{}).(*stage)
		t.up = bd.opts.LayerSink(ctx, s != nil && s.inImage)
	}
	if t.up == nil {
		return t, w
	}
	if d, ok := w.(digester); ok {
		return t, digestingTee{t, d}
	}
	return t, t
}

// digester is a writer that hashes what it writes (oci.BlobWriter).
type digester interface{ Digest() digest.Digest }

// digestingTee is the tee of a writer that knows its digest.
type digestingTee struct {
	*teeUpload
	d digester
}

func (t digestingTee) Digest() digest.Digest { return t.d.Digest() }

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
