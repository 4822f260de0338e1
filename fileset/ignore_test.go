package fileset

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestIgnore(t *testing.T) {
	tests := []struct {
		patterns []string
		excluded []string
		kept     []string
		reinc    bool // MayContainIncluded
	}{
		{nil, nil, []string{"a", "a/b", "", "."}, false},
		{[]string{"a"}, []string{"a", "a/b", "a/b/c"}, []string{"b", "ab", "b/a", "", "."}, false},
		{[]string{"*.log"}, []string{"x.log", "x.log/inner"}, []string{"d/x.log", "x.logs"}, false},
		{[]string{"**/*.log"}, []string{"x.log", "d/x.log", "d/e/x.log"}, []string{"x.txt"}, false},
		{[]string{"d/**"}, []string{"d/x", "d/e/f"}, []string{"dd/x"}, false},
		{[]string{"*", "!keep"}, []string{"a", "a/keep"}, []string{"keep"}, true},
		{[]string{"logs", "!logs/keep.log"}, []string{"logs", "logs/a.log"}, []string{"logs/keep.log"}, true},
		{[]string{"!x", "x"}, []string{"x"}, nil, true}, // the last match wins
		{[]string{"a?c"}, []string{"abc"}, []string{"ac", "abbc"}, false},
	}
	for _, tt := range tests {
		ig, err := NewIgnore(tt.patterns)
		if err != nil {
			t.Fatalf("NewIgnore(%q): %v", tt.patterns, err)
		}
		for _, p := range tt.excluded {
			if !ig.Excluded(p) {
				t.Errorf("%q: %q not excluded", tt.patterns, p)
			}
		}
		for _, p := range tt.kept {
			if ig.Excluded(p) {
				t.Errorf("%q: %q excluded", tt.patterns, p)
			}
		}
		if got := ig.MayContainIncluded(); got != tt.reinc {
			t.Errorf("%q: MayContainIncluded = %v", tt.patterns, got)
		}
		if got := ig.Empty(); got != (len(tt.patterns) == 0) {
			t.Errorf("%q: Empty = %v", tt.patterns, got)
		}
	}

	var none *Ignore
	if none.Excluded("a") || !none.Empty() || none.MayContainIncluded() {
		t.Error("a nil *Ignore must ignore nothing")
	}
	if _, err := NewIgnore([]string{"!"}); err == nil || err.Error() != `parse .dockerignore: illegal exclusion pattern: "!"` {
		t.Errorf(`NewIgnore("!") = %v`, err)
	}
}

func TestReadIgnore(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "custom.ignore")
	// BOM, comments, blanks, leading slashes and spaces, as ignorefile reads them.
	data := "\xef\xbb\xbf/secret\n# comment\n\n  *.log  \n! /logs/keep.log\nlogs\n!logs/keep.log\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	ig, err := ReadIgnore(p)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{"secret": true, "secret/x": true, "x.log": true, "logs/a": true,
		"logs/keep.log": false, "comment": false, "# comment": false, "other": false} {
		if got := ig.Excluded(rel); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", rel, got, want)
		}
	}
	if !ig.MayContainIncluded() {
		t.Error("MayContainIncluded = false with ! patterns")
	}

	ig, err = ReadIgnore(filepath.Join(dir, "missing"))
	if err != nil || !ig.Empty() {
		t.Errorf("ReadIgnore(missing) = %v, %v; want no patterns", ig, err)
	}
	// A directory cannot be read: the error names the file.
	_, err = ReadIgnore(dir)
	if err == nil || !errors.Is(err, syscall.EISDIR) || !strings.HasPrefix(err.Error(), "read "+dir+": ") {
		t.Errorf("ReadIgnore(dir) = %v", err)
	}
	// So does one that cannot be opened (a path through a file).
	through := filepath.Join(p, "x")
	if _, err = ReadIgnore(through); err == nil || err.Error() != "read "+through+": open "+through+": not a directory" {
		t.Errorf("ReadIgnore(through a file) = %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("a\n!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIgnore(bad); err == nil || err.Error() != `parse .dockerignore: illegal exclusion pattern: "!"` {
		t.Errorf("ReadIgnore(bad) = %v", err)
	}
}

// Stages match concurrently against one Ignore (run with -race).
func TestIgnoreConcurrent(t *testing.T) {
	ig, err := NewIgnore([]string{"**/*.log", "a/b*", "!a/b/keep", "c?d"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range []string{"x/y.log", "a/bc", "a/b/keep", "cxd", "other"} {
				want := p != "a/b/keep" && p != "other"
				if ig.Excluded(p) != want {
					errs <- p
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for p := range errs {
		t.Errorf("Excluded(%q) wrong under concurrency", p)
	}
}
