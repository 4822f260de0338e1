package e2e

// --cache-to type=registry,mode=max streams each layer to the cache
// repository while the build packs it: the export after the build finds
// the blobs there and uploads only the records and the manifest. A stream
// that fails never fails the build.

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// count is the number of requests before index end containing all of subs.
func (l *requestLog) count(end int, subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, s := range l.reqs[:end] {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		n++
	}
	return n
}

func TestCacheStreamDuringBuild(t *testing.T) {
	a := newEnv(t)
	proxy := testutil.StartRegistryProxy(t, testutil.StartRegistry(t))
	dir := remoteContext(t, "app v1\n")
	// remoteDockerfile: 5 steps with layers, the final stage's COPY --from
	// the same layer as the build stage's RUN; 3 steps in the image.
	tests := []struct {
		mode     string
		streamed string // layers the export found streamed
		commits  int    // layer uploads committed during the build
	}{
		{mode: "max", streamed: "4", commits: 5},
		{mode: "min", streamed: "3", commits: 3}, // the image's stage only
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			var log requestLog
			proxy.SetHook(log.hook)
			defer proxy.SetHook(nil)
			cacheRef := proxy.Addr + "/stream-" + tc.mode + ":c"
			a.mustRun("prune", "--all")
			r := a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=registry,ref="+cacheRef+",mode="+tc.mode)
			m := streamedLine.FindStringSubmatch(r.stderr)
			if m == nil || m[1] != "0" || m[2] != tc.streamed {
				t.Fatalf("export line: want 0 layers uploaded at the export, %s streamed during the build\n%s", tc.streamed, r.stderr)
			}
			// Every layer was sent in a chunked PATCH and committed (PUT
			// ?digest=) before the export's first check of a blob (HEAD).
			head := log.first("HEAD ", "/blobs/sha256:")
			if head < 0 {
				t.Fatalf("no blob HEAD of the export: %q", log.reqs)
			}
			if n := log.count(head, "PATCH ", "/blobs/uploads/", "+chunked"); n != tc.commits {
				t.Errorf("%d chunked PATCHes before the export, want %d: %q", n, tc.commits, log.reqs)
			}
			if n := log.count(head, "PUT ", "digest=sha256"); n != tc.commits {
				t.Errorf("%d uploads committed before the export, want %d: %q", n, tc.commits, log.reqs)
			}
			// One session per layer, none left open nor aborted.
			if n := log.count(head, "POST ", "/blobs/uploads/"); n != tc.commits {
				t.Errorf("%d upload sessions opened before the export, want %d: %q", n, tc.commits, log.reqs)
			}
			if n := log.count(len(log.reqs), "DELETE "); n != 0 {
				t.Errorf("%d upload sessions aborted: %q", n, log.reqs)
			}
			for _, l := range cacheLayers(t, cacheRef) {
				if i := log.first("PUT ", "digest="+strings.ReplaceAll(l.Digest, ":", "%3A")); i < 0 || i > head {
					t.Errorf("layer %s committed at request %d, want before the export's first HEAD (%d): %q", l.Digest, i, head, log.reqs)
				}
			}
			// The cache is whole: a fresh runner hits every step it exported
			// (min: not the build stage's).
			want := map[string]string{"max": "HHHHH", "min": "MMHHH"}[tc.mode]
			b := freshEnv(t, a)
			if got, _ := b.buildStates(t, dir, "--cache-from", "type=registry,ref="+cacheRef); got != want {
				t.Errorf("fresh runner from the streamed cache: states %q, want %s", got, want)
			}
		})
	}
}

// stepDone is a step's end in plain progress, with its duration.
var stepDone = regexp.MustCompile(`(?m)^#\d+ (\[.*) DONE (\d+\.\d+)s$`)

func TestCacheStreamSlowRegistry(t *testing.T) {
	// The registry answers each streamed PATCH only after a while: the
	// steps never wait for it (the uploads follow the layers into the
	// store), the export does, and finds every layer there.
	const slow = 2 * time.Second
	a := newEnv(t)
	proxy := testutil.StartRegistryProxy(t, testutil.StartRegistry(t))
	proxy.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPatch {
			select {
			case <-time.After(slow):
			case <-r.Context().Done():
			}
		}
		return false
	})
	cacheRef := proxy.Addr + "/stream:slow"
	r := a.mustRun("build", "--progress", "plain", remoteContext(t, "app v1\n"), "-t", "app:a", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
	steps := stepDone.FindAllStringSubmatch(r.stderr, -1)
	if len(steps) == 0 {
		t.Fatalf("no step durations in the progress:\n%s", r.stderr)
	}
	for _, m := range steps {
		if d, _ := strconv.ParseFloat(m[2], 64); d >= slow.Seconds() {
			t.Errorf("step %s took %ss: it waited for the registry", m[1], m[2])
		}
	}
	if t.Failed() {
		t.Fatalf("progress:\n%s", r.stderr)
	}
	if m := streamedLine.FindStringSubmatch(r.stderr); m == nil || m[1] != "0" || m[2] != "4" {
		t.Errorf("export line: want 0 layers uploaded at the export, 4 streamed during the build\n%s", r.stderr)
	}
	if left := testutil.BlobIngests(a.root); len(left) != 0 {
		t.Errorf("ingests left in the store: %v", left)
	}
}

func TestCacheStreamInterrupted(t *testing.T) {
	// Ctrl-C while the export waits for uploads a registry never answers:
	// the builder ends at once, and asks the registry to drop every
	// session it opened.
	a := newEnv(t)
	proxy := testutil.StartRegistryProxy(t, testutil.StartRegistry(t))
	var log requestLog
	// A handler that has not read its request's body is not told the
	// client left: release the PATCHes before the proxy is closed.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	proxy.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		log.hook(w, r)
		if r.Method == http.MethodPatch {
			<-release
		}
		return false
	})
	cmd := exec.Command(a.bin, "--root", a.root, "build", "--progress", "plain", remoteContext(t, "app v1\n"), "-t", "app:a",
		"--cache-to", "type=registry,ref="+proxy.Addr+"/stream:int,mode=max")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	built := make(chan struct{})
	var out strings.Builder
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "built image ") {
				close(built)
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		<-copied
		done <- cmd.Wait()
	}()
	select {
	case <-built: // every step is done: the export waits for the uploads
	case <-done:
		t.Fatalf("build ended before the export:\n%s", out.String())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the build did not end its steps in 60s")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("builder still running 10s after SIGINT:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d after SIGINT, want 130\n%s", code, out.String())
	}
	log.mu.Lock()
	end := len(log.reqs)
	log.mu.Unlock()
	posts, deletes := log.count(end, "POST ", "/blobs/uploads/"), log.count(end, "DELETE ", "/blobs/uploads/")
	if posts == 0 || deletes != posts || log.count(end, "PUT ") != 0 {
		t.Errorf("%d upload sessions opened, %d deleted, want all of them: %q", posts, deletes, log.reqs)
	}
	if left := testutil.BlobIngests(a.root); len(left) != 0 {
		t.Errorf("ingests left in the store: %v", left)
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
		if left := testutil.BlobIngests(a.root); len(left) != 0 {
			t.Errorf("ingests left in the store: %v", left)
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
		if left := testutil.BlobIngests(a.root); len(left) != 0 {
			t.Errorf("ingests left in the store: %v", left)
		}
	})
}
