//go:build linux

package layer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

// A ".wh..wh..opq" at the root of a layer (no directory) hides everything
// the layers below made, as the OCI image spec says for any directory.
func TestApplyOpaqueRoot(t *testing.T) {
	requireRoot(t)
	lower := testutil.TarBytes(t,
		testutil.TarDir("etc/"), testutil.TarFile("etc/passwd", "root"),
		testutil.TarFile("bin", "busybox"), testutil.TarFile("keep-me-not", "x"))
	for _, markerFirst := range []bool{true, false} {
		ents := []testutil.TarEntry{testutil.TarFile("only", "the one file"), testutil.TarDir("etc/"), testutil.TarFile("etc/new", "n")}
		marker := testutil.TarFile(".wh..wh..opq", "")
		if markerFirst {
			ents = append([]testutil.TarEntry{marker}, ents...)
		} else {
			ents = append(ents, marker)
		}
		upper := testutil.TarBytes(t, ents...)

		// -o type=local: layers flattened in order, the marker deletes.
		dir := t.TempDir()
		applyBytes(t, dir, lower, WhiteoutDelete)
		applyBytes(t, dir, upper, WhiteoutDelete)
		assertOnly(t, dir, "etc", "only")
		assertOnly(t, filepath.Join(dir, "etc"), "new")

		// Snapshot form: the layer's own dir, its root marked opaque.
		snap := t.TempDir()
		if _, err := Apply(context.Background(), snap, bytes.NewReader(upper), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(snap, overlayOpaque, buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("root of the snapshot: %s = %q, %v; want y", overlayOpaque, buf[:n], err)
		}
		assertOnly(t, snap, "etc", "only")
		if _, err := os.Stat(filepath.Join(snap, ".wh..wh..opq")); err == nil {
			t.Error("marker written as a file")
		}
	}
}
