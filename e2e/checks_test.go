//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// checksDir holds the build checks' Dockerfiles and golden outputs
// (go test ./e2e -run TestChecks -update rewrites the goldens).
const checksDir = "../testdata/checks"

func readCheckFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(checksDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// checkGolden compares got with testdata/checks/<name>.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join(checksDir, name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./e2e -run TestChecks -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n%s", name, lineDiff(string(want), got))
	}
}

// summaryRe finds the line that starts the list of warnings at the end.
var summaryRe = regexp.MustCompile(`(?m)^ [0-9]+ warnings? found`)

// summary is what a build prints of its checks at the end: from the
// " N warnings found" line on.
func summary(stderr string) string {
	loc := summaryRe.FindStringIndex(stderr)
	if loc == nil {
		return ""
	}
	return stderr[loc[0]:]
}

// TestChecks: `build --check` prints BuildKit's build checks as buildx
// does and builds nothing (exit 1 with warnings, 0 without); every stage
// is checked, and the rules that need a base image see it (its platform
// here). A build checks the stages it builds and lists the warnings at
// the end; BUILDKIT_DOCKERFILE_CHECK replaces the # check= directive.
func TestChecks(t *testing.T) {
	e := newEnv(t)
	// A base image of another platform: InvalidBaseImagePlatform.
	other := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a\n"})
	e.mustRun("build", "--platform", "linux/s390x", "-t", "other", other)
	images := e.mustRun("images").stdout
	ctx := writeContext(t, map[string]string{"Dockerfile": readCheckFile(t, "rules.Dockerfile"),
		".dockerignore": readCheckFile(t, "rules.dockerignore"), "app.txt": "app\n", "secret.txt": "secret\n"})

	r := e.runEnv(offlineEnv, "", "build", "--check", ctx)
	if r.code != 1 {
		t.Errorf("--check with warnings: exit %d, want 1\n%s", r.code, r.stderr)
	}
	// The host's platform is what a build expects by default.
	checkGolden(t, "rules.check.golden", strings.ReplaceAll(r.stdout, `"linux/`+runtime.GOARCH+`"`, `"linux/$ARCH"`))
	if strings.Contains(r.stderr, "#1 ") || strings.Contains(r.stderr, "WARNING") {
		t.Errorf("--check built something or warned on stderr:\n%s", r.stderr)
	}
	if got := e.mustRun("images").stdout; got != images {
		t.Errorf("--check changed the store:\n%s\nwas:\n%s", got, images)
	}

	// A build: the target's stages only; each warning as it is found and
	// all of them at the end.
	r = e.runEnv(offlineEnv, "", "build", ctx)
	if r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	sum := summary(r.stderr)
	checkGolden(t, "rules.build.golden", sum)
	if n, m := len(regexp.MustCompile(`(?m)^WARNING: `).FindAllString(r.stderr, -1)), strings.Count(sum, "\n - "); n == 0 || n != m {
		t.Errorf("%d warnings as found, %d at the end:\n%s", n, m, r.stderr)
	}

	for _, args := range [][]string{{"build"}, {"build", "--check"}} {
		r = e.runEnv(offlineEnv, "", append(args, "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", ctx)...)
		if r.code != 0 || strings.Contains(r.stderr, "WARNING") || strings.Contains(r.stderr, "consumed") {
			t.Errorf("%v skip=all: exit %d\n%s", args, r.code, r.stderr)
		}
		if args[len(args)-1] == "--check" && r.stdout != "Check complete, no warnings found.\n" {
			t.Errorf("--check skip=all: stdout %q", r.stdout)
		}
	}
}

// TestChecksError: with # check=error=true a build that has warnings
// fails before any step runs, after listing them; --check prints them
// and the error.
func TestChecksError(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": readCheckFile(t, "error.Dockerfile")})
	r := e.run("build", ctx)
	if r.code != 1 {
		t.Errorf("build: exit %d, want 1", r.code)
	}
	checkGolden(t, "error.build.golden", r.stderr)
	if strings.Contains(r.stderr, "ran") {
		t.Errorf("a step ran:\n%s", r.stderr)
	}
	r = e.run("build", "--check", ctx)
	if r.code != 1 || r.stderr != "error: Dockerfile: lint violation found for rules: JSONArgsRecommended\n" {
		t.Errorf("--check: exit %d, stderr %q", r.code, r.stderr)
	}
	checkGolden(t, "error.check.golden", r.stdout)
	// The same Dockerfile without the warning builds.
	ctx = writeContext(t, map[string]string{"Dockerfile": strings.Replace(readCheckFile(t, "error.Dockerfile"), "CMD echo hi", `CMD ["echo", "hi"]`, 1)})
	if r = e.mustRun("build", ctx); !strings.Contains(r.stderr, "#") || strings.Contains(r.stderr, "WARNING") {
		t.Errorf("build without warnings:\n%s", r.stderr)
	}
	if r = e.mustRun("build", "--check", ctx); r.stdout != "Check complete, no warnings found.\n" {
		t.Errorf("--check without warnings: %q", r.stdout)
	}
}
