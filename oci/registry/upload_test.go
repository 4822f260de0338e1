package registry

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// TestBlobUpload streams blobs to a real registry in many writes (chunked,
// unknown length) and checks what the registry holds afterwards.
func TestBlobUpload(t *testing.T) {
	ctx := t.Context()
	addr := testutil.StartRegistry(t)
	u, err := NewUploader(ctx, addr+"/cache:x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	blob := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/v2/cache/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte { return testutil.RandomBytes(rng, n) }

	tests := []struct {
		name   string
		data   []byte
		commit func(d digest.Digest) digest.Digest // the digest Commit is given
		abort  bool
		want   string // error text of Commit; "" = none
	}{
		{name: "streamed", data: random(3<<20 + 17)},
		{name: "empty", data: nil},
		{name: "aborted", data: random(1 << 20), abort: true},
		{name: "wrong digest", data: random(4096), commit: func(digest.Digest) digest.Digest { return digest.FromString("other") }, want: "digest invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := digest.FromBytes(tc.data)
			up, err := u.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for rest := tc.data; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(300<<10))
				if _, err := up.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if up.Size() != int64(len(tc.data)) {
				t.Errorf("Size %d, want %d", up.Size(), len(tc.data))
			}
			if tc.abort {
				up.Abort()
				up.Abort() // twice is fine
				if err := up.Commit(d); err == nil {
					t.Error("Commit after Abort succeeded")
				}
				if code, _ := blob("blobs/" + d.String()); code != http.StatusNotFound {
					t.Errorf("aborted blob: GET %d, want 404", code)
				}
				// The session is gone too.
				if code, _ := blob("blobs/uploads/" + up.loc[strings.LastIndex(up.loc, "/")+1:]); code != http.StatusNotFound {
					t.Errorf("aborted session: GET %d, want 404", code)
				}
				return
			}
			cd := d
			if tc.commit != nil {
				cd = tc.commit(d)
			}
			err = up.Commit(cd)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Commit: %v, want an error with %q", err, tc.want)
				}
				if code, _ := blob("blobs/" + cd.String()); code != http.StatusNotFound {
					t.Errorf("blob of a failed commit: GET %d, want 404", code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			code, got := blob("blobs/" + d.String())
			if code != http.StatusOK || !bytes.Equal(got, tc.data) {
				t.Errorf("GET blob: %d, %d bytes, want 200 and the %d bytes written", code, len(got), len(tc.data))
			}
			up.Abort() // a no-op after Commit
			if code, _ := blob("blobs/" + d.String()); code != http.StatusOK {
				t.Errorf("Abort after Commit removed the blob: GET %d", code)
			}
		})
	}
}

// TestBlobUploadRegistryGone: an upload whose registry dies fails on
// Write or Commit, never hangs, and Abort returns.
func TestBlobUploadRegistryGone(t *testing.T) {
	ctx := t.Context()
	reg := testutil.RunRegistry(t, testutil.RegistryConfig{})
	u, err := NewUploader(ctx, reg.Addr+"/cache:x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	up, err := u.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	if _, err := up.Write(chunk); err != nil {
		t.Fatal(err)
	}
	reg.Kill()
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ { // 64 MiB at most: the socket buffers fill
		_, werr = up.Write(chunk)
	}
	cerr := up.Commit(digest.FromString("x"))
	if werr == nil && cerr == nil {
		t.Fatal("upload to a killed registry: no error from Write or Commit")
	}
	up.Abort()
}
