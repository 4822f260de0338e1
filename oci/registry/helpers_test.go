package registry

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func openStore(t *testing.T) *oci.Store {
	t.Helper()
	s, err := oci.Open(context.Background(), filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putBlob stores data and returns its descriptor.
func putBlob(t *testing.T, s *oci.Store, mt string, data []byte) ocispec.Descriptor {
	t.Helper()
	w, err := s.Writer()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	d, n, err := w.Commit("")
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: n}
}

// makeImage stores an image for arch with layers of the given sizes
// (random content seeded by seed) and tags it name.
func makeImage(t *testing.T, s *oci.Store, name, arch string, seed uint64, sizes ...int) *oci.Image {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 42))
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		d := putBlob(t, s, ocispec.MediaTypeImageLayerGzip, data)
		layers = append(layers, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cfgDesc, err := s.PutJSON(ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: layers}
	desc, err := s.PutJSON(ocispec.MediaTypeImageManifest, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(name, desc); err != nil {
		t.Fatal(err)
	}
	img, err := s.Resolve(name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// events collects progress events.
type events struct {
	mu  sync.Mutex
	all []BlobEvent
}

func (e *events) add(ev BlobEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) statuses() map[BlobStatus]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[BlobStatus]int{}
	for _, ev := range e.all {
		out[ev.Status]++
	}
	e.all = nil
	return out
}

// proxy is a reverse proxy in front of a registry whose behaviour tests
// change through hook: it may answer a request itself (return true).
type proxy struct {
	*httptest.Server
	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
	// corrupt flips a byte of blob GET responses.
	corrupt bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{Proxy: nil}
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		corrupt := p.corrupt
		p.mu.Unlock()
		if corrupt && resp.Request.Method == http.MethodGet && strings.Contains(resp.Request.URL.Path, "/blobs/") && resp.StatusCode == http.StatusOK {
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if len(data) > 0 {
				data[len(data)/2] ^= 0xff
			}
			resp.Body = io.NopCloser(bytes.NewReader(data))
		}
		return nil
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hook := p.hook
		p.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *proxy) setCorrupt(on bool) {
	p.mu.Lock()
	p.corrupt = on
	p.mu.Unlock()
}

func (p *proxy) addr() string { return strings.TrimPrefix(p.URL, "http://") }

// ingests lists the blob ingests left in the store's tmp dir.
func ingests(t *testing.T, s *oci.Store) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(filepath.Join(s.Root(), "tmp"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "blob-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}
