package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// TestBuildHistory: `builder history` lists the last builds newest first
// (target, tags, duration, steps, hits, result) and `history show N` one
// of them step by step, with the miss reasons.
func TestBuildHistory(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS base\nRUN echo one\nCOPY a.txt /a.txt\n", "a.txt": "a\n"})
	e.mustRun("build", "-t", "hist:v1", "--target", "base", dir)
	cacheWrite(t, dir, "a.txt", "b\n")
	e.mustRun("build", "-t", "hist:v1", "--target", "base", dir)
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	if r := e.run("build", bad); r.code != 1 {
		t.Fatalf("failing build: exit %d\n%s", r.code, r.stderr)
	}

	out := e.mustRun("history").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	row := regexp.MustCompile(`\s{2,}`)
	want := [][]string{
		{"N", "STARTED", "TARGET", "TAGS", "DURATION", "STEPS", "HITS", "RESULT"},
		{"1", "", "(last stage)", "-", "", "1", "0", "failed: Dockerfile:2: RUN exit 3: exit code 3"},
		{"2", "", "base", "hist:v1", "", "3", "1", "ok"},
		{"3", "", "base", "hist:v1", "", "3", "0", "ok"},
	}
	if len(lines) != len(want) {
		t.Fatalf("history: %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, l := range lines {
		got := row.Split(strings.TrimSpace(l), -1)
		if len(got) != len(want[i]) {
			t.Fatalf("history line %q: %d columns, want %d", l, len(got), len(want[i]))
		}
		for j, w := range want[i] {
			if w != "" && got[j] != w {
				t.Errorf("history line %d column %s = %q, want %q", i, want[0][j], got[j], w)
			}
		}
		if i > 0 && !regexp.MustCompile(`^\d+\.\ds$`).MatchString(got[4]) {
			t.Errorf("duration %q", got[4])
		}
	}

	show := e.mustRun("history", "show", "2").stdout
	for _, w := range []string{
		"target base\n",
		"3 steps, 1 cached; ok\n",
		"tags hist:v1\n",
		"] RUN echo one CACHED ",
		"] COPY a.txt /a.txt DONE ",
		"#3 cache miss: a.txt changed\n",
	} {
		if !strings.Contains(show, w) {
			t.Errorf("history show 2 lacks %q:\n%s", w, show)
		}
	}
	if !regexp.MustCompile(`(?m)^manifest sha256:[0-9a-f]{64}$`).MatchString(show) {
		t.Errorf("history show 2 names no manifest:\n%s", show)
	}
	show = e.mustRun("history", "show", "1").stdout
	if !strings.Contains(show, "#2 [stage-0 2/2] RUN exit 3 ERROR ") || !strings.Contains(show, "#2 error: ") {
		t.Errorf("history show 1: no failed step:\n%s", show)
	}
	if r := e.run("history", "show", "4"); r.code != 2 || !strings.Contains(r.stderr, "no build 4") {
		t.Errorf("history show 4: exit %d, %s", r.code, r.stderr)
	}
}
