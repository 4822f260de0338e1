package cache

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBuildLog: builds come back oldest first, the log keeps the last
// MaxBuilds, a torn line (a crash mid-write) is skipped, long texts are
// clipped.
func TestBuildLog(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Builds(); err != nil || len(b) != 0 {
		t.Fatalf("empty log: %v, %v", b, err)
	}
	const n = 2*MaxBuilds + 7
	for i := 0; i < n; i++ {
		if i == n-10 { // among the builds kept: the next one must not be lost
			f, err := os.OpenFile(s.buildLogPath(), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString(`{"start":"2026-01-01T00:00:00Z","steps":[{"id":1,`) // torn: no newline either
			f.Close()
		}
		b := LoggedBuild{Start: time.Unix(int64(i), 0), Context: "/ctx", Target: string(rune('a' + i%26)),
			Steps: []LoggedStep{{ID: 1, Name: strings.Repeat("x", 2*maxLogText), Miss: "a.txt changed"}}}
		if err := s.AppendBuild(b); err != nil {
			t.Fatal(err)
		}
	}
	builds, err := s.Builds()
	if err != nil {
		t.Fatal(err)
	}
	if len(builds) != MaxBuilds {
		t.Fatalf("%d builds, want %d", len(builds), MaxBuilds)
	}
	for i, b := range builds {
		if want := int64(n - MaxBuilds + i); b.Start.Unix() != want {
			t.Fatalf("build %d started at %d, want %d", i, b.Start.Unix(), want)
		}
		if len(b.Steps) != 1 || b.Steps[0].Miss != "a.txt changed" || len(b.Steps[0].Name) != maxLogText+3 {
			t.Fatalf("build %d: steps %+v", i, b.Steps)
		}
	}
	data, err := os.ReadFile(s.buildLogPath())
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(data, []byte("\n")); lines > 2*MaxBuilds {
		t.Errorf("the log holds %d lines, want at most %d", lines, 2*MaxBuilds)
	}
}
