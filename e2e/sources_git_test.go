package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

// gitServer serves the bare repositories under root over git's smart HTTP
// protocol (git http-backend through net/http/cgi) on 127.0.0.1; private.git
// wants basic auth with the token as password. It counts the upload-pack
// POSTs: one is an ls-remote, more are fetches of objects.
type gitServer struct {
	t     *testing.T
	root  string // bare repos
	work  string // their work trees
	url   string
	token string
	posts atomic.Int64
}

func newGitServer(t *testing.T) *gitServer {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (apt-get install git)")
	}
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git http-backend is not installed")
	}
	g := &gitServer{t: t, root: t.TempDir(), work: t.TempDir(), token: "s3cret-token"}
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/private.git/") {
			if _, pw, ok := r.BasicAuth(); !ok || pw != g.token {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			g.posts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// git runs git in dir (the test's own git, with a fixed identity).
func (g *gitServer) git(dir string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@e", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// repo makes <name>.git with files committed on main and returns its work tree.
func (g *gitServer) repo(name string, files map[string]string) string {
	g.t.Helper()
	wt := filepath.Join(g.work, name)
	g.git(g.work, "init", "-q", "-b", "main", wt)
	g.commit(wt, files, "init")
	g.git(g.work, "init", "-q", "-b", "main", "--bare", filepath.Join(g.root, name+".git"))
	g.push(wt, "main")
	return wt
}

func (g *gitServer) commit(wt string, files map[string]string, msg string) string {
	g.t.Helper()
	for n, data := range files {
		p := filepath.Join(wt, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	g.git(wt, "add", "-A")
	g.git(wt, "commit", "-q", "-m", msg)
	return g.git(wt, "rev-parse", "HEAD")
}

func (g *gitServer) push(wt string, refs ...string) {
	g.t.Helper()
	g.git(wt, append([]string{"push", "-q", "-f", filepath.Join(g.root, filepath.Base(wt)+".git")}, refs...)...)
}

// gitDaemon serves root over git:// on 127.0.0.1 and returns its base URL.
func gitDaemon(t *testing.T, root string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// git-daemon itself, not `git daemon`: git runs it as a child, which
	// killing git left serving after the test.
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	cmd := exec.Command(filepath.Join(strings.TrimSpace(string(execPath)), "git-daemon"), "--export-all", "--reuseaddr",
		"--listen=127.0.0.1", "--port="+strconv.Itoa(port), "--base-path="+root, root)
	if err := cmd.Start(); err != nil {
		t.Skipf("git daemon: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "git://" + addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("git daemon did not start")
	return ""
}

func readOut(t *testing.T, out, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(data)
}

// TestGitSources: ADD of git URLs (http with tags, branches, subdirs,
// submodules, --keep-git-dir, --checksum; git://; a private repository
// with GIT_AUTH_TOKEN), the cache keyed by the resolved commit, and the
// fetched trees kept by commit until prune.
func TestGitSources(t *testing.T) {
	e := newEnv(t)
	g := newGitServer(t)
	subWT := g.repo("sub", map[string]string{"m.txt": "module\n"})
	_ = subWT
	wt := g.repo("repo", map[string]string{"a.txt": "v1\n", "dir/b.txt": "b\n", "dir/Dockerfile": "FROM busybox\nCOPY b.txt /ctx-b\n"})
	g.git(wt, "-c", "protocol.file.allow=always", "submodule", "add", "-q", g.url+"/sub.git", "mod")
	// A hostile link: copied as a link, never followed out of the tree.
	if err := os.Symlink("/etc", filepath.Join(wt, "evil")); err != nil {
		t.Fatal(err)
	}
	g.git(wt, "add", "-A")
	g.git(wt, "commit", "-q", "-m", "submodule")
	g.git(wt, "tag", "-a", "v1", "-m", "v1")
	v1 := g.git(wt, "rev-parse", "HEAD")
	g.git(wt, "checkout", "-q", "-b", "dev")
	g.commit(wt, map[string]string{"dev.txt": "dev\n"}, "dev")
	g.git(wt, "checkout", "-q", "main")
	g.push(wt, "main", "dev", "v1")
	g.repo("private", map[string]string{"p.txt": "private\n"})
	repo := g.url + "/repo.git"

	t.Run("forms", func(t *testing.T) {
		daemon := gitDaemon(t, g.root)
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" +
			"ADD " + repo + "#v1 /tag/\n" +
			"ADD " + repo + "#main:dir /sub/\n" +
			"ADD --keep-git-dir " + repo + "#dev /kept/\n" +
			"ADD " + daemon + "/repo.git#refs/tags/v1 /daemon/\n" +
			"ADD --checksum=" + v1 + " " + repo + "?ref=v1&submodules=false /pinned/\n"})
		out := filepath.Join(t.TempDir(), "rootfs")
		e.mustRun("build", ctx, "-o", "type=local,dest="+out)
		if got := readOut(t, out, "tag/a.txt"); got != "v1\n" {
			t.Errorf("tag/a.txt = %q", got)
		}
		if got := readOut(t, out, "tag/mod/m.txt"); got != "module\n" {
			t.Errorf("submodule file tag/mod/m.txt = %q", got)
		}
		for _, p := range []string{"tag/.git", "tag/mod/.git", "daemon/.git", "sub/dir", "sub/a.txt", "pinned/mod/m.txt"} {
			if _, err := os.Lstat(filepath.Join(out, p)); err == nil {
				t.Errorf("%s exists", p)
			}
		}
		if got := readOut(t, out, "sub/b.txt"); got != "b\n" {
			t.Errorf("subdir: sub/b.txt = %q", got)
		}
		if got := readOut(t, out, "kept/dev.txt"); got != "dev\n" {
			t.Errorf("kept/dev.txt = %q", got)
		}
		if head := readOut(t, out, "kept/.git/HEAD"); !strings.Contains(head, g.git(wt, "rev-parse", "dev")) {
			t.Errorf("--keep-git-dir: .git/HEAD = %q, want the dev commit", head)
		}
		if got := readOut(t, out, "daemon/mod/m.txt"); got != "module\n" {
			t.Errorf("git://: daemon/mod/m.txt = %q", got)
		}
		if got := readOut(t, out, "pinned/a.txt"); got != "v1\n" {
			t.Errorf("pinned/a.txt = %q", got)
		}
		if l, err := os.Readlink(filepath.Join(out, "tag/evil")); err != nil || l != "/etc" {
			t.Errorf("tag/evil: %q, %v; want the link as it is", l, err)
		}
		for _, df := range []string{"ADD " + repo + "#v1:evil /x/", "COPY --from=ev / /x/"} {
			ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" + df + "\n"})
			r := e.run("build", ctx, "--build-context", "ev="+repo+"#v1:evil")
			if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2:") || !strings.Contains(r.stderr, "not a directory of the repository") {
				t.Errorf("%s with a subdir that links out: exit %d\n%s", df, r.code, r.stderr)
			}
		}
	})

	t.Run("main context", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "rootfs")
		e.mustRun("build", repo+"#v1:dir", "-o", "type=local,dest="+out)
		if got := readOut(t, out, "ctx-b"); got != "b\n" {
			t.Errorf("ctx-b = %q", got)
		}
		if r := e.run("build", repo+"#v1:evil"); r.code == 0 || !strings.Contains(r.stderr, "not a directory of the repository") {
			t.Errorf("a context subdir that links out: exit %d\n%s", r.code, r.stderr)
		}
		// A ref that moves: the context's history spans its commits.
		e.mustRun("build", repo+"#dev:dir")
		g.git(wt, "checkout", "-q", "dev")
		g.commit(wt, map[string]string{"dir/b.txt": "b2\n"}, "dev moves")
		g.git(wt, "checkout", "-q", "main")
		g.push(wt, "dev")
		r := e.mustRun("build", "--progress", "plain", repo+"#dev:dir", "-o", "type=local,dest="+out)
		if !strings.Contains(r.stderr, "cache miss: b.txt changed") || readOut(t, out, "ctx-b") != "b2\n" {
			t.Errorf("moved context ref: want the miss explained by b.txt:\n%s", r.stderr)
		}
	})

	t.Run("submodules in the key", func(t *testing.T) {
		for _, c := range []struct {
			src  string
			want bool
		}{{repo + "#v1", true}, {repo + "?ref=v1&submodules=false", false}} {
			out := filepath.Join(t.TempDir(), "rootfs")
			e.mustRun("build", writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + c.src + " /s/\n"}), "-o", "type=local,dest="+out)
			if _, err := os.Stat(filepath.Join(out, "s/mod/m.txt")); (err == nil) != c.want {
				t.Errorf("ADD %s: s/mod/m.txt exists: %v, want %v", c.src, err == nil, c.want)
			}
		}
	})

	t.Run("checksum mismatch", func(t *testing.T) {
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\nADD --checksum=0123456789abcdef " + repo + "#main /x/\n"})
		r := e.run("build", ctx)
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:3: ADD") || !strings.Contains(r.stderr, "checksum mismatch") ||
			!strings.Contains(r.stderr, g.git(wt, "rev-parse", "main")) {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})

	t.Run("cache by commit", func(t *testing.T) {
		df := "FROM busybox\nADD " + repo + "#main /m/\n"
		ctx := writeContext(t, map[string]string{"Dockerfile": df})
		e.mustRun("build", ctx, "-t", "gitcache:1")
		before := g.posts.Load()
		r := e.mustRun("build", "--progress", "plain", ctx, "-t", "gitcache:1")
		if !strings.Contains(r.stderr+r.stdout, "ADD "+repo+"#main /m/ CACHED") {
			t.Errorf("unchanged ref: not a hit:\n%s", r.stderr)
		}
		if n := g.posts.Load() - before; n != 1 {
			t.Errorf("unchanged ref: %d upload-pack requests, want 1 (the ls-remote, no fetch of objects)", n)
		}
		// Another step of the same commit misses, but the tree is kept:
		// no fetch either.
		ctx2 := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + repo + "#main /other/\n"})
		before = g.posts.Load()
		e.mustRun("build", ctx2)
		if n := g.posts.Load() - before; n != 1 {
			t.Errorf("kept tree: %d upload-pack requests, want 1", n)
		}
		old := g.git(wt, "rev-parse", "main")
		moved := g.commit(wt, map[string]string{"new.txt": "new\n"}, "move main")
		g.push(wt, "main")
		out := filepath.Join(t.TempDir(), "rootfs")
		r = e.mustRun("build", "--progress", "plain", ctx, "-t", "gitcache:1", "-o", "type=local,dest="+out)
		want := "git source " + repo + "#main changed (" + old + " -> " + moved + ")"
		if !strings.Contains(r.stderr+r.stdout, "cache miss: "+want) {
			t.Errorf("moved branch: want %q in:\n%s", want, r.stderr)
		}
		if got := readOut(t, out, "m/new.txt"); got != "new\n" {
			t.Errorf("m/new.txt = %q", got)
		}
		trees, _ := os.ReadDir(filepath.Join(e.root, "cache", "git", "trees"))
		if len(trees) == 0 {
			t.Fatal("no git tree kept under cache/git/trees")
		}
		if df := e.mustRun("df").stdout; !regexp.MustCompile(`Git trees\s+[1-9]`).MatchString(df) {
			t.Errorf("df does not count the git trees:\n%s", df)
		}
		e.mustRun("prune")
		if trees, _ := os.ReadDir(filepath.Join(e.root, "cache", "git", "trees")); len(trees) != 0 {
			t.Errorf("prune left %d git trees", len(trees))
		}
	})

	t.Run("private", func(t *testing.T) {
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + g.url + "/private.git /p/\n"})
		r := e.run("build", ctx)
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2: ADD") {
			t.Fatalf("no token: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		tok := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tok, []byte(g.token), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "rootfs")
		e.mustRun("build", "--secret", "id=GIT_AUTH_TOKEN,src="+tok, ctx, "-o", "type=local,dest="+out)
		if got := readOut(t, out, "p/p.txt"); got != "private\n" {
			t.Errorf("p/p.txt = %q", got)
		}
		if _, err := exec.Command("grep", "-r", "-q", g.token, e.root).CombinedOutput(); err == nil {
			t.Errorf("the token is somewhere under the state dir")
		}
	})
}

