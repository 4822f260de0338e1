//go:build linux

package e2e

// Unprivileged builds: the core cases run as root, as a user with a
// subordinate id range (builder re-executes itself as root of its own user
// namespace), and as that user inside `unshare --user --map-root-user
// --map-auto --mount` (root of a user namespace it did not make, as in a
// Kubernetes pod with hostUsers: false). With SOURCE_DATE_EPOCH the three
// give the same image, byte for byte.

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

const rootlessUser = "builder-e2e"

// rootlessDockerfile covers COPY, RUN with a whiteout and an opaque dir,
// chown in RUN to an id other than root, a second stage, COPY --from.
const rootlessDockerfile = `FROM busybox:latest AS base
COPY a /w/a
RUN mkdir -p /w/dir/sub && echo x > /w/dir/sub/f && echo gone > /w/x && chown 1000:1000 /w/a
RUN rm /w/x && rm -rf /w/dir && mkdir /w/dir && echo new > /w/dir/g && chown -R 4242:4343 /w/dir
FROM busybox:latest
COPY --from=base /w /w
RUN ls -ln /w /w/dir > /listing
`

// userEnv runs builder as the unprivileged test user (optionally through
// a prefix command) in dirs that user owns.
type userEnv struct {
	t        *testing.T
	uid, gid int
	home     string // the user's dir for this test: binary, contexts, roots
	bin      string
	prefix   []string
	path     string // PATH of its commands ("": the system's)
}

