//go:build linux

package layer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// GNU tar must read what Pack writes and Apply must read what GNU tar
// writes, with owners, modes, xattrs, hardlinks, devices and mtimes intact.
func TestGNUTarInterop(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	src := t.TempDir()
	buildSampleTree(t, src)
	want := treeState(t, src, false)
	xattrFlags := []string{"--xattrs", "--xattrs-include=*", "--numeric-owner"}

	t.Run("Pack to tar", func(t *testing.T) {
		es, err := DirEntries(src)
		if err != nil {
			t.Fatal(err)
		}
		blob, _ := pack(t, es, PackOptions{})
		dst := t.TempDir()
		cmd := exec.Command("tar", append([]string{"-xzpf", "-", "-C", dst}, xattrFlags...)...)
		cmd.Stdin = bytes.NewReader(blob)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar -x: %v\n%s", err, out)
		}
		if d := diffStates(want, treeState(t, dst, false)); d != "" {
			t.Errorf("GNU tar extraction differs:\n%s", d)
		}
	})
	t.Run("tar to Apply", func(t *testing.T) {
		blob := filepath.Join(t.TempDir(), "l.tar.gz")
		cmd := exec.Command("tar", append([]string{"-czf", blob, "-C", src, "."}, xattrFlags...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar -c: %v\n%s", err, out)
		}
		f, err := os.Open(blob)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dst := t.TempDir()
		if _, err := Apply(context.Background(), dst, f, ApplyOptions{Whiteouts: WhiteoutReject}); err != nil {
			t.Fatal(err)
		}
		if d := diffStates(want, treeState(t, dst, false)); d != "" {
			t.Errorf("Apply of GNU tar archive differs:\n%s", d)
		}
	})
}
