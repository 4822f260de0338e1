package e2e

// Every cache miss explained: a step that runs says the first input that
// differs from the last build of the same Dockerfile and target, and
// --expect-cached turns the first such step into a failure.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var missLine = regexp.MustCompile(`(?m)^#\d+ cache miss: (.*)$`)

// misses returns the cache miss lines of a build, in order.
func misses(stderr string) []string {
	var out []string
	for _, m := range missLine.FindAllStringSubmatch(stderr, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestExplainMisses(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile":  "FROM busybox:latest\nARG VERSION=1.2\nENV MODE=fast\nCOPY src /app/src\nRUN echo $VERSION $MODE > /v\n",
		"src/main.go": "package main\n",
		"src/util.go": "package main // util\n",
	})
	build := func(flags ...string) result {
		t.Helper()
		return e.mustRun(append([]string{"build", "--progress", "plain", dir, "-t", "ex:1"}, flags...)...)
	}
	if got := misses(build().stderr); len(got) != 0 {
		t.Fatalf("first build: no earlier build to compare with, yet %q", got)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		what  string
		do    func()
		flags []string
		want  []string
	}{
		{"a file changed", func() { write("src/main.go", "package main // v2\n") }, nil,
			[]string{"src/main.go changed", "the step before it missed"}},
		{"files added", func() {
			write("src/a.go", "a\n")
			write("src/b.go", "b\n")
			write("src/c.go", "c\n")
		}, nil, []string{"3 files added (src/a.go, src/b.go, src/c.go)", "the step before it missed"}},
		{"a file removed", func() { os.Remove(filepath.Join(dir, "src/util.go")) }, nil,
			[]string{"src/util.go removed", "the step before it missed"}},
		{"a build arg", func() {}, []string{"--build-arg", "VERSION=1.3"},
			[]string{"build arg VERSION changed (1.2 -> 1.3)"}},
		{"an ENV", func() {
			write("Dockerfile", "FROM busybox:latest\nARG VERSION=1.2\nENV MODE=slow\nCOPY src /app/src\nRUN echo $VERSION $MODE > /v\n")
		}, []string{"--build-arg", "VERSION=1.3"}, []string{"ENV MODE changed (fast -> slow)"}},
		{"--no-cache", func() {}, []string{"--build-arg", "VERSION=1.3", "--no-cache"}, []string{"--no-cache", "--no-cache"}},
	}
	for _, s := range steps {
		s.do()
		got := misses(build(s.flags...).stderr)
		if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
			t.Errorf("%s: misses %q, want %q", s.what, got, s.want)
		}
	}

	// The base image changes under the same name: the first step says so.
	other := writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nRUN echo other > /other\n"})
	e.mustRun("build", "--progress", "quiet", other, "-t", "busybox:latest")
	got := misses(build("--build-arg", "VERSION=1.3").stderr)
	if len(got) != 2 || !strings.HasPrefix(got[0], "the image or stage it starts from changed (now sha256:") {
		t.Errorf("base image changed: misses %q", got)
	}

	// --expect-cached: passes on a fully cached build, fails (exit 1) at
	// the first step that would run, with its line and why.
	if r := e.run("build", "--progress", "plain", dir, "-t", "ex:1", "--build-arg", "VERSION=1.3", "--expect-cached"); r.code != 0 {
		t.Fatalf("--expect-cached on a cached build: exit %d\n%s", r.code, r.stderr)
	}
	write("src/main.go", "package main // v3\n")
	r := e.run("build", "--progress", "plain", dir, "-t", "ex:1", "--build-arg", "VERSION=1.3", "--expect-cached", "--explain")
	if want := "Dockerfile:4: COPY src /app/src: not cached (--expect-cached): src/main.go changed"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("--expect-cached after a change: exit %d, want 1 and %q\n%s", r.code, want, r.stderr)
	}
	if strings.Contains(r.stderr, "RUN echo") && strings.Contains(r.stderr, "RUN echo $VERSION $MODE > /v DONE") {
		t.Errorf("--expect-cached ran a step after the first miss:\n%s", r.stderr)
	}

	// A fully cached build of other inputs becomes the last build: a change
	// after it is explained against it, not against an older build.
	dir2 := writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nARG V\nRUN echo $V > /v\nCOPY note.txt /n\n", "note.txt": "1\n"})
	for _, v := range []string{"V=1", "V=2", "V=1"} {
		e.mustRun("build", "--progress", "plain", dir2, "--build-arg", v)
	}
	if err := os.WriteFile(filepath.Join(dir2, "note.txt"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := misses(e.mustRun("build", "--progress", "plain", dir2, "--build-arg", "V=1").stderr); strings.Join(got, "|") != "note.txt changed" {
		t.Errorf("after a fully cached build: misses %q, want [note.txt changed]", got)
	}
}

// TestErrorExcerpt: a failed build shows the Dockerfile around the failing
// line, marked, and a failed RUN's last output lines again.
func TestErrorExcerpt(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nENV A=1\nRUN echo one; echo two >&2; exit 3\nCOPY x /\n"})
	r := e.run("build", "--progress", "plain", dir)
	want := `error: Dockerfile:3: RUN echo one; echo two >&2; exit 3: exit code 3
Dockerfile:3
--------------------
 1 |     FROM busybox:latest
 2 |     ENV A=1
 3 | >>> RUN echo one; echo two >&2; exit 3
 4 |     COPY x /
--------------------
`
	if r.code != 1 || !strings.HasSuffix(r.stderr, want) {
		t.Errorf("exit %d; want stderr to end with\n%s\ngot:\n%s", r.code, want, r.stderr)
	}
	tail := "------ last output of #2 [stage-0 2/3] RUN echo one; echo two >&2; exit 3 ------\n  one\n  two\n------\n"
	if !strings.Contains(r.stderr, tail) {
		t.Errorf("the failed RUN's last output is not shown again:\n%s", r.stderr)
	}
	dir = writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nCOPY missing.txt /\n"})
	r = e.run("build", dir)
	if !strings.Contains(r.stderr, " 2 | >>> COPY missing.txt /\n") {
		t.Errorf("no excerpt for a missing COPY source:\n%s", r.stderr)
	}
	// A typo: the suggestion, and the line in the excerpt.
	dir = writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nCOPPY missing.txt /\n"})
	r = e.run("build", dir)
	if !strings.Contains(r.stderr, "error: Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)\n") ||
		!strings.Contains(r.stderr, " 2 | >>> COPPY missing.txt /\n") {
		t.Errorf("no suggestion or excerpt for an unknown instruction:\n%s", r.stderr)
	}
}

// TestProgressRawJSONAndMetadata: --progress rawjson is one JSON object a
// line (golden, times masked), and --metadata-file holds the digests the
// store has.
func TestProgressRawJSONAndMetadata(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nRUN echo hello\nCOPY f /f\n", "f": "f\n"})
	meta := filepath.Join(t.TempDir(), "meta.json")
	r := e.mustRun("build", "--progress", "rawjson", "--metadata-file", meta, dir, "-t", "json:1")
	var kinds []string
	var manifest string
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not a JSON line: %q (%v)", line, err)
		}
		if _, ok := ev["time"].(float64); !ok {
			t.Errorf("event without a time: %q", line)
		}
		k := ev["kind"].(string)
		if k == "log" {
			k += ":" + strings.TrimSpace(ev["data"].(string))
		}
		if k == "result" {
			manifest = ev["manifest"].(string)
		}
		kinds = append(kinds, k)
	}
	want := "start done start log:hello done start done result"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("rawjson events: %s\nwant %s", got, want)
	}
	var m map[string]any
	readJSON(t, meta, &m)
	digest, _ := regInspect(t, e, "json:1")
	if m["containerimage.digest"] != digest || digest != manifest || m["image.name"] != "json:1" {
		t.Errorf("metadata %v: want the store's manifest %s (rawjson said %s)", m, digest, manifest)
	}
	r = e.mustRun("build", "--progress", "rawjson", "--metadata-file", meta, dir, "-t", "json:1")
	readJSON(t, meta, &m)
	if m["builder.cache.hits"] != float64(2) || m["builder.steps"] != float64(3) {
		t.Errorf("rebuild metadata: %v, want 2 hits of 3 steps", m)
	}
}

// TestProgressRawJSONFailure: a failed build in rawjson mode is JSON to
// the last line, the failure an event naming the line.
func TestProgressRawJSONFailure(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nRUN echo before\nRUN exit 4\n"})
	r := e.run("build", "--progress", "rawjson", dir)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	var last map[string]any
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
	}
	if last["kind"] != "failed" || last["line"] != float64(3) || !strings.Contains(last["error"].(string), "exit code 4") {
		t.Errorf("last event %v, want the failure at line 3", last)
	}
}
