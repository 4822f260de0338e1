package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: test needs root (overlay mounts, whiteout devices, trusted.* xattrs); run it as root, as CI does")
	}
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func chain(n int) digest.Digest { return digest.FromString("chain " + strconv.Itoa(n)) }

// commitFile prepares over parent, writes one file into the upper dir and
// commits it as chainID.
func commitFile(t *testing.T, s *Store, parent, chainID digest.Digest, name, content string) Info {
	t.Helper()
	a, err := s.Prepare(t.Context(), parent)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Upper, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := s.Commit(t.Context(), a, chainID)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)

	if _, err := s.Stat(ctx, chain(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat of unknown chain: got %v, want ErrNotFound", err)
	}
	if _, err := s.Prepare(ctx, chain(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Prepare over unknown parent: got %v, want ErrNotFound", err)
	}

	base, err := s.Prepare(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Lowers) != 0 || base.Parent != "" {
		t.Fatalf("base snapshot: lowers %v parent %q", base.Lowers, base.Parent)
	}
	if fi, err := os.Stat(base.Upper); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("upper dir: %v %v", fi, err)
	}
	if err := os.WriteFile(filepath.Join(base.Upper, "one"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	info1, err := s.Commit(ctx, base, chain(1))
	if err != nil {
		t.Fatal(err)
	}
	if !validID(info1.ID) || info1.Chain != chain(1) || info1.Parent != "" || info1.Dir != s.path(info1.ID, "fs") {
		t.Fatalf("commit info: %+v", info1)
	}
	if b, err := os.ReadFile(filepath.Join(info1.Dir, "one")); err != nil || string(b) != "1" {
		t.Fatalf("committed file: %q %v", b, err)
	}
	if link, err := os.Readlink(s.path("by-chain", chain(1).Encoded())); err != nil || link != "../"+info1.ID {
		t.Fatalf("by-chain link: %q %v", link, err)
	}
	if got, err := s.Stat(ctx, chain(1)); err != nil || got != info1 {
		t.Fatalf("Stat: %+v %v, want %+v", got, err, info1)
	}

	info2 := commitFile(t, s, chain(1), chain(2), "two", "2")
	if info2.Parent != chain(1) || info2.ID == info1.ID {
		t.Fatalf("second commit: %+v", info2)
	}
	if got, err := s.Stat(ctx, chain(2)); err != nil || got != info2 {
		t.Fatalf("Stat: %+v %v, want %+v", got, err, info2)
	}
	lowers, err := s.Lowers(ctx, chain(2))
	if err != nil || !slices.Equal(lowers, []string{info2.Dir, info1.Dir}) {
		t.Fatalf("Lowers: %v %v", lowers, err)
	}

	a, err := s.Prepare(ctx, chain(2))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Lowers, lowers) || a.Parent != chain(2) {
		t.Fatalf("Prepare: %+v", a)
	}
	if err := s.Remove(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(a.Upper)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed active dir still there: %v", err)
	}
	if err := s.Remove(a); err != nil {
		t.Fatalf("second Remove: %v", err)
	}

	// Committing an existing chain ID keeps the existing snapshot.
	a, err = s.Prepare(ctx, chain(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Commit(ctx, a, chain(2))
	if err != nil || got != info2 {
		t.Fatalf("Commit of existing chain: %+v %v, want %+v", got, err, info2)
	}

	if err := s.Remove(&Active{Upper: t.TempDir()}); err == nil {
		t.Fatal("Remove of a foreign dir succeeded")
	}
	if _, err := s.Commit(ctx, &Active{Upper: "/etc/upper"}, chain(3)); err == nil {
		t.Fatal("Commit of a foreign dir succeeded")
	}
	if _, err := s.Commit(ctx, a, "sha256:nothex"); err == nil {
		t.Fatal("Commit with a bad chain ID succeeded")
	}
	if names := dirNames(t, s.path("active")); len(names) != 0 {
		t.Fatalf("active dirs left: %v", names)
	}
	if names := dirNames(t, s.path("tmp")); len(names) != 0 {
		t.Fatalf("tmp entries left: %v", names)
	}
}

func TestMounts(t *testing.T) {
	a := Active{Upper: "/s/active/1-2/upper", Work: "/s/active/1-2/work"}
	got := a.Mounts("/mnt")
	want := []Mount{{Type: "bind", Source: a.Upper, Target: "/mnt", Options: []string{"rbind", "rw"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("no lowers: got %+v, want %+v", got, want)
	}
	a.Lowers = []string{"/s/b/fs", "/s/a/fs"}
	got = a.Mounts("/mnt")
	want = []Mount{{Type: "overlay", Source: "overlay", Target: "/mnt", Options: []string{
		"lowerdir=/s/b/fs:/s/a/fs", "upperdir=" + a.Upper, "workdir=" + a.Work,
		"index=off", "redirect_dir=off", "metacopy=off",
	}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("two lowers: got %+v, want %+v", got, want)
	}
}

func TestOpenRejectsSeparators(t *testing.T) {
	for _, name := range []string{"a:b", "a,b", `a\b`, "a=b"} {
		if _, err := Open(t.Context(), filepath.Join(t.TempDir(), name)); err == nil {
			t.Errorf("Open(%q) succeeded", name)
		}
	}
}

func TestConcurrentCommit(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	base := commitFile(t, s, "", chain(0), "base", "0")

	const n = 8
	actives := make([]*Active, n)
	for i := range actives {
		a, err := s.Prepare(ctx, chain(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(a.Upper, "f"), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		actives[i] = a
	}
	infos := make([]Info, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, a := range actives {
		wg.Go(func() { infos[i], errs[i] = s.Commit(ctx, a, chain(1)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("commit %d: %v", i, errs[i])
		}
		if infos[i] != infos[0] {
			t.Fatalf("commit %d returned %+v, commit 0 %+v", i, infos[i], infos[0])
		}
	}
	if got, err := s.Stat(ctx, chain(1)); err != nil || got != infos[0] {
		t.Fatalf("Stat: %+v %v, want %+v", got, err, infos[0])
	}
	names := dirNames(t, s.root)
	want := []string{"active", base.ID, "by-chain", "format", infos[0].ID, "tmp"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("store root holds %v, want %v", names, want)
	}
	if names := dirNames(t, s.path("active")); len(names) != 0 {
		t.Fatalf("active dirs left: %v", names)
	}
	if names := dirNames(t, s.path("tmp")); len(names) != 0 {
		t.Fatalf("tmp entries left: %v", names)
	}
}

// deadPID returns the pid of a process that has exited and been waited for.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("run true: %v", err)
	}
	return cmd.Process.Pid
}

func TestOpenCleansDeadLeftovers(t *testing.T) {
	ctx := t.Context()
	root := filepath.Join(t.TempDir(), "snapshots")
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	linked := commitFile(t, s, "", chain(1), "f", "1")

	dead := strconv.Itoa(deadPID(t))
	live := strconv.Itoa(os.Getpid())
	mkdir := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, content string) {
		t.Helper()
		mkdir(filepath.Dir(p))
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("active/" + dead + "-abc/upper/sub")
	mkdir("active/" + dead + "-abc/work/work")
	write("tmp/"+dead+"-def/fs/file", "x")
	write("tmp/garbage", "no pid")
	mkdir("active/" + live + "-keep/upper")
	write("tmp/"+live+"-keep/fs/file", "x")

	// A dead committer placed an id dir but died before linking it.
	const orphan = "orphan"
	write(orphan+"/fs/file", "x")
	write(orphan+"/chain", string(chain(2)))
	write(orphan+"/parent", "")
	write(orphan+"/owner", dead+"-m1.commit")
	write("tmp/"+dead+"-m1.commit", orphan)
	// A dead committer linked its dir but died before removing its marker.
	write(linked.ID+"/owner", dead+"-m2.commit")
	write("tmp/"+dead+"-m2.commit", linked.ID)
	// A stale marker naming a dir that now belongs to another commit.
	const other = "others"
	write(other+"/fs/file", "x")
	write(other+"/chain", string(chain(3)))
	write(other+"/owner", live+"-m4.commit")
	write("tmp/"+dead+"-m3.commit", other)

	if _, err := Open(ctx, root); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, filepath.Join(root, "active")); !slices.Equal(got, []string{live + "-keep"}) {
		t.Errorf("active: got %v, want only the live process's dir", got)
	}
	if got := dirNames(t, filepath.Join(root, "tmp")); !slices.Equal(got, []string{live + "-keep"}) {
		t.Errorf("tmp: got %v, want only the live process's dir", got)
	}
	if _, err := os.Stat(filepath.Join(root, orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unlinked dir of a dead committer kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, other, "fs/file")); err != nil {
		t.Errorf("dir of another commit removed: %v", err)
	}
	if got, err := s.Stat(ctx, chain(1)); err != nil || got != linked {
		t.Errorf("linked snapshot: %+v %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(linked.Dir, "f")); err != nil {
		t.Errorf("linked snapshot's files: %v", err)
	}
}

func TestLowersContext(t *testing.T) {
	s := openStore(t)
	commitFile(t, s, "", chain(1), "f", "1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Lowers(ctx, chain(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lowers with canceled ctx: %v", err)
	}
}

// TestFormatChange: snapshots unpacked by another format are unlinked on
// Open (to be unpacked again from their blobs) and removed by
// RemoveOrphans; snapshots of the current format survive a reopen.
func TestFormatChange(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	root := filepath.Join(t.TempDir(), "snapshots")
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	commitFile(t, s, "", chain(1), "f", "1")
	if s, err = Open(ctx, root); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, chain(1)); err != nil {
		t.Fatalf("same format: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "format"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, root); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, chain(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old format: Stat = %v, want ErrNotFound", err)
	}
	if n, err := s.RemoveOrphans(ctx); n != 1 || err != nil {
		t.Fatalf("RemoveOrphans = %d, %v; want the old dir", n, err)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "format")); string(data) != format+"\n" {
		t.Errorf("format file %q", data)
	}
}
