package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/builderdev/builder/oci"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPushPull(t *testing.T) {
	ctx := context.Background()
	addr := testutil.StartRegistry(t)
	src := openStore(t)
	img := makeImage(t, src, "app:v1", "amd64", 1, 1<<20, 1000, 0)
	var ev events
	opts := Options{Progress: ev.add}
	ref := addr + "/app:v1"

	if err := Push(ctx, src, img, ref, opts); err != nil {
		t.Fatal(err)
	}
	if got := ev.statuses(); got[BlobDone] != 4 || len(got) != 1 {
		t.Errorf("first push: %v, want 4 done", got)
	}
	if err := Push(ctx, src, img, ref, opts); err != nil {
		t.Fatal(err)
	}
	if got := ev.statuses(); got[BlobSkipped] != 4 || len(got) != 1 {
		t.Errorf("second push: %v, want 4 skipped", got)
	}
	// Another repository of the same registry: blobs are mounted from app.
	if err := Push(ctx, src, img, addr+"/other/app:v2", opts); err != nil {
		t.Fatal(err)
	}
	if got := ev.statuses(); got[BlobMounted] != 4 || len(got) != 1 {
		t.Errorf("push to another repo: %v, want 4 mounted", got)
	}

	dst := openStore(t)
	got, err := Pull(ctx, dst, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := ev.statuses(); s[BlobDone] != 4 || len(s) != 1 {
		t.Errorf("pull: %v, want 4 done", s)
	}
	if got.Name != ref || got.Descriptor.Digest != img.Descriptor.Digest || got.Config.Architecture != "amd64" {
		t.Errorf("pulled %s %s %s, want %s %s amd64", got.Name, got.Descriptor.Digest, got.Config.Architecture, ref, img.Descriptor.Digest)
	}
	res, err := dst.Resolve(t.Context(), ref)
	if err != nil || res.Descriptor.Digest != img.Descriptor.Digest {
		t.Fatalf("resolve pulled image: %v %v", res, err)
	}
	for _, l := range img.Manifest.Layers {
		if err := dst.VerifyBlob(t.Context(), l.Digest); err != nil {
			t.Error(err)
		}
	}
	if _, err := Pull(ctx, dst, ref, opts); err != nil {
		t.Fatal(err)
	}
	if s := ev.statuses(); s[BlobSkipped] != 4 || len(s) != 1 {
		t.Errorf("second pull: %v, want 4 skipped", s)
	}

	// By digest: untagged, and served from the store once there.
	byDigest := addr + "/other/app@" + img.Descriptor.Digest.String()
	third := openStore(t)
	got, err = Pull(ctx, third, byDigest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "" || got.Descriptor.Digest != img.Descriptor.Digest {
		t.Errorf("pull by digest: name %q digest %s", got.Name, got.Descriptor.Digest)
	}
	if imgs, _ := third.Images(t.Context()); len(imgs) != 0 {
		t.Errorf("pull by digest tagged %v", imgs)
	}
	offline := Options{Insecure: []string{"127.0.0.1:1"}}
	if _, err := Pull(ctx, third, "127.0.0.1:1/other/app@"+img.Descriptor.Digest.String(), offline); err != nil {
		t.Errorf("pull by digest of a stored image needs the network: %v", err)
	}
}

// putIndex PUTs an OCI index of the given manifests as repo:tag.
func putIndex(t *testing.T, addr, repo, tag string, manifests ...ocispec.Descriptor) {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	data, _ := json.Marshal(idx)
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(data))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT index: %s", resp.Status)
	}
}

