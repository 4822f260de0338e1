package layer

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzApply applies arbitrary bytes (a tar, plain or compressed) into a
// temp dir and checks what Apply promises for untrusted input: no panic,
// nothing written or linked outside the target, and no more file data
// written than the archive holds uncompressed (holes are free), within
// the expansion bound.
func FuzzApply(f *testing.F) {
	requireRoot(f)
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		base := t.TempDir()
		var baseSt unix.Stat_t
		if err := unix.Lstat(base, &baseSt); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(base, "a", "root")
		outside := filepath.Join(base, "outside")
		for _, d := range []string{target, outside} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		secret := filepath.Join(outside, "secret")
		if err := os.WriteFile(secret, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Apply(context.Background(), target, bytes.NewReader(data), ApplyOptions{Whiteouts: WhiteoutMode(mode % 3)})
		_ = err // any error is fine; what was written is checked below

		assertOnly(t, base, "a", "outside")
		assertOnly(t, filepath.Join(base, "a"), "root")
		assertOnly(t, outside, "secret")
		var st unix.Stat_t
		if err := unix.Lstat(secret, &st); err != nil || st.Nlink != 1 || st.Size != 4 || st.Mode&0o7777 != 0o644 {
			t.Errorf("secret touched: err=%v nlink=%d size=%d mode=%o", err, st.Nlink, st.Size, st.Mode)
		}
		if b, _ := os.ReadFile(secret); string(b) != "keep" {
			t.Errorf("secret content %q", b)
		}
		if err := unix.Lstat(base, &st); err != nil || st.Mode != baseSt.Mode || st.Uid != baseSt.Uid {
			t.Errorf("temp dir changed: mode %o owner %d, %v", st.Mode, st.Uid, err)
		}

		// File data written: at most the uncompressed stream (read the way
		// Apply reads it, capped by the bound), one block of rounding per file.
		var limit int64 = maxExpansion*int64(len(data)) + expansionSlack
		stream := int64(len(data))
		if rc, err := Decompress(bytes.NewReader(data)); err == nil {
			stream, _ = io.Copy(io.Discard, io.LimitReader(rc, limit+1))
			rc.Close()
		}
		var used, apparent int64
		files := int64(0)
		seen := map[uint64]bool{}
		_ = filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil && !seen[st.Ino] {
				seen[st.Ino] = true
				used += st.Blocks * 512
				apparent += st.Size
				files++
			}
			return nil
		})
		if used > min(stream, limit)+files*8192 {
			t.Errorf("%d bytes of file data on disk from a %d-byte stream (%d files)", used, stream, files)
		}
		if apparent > maxApparent {
			t.Errorf("apparent size %d beyond the bound", apparent)
		}
	})
}
