package e2e

// --cache-to type=registry,mode=max streams each layer to the cache
// repository while the build packs it: the export after the build finds
// the blobs there and uploads only the records and the manifest. A stream
// that fails never fails the build.

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

var streamedLine = regexp.MustCompile(`(?m)^cache: exported \d+ records to \S+ \S+; uploaded (\d+) layers \([^)]*\); (\d+) layers \([^)]*\) streamed during the build$`)

// requestLog records the requests a registry proxy sees, in order.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD path?query", "+chunked" for a body of unknown length
}

func (l *requestLog) hook(w http.ResponseWriter, r *http.Request) bool {
	s := r.Method + " " + r.URL.RequestURI()
	if r.ContentLength == -1 {
		s += " +chunked"
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, s)
	l.mu.Unlock()
	return false
}

// first is the index of the first request containing all of subs, or -1.
func (l *requestLog) first(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for i, s := range l.reqs {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		return i
	}
	return -1
}

func TestCacheStreamDuringBuild(t *testing.T) {
	a := newEnv(t)
	proxy := testutil.StartRegistryProxy(t, testutil.StartRegistry(t))
	var log requestLog
	proxy.SetHook(log.hook)
	cacheRef := proxy.Addr + "/stream:max"
	dir := remoteContext(t, "app v1\n")
	r := a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
	m := streamedLine.FindStringSubmatch(r.stderr)
	if m == nil || m[1] != "0" || m[2] != "4" {
		t.Fatalf("export line: want 0 layers uploaded at the export, 4 streamed during the build (5 steps, 2 of them the same layer)\n%s", r.stderr)
	}
	// Every layer was sent in a chunked PATCH and committed (PUT ?digest=)
	// before the export's first check of a blob (HEAD).
	head := log.first("HEAD ", "/blobs/sha256:")
	if head < 0 {
		t.Fatalf("no blob HEAD of the export: %q", log.reqs)
	}
	if i := log.first("PATCH ", "/blobs/uploads/", "+chunked"); i < 0 || i > head {
		t.Errorf("no chunked PATCH before the export (at %d): %q", head, log.reqs)
	}
	for _, l := range cacheLayers(t, cacheRef) {
		if i := log.first("PUT ", "digest="+strings.ReplaceAll(l.Digest, ":", "%3A")); i < 0 || i > head {
			t.Errorf("layer %s committed at request %d, want before the export's first HEAD (%d): %q", l.Digest, i, head, log.reqs)
		}
	}
	// The cache is whole: a fresh runner hits every step.
	b := freshEnv(t, a)
	if got, _ := b.buildStates(t, dir, "--cache-from", "type=registry,ref="+cacheRef); got != "HHHHH" {
		t.Errorf("fresh runner from the streamed cache: states %q, want HHHHH", got)
	}
}

func TestCacheStreamFaults(t *testing.T) {
	t.Run("streams cut", func(t *testing.T) {
		// The registry drops every streamed PATCH: the build goes on and
		// the export uploads every layer itself.
		a := newEnv(t)
		proxy := testutil.StartRegistryProxy(t, testutil.StartRegistry(t))
		proxy.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPatch || r.ContentLength != -1 {
				return false
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return true
		})
		cacheRef := proxy.Addr + "/stream:cut"
		r := a.mustRun("build", "--progress", "plain", remoteContext(t, "app v1\n"), "-t", "app:a", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
		m := exportLine.FindStringSubmatch(r.stderr)
		if m == nil || m[3] != "4" || strings.Contains(r.stderr, "streamed during the build") {
			t.Errorf("streams cut: want the export to upload all 4 layers, none streamed\n%s", r.stderr)
		}
		if n := len(cacheLayers(t, cacheRef)); n != 4 {
			t.Errorf("cache has %d layers, want 4", n)
		}
	})

	t.Run("registry killed mid-build", func(t *testing.T) {
		// The registry process dies once the first layer was streamed: the
		// build itself succeeds and is kept; the export fails as any export
		// to a dead registry does (an error, as in buildx).
		a := newEnv(t)
		reg := testutil.RunRegistry(t, testutil.RegistryConfig{})
		proxy := testutil.StartRegistryProxy(t, reg.Addr)
		var once sync.Once
		proxy.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && strings.Contains(r.URL.RawQuery, "digest=") {
				once.Do(reg.Kill)
			}
			return false
		})
		cacheRef := proxy.Addr + "/stream:killed"
		r := a.run("build", "--progress", "plain", remoteContext(t, "app v1\n"), "-t", "app:k", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
		if r.code != 1 || !strings.Contains(r.stderr, "export cache to registry "+cacheRef) || stepStates(r.stderr) != "MMMMM" {
			t.Fatalf("registry killed mid-build: exit %d, want every step done and the export's error\n%s", r.code, r.stderr)
		}
		if out := a.mustRun("images").stdout; !strings.Contains(out, "app") {
			t.Errorf("the built image is not kept:\n%s", out)
		}
	})
}
