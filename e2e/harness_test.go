// Package e2e runs the real builder binary end to end, as root, on a busybox
// base image made from Debian's busybox-static.
package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

var (
	baseOnce sync.Once
	baseTar  string
	baseErr  error
)

// busyboxTar returns the path of the busybox:latest OCI archive (made once).
func busyboxTar(t testing.TB) string {
	t.Helper()
	baseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "builder-e2e-base-")
		if err != nil {
			baseErr = err
			return
		}
		baseTar = filepath.Join(dir, "busybox.tar")
		baseErr = testutil.WriteBusyboxImage(baseTar, testutil.BusyboxOptions{Name: "busybox:latest"})
	})
	if baseErr != nil {
		t.Fatalf("make busybox image: %v", baseErr)
	}
	return baseTar
}

// env is one isolated builder state dir with busybox:latest loaded.
type env struct {
	t    testing.TB
	bin  string
	root string
	// env is added to every run's environment; prefix, when set, is the
	// command that runs builder (e.g. unshare ... exec "$@").
	env    []string
	prefix []string
}

// newEnv makes a fresh --root with the busybox base loaded. Root only.
func newEnv(t testing.TB) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	e := &env{t: t, bin: testutil.BuildBinary(t), root: filepath.Join(t.TempDir(), "root")}
	e.mustRun("load", "-i", busyboxTar(t))
	return e
}

// result of one builder invocation.
type result struct {
	stdout, stderr string
	code           int
}

// run runs builder --root <root> args... with extra environment.
func (e *env) runEnv(extraEnv []string, stdin string, args ...string) result {
	e.t.Helper()
	argv := append([]string{e.bin, "--root", e.root}, args...)
	if len(e.prefix) > 0 {
		argv = append(slices.Clone(e.prefix), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = slices.Concat(os.Environ(), e.env, extraEnv)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run builder %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runEnv(nil, "", args...)
}

// mustRun runs builder and fails the test on a non-zero exit.
func (e *env) mustRun(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("builder %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// writeContext makes a build context from a map of relative path -> content
// ("Dockerfile" included). Paths ending in "/" are directories.
func writeContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctx")
	for name, data := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
