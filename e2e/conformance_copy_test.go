package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConformanceCopyChmodDirs checks the modes of the directories a
// COPY --chmod creates, as BuildKit (>= v0.21) makes them: fsutil's copy
// creates the missing parents of the destination, and the destination dir
// of a directory copy, with MkdirAll(mode) where mode is an octal
// --chmod's rwx bits, else 0755 (a symbolic --chmod, or none). Existing
// dirs keep their mode. An ADD archive is unpacked under 0755 dirs.
func TestConformanceCopyChmodDirs(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		line string
		want map[string]int64 // layer entry -> mode
	}{
		{"COPY --chmod=0640 f /p1/a/f", map[string]int64{"p1": 0o640, "p1/a": 0o640, "p1/a/f": 0o640}},
		{"COPY --chmod=4750 f /p2/b/", map[string]int64{"p2": 0o750, "p2/b": 0o750, "p2/b/f": 0o4750}},
		{"COPY --chmod=u+x f /p3/c/f", map[string]int64{"p3": 0o755, "p3/c": 0o755, "p3/c/f": 0o744}},
		{"COPY --chmod=0700 d /p4/new", map[string]int64{"p4": 0o700, "p4/new": 0o700, "p4/new/sub": 0o700, "p4/new/sub/g": 0o700}},
		{"COPY --chmod=0600 f /tmp/x/f", map[string]int64{"tmp": 0o1777, "tmp/x": 0o600, "tmp/x/f": 0o600}},
		{"COPY f /p5/q/f", map[string]int64{"p5": 0o755, "p5/q": 0o755, "p5/q/f": 0o644}},
		{"COPY --chmod=0711 d /p6/", map[string]int64{"p6": 0o711, "p6/sub": 0o711}},
		{"COPY --chmod=0600 d /p1/", map[string]int64{"p1": 0o640, "p1/sub": 0o600}}, // p1 exists: kept
		{"ADD --chmod=0700 a.tar /p7/", map[string]int64{"p7": 0o755, "p7/t": 0o644}},
	}
	df := "FROM busybox\n"
	for _, s := range steps {
		df += s.line + "\n"
	}
	dir := writeContext(t, map[string]string{
		"Dockerfile": df, "f": "data\n", "d/sub/g": "g\n", "a.tar": string(tarOf(t, []tarFile{{name: "t", body: "t\n", mode: 0o644}})),
	})
	e.mustRun("build", "--no-cache", dir, "-t", "chmoddirs:v1")
	img := e.runInspect("chmoddirs:v1")
	for i, s := range steps {
		ents := e.runLayerEntries(img, i-len(steps))
		for name, mode := range s.want {
			got := findRunEntry(ents, name)
			if got == nil {
				t.Errorf("%s: no entry %s in %v", s.line, name, runEntryNames(ents))
				continue
			}
			if got.mode != mode {
				t.Errorf("%s: %s mode %04o, want %04o", s.line, name, got.mode, mode)
			}
		}
	}
}

// TestConformanceDuplicateStageNames: as BuildKit's dockerfile2llb, a
// reused stage name is a DuplicateStageName warning (at the later FROM),
// not an error; FROM <name> takes the latest stage of that name before
// it, while COPY --from, RUN --mount from= and --target take the last one
// in the Dockerfile, which must come before the stage that uses it.
func TestConformanceDuplicateStageNames(t *testing.T) {
	e := newEnv(t)
	df := `FROM busybox AS a
RUN echo one > /v
FROM busybox AS a
RUN echo two > /v
FROM a AS viafrom
RUN echo "from=$(cat /v)"
FROM busybox AS A
RUN echo three > /v
FROM busybox AS final
COPY --from=viafrom /v /viafrom
COPY --from=a /v /copied
RUN --mount=from=a,target=/m echo "copy=$(cat /copied)" && echo "mount=$(cat /m/v)" && echo "via=$(cat /viafrom)"
`
	ctx := writeContext(t, map[string]string{"Dockerfile": df})
	r := e.mustRun("build", "--no-cache", ctx)
	wantOutputs(t, r.stderr, map[string]string{"from": "two", "copy": "three", "mount": "three", "via": "two"})
	for _, line := range []string{"3", "7"} {
		want := `WARNING: DuplicateStageName: Duplicate stage name "a", stage names should be unique (line ` + line + ")"
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "WARNING: DuplicateStageName"); n != 2 {
		t.Errorf("%d DuplicateStageName warnings, want 2:\n%s", n, r.stderr)
	}
	r = e.mustRun("build", "--no-cache", ctx, "--target", "a")
	wantOutputs(t, r.stderr, map[string]string{}) // builds the third a only
	if strings.Contains(r.stderr, "from=") {
		t.Errorf("--target a built the viafrom stage:\n%s", r.stderr)
	}

	// The last "a" comes after b: BuildKit cannot copy from it.
	ctx = writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS a\nFROM busybox AS b\nCOPY --from=a /etc/passwd /p\nFROM busybox AS a\n"})
	e.mustRun("build", ctx) // the target (last a) does not need b
	r = e.run("build", ctx, "--target", "b")
	if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:3") || !strings.Contains(r.stderr, "needs to be defined before") {
		t.Errorf("--target b: exit %d, want 1 at Dockerfile:3:\n%s", r.code, r.stderr)
	}
}

// COPY --link makes its layer as if onto an empty tree (new parent dirs
// 0755 root, whatever the base has there), so a new base keeps the step
// cached and the same layer is only rebased; with --chmod BuildKit falls
// back to a plain copy, which depends on its parent.
func TestConformanceCopyLink(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{
		"f": "linked\n",
		"Dockerfile": "ARG BASE=one\nFROM busybox AS one\nFROM busybox AS two\nRUN mkdir -m 700 /app && echo two > /two\n" +
			"FROM ${BASE}\nCOPY --link f /app/\nCOPY --link --chmod=600 f /plain/\nRUN stat -c %a /app > /mode\n",
	})
	e.mustRun("build", ctx, "-t", "link:one")
	r := e.mustRun("build", "--progress", "plain", "--build-arg", "BASE=two", ctx, "-t", "link:two")
	if !strings.Contains(r.stderr, "COPY --link f /app/") || countLines(r.stderr, "CACHED") != 1 {
		t.Fatalf("on a new base, only COPY --link should be cached:\n%s", r.stderr)
	}
	_, one := e.manifestLayers(t, "link:one")
	_, two := e.manifestLayers(t, "link:two")
	if len(one) != 4 || len(two) != 5 || one[1] != two[2] {
		t.Fatalf("the --link layer is not the same layer on both bases:\none %v\ntwo %v", one, two)
	}
	out := t.TempDir()
	e.mustRun("build", "--build-arg", "BASE=two", ctx, "-o", "type=local,dest="+out)
	// The linked layer's /app (0755) replaces the base's 0700 one.
	if got, _ := os.ReadFile(filepath.Join(out, "mode")); string(got) != "755\n" {
		t.Fatalf("/app after COPY --link onto a 0700 /app: mode %q, want 755", got)
	}
}
