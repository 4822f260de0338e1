package bench

import (
	"strings"
	"testing"
)

// TestProgressJudge: the progress target is judged on CPU time, plain
// and tty against quiet, and the table shows every mode.
func TestProgressJudge(t *testing.T) {
	cpu := func(ms ...float64) []sample {
		var s []sample
		for _, m := range ms {
			s = append(s, sample{WallMS: 10 * m, UserMS: m / 2, SysMS: m / 2})
		}
		return s
	}
	r := &results{Mode: "full", Progress: &progressResult{Lines: 100000, Files: 20000, Bytes: map[string]int64{"plain": 1.5e6},
		Samples: map[string]map[string][]sample{
			"run-lines":  {"quiet": cpu(100, 90, 110), "plain": cpu(105, 104, 300), "tty": cpu(99, 100, 101)},
			"copy-files": {"quiet": cpu(400), "plain": cpu(410), "tty": cpu(480)},
		}}}
	r.judge()
	status := map[string]string{}
	for _, tg := range r.Targets {
		if strings.HasPrefix(tg.Target, "progress ") {
			status[strings.Fields(tg.Target)[1]] = tg.Status + " " + tg.Got
		}
	}
	if want := "holds plain 1.05x, tty 1.00x"; status["run-lines:"] != want {
		t.Errorf("run-lines: %q, want %q", status["run-lines:"], want)
	}
	if want := "MISSED plain 1.02x, tty 1.20x"; status["copy-files:"] != want {
		t.Errorf("copy-files: %q, want %q", status["copy-files:"], want)
	}
	var b strings.Builder
	r.progressTable(&b)
	for _, w := range []string{"| run-lines | plain | 1.05 s | 1.05x | 105 ms | 1.05x |", "| copy-files | tty |", "1.5 MB"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, b.String())
		}
	}
}
