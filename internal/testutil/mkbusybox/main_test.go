package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

func TestRun(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("skipping: /bin/busybox not found (apt-get install busybox-static): %v", err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "busybox.tar")
	var stderr bytes.Buffer
	if err := run([]string{"-o", out, "-name", "busybox:latest"}, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	ref := filepath.Join(dir, "ref.tar")
	if err := testutil.WriteBusyboxImage(ref, testutil.BusyboxOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want, _ := os.ReadFile(ref)
	if !bytes.Equal(got, want) {
		t.Error("mkbusybox output differs from WriteBusyboxImage with default options")
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-o"}, {"-o", "x.tar", "extra"}, {"-bogus"}} {
		var stderr bytes.Buffer
		if err := run(args, &stderr); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
