package oci

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// TestFollowDropsDirectPages: what a follower reads of a blob's direct
// part (past directFrom) does not stay in the page cache, as the
// writer's O_DIRECT writes do not.
func TestFollowDropsDirectPages(t *testing.T) {
	defer func(old int64) { directFrom = old }(directFrom)
	directFrom = 1 << 20
	s := openStore(t)
	var st unix.Statfs_t
	if err := unix.Statfs(s.Root(), &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		t.Skip("the store is on tmpfs: no page cache to leave")
	}
	w, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := w.Follow()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data := make([]byte, 40<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		done <- err
	}()
	for p := data; len(p) > 0; p = p[min(len(p), 1<<20):] {
		if _, err := w.Write(p[:min(len(p), 1<<20)]); err != nil {
			t.Fatal(err)
		}
	}
	if w.direct == nil {
		t.Skip("the file system refused O_DIRECT")
	}
	d, _, err := w.Commit(digest.FromBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Past the first direct chunk.
	cached, direct := resident(t, filepath.Join(s.Root(), "blobs", "sha256", d.Encoded()), directFrom+directChunk, int64(len(data)))
	if cached > direct/10 {
		t.Errorf("%d of the %d pages of the blob's direct part are in the page cache after its follower read them", cached, direct)
	}
}
