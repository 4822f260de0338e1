package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// uploadStall is how long one Write of a BlobUpload may wait for the
// registry to take its bytes before the upload is given up (the writer
// must never hang on a registry that stopped reading).
const uploadStall = 30 * time.Second

// errAborted ends an upload's request body when the writer gives up.
var errAborted = errors.New("upload aborted")

// Uploader streams blobs whose digest is known only once they are written
// (a layer while it is packed) to one repository, one upload session
// each. It is safe for concurrent use; Close it when done.
type Uploader struct {
	c   *client
	ref string
}

// NewUploader connects (ping, auth with push and pull scope) to the
// repository of ref.
func NewUploader(ctx context.Context, ref string, opts Options) (*Uploader, error) {
	r, err := parseRef(ref, opts)
	if err != nil {
		return nil, err
	}
	repo := r.Context()
	c, err := newClient(ctx, repo, opts, []string{repo.Scope("push,pull")})
	if err != nil {
		return nil, err
	}
	return &Uploader{c: c, ref: ref}, nil
}

// Close releases idle connections; open uploads are not affected.
func (u *Uploader) Close() { u.c.close() }

// Start opens an upload session (POST) and starts the one streaming PATCH
// (Transfer-Encoding: chunked) that Write feeds. ctx bounds the whole
// upload. The POST is tried once: a writer waits for it, and a blob whose
// stream could not start can still be pushed whole later.
func (u *Uploader) Start(ctx context.Context) (*BlobUpload, error) {
	resp, err := u.c.send(ctx, http.MethodPost, u.c.url("blobs/uploads/"), nil, nil, 0, http.StatusAccepted)
	if err != nil {
		return nil, fmt.Errorf("start upload to %s: %w", u.ref, err)
	}
	resp.Body.Close()
	loc, err := location(resp)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	b := &BlobUpload{c: u.c, ctx: ctx, loc: loc, pr: pr, pw: pw, done: make(chan struct{})}
	go b.patch()
	return b, nil
}

// BlobUpload is one streaming upload session: Write the blob's bytes in
// order, then Commit with its digest or Abort. A stream cannot be
// retried: after any failure Write returns an error and Commit fails; the
// session is then Aborted and the blob can be pushed whole later.
type BlobUpload struct {
	c    *client
	ctx  context.Context
	pr   *io.PipeReader
	pw   *io.PipeWriter
	done chan struct{} // closed when the PATCH returned

	mu  sync.Mutex
	loc string // the session's URL (the PATCH answer may move it)
	err error  // of the PATCH
	n   int64
	end bool // Commit or Abort was called
}

// patch sends everything written to the pipe as one PATCH request.
func (b *BlobUpload) patch() {
	defer close(b.done)
	resp, err := b.c.send(b.ctx, http.MethodPatch, b.loc, http.Header{headerContentType: {"application/octet-stream"}},
		b.pr, -1, http.StatusAccepted, http.StatusNoContent, http.StatusCreated)
	// The transport closes the body on failure; make sure a writer blocked
	// in the pipe is released in every case.
	b.pr.CloseWithError(cmpErr(err, io.ErrClosedPipe))
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.err = err
		return
	}
	resp.Body.Close()
	if l, lerr := location(resp); lerr == nil {
		b.loc = l
	}
}

func cmpErr(err, dflt error) error {
	if err != nil {
		return err
	}
	return dflt
}

// Write streams p to the registry. It fails once the upload failed, or
// when the registry takes nothing for uploadStall.
func (b *BlobUpload) Write(p []byte) (int, error) {
	stall := time.AfterFunc(uploadStall, func() {
		b.pr.CloseWithError(fmt.Errorf("registry took no data for %v", uploadStall))
	})
	n, err := b.pw.Write(p)
	stall.Stop()
	b.mu.Lock()
	b.n += int64(n)
	b.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("upload blob: %w", err)
	}
	return n, nil
}

// Size is the number of bytes written so far.
func (b *BlobUpload) Size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Commit ends the stream and finishes the session as blob d (PUT
// ?digest=d): the registry verifies the digest of what it received. On
// failure the session is dropped.
func (b *BlobUpload) Commit(d digest.Digest) error {
	if !b.markEnd() {
		return errors.New("upload already ended")
	}
	_ = b.pw.Close()
	<-b.done
	b.mu.Lock()
	loc, perr := b.loc, b.err
	b.mu.Unlock()
	if perr != nil {
		b.deleteSession(loc)
		return fmt.Errorf("upload blob %s: %w", d, perr)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return fmt.Errorf("parse upload location %q: %w", loc, err)
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	// Not retried: once the PUT reached the registry the session is gone,
	// and a second PUT could only fail; the caller pushes the blob whole.
	resp, err := b.c.send(b.ctx, http.MethodPut, u.String(), nil, nil, 0, http.StatusCreated, http.StatusNoContent, http.StatusAccepted)
	if err != nil {
		b.deleteSession(loc)
		return fmt.Errorf("finish upload of blob %s: %w", d, err)
	}
	resp.Body.Close()
	return nil
}

// markEnd reports whether this call is the first to end the upload.
func (b *BlobUpload) markEnd() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.end {
		return false
	}
	b.end = true
	return true
}

// Abort ends the upload without a blob and asks the registry to drop the
// session (best effort: a registry also expires idle sessions). It is a
// no-op after Commit or another Abort.
func (b *BlobUpload) Abort() {
	if !b.markEnd() {
		return
	}
	b.pw.CloseWithError(errAborted)
	<-b.done
	b.mu.Lock()
	loc := b.loc
	b.mu.Unlock()
	b.deleteSession(loc)
}

// deleteSession cancels the upload session at loc, even when the build's
// context is done, for a moment at most.
func (b *BlobUpload) deleteSession(loc string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 2*time.Second)
	defer cancel()
	resp, err := b.c.send(ctx, http.MethodDelete, loc, nil, nil, 0, http.StatusNoContent, http.StatusAccepted, http.StatusOK, http.StatusNotFound)
	if err == nil {
		resp.Body.Close()
	}
}
