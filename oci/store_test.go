package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestOpenCreatesLayout(t *testing.T) {
	s := openStore(t)
	if got := string(readFile(t, filepath.Join(s.Root(), "oci-layout"))); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
	if got := string(readFile(t, filepath.Join(s.Root(), "index.json"))); got != want {
		t.Errorf("index.json = %s", got)
	}
	fi, err := os.Stat(filepath.Join(s.Root(), "blobs", "sha256"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("blobs/sha256: %v %v", fi, err)
	}
	// A second Open keeps the existing index.
	makeImage(t, s, "app:v1", map[string]string{"f": "x"})
	before := readFile(t, filepath.Join(s.Root(), "index.json"))
	if _, err := Open(context.Background(), s.Root()); err != nil {
		t.Fatal(err)
	}
	if after := readFile(t, filepath.Join(s.Root(), "index.json")); !bytes.Equal(before, after) {
		t.Error("reopen changed index.json")
	}
}

func TestOpenCleansDeadTmp(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tmp := filepath.Join(root, "tmp")
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	dirs := map[string]bool{ // name -> survives
		fmt.Sprintf("%d-123", dead):        false,
		"junk":                             false,
		fmt.Sprintf("%d-456", os.Getpid()): true,
		"1-789":                            true, // pid 1 is alive
	}
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(tmp, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	for d, keep := range dirs {
		_, err := os.Stat(filepath.Join(tmp, d))
		if keep != (err == nil) {
			t.Errorf("tmp/%s: kept=%v, want %v", d, err == nil, keep)
		}
	}
	td, err := s.TempDir("work-")
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(tmp, td)
	if !strings.HasPrefix(rel, strconv.Itoa(os.Getpid())+"-") || !strings.Contains(rel, "/work-") {
		t.Errorf("TempDir = %s", td)
	}
}

func TestLock(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	unlock1, err := s.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	unlock2, err := s.Lock(ctx, false)
	if err != nil {
		t.Fatal("second shared lock:", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(short, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exclusive under shared: %v", err)
	}
	unlock1()
	unlock2()
	unlockX, err := s.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		u, err := s.Lock(ctx, false)
		if err == nil {
			u()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("shared lock taken under exclusive: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	unlockX()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func tmpEntries(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestBlobWriter(t *testing.T) {
	s := openStore(t)
	data := []byte("hello blob")
	want := digest.FromBytes(data)

	t.Run("verify", func(t *testing.T) {
		w, _ := s.Writer(t.Context())
		defer w.Close()
		w.Write(data)
		d, n, err := w.Commit(want)
		if err != nil || d != want || n != int64(len(data)) {
			t.Fatalf("Commit = %s %d %v", d, n, err)
		}
		if !s.Has(t.Context(), want) {
			t.Fatal("blob missing")
		}
		rc, err := s.OpenBlob(t.Context(), want)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		fi, _ := os.Stat(filepath.Join(s.Root(), "blobs/sha256", want.Encoded()))
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("blob mode %v", fi.Mode())
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		w, _ := s.Writer(t.Context())
		defer w.Close()
		w.Write([]byte("other"))
		_, _, err := w.Commit(want)
		wantMsg := fmt.Sprintf("digest mismatch: expected %s, got %s", want, digest.FromString("other"))
		if err == nil || err.Error() != wantMsg {
			t.Fatalf("Commit err = %v", err)
		}
		if s.Has(t.Context(), digest.FromString("other")) {
			t.Error("mismatched blob stored")
		}
	})
	t.Run("abort", func(t *testing.T) {
		w, _ := s.Writer(t.Context())
		w.Write([]byte("aborted"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if s.Has(t.Context(), digest.FromString("aborted")) {
			t.Error("aborted blob stored")
		}
		if _, _, err := w.Commit(""); err == nil {
			t.Error("Commit after Close succeeded")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		big := bytes.Repeat([]byte("0123456789"), 100_000)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				w, err := s.Writer(t.Context())
				if err != nil {
					errs <- err
					return
				}
				defer w.Close()
				for i := 0; i < len(big); i += 4096 {
					w.Write(big[i:min(i+4096, len(big))])
				}
				_, _, err = w.Commit(digest.FromBytes(big))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		rc, err := s.OpenBlob(t.Context(), digest.FromBytes(big))
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	})
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp leftovers: %v", left)
	}
}

func TestBlobDigestValidation(t *testing.T) {
	s := openStore(t)
	bad := []digest.Digest{"", "sha256:../../etc/passwd", "sha512:" + digest.Digest(strings.Repeat("a", 128)),
		"sha256:" + digest.Digest(strings.Repeat("A", 64)), "sha256:abc", "sha256:" + digest.Digest(strings.Repeat("a", 63)) + "/"}
	for _, d := range bad {
		if s.Has(t.Context(), d) {
			t.Errorf("Has(%q) = true", d)
		}
		if _, err := s.OpenBlob(t.Context(), d); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("OpenBlob(%q) = %v, want invalid digest", d, err)
		}
	}
	if _, err := s.OpenBlob(t.Context(), digest.FromString("absent")); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenBlob(absent) = %v", err)
	}
	w, _ := s.Writer(t.Context())
	defer w.Close()
	if _, _, err := w.Commit("sha256:../x"); err == nil {
		t.Error("Commit accepted a bad expected digest")
	}
}

func TestPutGetJSON(t *testing.T) {
	s := openStore(t)
	v := map[string]any{"b": 1, "a": "<x>"}
	desc, err := s.PutJSON(t.Context(), "application/json", v)
	if err != nil {
		t.Fatal(err)
	}
	raw := `{"a":"\u003cx\u003e","b":1}`
	if desc.Digest != digest.FromString(raw) || desc.Size != int64(len(raw)) || desc.MediaType != "application/json" {
		t.Errorf("desc = %+v", desc)
	}
	var got map[string]any
	if err := s.GetJSON(t.Context(), desc.Digest, &got); err != nil || got["a"] != "<x>" {
		t.Errorf("GetJSON = %v, %v", got, err)
	}
	if _, err := s.PutJSON(t.Context(), "application/json", v); err != nil {
		t.Error("second PutJSON:", err)
	}
}

func TestTagUntag(t *testing.T) {
	s := openStore(t)
	img := makeImage(t, s, "app", map[string]string{"f": "1"})
	if err := s.Tag(t.Context(), "app:v1", img.Descriptor); err != nil {
		t.Fatal(err)
	}
	other := makeImage(t, s, "", map[string]string{"f": "2"})
	if err := s.Tag(t.Context(), "docker.io/library/app:v1", other.Descriptor); err != nil { // replaces app:v1
		t.Fatal(err)
	}
	imgs, err := s.Images(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Name != "app:latest" || imgs[1].Name != "app:v1" || imgs[1].Descriptor.Digest != other.Descriptor.Digest {
		t.Fatalf("Images = %+v", imgs)
	}
	if err := s.Tag(t.Context(), "app@"+string(img.Descriptor.Digest), img.Descriptor); err == nil {
		t.Error("tag with digest accepted")
	}
	if err := s.Tag(t.Context(), "x", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("nope")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("tag of missing manifest: %v", err)
	}
	err = s.Untag(t.Context(), "nope")
	if !errors.Is(err, ErrNotFound) || err.Error() != "no such image: nope:latest" {
		t.Errorf("Untag(nope) = %v", err)
	}
	if err := s.Untag(t.Context(), "app"); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(t.Context(), "app:v1"); err != nil {
		t.Fatal(err)
	}
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
	if got := string(readFile(t, filepath.Join(s.Root(), "index.json"))); got != want {
		t.Errorf("index.json after untag = %s", got)
	}
	if !s.Has(t.Context(), img.Descriptor.Digest) {
		t.Error("untag removed the blob")
	}
}

func TestTagConcurrent(t *testing.T) {
	s := openStore(t)
	img := makeImage(t, s, "", map[string]string{"f": "1"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				if err := s.Tag(t.Context(), fmt.Sprintf("app%d:v%d", g, i), img.Descriptor); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	imgs, err := s.Images(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 40 {
		t.Fatalf("%d images, want 40", len(imgs))
	}
	for g := range 8 {
		for i := range 5 {
			if _, err := s.Resolve(t.Context(), fmt.Sprintf("app%d:v%d", g, i)); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestResolve(t *testing.T) {
	s := openStore(t)
	img := makeImage(t, s, "app:v1", map[string]string{"f": "1"})
	makeImage(t, s, "other", map[string]string{"f": "2"})
	md, cd := img.Descriptor.Digest, img.Manifest.Config.Digest
	for _, tt := range []struct{ ref, name string }{
		{"app:v1", "app:v1"},
		{"docker.io/library/app:v1", "app:v1"},
		{string(md), ""},
		{md.Encoded(), ""},
		{"app@" + string(md), ""},
		{"whatever@" + string(md), ""},
		{md.Encoded()[:12], ""},
		{"sha256:" + md.Encoded()[:16], ""},
		{cd.Encoded()[:12], ""},
		{string(cd), ""},
	} {
		got, err := s.Resolve(t.Context(), tt.ref)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tt.ref, err)
			continue
		}
		if got.Name != tt.name || got.Descriptor.Digest != md || got.Manifest.Config.Digest != cd ||
			got.Config.Config.Env[0] != "NAME=app:v1" || got.Descriptor.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("Resolve(%q) = %+v", tt.ref, got)
		}
	}
	for _, ref := range []string{"app", "app:v2", md.Encoded()[:11], "sha256:" + strings.Repeat("0", 64),
		"app@sha256:" + strings.Repeat("0", 64), string(img.Manifest.Layers[0].Digest)} {
		_, err := s.Resolve(t.Context(), ref)
		if !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "no such image: ") {
			t.Errorf("Resolve(%q) = %v, want no such image", ref, err)
		}
	}
	if _, err := s.Resolve(t.Context(), "Bad Ref"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(bad) = %v", err)
	}
}

func TestResolveIndex(t *testing.T) {
	s := openStore(t)
	arm := makeImage(t, s, "", map[string]string{"f": "arm"})
	native := makeImage(t, s, "", map[string]string{"f": "native"})
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{
			{MediaType: arm.Descriptor.MediaType, Digest: arm.Descriptor.Digest, Size: arm.Descriptor.Size,
				Platform: &ocispec.Platform{OS: "linux", Architecture: otherArch}},
			{MediaType: native.Descriptor.MediaType, Digest: native.Descriptor.Digest, Size: native.Descriptor.Size,
				Platform: &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}},
		},
	}
	desc, err := s.PutJSON(t.Context(), ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(t.Context(), "multi", desc); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"multi", string(desc.Digest), desc.Digest.Encoded()[:12]} {
		img, err := s.Resolve(t.Context(), ref)
		if err != nil || img.Descriptor.Digest != native.Descriptor.Digest {
			t.Errorf("Resolve(%q) = %+v, %v", ref, img, err)
		}
	}
	if _, err := pickPlatform(idx.Manifests, "windows", "amd64"); !errors.Is(err, ErrNotFound) {
		t.Errorf("pickPlatform(windows) = %v", err)
	}
}

// TestTagSameIsNoWrite: tagging an image with the tag it already has (every
// fully cached rebuild does) leaves index.json alone: no rename, no fsync.
func TestTagSameIsNoWrite(t *testing.T) {
	s := openStore(t)
	img := makeImage(t, s, "", map[string]string{"f": "1"})
	if err := s.Tag(t.Context(), "app:v1", img.Descriptor); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(s.Root(), "index.json")
	before, err := os.Stat(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(t.Context(), "app:v1", img.Descriptor); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(index)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("re-tagging the same image replaced index.json")
	}
	other := makeImage(t, s, "", map[string]string{"f": "2"})
	if err := s.Tag(t.Context(), "app:v1", other.Descriptor); err != nil {
		t.Fatal(err)
	}
	if moved, _ := os.Stat(index); os.SameFile(after, moved) {
		t.Error("tagging another image left index.json in place")
	}
}

// Every method that does I/O fails with ctx's error once ctx is done, and
// leaves the store as it was.
func TestCancelledContext(t *testing.T) {
	s := openStore(t)
	img := makeImage(t, s, "app:v1", map[string]string{"f": "1"})
	d := img.Manifest.Layers[0].Digest
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"Writer", func() error { _, err := s.Writer(ctx); return err }},
		{"Blobs", func() error { _, err := s.Blobs(ctx); return err }},
		{"DeleteBlob", func() error { return s.DeleteBlob(ctx, d) }},
		{"VerifyBlob", func() error { return s.VerifyBlob(ctx, d) }},
		{"InUse", func() error { _, err := s.InUse(ctx); return err }},
		{"Tag", func() error { return s.Tag(ctx, "app:v2", img.Descriptor) }},
		{"Untag", func() error { return s.Untag(ctx, "app:v1") }},
		{"Images", func() error { _, err := s.Images(ctx); return err }},
		{"Resolve", func() error { _, err := s.Resolve(ctx, "app:v1"); return err }},
		{"OpenBlob", func() error { _, err := s.OpenBlob(ctx, d); return err }},
		{"BlobSize", func() error { _, err := s.BlobSize(ctx, d); return err }},
		{"PutJSON", func() error { _, err := s.PutJSON(ctx, "application/json", "new"); return err }},
		{"GetJSON", func() error { var v ocispec.Image; return s.GetJSON(ctx, img.Manifest.Config.Digest, &v) }},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx = %v, want context.Canceled", tt.name, err)
		}
	}
	if s.Has(ctx, d) {
		t.Error("Has with a cancelled ctx = true, want false")
	}
	// Nothing was done: the blob is there, the tags are as they were.
	if !s.Has(t.Context(), d) {
		t.Error("DeleteBlob with a cancelled ctx removed the blob")
	}
	if s.Has(t.Context(), digest.FromString(`"new"`)) {
		t.Error("PutJSON with a cancelled ctx stored its blob")
	}
	imgs, err := s.Images(t.Context())
	if err != nil || len(imgs) != 1 || imgs[0].Name != "app:v1" {
		t.Errorf("Images after cancelled calls = %+v, %v; want only app:v1", imgs, err)
	}
}
