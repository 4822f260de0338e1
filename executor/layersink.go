package executor

import (
	"context"
	"io"

	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
)

// layerUpload is the step's side of one Options.LayerSink upload: a
// goroutine copies the layer from a follower of the store's writer (so
// the packer never waits for the registry: the ingest file is the
// buffer) and finishes the upload once the step said how the blob ended.
// The store write decides: an upload that fails is dropped and the build
// goes on.
type layerUpload struct {
	stored chan digest.Digest // the blob's digest, sent once stored; closed without one: aborted
}

// startUpload starts an upload of the layer written to w, if the build has
// a sink (nil otherwise). The step then calls commit or abort (either is
// safe on nil) and never waits for the upload.
func (bd *build) startUpload(ctx context.Context, w *oci.BlobWriter) *layerUpload {
	if bd.opts.LayerSink == nil {
		return nil
	}
	s, _ := ctx.Value(stageKey{}).(*stage)
	up := bd.opts.LayerSink(s != nil && s.inImage)
	if up == nil {
		return nil
	}
	r, err := w.Follow()
	if err != nil {
		up.Abort()
		return nil
	}
	stored := make(chan digest.Digest, 1)
	go runUpload(up, r, stored)
	return &layerUpload{stored: stored}
}

// runUpload copies the blob as it is written, then commits the upload with
// the digest the step sends on stored, or aborts it.
func runUpload(up LayerUpload, r io.ReadCloser, stored <-chan digest.Digest) {
	// r ends: at EOF once the store has the blob, with an error once the
	// step aborted its writer.
	_, err := io.Copy(up, r)
	r.Close()
	if err != nil {
		up.Abort()
		return
	}
	if d, ok := <-stored; ok {
		_ = up.Commit(d) // the export uploads what did not arrive
		return
	}
	up.Abort()
}

// stageKey is the context key of the stage whose steps run.
type stageKey struct{}

// withStage marks ctx as running the steps of s.
func withStage(ctx context.Context, s *stage) context.Context {
	return context.WithValue(ctx, stageKey{}, s)
}

// commit hands the stored blob's digest to the upload, which finishes on
// its own.
func (u *layerUpload) commit(d digest.Digest) {
	if u == nil || u.stored == nil {
		return
	}
	u.stored <- d
	close(u.stored)
	u.stored = nil
}

// abort drops an upload that was not committed.
func (u *layerUpload) abort() {
	if u == nil || u.stored == nil {
		return
	}
	close(u.stored)
	u.stored = nil
}
