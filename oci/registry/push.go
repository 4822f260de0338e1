package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/builderdev/builder/oci"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxMountTries bounds the mount attempts per blob (one per known source).
const maxMountTries = 2

// Push uploads img (a manifest of the store) to ref. Blobs the registry
// already has are skipped (HEAD first); a blob known to be in another
// repository of the same registry is mounted from there; the others are
// streamed from the store. The manifest is pushed last, byte for byte, so
// its digest does not change.
func Push(ctx context.Context, store *oci.Store, img *oci.Image, ref string, opts Options) error {
	if err := push(ctx, store, img, ref, opts); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

func push(ctx context.Context, store *oci.Store, img *oci.Image, ref string, opts Options) error {
	if img == nil {
		return errors.New("no image")
	}
	r, err := parseRef(ref, opts)
	if err != nil {
		return err
	}
	repo := r.Context()
	raw, err := readStoreBlob(ctx, store, img.Descriptor.Digest)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if d, ok := r.(name.Digest); ok && digest.Digest(d.DigestStr()) != img.Descriptor.Digest {
		return fmt.Errorf("manifest is %s, not %s", img.Descriptor.Digest, d.DigestStr())
	}
	mt := sniffMediaType(raw, img.Descriptor.MediaType)
	if !isManifestType(mt) {
		return fmt.Errorf("%s is a %s, not an image manifest", img.Descriptor.Digest, mt)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("decode manifest %s: %w", img.Descriptor.Digest, err)
	}
	if err := checkManifest(m); err != nil {
		return fmt.Errorf("manifest %s: %w", img.Descriptor.Digest, err)
	}
	blobs := distributable(append([]ocispec.Descriptor{m.Config}, m.Layers...))

	// Mount candidates: other repositories of this registry that hold a blob.
	mounts := map[digest.Digest][]string{}
	scopes := []string{repo.Scope("push,pull")}
	for _, b := range blobs {
		for _, src := range blobSources(store, b.Digest) {
			path, ok := strings.CutPrefix(src, repo.RegistryStr()+"/")
			if !ok || path == repo.RepositoryStr() || len(mounts[b.Digest]) == maxMountTries {
				continue
			}
			mounts[b.Digest] = append(mounts[b.Digest], path)
			if s := repo.Registry.Repo(path).Scope("pull"); !contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	c, err := newClient(ctx, repo, opts, scopes)
	if err != nil {
		return err
	}
	defer c.close()

	prog := newProgress(opts.Progress)
	err = parallel(ctx, len(blobs), func(ctx context.Context, i int) error {
		b := blobs[i]
		status, from, err := c.pushBlob(ctx, store, b, mounts[b.Digest])
		if err != nil {
			return err
		}
		prog.report(BlobEvent{Op: "push", Ref: ref, Digest: b.Digest, MediaType: b.MediaType, Size: b.Size, Status: status, From: from})
		return nil
	})
	if err != nil {
		return err
	}
	err = retry(ctx, func() error {
		resp, err := c.send(ctx, http.MethodPut, c.url("manifests/"+r.Identifier()),
			http.Header{headerContentType: {mt}}, bytes.NewReader(raw), int64(len(raw)), http.StatusCreated, http.StatusOK)
		if err != nil {
			return fmt.Errorf("put manifest: %w", err)
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		return err
	}
	recordSources(store, repo.Name(), blobs)
	return nil
}

// distributable drops duplicates and foreign (non-distributable) layers,
// which registries never hold.
func distributable(in []ocispec.Descriptor) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	seen := map[digest.Digest]bool{}
	for _, d := range in {
		if seen[d.Digest] || strings.Contains(d.MediaType, "nondistributable") || strings.Contains(d.MediaType, ".foreign.") {
			continue
		}
		seen[d.Digest] = true
		out = append(out, d)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pushBlob makes sure the registry has blob d: already there, mounted
// from one of sources, or uploaded from the store (the only case that
// needs the blob in the store; else the error wraps oci.ErrNotFound).
func (c *client) pushBlob(ctx context.Context, store *oci.Store, d ocispec.Descriptor, sources []string) (BlobStatus, string, error) {
	exists := false
	err := retry(ctx, func() error {
		resp, err := c.send(ctx, http.MethodHead, c.url("blobs/"+d.Digest.String()), nil, nil, 0, http.StatusOK, http.StatusNotFound)
		if err != nil {
			return fmt.Errorf("check blob %s: %w", d.Digest, err)
		}
		resp.Body.Close()
		exists = resp.StatusCode == http.StatusOK
		return nil
	})
	if err != nil {
		return "", "", err
	}
	if exists {
		return BlobSkipped, "", nil
	}
	loc := "" // an upload session a refused mount opened
	for _, src := range sources {
		var mounted bool
		err := retry(ctx, func() error {
			var err error
			mounted, loc, err = c.mount(ctx, d.Digest, src)
			return err
		})
		if err != nil {
			return "", "", err
		}
		if mounted {
			return BlobMounted, src, nil
		}
	}
	// Mounted or uploaded: only an upload needs the blob here (a build
	// cache imported lazily has layers that are only in the registry).
	if !store.Has(ctx, d.Digest) {
		if err := ctx.Err(); err != nil { // Has says no once ctx is done
			return "", "", err
		}
		return "", "", fmt.Errorf("blob %s: %w", d.Digest, oci.ErrNotFound)
	}
	first := true
	err = retry(ctx, func() error {
		l := ""
		if first {
			l, first = loc, false
		}
		if err := c.upload(ctx, store, d, l); err != nil {
			return fmt.Errorf("upload blob %s: %w", d.Digest, err)
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	return BlobDone, "", nil
}

// mount asks the registry to link blob d from repository from. It
// returns false and the location of a new upload session when the
// registry declines.
func (c *client) mount(ctx context.Context, d digest.Digest, from string) (bool, string, error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	resp, err := c.send(ctx, http.MethodPost, c.url("blobs/uploads/")+"?"+q.Encode(), nil, nil, 0, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, "", fmt.Errorf("mount blob %s from %s: %w", d, from, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, "", nil
	}
	loc, err := location(resp)
	if err != nil {
		return false, "", nil // no session: a fresh upload starts its own
	}
	return false, loc, nil
}

// upload sends one blob: POST (unless loc is an open session), PATCH with
// the content streamed from the store, PUT ?digest= to finish.
func (c *client) upload(ctx context.Context, store *oci.Store, d ocispec.Descriptor, loc string) error {
	if loc == "" {
		resp, err := c.send(ctx, http.MethodPost, c.url("blobs/uploads/"), nil, nil, 0, http.StatusAccepted)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if loc, err = location(resp); err != nil {
			return err
		}
	}
	rc, err := store.OpenBlob(ctx, d.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	body := io.Reader(rc)
	if d.Size == 0 {
		body = http.NoBody
	}
	resp, err := c.send(ctx, http.MethodPatch, loc, http.Header{headerContentType: {"application/octet-stream"}},
		body, d.Size, http.StatusAccepted, http.StatusNoContent, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if l, err := location(resp); err == nil {
		loc = l
	}
	u, err := url.Parse(loc)
	if err != nil {
		return fmt.Errorf("parse upload location %q: %w", loc, err)
	}
	q := u.Query()
	q.Set("digest", d.Digest.String())
	u.RawQuery = q.Encode()
	resp, err = c.send(ctx, http.MethodPut, u.String(), nil, nil, 0, http.StatusCreated, http.StatusNoContent, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// location is the absolute URL of a response's Location header.
func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("registry sent no upload location")
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("parse upload location %q: %w", loc, err)
	}
	return u.String(), nil
}
