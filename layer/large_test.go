package layer

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

const largeSize = 256 << 20

// largeFile makes a 256 MiB file of zeros and its entry. It is written
// whole: a sparse one would be packed as a sparse entry, holes skipped.
func largeFile(tb testing.TB) []Entry {
	tb.Helper()
	dir := tb.TempDir()
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for range largeSize / len(buf) {
		if _, err := f.Write(buf); err != nil {
			tb.Fatal(err)
		}
	}
	f.Close()
	es, err := DirEntries(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return es
}

func BenchmarkPackLarge(b *testing.B) {
	es := largeFile(b)
	for _, c := range []Compression{Gzip, Zstd} {
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(largeSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Pack(context.Background(), io.Discard, es, PackOptions{Compression: c}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPackLargeMemory checks that packing does not hold file contents in
// memory: allocation over the whole pack stays far below the file size.
func TestPackLargeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	es := largeFile(t)
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p, err := Pack(context.Background(), io.Discard, es, PackOptions{Compression: c})
			if err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%s: %d bytes compressed, %d KiB allocated, heap growth %d KiB", c, p.Size, allocated>>10, growth>>10)
			if allocated > 32<<20 || growth > 32<<20 {
				t.Errorf("packing %d MiB allocated %d MiB (heap growth %d MiB), want < 32 MiB", largeSize>>20, allocated>>20, growth>>20)
			}
		})
	}
}
