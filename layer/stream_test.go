package layer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestPackStream: the sample entries handed over in tar order give the
// very blob Pack makes of them unsorted; a name given twice in a row is the
// later entry; disorder and bad names fail; nothing handed over is an empty
// tar and a count of 0.
func TestPackStream(t *testing.T) {
	stream := func(ents []Entry, opts PackOptions) ([]byte, Packed, int, error) {
		var buf bytes.Buffer
		p, n, err := PackStream(context.Background(), &buf, func(add func(Entry) error) error {
			for _, e := range ents {
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		}, opts)
		return buf.Bytes(), p, n, err
	}
	for _, c := range []Compression{Gzip, Zstd} {
		ents := sampleEntries()
		want, wp := pack(t, ents, PackOptions{Compression: c})
		sorted := slices.Clone(ents)
		slices.SortFunc(sorted, func(a, b Entry) int { return comparePaths(a.Name, b.Name) })
		got, gp, n, err := stream(sorted, PackOptions{Compression: c})
		if err != nil || !bytes.Equal(got, want) || gp != wp || n != len(ents) {
			t.Fatalf("%s: PackStream = %+v, %d, %v; Pack = %+v", c, gp, n, err, wp)
		}
	}

	t0 := time.Unix(1, 0)
	first, second := dirEntry("d", 0o700, t0), dirEntry("d", 0o755, t0)
	blob, _, n, err := stream([]Entry{first, second, memEntry("d/f", "x", 0o644, t0)}, PackOptions{})
	if err != nil || n != 2 {
		t.Fatalf("replace: %d entries, %v", n, err)
	}
	if got := listing(tarHeaders(t, blob)); got != "d/ 5 mode=755 uid=0 gid=0 size=0 mtime=1\nd/f 0 mode=644 uid=0 gid=0 size=1 mtime=1\n" {
		t.Errorf("replace: got\n%s", got)
	}

	for _, bad := range [][]Entry{
		{memEntry("a.b", "", 0o644, t0), memEntry("a/b", "", 0o644, t0)},
		{memEntry("b", "", 0o644, t0), memEntry("a", "", 0o644, t0)},
		{memEntry("a", "", 0o644, t0), memEntry("b", "", 0o644, t0), memEntry("a", "", 0o644, t0)},
	} {
		if _, _, _, err := stream(bad, PackOptions{}); !errors.Is(err, ErrOrder) {
			t.Errorf("%s then %s: %v, want ErrOrder", bad[0].Name, bad[1].Name, err)
		}
	}
	if _, _, _, err := stream([]Entry{{Name: "../x", Mode: fs.ModeDir}}, PackOptions{}); err == nil {
		t.Error("an escaping name was packed")
	}
	if _, _, n, err := stream(nil, PackOptions{}); err != nil || n != 0 {
		t.Errorf("nothing: %d entries, %v", n, err)
	}
}

// selfDigesting is a writer that digests what it is given.
type selfDigesting struct {
	bytes.Buffer
	h hash.Hash
}

func (s *selfDigesting) Write(p []byte) (int, error) {
	s.h.Write(p)
	return s.Buffer.Write(p)
}

func (s *selfDigesting) Digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, s.h.Sum(nil))
}

// TestPackSelfDigestingWriter: with a writer that digests what it is
// given, Pack takes the blob digest from it: the same digest and bytes.
func TestPackSelfDigestingWriter(t *testing.T) {
	want, wp := pack(t, sampleEntries(), PackOptions{})
	w := &selfDigesting{h: sha256.New()}
	p, err := Pack(context.Background(), w, sampleEntries(), PackOptions{})
	if err != nil || p != wp || !bytes.Equal(w.Bytes(), want) || p.Digest != digest.FromBytes(want) {
		t.Fatalf("Pack to a digesting writer = %+v, %v; want %+v", p, err, wp)
	}
}
