//go:build linux

package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The harness's own pieces, on inputs small enough to read: the case
// format, the error normalization of both tools and the comparison rules.

func TestParseCase(t *testing.T) {
	c, err := parseCase("x", []byte("# comment\narg A=1\ntarget t\nsymlink l a\ntar x.tar src gz dot\n"+
		"-- Dockerfile --\nFROM @BASE@\n-- a --\nhello\n-- empty --\n-- d/b --\nb\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.target != "t" || len(c.args) != 1 || c.args[0] != "A=1" || len(c.actions) != 2 {
		t.Errorf("header: %+v", c)
	}
	want := map[string]string{"Dockerfile": "FROM @BASE@\n", "a": "hello\n", "empty": "", "d/b": "b\n"}
	for _, f := range c.files {
		if w, ok := want[f.path]; !ok || w != string(f.data) {
			t.Errorf("file %s = %q, want %q", f.path, f.data, w)
		}
		delete(want, f.path)
	}
	if len(want) != 0 {
		t.Errorf("files missing: %v", want)
	}
	for _, bad := range []string{
		"-- a --\nno dockerfile\n",
		"nope x\n-- Dockerfile --\nFROM x\n",
		"tar x.tar\n-- Dockerfile --\nFROM x\n",
		"tar x.tar src bz2\n-- Dockerfile --\nFROM x\n",
		"chmod 0755\n-- Dockerfile --\nFROM x\n",
	} {
		if _, err := parseCase("bad", []byte(bad)); err == nil {
			t.Errorf("parseCase(%q): no error", bad)
		}
	}
}

func TestMaterialize(t *testing.T) {
	c, err := parseCase("m", []byte("chmod 0700 d\nsymlink l a\nhardlink h a\ntar t.tar d\n"+
		"-- Dockerfile --\nFROM @BASE@ AS b\n-- a --\nA\n-- d/x --\nX\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ctx")
	if err := c.materialize(dir, "reg:5000/base:v1"); err != nil {
		t.Fatal(err)
	}
	if df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile")); string(df) != "FROM reg:5000/base:v1 AS b\n" {
		t.Errorf("Dockerfile = %q", df)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "l")); target != "a" {
		t.Errorf("symlink -> %q", target)
	}
	a, _ := os.Stat(filepath.Join(dir, "a"))
	h, _ := os.Stat(filepath.Join(dir, "h"))
	if !os.SameFile(a, h) {
		t.Error("h is not a hard link to a")
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
		t.Errorf("d left after tar: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "t.tar")); err != nil || fi.Size() == 0 {
		t.Errorf("t.tar: %v", err)
	}
}

func TestErrorSummary(t *testing.T) {
	buildkit := "#5 [2/2] RUN exit 3\n#5 ERROR: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3\n" +
		"Dockerfile:4\n--------------------\n   3 |     RUN true\n   4 | >>> RUN exit 3\n--------------------\n" +
		"error: failed to solve: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3\n"
	builder := "WARNING: Dockerfile:2: JSONArgsRecommended: JSON arguments recommended for CMD\n" +
		"error: Dockerfile:4: RUN exit 3: exit code 3\nDockerfile:4\n--------------------\n 4 | >>> RUN exit 3\n"
	noLine := "error: failed to solve: failed to load LLB: security.insecure is not allowed\n"
	parse := "error: failed to solve: dockerfile parse error on line 3: unknown instruction: FOO\n"
	for _, tt := range []struct{ stderr, want string }{
		{buildkit, "error.exit: 1\nerror.line: 4\nerror.code: 3\n"},
		{builder, "error.exit: 1\nerror.line: 4\nerror.code: 3\n"},
		{noLine, "error.exit: 1\nerror.line: none\nerror.code: none\n"},
		{parse, "error.exit: 1\nerror.line: 3\nerror.code: none\n"},
	} {
		s := errorSummary(1, tt.stderr)
		got := strings.Join(strings.SplitAfter(s.String(), "\n")[strings.Count(s.note, "\n")+1:], "")
		if got != tt.want {
			t.Errorf("errorSummary(%q) =\n%s\nwant\n%s", tt.stderr, got, tt.want)
		}
	}
}

func TestCompareSummaries(t *testing.T) {
	golden, err := parseSummary("# BuildKit's result\n" +
		`history[1]: created_by="RUN x" empty_layer=false comment="buildkit.dockerfile.v0" created=0` + "\n" +
		"layer[1] /dev: dir 0755 0:0 mtime=0\nlayer[1] /a: file 0644 0:0\nconfig.User: \"www\"\n")
	if err != nil {
		t.Fatal(err)
	}
	got := &summary{}
	got.add("history[1]", `created_by="RUN x" empty_layer=false comment="builder.dockerfile.v0" created=0`)
	got.add("layer[1] /a", "file 0600 0:0")
	got.add("layer[1] /b", "file 0644 0:0")
	diffs, kept := compareSummaries("c", golden, got)
	var keys []string
	for _, d := range diffs {
		keys = append(keys, d.key)
	}
	// The comment and the /dev mount point are deliberate; the rest is not.
	if want := "layer[1] /a,config.User,layer[1] /b"; strings.Join(keys, ",") != want {
		t.Errorf("differences in %v, want %s", keys, want)
	}
	if len(kept) != 1 || kept[0] != "mount points" {
		t.Errorf("deliberate differences %v, want [mount points]", kept)
	}

	failed := errorSummary(1, "error: Dockerfile:2: COPY x /: not found\n")
	if d, _ := compareSummaries("c", golden, failed); len(d) != 1 || d[0].key != "result" {
		t.Errorf("one side failed: %v, want one result difference", d)
	}
}
