package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/builderdev/builder/internal/testutil"

	"github.com/builderdev/builder/snapshot/sandbox"
)

func TestMain(m *testing.M) {
	if sandbox.IsInit() {
		sandbox.Main()
	}
	done := testutil.PrivateTempDir("builder-e2e-")
	code := m.Run()
	testutil.RemoveBuiltBinary()
	if baseTar != "" {
		os.RemoveAll(filepath.Dir(baseTar))
	}
	os.Exit(done(code))
}

func TestDemoBuilds(t *testing.T) {
	e := newEnv(t)
	out := t.TempDir()
	e.mustRun("build", "../testdata/demo", "-t", "demo:v1", "-o", "type=local,dest="+out)
	data, err := os.ReadFile(out + "/srv/app/message.txt")
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello from builder"; string(data[:len(want)]) != want {
		t.Fatalf("message.txt = %q", data)
	}
	r := e.mustRun("build", "../testdata/demo", "-t", "demo:v1")
	if n := countLines(r.stderr, "CACHED"); n != 6 {
		t.Fatalf("rebuild: %d CACHED steps, want 6:\n%s", n, r.stderr)
	}
}
