package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/builderdev/builder/snapshot"
)

func TestMain(m *testing.M) {
	if IsInit() {
		Main()
	}
	os.Exit(m.Run())
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the sandbox needs root (namespaces, mounts); run the tests as root, as CI does")
	}
}

// layout is a test rootfs: an overlay of lower with upper/work on root.
type layout struct {
	lower, upper, work, root string
}

// newLayout makes a busybox rootfs in a temp dir; prepare may add to lower.
func newLayout(t testing.TB, prepare func(lower string)) *layout {
	t.Helper()
	dir := t.TempDir()
	l := &layout{
		lower: filepath.Join(dir, "lower"),
		upper: filepath.Join(dir, "upper"),
		work:  filepath.Join(dir, "work"),
		root:  filepath.Join(dir, "root"),
	}
	for _, d := range []string{l.upper, l.work, l.root, filepath.Join(l.lower, "bin")} {
		mustMkdir(t, d, 0o755)
	}
	mustMkdir(t, filepath.Join(l.lower, "root"), 0o700)
	mustMkdir(t, filepath.Join(l.lower, "tmp"), 0o1777)
	copyFile(t, "/bin/busybox", filepath.Join(l.lower, "bin", "busybox"))
	applets := []string{
		"sh", "echo", "cat", "hostname", "ps", "ls", "id", "touch", "mkdir", "rm", "wget",
		"nc", "sleep", "true", "grep", "wc", "head", "ip", "test", "pwd", "chmod", "stat", "tr", "false",
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(l.lower, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if prepare != nil {
		prepare(l.lower)
	}
	return l
}

// mounts is the overlay as the snapshot package describes it.
func (l *layout) mounts() []snapshot.Mount {
	return []snapshot.Mount{{
		Type:   "overlay",
		Source: "overlay",
		Target: l.root,
		Options: []string{
			"lowerdir=" + l.lower, "upperdir=" + l.upper, "workdir=" + l.work,
			"index=off", "redirect_dir=off", "metacopy=off",
		},
	}}
}

// config returns a Config running script with sh over l.
func (l *layout) config(script string) Config {
	return Config{
		Rootfs: l.mounts(),
		Args:   []string{"sh", "-c", script},
		Env:    []string{"PATH=/bin"},
	}
}

// runOut runs cfg and returns its stdout and stderr.
func runOut(t testing.TB, cfg Config) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cfg.Stdout, cfg.Stderr = &stdout, &stderr
	err := Run(context.Background(), cfg)
	return stdout.String(), stderr.String(), err
}

// tree lists the paths under dir (relative, sorted), with a "/" after dirs.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// mountsUnder returns the host's mounts at or below dir.
func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
			found = append(found, sc.Text())
		}
	}
	return found
}

func mustMkdir(t testing.TB, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatalf("open busybox (Debian busybox-static): %v", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
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
