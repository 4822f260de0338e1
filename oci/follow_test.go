package oci

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// readAsync reads r to its end in another goroutine, in reads of random
// sizes; the result arrives on the channel.
type readResult struct {
	data []byte
	err  error
}

func readAsync(r io.Reader, seed uint64) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		rng := rand.New(rand.NewPCG(seed, 7))
		var out bytes.Buffer
		buf := make([]byte, 1<<20)
		for {
			n, err := r.Read(buf[:1+rng.IntN(len(buf))])
			out.Write(buf[:n])
			if err == io.EOF {
				ch <- readResult{out.Bytes(), nil}
				return
			}
			if err != nil {
				ch <- readResult{out.Bytes(), err}
				return
			}
		}
	}()
	return ch
}

func recv(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("follower blocked")
		return readResult{}
	}
}

// waitBlocked gives a follower's reading goroutine time to catch up and
// wait; the tests hold either way, they only cover more when it did.
func waitBlocked() {
	for range 20 {
		runtime.Gosched()
	}
	time.Sleep(10 * time.Millisecond)
}

func TestFollow(t *testing.T) {
	s := openStore(t)
	rng := rand.New(rand.NewPCG(1, 2))

	t.Run("concurrent", func(t *testing.T) {
		// Followers started before and during the writes read every byte
		// in order, whatever the sizes of the writes and the reads, and
		// whether the bytes go to the file through the page cache or, a
		// chunk at a time, with O_DIRECT (past directFrom).
		defer func(old int64) { directFrom = old }(directFrom)
		for round, from := range []int64{1 << 30, 0, 8192, 10000, 1 << 30, 0} {
			directFrom = from
			data := testutil.RandomBytes(rng, 1+rng.IntN(12<<20))
			w, err := s.Writer(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var results []<-chan readResult
			follow := func() {
				r, err := w.Follow()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				results = append(results, readAsync(r, uint64(round*10+len(results))))
			}
			follow()
			for rest, i := data, 0; len(rest) > 0; i++ {
				n := min(len(rest), 1+rng.IntN(512<<10))
				if rng.IntN(4) == 0 {
					n = min(len(rest), 1+rng.IntN(16))
				}
				if _, err := w.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
				if i == 3 {
					follow() // starts from the beginning, too
				}
				if rng.IntN(3) == 0 {
					runtime.Gosched()
				}
			}
			d, _, err := w.Commit(digest.FromBytes(data))
			if err != nil {
				t.Fatal(err)
			}
			for i, ch := range results {
				res := recv(t, ch)
				if res.err != nil || !bytes.Equal(res.data, data) {
					t.Fatalf("round %d follower %d: %d bytes (want %d), equal %v, err %v", round, i, len(res.data), len(data), bytes.Equal(res.data, data), res.err)
				}
			}
			if !s.Has(t.Context(), d) {
				t.Fatal("blob not stored")
			}
		}
	})

	t.Run("EOF after commit", func(t *testing.T) {
		data := []byte("committed blob")
		w, _ := s.Writer(t.Context())
		defer w.Close()
		r, err := w.Follow()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		w.Write(data)
		buf := make([]byte, 64)
		if n, err := io.ReadFull(r, buf[:len(data)]); err != nil || !bytes.Equal(buf[:n], data) {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		// Caught up: the next Read waits for the commit, then ends.
		ch := make(chan error, 1)
		go func() {
			_, err := r.Read(buf)
			ch <- err
		}()
		waitBlocked()
		select {
		case err := <-ch:
			t.Fatalf("Read returned %v before the commit", err)
		default:
		}
		if _, _, err := w.Commit(digest.FromBytes(data)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-ch:
			if err != io.EOF {
				t.Fatalf("Read after commit: %v, want io.EOF", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Read still blocked after the commit")
		}
		if _, err := w.Follow(); err == nil {
			t.Error("Follow after Commit succeeded")
		}
	})

	t.Run("reads the renamed file", func(t *testing.T) {
		// Commit renames the ingest file (or drops it when the blob is
		// there already): a follower that lags reads it all the same.
		data := testutil.RandomBytes(rng, 3<<20)
		for _, again := range []bool{false, true} {
			w, _ := s.Writer(t.Context())
			defer w.Close()
			r, err := w.Follow()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			w.Write(data)
			if _, _, err := w.Commit(digest.FromBytes(data)); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("blob stored before: %v: read %d bytes, %v", again, len(got), err)
			}
		}
	})

	t.Run("error after abort", func(t *testing.T) {
		for _, how := range []string{"close", "failed commit"} {
			w, _ := s.Writer(t.Context())
			r, err := w.Follow()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			w.Write([]byte("never stored"))
			buf := make([]byte, 4)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatal(err)
			}
			// One follower waits (caught up), the other has bytes to read:
			// both fail, none of them reads on.
			r2, _ := w.Follow()
			defer r2.Close()
			blocked := readAsync(r, 1)
			waitBlocked()
			if how == "close" {
				w.Close()
			} else if _, _, err := w.Commit(digest.FromString("other")); err == nil {
				t.Fatal("commit of the wrong digest succeeded")
			}
			if res := recv(t, blocked); !errors.Is(res.err, errIngestAborted) {
				t.Errorf("%s: blocked follower: %v, want the abort", how, res.err)
			}
			if n, err := r2.Read(make([]byte, 64)); n != 0 || !errors.Is(err, errIngestAborted) {
				t.Errorf("%s: follower with bytes left: %d, %v, want the abort", how, n, err)
			}
		}
	})

	t.Run("closed early", func(t *testing.T) {
		// A follower closed early leaves the writer alone; a Read blocked
		// on it ends.
		data := testutil.RandomBytes(rng, 8<<20)
		w, _ := s.Writer(t.Context())
		defer w.Close()
		r, err := w.Follow()
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data[:1000])
		if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		blocked := readAsync(r, 2)
		waitBlocked()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if res := recv(t, blocked); !errors.Is(res.err, os.ErrClosed) {
			t.Errorf("Read blocked during Close: %v, want os.ErrClosed", res.err)
		}
		if _, err := r.Read(make([]byte, 8)); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read after Close: %v, want os.ErrClosed", err)
		}
		r.Close() // twice is fine
		done := make(chan error, 1)
		go func() {
			for i := 1000; i < len(data); i += 64 << 10 {
				if _, err := w.Write(data[i:min(i+64<<10, len(data))]); err != nil {
					done <- err
					return
				}
			}
			_, _, err := w.Commit(digest.FromBytes(data))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("writer blocked by a closed follower")
		}
	})

	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp leftovers: %v", left)
	}
}
