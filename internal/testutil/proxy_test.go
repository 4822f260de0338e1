package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRegistryProxy(t *testing.T) {
	blob := "0123456789"
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, blob)
	}))
	defer backend.Close()
	p := StartRegistryProxy(t, strings.TrimPrefix(backend.URL, "http://"))
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + p.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v2/r/blobs/sha256:x"); code != 200 || body != blob {
		t.Errorf("plain: %d %q", code, body)
	}
	p.SetCorrupt(true)
	if _, body := get("/v2/r/blobs/sha256:x"); body == blob || len(body) != len(blob) {
		t.Errorf("corrupt blob: %q, want one byte flipped", body)
	}
	if _, body := get("/v2/r/manifests/v1"); body != blob {
		t.Errorf("corrupt manifest %q: only blobs are corrupted", body)
	}
	p.SetCorrupt(false)
	p.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/busy") {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	if code, _ := get("/v2/busy"); code != http.StatusServiceUnavailable {
		t.Errorf("hooked: %d, want 503", code)
	}
	if code, body := get("/v2/r/blobs/sha256:x"); code != 200 || body != blob {
		t.Errorf("not hooked: %d %q", code, body)
	}
}

func TestBlobIngests(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"tmp/1-a/blob-1", "tmp/1-a/file-2", "tmp/2-b/blob-3", "blobs/sha256/blob-4"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := BlobIngests(root)
	want := []string{filepath.Join(root, "tmp/1-a/blob-1"), filepath.Join(root, "tmp/2-b/blob-3")}
	if !slices.Equal(got, want) {
		t.Errorf("BlobIngests = %v, want %v", got, want)
	}
	if got := BlobIngests(filepath.Join(root, "missing")); got != nil {
		t.Errorf("BlobIngests(missing) = %v", got)
	}
}
