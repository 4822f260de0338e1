package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RequiresRoot skips the test when the process is not running as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: test needs root (mounts, namespaces, chown); run it as root, as CI does")
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// builtBinary builds cmd/builder at most once per test process, into its
// own temp dir; TestMain removes it with RemoveBuiltBinary.
var builtBinary = sync.OnceValues(buildBinary)

// RemoveBuiltBinary deletes the binary BuildBinary made, if any. Call it
// from TestMain after m.Run: no single test owns the shared binary.
func RemoveBuiltBinary() {
	builtDir.Lock()
	defer builtDir.Unlock()
	if builtDir.path != "" {
		_ = os.RemoveAll(builtDir.path)
		builtDir.path = ""
	}
}

// builtDir is the dir buildBinary made, for RemoveBuiltBinary.
var builtDir struct {
	sync.Mutex
	path string
}

// BuildBinary builds ./cmd/builder of the module under test (once per test
// process) and returns the path of the binary.
func BuildBinary(t testing.TB) string {
	t.Helper()
	path, err := builtBinary()
	if err != nil {
		t.Fatalf("build builder binary: %v", err)
	}
	return path
}

func buildBinary() (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("find go command: %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "builder-testbin-")
	if err != nil {
		return "", fmt.Errorf("create binary dir: %w", err)
	}
	builtDir.Lock()
	builtDir.path = dir
	builtDir.Unlock()
	bin := filepath.Join(dir, "builder")
	var stderr bytes.Buffer
	args := []string{"build", "-trimpath", "-o", bin}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if os.Getenv("BUILDER_TEST_RACE") == "1" {
		// The end-to-end tests then run a race-detecting binary, which
		// exits 66 after reporting a data race.
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.Command(gobin, append(args, "./cmd/builder")...)
	cmd.Dir = root
	cmd.Env = env
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/builder: %w\n%s", err, stderr.String())
	}
	return bin, nil
}

// moduleRoot is the directory of the module under test.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("run go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("locate module root: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// RandomBytes returns n bytes from rng: incompressible test data, the same
// for the same seed.
func RandomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
