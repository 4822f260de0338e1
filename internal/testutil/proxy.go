package testutil

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RegistryProxy is an HTTP reverse proxy in front of a registry, to inject
// faults: a hook may answer a request itself, and corruption flips one byte
// in the middle of every blob a GET returns. Its methods are safe to call
// while requests are served.
type RegistryProxy struct {
	Addr string // "127.0.0.1:port", the registry host of references through the proxy

	mu      sync.Mutex
	hook    func(w http.ResponseWriter, r *http.Request) bool
	corrupt bool
}

// StartRegistryProxy starts a proxy to the plain-HTTP registry at target
// ("host:port"); t.Cleanup closes it.
func StartRegistryProxy(t testing.TB, target string) *RegistryProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatalf("registry proxy target %q: %v", target, err)
	}
	p := &RegistryProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{Proxy: nil}
	rp.ModifyResponse = p.modify
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hook := p.hook
		p.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// SetHook makes h see every request first; when it returns true it has
// answered and the registry is not asked. nil removes the hook.
func (p *RegistryProxy) SetHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

// SetCorrupt turns blob corruption on or off.
func (p *RegistryProxy) SetCorrupt(on bool) {
	p.mu.Lock()
	p.corrupt = on
	p.mu.Unlock()
}

// modify flips a byte of successful blob GETs when corruption is on.
func (p *RegistryProxy) modify(resp *http.Response) error {
	p.mu.Lock()
	corrupt := p.corrupt
	p.mu.Unlock()
	if !corrupt || resp.Request.Method != http.MethodGet || !strings.Contains(resp.Request.URL.Path, "/blobs/") || resp.StatusCode != http.StatusOK {
		return nil
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if len(data) > 0 {
		data[len(data)/2] ^= 0xff
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return nil
}

// BlobIngests lists the blob ingests (tmp/**/blob-*) left in the image
// store at root: a failed pull must leave none.
func BlobIngests(root string) []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(root, "tmp"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "blob-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}
