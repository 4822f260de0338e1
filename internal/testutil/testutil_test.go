package testutil

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d", port)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("listen on the free port: %v", err)
	}
	l.Close()
}

func TestRequiresRoot(t *testing.T) {
	ran := false
	t.Run("gate", func(t *testing.T) {
		RequiresRoot(t)
		ran = true
	})
	if want := os.Geteuid() == 0; ran != want {
		t.Errorf("RequiresRoot let the test run = %v, want %v", ran, want)
	}
}

func TestBuildBinary(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	mains, _ := filepath.Glob(filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "cmd", "builder", "*.go"))
	if len(mains) == 0 {
		t.Skip("skipping: cmd/builder has no Go files yet")
	}
	t.Cleanup(RemoveBuiltBinary)
	a := BuildBinary(t)
	b := BuildBinary(t)
	if a != b {
		t.Errorf("second BuildBinary built again: %s, %s", a, b)
	}
	if fi, err := os.Stat(a); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("binary %s: %v, %v", a, fi, err)
	}
}
