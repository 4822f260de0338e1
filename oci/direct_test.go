package oci

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// TestBlobWriterDirect: a blob written past directFrom (the rest with
// O_DIRECT where the file system has it) in writes of any size, ending
// off a block boundary, reads back byte for byte under its digest.
func TestBlobWriterDirect(t *testing.T) {
	defer func(old int64) { directFrom = old }(directFrom)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		from, size int64
	}{
		{0, 3*4<<20 + 12345},
		{8192, 4<<20 - 1},
		{10000, 2*4<<20 + 4096}, // not aligned: from the next block
		{1 << 30, 100000},       // never direct
		{4096, 4096},
		{0, 0},
	} {
		directFrom = tc.from
		s := openStore(t)
		data := testutil.RandomBytes(rng, int(tc.size))
		w, err := s.Writer(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(700000))
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if tc.size > tc.from+2*directAlign && w.direct == nil && !w.noDirect {
			t.Errorf("from %d size %d: O_DIRECT neither used nor refused", tc.from, tc.size)
		}
		want := digest.FromBytes(data)
		got, size, err := w.Commit(want)
		if err != nil || got != want || size != tc.size {
			t.Fatalf("from %d size %d: Commit = %s, %d, %v", tc.from, tc.size, got, size, err)
		}
		rc, err := s.OpenBlob(context.Background(), want)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("from %d size %d: read back %d bytes (%v), not what was written", tc.from, tc.size, len(back), err)
		}
	}
}
