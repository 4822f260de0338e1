package git

import (
	"context"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve makes a bare repository with one commit, served by git
// http-backend, and returns its URL and commit.
func serve(t *testing.T) (string, string) {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git http-backend is not installed")
	}
	root, wt := t.TempDir(), t.TempDir()
	git := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@e", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(wt, "init", "-q", "-b", "main", ".")
	if err := os.WriteFile(filepath.Join(wt, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(wt, "add", "f")
	git(wt, "commit", "-q", "-m", "c")
	git(root, "init", "-q", "--bare", "-b", "main", "r.git")
	git(wt, "push", "-q", filepath.Join(root, "r.git"), "main")
	srv := httptest.NewServer(&cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	t.Cleanup(srv.Close)
	return srv.URL + "/r.git", git(wt, "rev-parse", "HEAD")
}

// TestTreeConcurrentAndStale: concurrent fetches of one tree all succeed
// and leave one tree, nothing in tmp/; Open removes a stale fetch a killed
// builder left and keeps a young one.
func TestTreeConcurrentAndStale(t *testing.T) {
	url, commit := serve(t)
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := Parse(url + "#main")
	got, err := s.Resolve(context.Background(), r, Auth{})
	if err != nil || got != commit {
		t.Fatalf("Resolve = %s, %v; want %s", got, err, commit)
	}
	var wg sync.WaitGroup
	dirs := make([]string, 3)
	for i := range dirs {
		wg.Go(func() {
			d, err := s.Tree(context.Background(), r, commit, Auth{})
			if err != nil {
				t.Error(err)
			}
			dirs[i] = d
		})
	}
	wg.Wait()
	if dirs[0] == "" || dirs[0] != dirs[1] || dirs[1] != dirs[2] {
		t.Fatalf("trees %v", dirs)
	}
	if data, err := os.ReadFile(filepath.Join(dirs[0], "f")); err != nil || string(data) != "x" {
		t.Errorf("f = %q, %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(dirs[0], ".git")); err == nil {
		t.Error(".git kept without KeepGitDir")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %d entries", len(ents))
	}
	stale, young := filepath.Join(dir, "tmp", "fetch-stale"), filepath.Join(dir, "tmp", "fetch-young")
	for _, p := range []string{stale, young} {
		if err := os.MkdirAll(filepath.Join(p, "t"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTmp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); err == nil {
		t.Error("stale fetch dir kept")
	}
	if _, err := os.Lstat(young); err != nil {
		t.Error("young fetch dir removed (it may be a concurrent builder's)")
	}
	if n, _, err := s.Remove(); err != nil || n != 1 {
		t.Errorf("Remove = %d, %v; want 1 tree", n, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "trees")); len(ents) != 0 {
		t.Errorf("trees left after Remove: %d", len(ents))
	}
}
