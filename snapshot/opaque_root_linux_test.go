package snapshot

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// A layer whose root is opaque hides every layer below it. Overlay ignores
// trusted.overlay.opaque on a lower dir's root, so Lowers stops there: the
// mounted rootfs and the View both show only what is above.
func TestOpaqueRootHidesBelow(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	commitFile(t, s, "", chain(1), "lower-file", "hidden")
	a, err := s.Prepare(t.Context(), chain(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Upper, "only"), []byte("visible"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(a.Upper, opaqueXattr, []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(t.Context(), a, chain(2)); err != nil {
		t.Fatal(err)
	}
	commitFile(t, s, chain(2), chain(3), "top", "above")

	lowers, err := s.Lowers(t.Context(), chain(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(lowers) != 2 {
		t.Fatalf("Lowers = %v: want the top layer and the opaque one only", lowers)
	}
	run, err := s.Prepare(t.Context(), chain(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove(run)
	target := mountAt(t, run)
	if got := dirNames(t, target); !slices.Equal(got, []string{"only", "top"}) {
		t.Errorf("mounted rootfs holds %v, want [only top]", got)
	}
	unmount(t, target)
	fis, err := View{Lowers: run.Lowers}.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fi := range fis {
		names = append(names, fi.Name())
	}
	if !slices.Equal(names, []string{"only", "top"}) {
		t.Errorf("View lists %v, want [only top]", names)
	}
}
