package parser

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

var update = flag.Bool("update", false, "rewrite golden files")

// dump renders a parse result as stable text: stages, commands with their
// lines, warnings, or the error.
func dump(df *Dockerfile, err error) string {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
		return b.String()
	}
	fmt.Fprintf(&b, "escape: %q\n", df.Escape)
	for _, a := range df.MetaArgs {
		for _, kv := range a.Args {
			fmt.Fprintf(&b, "meta-arg line %d: %s=%s\n", Line(&a), kv.Key, kv.ValueString())
		}
	}
	for i, s := range df.Stages {
		fmt.Fprintf(&b, "stage %d name=%q base=%q platform=%q\n", i, s.Name, s.BaseName, s.Platform)
		for _, c := range s.Commands {
			fmt.Fprintf(&b, "  line %d: %T %s\n", Line(c), c, strings.ReplaceAll(fmt.Sprint(c), "\n", `\n`))
			if r, ok := c.(*instructions.RunCommand); ok {
				fmt.Fprintf(&b, "    cmdline=%q shell=%v files=%d\n", r.CmdLine, r.PrependShell, len(r.Files))
			}
			if cp, ok := c.(*instructions.CopyCommand); ok {
				fmt.Fprintf(&b, "    srcs=%q dest=%q from=%q chown=%q chmod=%q heredocs=%d\n", cp.SourcePaths, cp.DestPath, cp.From, cp.Chown, cp.Chmod, len(cp.SourceContents))
			}
		}
	}
	ws, err := df.Check(CheckOptions{})
	for _, w := range ws {
		fmt.Fprintf(&b, "warning: %s\n", w.Short())
	}
	if err != nil {
		fmt.Fprintf(&b, "check error: %v\n", err)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d golden Dockerfiles", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			got := dump(Parse(in, "Dockerfile"))
			golden := strings.TrimSuffix(f, ".Dockerfile") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./parser -update)", err)
			}
			if got != string(want) {
				t.Errorf("mismatch for %s\n--- got\n%s--- want\n%s", f, got, want)
			}
		})
	}
}

func TestErrorLine(t *testing.T) {
	tests := []struct {
		src  string
		line int
		msg  string
	}{
		{"FROM a\nFOO bar\n", 2, "unknown instruction: FOO"},
		{"FROM a\n\nCOPY --bogus=1 a b\n", 3, "unknown flag: --bogus"},
		{"", 0, "file with no instructions"},
		{"ARG X\n", 1, "no FROM instruction"},
		{"FROM a\nCOPY onlyone\n", 2, "COPY requires at least two arguments"},
		{"FROM a AS b c\n", 1, "FROM requires either one or three arguments"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.src), "Dockerfile")
		pe, ok := err.(*Error)
		if !ok {
			t.Errorf("%q: error %v (%T), want *Error", tt.src, err, err)
			continue
		}
		if pe.Line != tt.line || !strings.Contains(pe.Error(), tt.msg) {
			t.Errorf("%q: got line %d %q, want line %d containing %q", tt.src, pe.Line, pe.Error(), tt.line, tt.msg)
		}
		if tt.line > 0 && !strings.HasPrefix(pe.Error(), fmt.Sprintf("Dockerfile:%d: ", tt.line)) {
			t.Errorf("%q: %q lacks the Dockerfile:N: prefix", tt.src, pe.Error())
		}
	}
}
