package oci

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

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
	f, err := os.Open(filepath.Join(s.Root(), "blobs", "sha256", d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(data)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	direct, cached := 0, 0
	for i, v := range vec {
		if int64(i*os.Getpagesize()) >= directFrom+directChunk { // past the first direct chunk
			direct++
			if v&1 != 0 {
				cached++
			}
		}
	}
	if cached > direct/10 {
		t.Errorf("%d of the %d pages of the blob's direct part are in the page cache after its follower read them", cached, direct)
	}
}
