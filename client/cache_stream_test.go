package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// sessionLog counts the upload sessions a registry proxy sees opened and
// ended; its hook may hold every PATCH until released.
type sessionLog struct {
	mu      sync.Mutex
	posts   int // POST .../blobs/uploads/
	puts    int // PUT ...?digest=
	deletes int // DELETE of a session
	patches int // PATCHes that reached the proxy
	hold    chan struct{}
}

func (l *sessionLog) hook(w http.ResponseWriter, r *http.Request) bool {
	if !strings.Contains(r.URL.Path, "/blobs/uploads/") {
		return false
	}
	l.mu.Lock()
	switch {
	case r.Method == http.MethodPost:
		l.posts++
	case r.Method == http.MethodPut && strings.Contains(r.URL.RawQuery, "digest="):
		l.puts++
	case r.Method == http.MethodDelete:
		l.deletes++
	case r.Method == http.MethodPatch:
		l.patches++
	}
	hold := l.hold
	l.mu.Unlock()
	if r.Method == http.MethodPatch && hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}
	return false
}

func (l *sessionLog) counts() (posts, puts, deletes, patches int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.posts, l.puts, l.deletes, l.patches
}

// feed writes data to up in chunks then commits it, as the engine's
// upload goroutine does (aborting after a failed write).
func feed(up executor.LayerUpload, data []byte) error {
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 64<<10)
		if _, err := up.Write(rest[:n]); err != nil {
			up.Abort()
			return err
		}
		rest = rest[n:]
	}
	return up.Commit(digest.FromBytes(data))
}

func blobStatus(t *testing.T, addr, repo string, d digest.Digest) int {
	t.Helper()
	resp, err := http.Head("http://" + addr + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCacheStream: the uploads the engine is given run on after their
// steps; wait waits for them, at most streamSessions at once per
// repository; close cancels those still under way and leaves no session
// open.
func TestCacheStream(t *testing.T) {
	reg := testutil.StartRegistry(t)
	proxy := testutil.StartRegistryProxy(t, reg)
	rng := rand.New(rand.NewPCG(5, 6))
	blob := func() []byte { return testutil.RandomBytes(rng, 1+rng.IntN(1<<20)) }
	newStream := func(t *testing.T, ctx context.Context, specs ...CacheSpec) (*cacheStream, *sessionLog) {
		var log sessionLog
		proxy.SetHook(log.hook)
		t.Cleanup(func() { proxy.SetHook(nil) })
		s := streamCaches(ctx, BuildOptions{CacheTo: specs})
		if s == nil {
			t.Fatal("no stream")
		}
		return s, &log
	}
	spec := func(repo string, max bool) CacheSpec {
		return CacheSpec{Type: "registry", Ref: proxy.Addr + "/" + repo + ":c", Max: max}
	}

	t.Run("waited for by the export", func(t *testing.T) {
		sp := spec("waited", true)
		s, log := newStream(t, t.Context(), sp)
		log.hold = make(chan struct{})
		const n = streamSessions + 3
		var recs []cache.Record
		var wg sync.WaitGroup
		for range n {
			data := blob()
			recs = append(recs, cache.Record{Layer: digest.FromBytes(data)})
			up := s.sink(true)
			wg.Go(func() {
				if err := feed(up, data); err != nil {
					t.Error(err)
				}
			})
		}
		// The registry takes nothing: at most streamSessions sessions open.
		deadline := time.Now().Add(10 * time.Second)
		for _, _, _, p := log.counts(); p < streamSessions && time.Now().Before(deadline); _, _, _, p = log.counts() {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		if posts, _, _, patches := log.counts(); posts != streamSessions || patches != streamSessions {
			t.Errorf("%d sessions opened, %d PATCHes, want %d of each while the registry takes nothing", posts, patches, streamSessions)
		}
		waited := make(chan error, 1)
		go func() { waited <- s.wait(t.Context()) }()
		select {
		case err := <-waited:
			t.Fatalf("wait returned %v with the uploads under way", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(log.hold)
		select {
		case err := <-waited:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("wait never returned")
		}
		wg.Wait()
		if got, _ := s.streamed(sp, recs); got != n {
			t.Errorf("streamed %d layers, want %d", got, n)
		}
		for _, r := range recs {
			if code := blobStatus(t, reg, "waited", r.Layer); code != http.StatusOK {
				t.Errorf("blob %s: HEAD %d", r.Layer, code)
			}
		}
		s.close()
		if posts, puts, deletes, _ := log.counts(); posts != n || puts != n || deletes != 0 {
			t.Errorf("sessions: %d opened, %d committed, %d deleted; want %d, %d, 0", posts, puts, deletes, n, n)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		// Ctrl-C while uploads are under way: wait returns at once, close
		// ends them (each session deleted) and returns.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s, log := newStream(t, ctx, spec("cancelled", true))
		log.hold = make(chan struct{})
		defer close(log.hold)
		errs := make(chan error, 2)
		for range 2 {
			up, data := s.sink(false), blob()
			go func() { errs <- feed(up, data) }()
		}
		for _, _, _, p := log.counts(); p < 2; _, _, _, p = log.counts() {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := s.wait(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("wait after cancel: %v", err)
		}
		closed := make(chan struct{})
		go func() {
			s.close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("close blocked on cancelled uploads")
		}
		for range 2 {
			if err := <-errs; err == nil {
				t.Error("a cancelled upload succeeded")
			}
		}
		if posts, puts, deletes, _ := log.counts(); posts != 2 || puts != 0 || deletes != 2 {
			t.Errorf("sessions: %d opened, %d committed, %d deleted; want 2, 0, 2", posts, puts, deletes)
		}
	})

	t.Run("failed registry", func(t *testing.T) {
		// A registry that failed one upload gets no more, and those under
		// way to it stop at their next write; mode=min streams only the
		// image's layers.
		sp, other := spec("failed", true), spec("min", false)
		s, log := newStream(t, t.Context(), sp, other)
		defer s.close()
		failing := s.sink(false).(*multiUpload)
		if len(failing.ups) != 1 {
			t.Fatalf("a layer of another stage goes to %d repositories, want the mode=max one", len(failing.ups))
		}
		running := s.sink(true)
		if _, err := running.Write([]byte("first bytes")); err != nil {
			t.Fatal(err)
		}
		if err := failing.Commit(digest.FromString("not what was written")); err == nil {
			t.Fatal("commit of a wrong digest succeeded")
		}
		if up := s.sink(false); up != nil {
			t.Error("a registry that failed gets a new upload")
		}
		if _, err := running.Write([]byte("more")); err != nil {
			t.Fatalf("the mode=min repository was dropped too: %v", err)
		}
		if err := running.Commit(digest.FromString("first bytesmore")); err != nil {
			t.Fatal(err)
		}
		if err := s.wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.streamed(sp, []cache.Record{{Layer: digest.FromString("first bytesmore")}}); got != 0 {
			t.Error("the upload under way to the failed registry was committed")
		}
		if got, _ := s.streamed(other, []cache.Record{{Layer: digest.FromString("first bytesmore")}}); got != 1 {
			t.Error("the mode=min repository did not get the image's layer")
		}
		// Three sessions: the failed commit's (its PUT refused, then
		// deleted), and the other upload's two: committed to the mode=min
		// repository, deleted from the failed one.
		if posts, puts, deletes, _ := log.counts(); posts != 3 || puts != 2 || deletes != 2 {
			t.Errorf("sessions: %d opened, %d PUT, %d deleted; want 3, 2, 2", posts, puts, deletes)
		}
	})
}