// TestBuildContexts: every kind of --build-context (a directory, a
// docker-image, an oci-layout, an http tarball, a git URL) seen by FROM,
// COPY --from and RUN --mount=from; a context named like a stage replaces
// it; a rebuild is all hits, and a changed file of a directory context a
// miss (its own stat cache, its own .dockerignore).
func TestBuildContexts(t *testing.T) {
	e := newEnv(t)
	g := newGitServer(t)
	gwt := g.repo("repo", map[string]string{"dir/b.txt": "git\n", "top.txt": "top\n"})

	e.mustRun("build", writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo img > /marker\n"}), "-t", "marked:v1")
	layout := filepath.Join(t.TempDir(), "layout")
	e.mustRun("build", writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY m /marker\n", "m": "lay\n"}),
		"-o", "type=oci-layout,dest="+layout)
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if data, err := os.ReadFile(filepath.Join(layout, "index.json")); err != nil || json.Unmarshal(data, &idx) != nil || len(idx.Manifests) == 0 {
		t.Fatalf("layout index: %v", err)
	}
	tarball := testutil.TarBytes(t, testutil.TarFile("t.txt", "tar\n"))
	tsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(tarball) }))
	defer tsrv.Close()
	dir := writeContext(t, map[string]string{"d.txt": "dir\n", "secret.txt": "no\n", ".dockerignore": "secret.txt\n"})

	df := "FROM dir AS fdir\nFROM img AS fimg\nFROM lay AS flay\nFROM tar AS ftar\nFROM gitc AS fgit\n" +
		"FROM busybox AS over\nRUN false\n" +
		"FROM busybox\n" +
		"COPY --from=fdir /d.txt /from/dir\nCOPY --from=fimg /marker /from/img\nCOPY --from=flay /marker /from/lay\n" +
		"COPY --from=ftar /t.txt /from/tar\nCOPY --from=fgit /b.txt /from/git\n" +
		"COPY --from=dir / /copy/dir/\nCOPY --from=img /marker /copy/img\nCOPY --from=lay /marker /copy/lay\n" +
		"COPY --from=tar /t.txt /copy/tar\nCOPY --from=gitc /b.txt /copy/git\nCOPY --from=over /marker /copy/over\nCOPY Dockerfile /df\n" +
		"RUN --mount=from=dir,target=/m/dir --mount=from=img,target=/m/img --mount=from=lay,target=/m/lay " +
		"--mount=from=tar,target=/m/tar --mount=from=gitc,source=b.txt,target=/m/git " +
		"cat /m/dir/d.txt /m/img/marker /m/lay/marker /m/tar/t.txt /m/git > /all && ls -A /m/dir > /dirls\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": df})
	args := []string{"build", "--progress", "plain", ctx, "-t", "ctx:1",
		"--build-context", "dir=" + dir, "--build-context", "img=docker-image://marked:v1",
		"--build-context", "lay=oci-layout://" + layout + "@" + idx.Manifests[0].Digest,
		"--build-context", "tar=" + tsrv.URL + "/ctx.tar", "--build-context", "gitc=" + g.url + "/repo.git#main:dir",
		"--build-context", "over=docker-image://marked:v1"}
	out := filepath.Join(t.TempDir(), "rootfs")
	e.mustRun(append(args, "-o", "type=local,dest="+out)...)
	for p, want := range map[string]string{
		"from/dir": "dir\n", "from/img": "img\n", "from/lay": "lay\n", "from/tar": "tar\n", "from/git": "git\n",
		"copy/dir/d.txt": "dir\n", "copy/img": "img\n", "copy/lay": "lay\n", "copy/tar": "tar\n", "copy/git": "git\n",
		"copy/over": "img\n", "all": "dir\nimg\nlay\ntar\ngit\n", "dirls": ".dockerignore\nd.txt\n",
	} {
		if got := readOut(t, out, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(out, "copy/dir/secret.txt")); err == nil {
		t.Error("the directory context's .dockerignore was not applied")
	}
	// The main context and the directory context: a stat cache each.
	if ents, err := os.ReadDir(filepath.Join(e.root, "cache", "contexts")); err != nil || len(ents) < 2 {
		t.Errorf("stat caches: %d, %v; want one for the main context and one for %s", len(ents), err, dir)
	}

	before := g.posts.Load()
	r := e.mustRun(args...)
	if n := strings.Count(r.stderr+r.stdout, " CACHED "); n < 11 {
		t.Errorf("rebuild: %d cached steps, want every one:\n%s", n, r.stderr)
	}
	if n := g.posts.Load() - before; n != 1 {
		t.Errorf("rebuild: %d upload-pack requests, want 1 (ls-remote only)", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "d.txt"), []byte("dir2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "rootfs")
	e.mustRun(append(args, "-o", "type=local,dest="+out2)...)
	if got := readOut(t, out2, "copy/dir/d.txt"); got != "dir2\n" {
		t.Errorf("changed file of a directory context: %q", got)
	}
	old := g.git(gwt, "rev-parse", "main")
	moved := g.commit(gwt, map[string]string{"dir/b.txt": "git2\n"}, "move")
	g.push(gwt, "main")
	r = e.mustRun(append(args, "--explain", "-o", "type=local,dest="+filepath.Join(t.TempDir(), "rootfs3"))...)
	if want := "git source " + g.url + "/repo.git#main:dir changed (" + old + " -> " + moved + ")"; !strings.Contains(r.stderr+r.stdout, want) {
		t.Errorf("moved branch of a git context: want %q in\n%s", want, r.stderr)
	}

	bad := e.run("build", ctx, "--build-context", "x=target:foo")
	if bad.code != 2 || !strings.Contains(bad.stderr, "--build-context x=target:foo") {
		t.Errorf("target: context: exit %d\n%s", bad.code, bad.stderr)
	}
}