func newUserEnv(t *testing.T) *userEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	for _, tool := range []string{"useradd", "newuidmap", "newgidmap", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (Debian's passwd, uidmap and util-linux packages): %v", tool, err)
		}
	}
	// The user and its subordinate ids exist for the test only.
	uid, gid, undo, err := testutil.MakeUser(rootlessUser, 300000)
	t.Cleanup(undo)
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("", "builder-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	ue := &userEnv{t: t, uid: uid, gid: gid, home: home, bin: filepath.Join(home, "builder")}
	copyFile(t, testutil.BuildBinary(t), ue.bin, 0o755)
	copyFile(t, busyboxTar(t), filepath.Join(home, "busybox.tar"), 0o644)
	return ue
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// context writes files into a new dir the user can read.
func (u *userEnv) context(files map[string]string) string {
	u.t.Helper()
	dir, err := os.MkdirTemp(u.home, "ctx-")
	if err != nil {
		u.t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			u.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[p == dir || filepath.Ext(p) == "" && isDir(p)])
		}
		return err
	}); err != nil {
		u.t.Fatal(err)
	}
	return dir
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// run runs builder as the user with HOME in its dir (so the default state
// dir is under it) and returns the result.
func (u *userEnv) run(root string, args ...string) result {
	u.t.Helper()
	argv := append([]string{u.bin}, args...)
	if root != "" {
		argv = append([]string{u.bin, "--root", root}, args...)
	}
	argv = append(slices.Clone(u.prefix), argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = u.home
	path := u.path
	if path == "" {
		path = "/usr/sbin:/usr/bin:/sbin:/bin"
	}
	cmd.Env = []string{"PATH=" + path, "HOME=" + u.home, "USER=" + rootlessUser,
		"XDG_DATA_HOME=" + filepath.Join(u.home, "data"), "SOURCE_DATE_EPOCH=1700000000"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatalf("run %v: %v", argv, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (u *userEnv) mustRun(root string, args ...string) result {
	u.t.Helper()
	r := u.run(root, args...)
	if r.code != 0 {
		u.t.Fatalf("builder %s (as %s, prefix %v): exit %d\n%s%s", strings.Join(args, " "), rootlessUser, u.prefix, r.code, r.stdout, r.stderr)
	}
	return r
}

// coreCases builds the core Dockerfile twice (the second must be fully
// cached), exports it, pushes it to reg, and returns the manifest digest.
func coreCases(t *testing.T, build func(args ...string) result, ctx, reg, name string) string {
	t.Helper()
	r := build("build", "--progress", "plain", ctx, "-t", name, "-o", "type=oci,dest="+filepath.Join(filepath.Dir(ctx), name+".tar"))
	manifest := manifestOf(t, r.stderr)
	r = build("build", "--progress", "plain", ctx, "-t", name)
	if got := stepStates(r.stderr); strings.Trim(got, "H") != "" {
		t.Errorf("%s: rebuild states %q, want all cached", name, got)
	}
	build("push", name, reg+"/rootless/"+name)
	return manifest
}

func TestRootless(t *testing.T) {
	root := newEnv(t)
	reg := testutil.StartRegistry(t)
	u := newUserEnv(t)
	files := map[string]string{"Dockerfile": rootlessDockerfile, "a": "a\n"}

	root.env = []string{"SOURCE_DATE_EPOCH=1700000000"}
	want := coreCases(t, root.mustRun, writeContext(t, files), reg, "core-root:1")

	// As the user: builder re-executes itself in its own user namespace.
	userRoot := filepath.Join(u.home, "root-user")
	u.mustRun(userRoot, "load", "-i", filepath.Join(u.home, "busybox.tar"))
	ctx := u.context(files)
	got := coreCases(t, func(args ...string) result { return u.mustRun(userRoot, args...) }, ctx, reg, "core-user:1")
	if got != want {
		t.Errorf("as a user: manifest %s, as root %s", got, want)
	}
	u.mustRun(userRoot, "check")
	// A fully cached build needs no user namespace: it is done in the
	// user's own process, so it works with no newuidmap on PATH (the
	// re-exec into the namespace would fail without it).
	u.path = "/nonexistent"
	r := u.mustRun(userRoot, "build", "--progress", "plain", ctx, "-t", "core-user:1")
	if got := stepStates(r.stderr); strings.Trim(got, "H") != "" {
		t.Errorf("cached build without newuidmap: states %q, want all cached", got)
	}
	if r := u.run(userRoot, "build", "--progress", "plain", "--no-cache", ctx); r.code == 0 || !strings.Contains(r.stderr, "newuidmap") {
		t.Errorf("a build that must run steps did not need the user namespace: exit %d\n%s", r.code, r.stderr)
	}
	u.path = ""
	// The default state dir of a user is under XDG_DATA_HOME.
	u.mustRun("", "load", "-i", filepath.Join(u.home, "busybox.tar"))
	if _, err := os.Stat(filepath.Join(u.home, "data", "builder", "index.json")); err != nil {
		t.Errorf("the user's default state dir is not $XDG_DATA_HOME/builder: %v", err)
	}

	// As root of a user namespace the user made (a pod's view).
	u.prefix = []string{"unshare", "--user", "--map-root-user", "--map-auto", "--mount"}
	podRoot := filepath.Join(u.home, "root-pod")
	u.mustRun(podRoot, "load", "-i", filepath.Join(u.home, "busybox.tar"))
	got = coreCases(t, func(args ...string) result { return u.mustRun(podRoot, args...) }, ctx, reg, "core-pod:1")
	if got != want {
		t.Errorf("as root of a user namespace: manifest %s, as root %s", got, want)
	}

	// Root of a namespace with one id only: a build without chown works,
	// a chown in RUN fails and says why.
	u.prefix = []string{"unshare", "--user", "--map-root-user", "--mount"}
	oneRoot := filepath.Join(u.home, "root-one")
	u.mustRun(oneRoot, "load", "-i", filepath.Join(u.home, "busybox.tar"))
	plain := u.context(map[string]string{"Dockerfile": "FROM busybox:latest\nCOPY a /a\nRUN cat /a > /b\n", "a": "a\n"})
	u.mustRun(oneRoot, "build", "--progress", "plain", plain, "-t", "one:1")
	chown := u.context(map[string]string{"Dockerfile": "FROM busybox:latest\nRUN touch /f && chown 1000 /f\n"})
	r = u.run(oneRoot, "build", "--progress", "plain", chown, "-t", "one:2")
	if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2") || !strings.Contains(r.stderr, "maps one id only") {
		t.Errorf("chown with one id: exit %d, want 1 naming the line and why\n%s", r.code, r.stderr)
	}
}
