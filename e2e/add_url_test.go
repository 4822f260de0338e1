package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

// TestAddURL downloads ADD sources from a local HTTP server: mode 0600,
// mtime from Last-Modified, --checksum honoured, archives not extracted.
func TestAddURL(t *testing.T) {
	e := newEnv(t)
	payload := []byte("downloaded content\n")
	tarball := testutil.TarBytes(t, testutil.TarFile("inside.txt", "hi"))
	modified := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		switch r.URL.Path {
		case "/files/hello.txt":
			_, _ = w.Write(payload)
		case "/files/archive.tar":
			_, _ = w.Write(tarball)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sum := sha256.Sum256(payload)
	good := "sha256:" + hex.EncodeToString(sum[:])

	t.Run("download", func(t *testing.T) {
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" +
			"ADD " + srv.URL + "/files/hello.txt /dl/\n" +
			"ADD --checksum=" + good + " " + srv.URL + "/files/hello.txt /dl/checked.txt\n" +
			"ADD " + srv.URL + "/files/archive.tar /dl/\n"})
		out := filepath.Join(t.TempDir(), "rootfs")
		e.mustRun("build", ctx, "-t", "addurl:v1", "-o", "type=local,dest="+out)
		data, err := os.ReadFile(filepath.Join(out, "dl/hello.txt"))
		if err != nil || !bytes.Equal(data, payload) {
			t.Fatalf("dl/hello.txt = %q, %v", data, err)
		}
		fi, err := os.Stat(filepath.Join(out, "dl/hello.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("downloaded file mode %v, want 0600 (Docker's ADD URL mode)", fi.Mode().Perm())
		}
		if !fi.ModTime().Equal(modified) {
			t.Errorf("mtime %v, want Last-Modified %v", fi.ModTime(), modified)
		}
		if data, err := os.ReadFile(filepath.Join(out, "dl/checked.txt")); err != nil || !bytes.Equal(data, payload) {
			t.Errorf("dl/checked.txt = %q, %v", data, err)
		}
		if _, err := os.Stat(filepath.Join(out, "dl/archive.tar")); err != nil {
			t.Errorf("a remote archive must be kept as a file, not extracted: %v", err)
		}
		if _, err := os.Stat(filepath.Join(out, "dl/inside.txt")); err == nil {
			t.Error("remote archive was extracted")
		}
	})
	t.Run("unpack", func(t *testing.T) {
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD --unpack=true " + srv.URL + "/files/archive.tar /un/\n"})
		out := filepath.Join(t.TempDir(), "rootfs")
		e.mustRun("build", ctx, "-o", "type=local,dest="+out)
		if data, err := os.ReadFile(filepath.Join(out, "un/inside.txt")); err != nil || string(data) != "hi" {
			t.Errorf("ADD --unpack=true of a remote tar: un/inside.txt = %q, %v", data, err)
		}
	})
	t.Run("git source", func(t *testing.T) {
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + srv.URL + "/repo.git /src\n"})
		r := e.run("build", ctx)
		// A git URL is fetched with git: this server is no git server.
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2: ADD") || !strings.Contains(r.stderr, "resolve") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("bad checksum", func(t *testing.T) {
		bad := "sha256:" + strings.Repeat("0", 64)
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD --checksum=" + bad + " " + srv.URL + "/files/hello.txt /x\n"})
		r := e.run("build", ctx)
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2: ADD") || !strings.Contains(r.stderr, "checksum mismatch") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("not found", func(t *testing.T) {
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + srv.URL + "/missing /x\n"})
		r := e.run("build", ctx)
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2:") || !strings.Contains(r.stderr, "404") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}
