package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/client"
)

func TestTTYCut(t *testing.T) {
	for _, c := range []struct {
		line string
		cols int
		want string
	}{
		{"short", 80, "short"},
		{"abcdefghij", 6, "abcde"},
		{twoColumns("=> [s 1/2] RUN make", "DONE 1.2s"), 40, "=> [s 1/2] RUN make           DONE 1.2s"},
		{twoColumns("=> [s 1/2] RUN make all the things", "DONE 1.2s"), 30, "=> [s 1/2] RUN m... DONE 1.2s"},
		{twoColumns("=> [s 1/2] RUN make", "DONE 1.2s"), 12, "=> [s 1/2] "},
		{"日本語のテキスト", 7, "日本語"}, // two cells a rune
	} {
		got := cut(c.line, c.cols)
		if got != c.want {
			t.Errorf("cut(%q, %d) = %q, want %q", c.line, c.cols, got, c.want)
		}
		if cells(got) > c.cols-1 {
			t.Errorf("cut(%q, %d) is %d cells wide", c.line, c.cols, cells(got))
		}
	}
}

func TestTTYCleanLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "plain",
		"a\tb":                      "a    b",
		"10%\r50%\r100%":            "100%",
		"\x1b[31mred\x1b[0m":        "red",
		"\x1b]0;title\x07text":      "text",
		"bell\x07 and nul\x00":      "bell and nul",
		"bad \xff utf8":             "bad \uFFFD utf8",
		"crlf\r":                    "crlf",
		"\x1b[2J\x1b[Hcleared?":     "cleared?",
		"cursor\x1b[10Aup":          "cursorup",
		"osc st \x1b]8;;x\x1b\\end": "osc st end",
	} {
		if got := cleanLine([]byte(in)); got != want {
			t.Errorf("cleanLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTTYFrames: a frame moves up over the live area drawn before, and
// every line fits the width, also after the terminal got narrower.
func TestTTYFrames(t *testing.T) {
	var out bytes.Buffer
	cols := 40
	p := newTTYProgress(&out, func() (int, int) { return cols, 10 })
	p.ticked = true // no ticker: frames drawn by hand
	p.Report(client.Event{Kind: client.StepStart, ID: 1, Name: "[a 1/2] RUN a long command that does not fit"})
	p.Report(client.Event{Kind: client.StepLog, ID: 1, Data: []byte("one\ntwo\nthree\n")})
	p.draw(true)
	first := out.String()
	if strings.Contains(first, "\x1b[") && strings.Contains(first, "A\r") {
		t.Errorf("first frame moves up: %q", first)
	}
	for _, l := range strings.Split(strings.TrimSuffix(first, "\x1b[J"), "\x1b[K\n") {
		if cells(l) > cols-1 {
			t.Errorf("line %q is wider than %d", l, cols-1)
		}
	}
	out.Reset()
	cols = 20
	p.Report(client.Event{Kind: client.StepDone, ID: 1, Name: "[a 1/2] RUN a long command that does not fit", Duration: time.Second})
	p.draw(true)
	// 5 lines were drawn: the header (wider than 20: two rows now), the
	// step (two rows), three of output.
	if !strings.HasPrefix(out.String(), "\x1b[7A\r") {
		t.Errorf("second frame does not move up over the 7 rows of the first: %q", out.String())
	}
	if !strings.Contains(out.String(), "=> [a ... DONE 1.0s\x1b[K\n") {
		t.Errorf("no finished line: %q", out.String())
	}
}

// TestTTYConcurrent: parallel stages report while the ticker draws (run
// with -race); the last frame leaves no live area.
func TestTTYConcurrent(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(b)
	})
	p := newTTYProgress(w, func() (int, int) { return 60, 20 })
	start := time.Now()
	var wg sync.WaitGroup
	for id := 1; id <= 4; id++ {
		wg.Go(func() {
			name := fmt.Sprintf("[s%d 1/1] RUN work", id)
			p.Report(client.Event{Kind: client.StepStart, ID: id, Name: name})
			for i := range 100 {
				p.Report(client.Event{Kind: client.StepLog, ID: id, Data: fmt.Appendf(nil, "line %d\n", i)})
				time.Sleep(5 * time.Millisecond)
			}
			p.Report(client.Event{Kind: client.StepDone, ID: id, Name: name, Duration: time.Second})
		})
	}
	fmt.Fprintln(p, "pull busybox: done") // registry progress
	wg.Wait()
	p.FailureTail()
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	s := out.String()
	for id := 1; id <= 4; id++ {
		if !strings.Contains(s, fmt.Sprintf("=> [s%d 1/1] RUN work", id)) {
			t.Errorf("step %d never finished on screen", id)
		}
	}
	if !strings.Contains(s, "pull busybox: done\x1b[K\n") {
		t.Errorf("registry progress not shown")
	}
	last := s[strings.LastIndex(s, "\x1b[J"):]
	if last != "\x1b[J" {
		t.Errorf("output after the last frame: %q", last)
	}
	// One frame a tick at most, whatever the events (400 logs here).
	if n, most := strings.Count(s, "[+] Building"), int(elapsed/ttyFrame)+1; n < 2 || n > most {
		t.Errorf("%d frames in %v, want from 2 to %d", n, elapsed, most)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