func TestPullIndex(t *testing.T) {
	ctx := context.Background()
	addr := testutil.StartRegistry(t)
	src := openStore(t)
	var descs []ocispec.Descriptor
	for i, arch := range []string{"amd64", "arm64"} {
		img := makeImage(t, src, "multi:"+arch, arch, uint64(i), 2000)
		if err := Push(ctx, src, img, addr+"/multi@"+img.Descriptor.Digest.String(), Options{}); err != nil {
			t.Fatal(err)
		}
		d := img.Descriptor
		d.Annotations = nil
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		if arch == "arm64" {
			d.Platform.Variant = "v8"
		}
		descs = append(descs, d)
	}
	attestation := descs[0]
	attestation.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	putIndex(t, addr, "multi", "v1", append(descs, attestation)...)

	for _, tc := range []struct {
		platform string
		want     int // index in descs, -1: error
	}{
		{"linux/arm64", 1},
		{"linux/arm64/v8", 1},
		{"linux/amd64", 0},
		{"linux/s390x", -1},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			p, err := ParsePlatform(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			dst := openStore(t)
			img, err := Pull(ctx, dst, addr+"/multi:v1", Options{Platform: p})
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), "available: linux/amd64, linux/arm64)") || !errors.Is(err, oci.ErrNotFound) {
					t.Fatalf("err = %v, want the available platforms listed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.Descriptor.Digest != descs[tc.want].Digest {
				t.Errorf("got %s, want %s", img.Descriptor.Digest, descs[tc.want].Digest)
			}
		})
	}
	// The default platform is the host's.
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		img, err := Pull(ctx, openStore(t), addr+"/multi:v1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if img.Config.Architecture != runtime.GOARCH {
			t.Errorf("default platform pulled %s", img.Config.Architecture)
		}
	}
	// A single-platform image asked for another platform.
	_, err := Pull(ctx, openStore(t), addr+"/multi@"+descs[0].Digest.String(), Options{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64"}})
	if err == nil || !strings.Contains(err.Error(), "image is for platform linux/amd64, not linux/arm64") {
		t.Errorf("err = %v", err)
	}
}

func TestPullErrors(t *testing.T) {
	ctx := context.Background()
	addr := testutil.StartRegistry(t)
	src := openStore(t)
	img := makeImage(t, src, "app:v1", "amd64", 3, 100)
	if err := Push(ctx, src, img, addr+"/app:v1", Options{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ref, want string
	}{
		// distribution 2.8 says "manifest unknown" for unknown repositories
		// too; older ones say "name unknown".
		{"unknown repo", addr + "/nope:v1", "unknown (HTTP 404)"},
		{"unknown tag", addr + "/app:v2", "get manifest v2: manifest unknown (HTTP 404)"},
		{"bad ref", addr + "/App:v1", "pull " + addr + "/App:v1: parse reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openStore(t)
			_, err := Pull(ctx, dst, tc.ref, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.name != "bad ref" && !errors.Is(err, oci.ErrNotFound) {
				t.Errorf("err = %v, want oci.ErrNotFound", err)
			}
			if imgs, _ := dst.Images(t.Context()); len(imgs) != 0 {
				t.Errorf("failed pull tagged %v", imgs)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ref := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) + "/app:v1"
		_, err := Pull(ctx, openStore(t), ref, Options{})
		if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "after 5 attempts") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestCorruptBlob(t *testing.T) {
	ctx := context.Background()
	addr := testutil.StartRegistry(t)
	src := openStore(t)
	img := makeImage(t, src, "app:v1", "amd64", 4, 5000)
	if err := Push(ctx, src, img, addr+"/app:v1", Options{}); err != nil {
		t.Fatal(err)
	}
	p := testutil.StartRegistryProxy(t, addr)
	p.SetCorrupt(true)
	dst := openStore(t)
	_, err := Pull(ctx, dst, p.Addr+"/app:v1", Options{})
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	for _, b := range append(img.Manifest.Layers, img.Manifest.Config, img.Descriptor) {
		if dst.Has(t.Context(), b.Digest) {
			t.Errorf("blob %s entered the store", b.Digest)
		}
	}
	if left := testutil.BlobIngests(dst.Root()); len(left) != 0 {
		t.Errorf("partial ingests left: %v", left)
	}
	if imgs, _ := dst.Images(t.Context()); len(imgs) != 0 {
		t.Errorf("failed pull tagged %v", imgs)
	}
	p.SetCorrupt(false)
	if _, err := Pull(ctx, dst, p.Addr+"/app:v1", Options{}); err != nil {
		t.Fatalf("pull after the fault: %v", err)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	addr := testutil.StartRegistry(t)
	p := testutil.StartRegistryProxy(t, addr)
	src := openStore(t)
	img := makeImage(t, src, "app:v1", "amd64", 5, 3000)

	t.Run("transient 503", func(t *testing.T) {
		var n atomic.Int32
		p.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPatch && n.Add(1) <= 2 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return true
			}
			return false
		})
		defer p.SetHook(nil)
		if err := Push(ctx, src, img, p.Addr+"/flaky:v1", Options{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("429 Retry-After", func(t *testing.T) {
		var n atomic.Int32
		p.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/manifests/") && n.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return true
			}
			return false
		})
		defer p.SetHook(nil)
		start := time.Now()
		if _, err := Pull(ctx, openStore(t), p.Addr+"/flaky:v1", Options{}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("pull took %s: Retry-After not honoured", d)
		}
	})
	t.Run("persistent 503", func(t *testing.T) {
		p.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPatch {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return true
			}
			return false
		})
		defer p.SetHook(nil)
		fresh := openStore(t)
		ref := p.Addr + "/down:v1"
		err := Push(ctx, fresh, makeImage(t, fresh, "down:v1", "amd64", 6, 3000), ref, Options{})
		want := "push " + ref + ": upload blob sha256:"
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), ": 503 Service Unavailable after 5 attempts") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("connection reset", func(t *testing.T) {
		// The first GET of each blob is cut: half the body, then the
		// connection closes.
		sizes := map[string]int64{}
		for _, b := range append(img.Manifest.Layers, img.Manifest.Config) {
			sizes[b.Digest.String()] = b.Size
		}
		var mu sync.Mutex
		cut := map[string]bool{}
		p.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			i := strings.LastIndex(r.URL.Path, "/blobs/")
			if r.Method != http.MethodGet || i < 0 {
				return false
			}
			d := r.URL.Path[i+len("/blobs/"):]
			mu.Lock()
			first := !cut[d]
			cut[d] = true
			mu.Unlock()
			if !first {
				return false
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", sizes[d], strings.Repeat("x", int(sizes[d]/2)))
				conn.Close()
			}
			return true
		})
		defer p.SetHook(nil)
		dst := openStore(t)
		if _, err := Pull(ctx, dst, p.Addr+"/flaky:v1", Options{}); err != nil {
			t.Fatal(err)
		}
		if left := testutil.BlobIngests(dst.Root()); len(left) != 0 {
			t.Errorf("partial ingests left: %v", left)
		}
	})
}
