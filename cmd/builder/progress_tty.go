package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// newProgress makes the --progress renderer: auto is tty when stderr is a
// terminal (and TERM is not dumb), plain otherwise, as docker buildx.
func newProgress(cmd *cobra.Command, f *buildFlags) (progress, error) {
	w := cmd.ErrOrStderr()
	file, _ := w.(*os.File)
	isTerm := false
	if file != nil {
		_, _, err := termSize(file.Fd())
		isTerm = err == nil
	}
	mode := f.progress
	if mode == "auto" {
		mode = "plain"
		if isTerm && os.Getenv("TERM") != "dumb" {
			mode = "tty"
		}
	}
	switch {
	case f.quiet || mode == "quiet":
		return newPlainProgress(io.Discard), nil
	case mode == "plain":
		return newPlainProgress(w), nil
	case mode == "rawjson":
		return newJSONProgress(w), nil
	case mode == "tty":
		if !isTerm {
			return nil, usagef("--progress tty: stderr is not a terminal (use plain)")
		}
		return newTTYProgress(w, func() (int, int) {
			c, r, _ := termSize(file.Fd())
			return c, r
		}), nil
	}
	return nil, usagef("--progress must be auto, plain, tty, quiet or rawjson, not %q", f.progress)
}

// ttyProgress is --progress tty: a live view redrawn in place at most
// every ttyFrame. Finished steps scroll up as one line each ("=> [s 2/3]
// RUN make ... DONE 1.2s", with a miss reason under it when known); below
// them the live area shows a header, then each running step (parallel
// stages together, by name) with its timer and the last lines of its
// output. Every line is cut to the terminal's width, read again at each
// frame, so a narrow or resized terminal never wraps (and so never
// garbles) the area that is redrawn.
type ttyProgress struct {
	mu      sync.Mutex
	w       io.Writer
	size    func() (cols, rows int) // the terminal's, 0 when unknown
	start   time.Time
	running map[int]*ttyStep
	pending []string // finished lines not yet on screen
	drawn   []int    // widths of the live area's lines on screen
	cols    int      // the width they were drawn at
	steps   int      // finished steps (not failed)
	hits    int      // of which cached
	stopped bool
	stop    chan struct{}
	ticking sync.WaitGroup
	tails   map[int][]string // last output lines of each step (FailureTail)
	names   map[int]string
	failed  int
	partial []byte // registry progress text not yet ended by a newline
	ticked  bool
	checks  []client.CheckWarning // for CheckSummary (check.go)
}

type ttyStep struct {
	name    string
	start   time.Time
	lines   []string // the last ttyTail lines of output
	partial []byte
	miss    string
}

const (
	ttyFrame = 200 * time.Millisecond
	ttyTail  = 6 // output lines shown under a running step
)

func newTTYProgress(w io.Writer, size func() (int, int)) *ttyProgress {
	return &ttyProgress{w: w, size: size, start: time.Now(), running: map[int]*ttyStep{},
		stop: make(chan struct{}), tails: map[int][]string{}, names: map[int]string{}}
}

func (p *ttyProgress) Report(e client.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped && !p.ticked {
		p.ticked = true
		p.startTicker()
	}
	s := p.running[e.ID]
	switch e.Kind {
	case client.StepStart:
		p.running[e.ID] = &ttyStep{name: e.Name, start: time.Now()}
		p.names[e.ID] = e.Name
	case client.StepLog:
		if s == nil {
			return
		}
		buf := append(s.partial, e.Data...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			p.output(e.ID, s, buf[:i])
			buf = buf[i+1:]
		}
		s.partial = buf
	case client.CacheMiss:
		if s != nil {
			s.miss = e.Text
		}
	case client.Warning:
		p.permanent("WARNING: " + e.Text)
	case client.Lint:
		p.permanent("WARNING: " + e.Check.Short())
		p.checks = append(p.checks, *e.Check)
	case client.StepDone:
		if s == nil {
			s = &ttyStep{name: e.Name}
		}
		if len(s.partial) > 0 {
			p.output(e.ID, s, s.partial)
		}
		delete(p.running, e.ID)
		state := stepState(e)
		if state == "ERROR" && p.failed == 0 {
			p.failed = e.ID
		}
		if e.Err == nil {
			p.steps++
			if e.Cached {
				p.hits++
			}
		}
		p.permanent(twoColumns("=> "+e.Name, fmt.Sprintf("%s %.1fs", state, e.Duration.Seconds())))
		if s.miss != "" && !e.Cached {
			p.permanent("   cache miss: " + s.miss)
		}
	}
}

func (p *ttyProgress) output(id int, s *ttyStep, line []byte) {
	l := cleanLine(line)
	s.lines = append(s.lines, l)
	if len(s.lines) > ttyTail {
		s.lines = s.lines[len(s.lines)-ttyTail:]
	}
	t := append(p.tails[id], l)
	if len(t) > tailLines {
		t = t[len(t)-tailLines:]
	}
	p.tails[id] = t
}

// permanent queues a line that scrolls up above the live area (written
// at once when the view is stopped).
func (p *ttyProgress) permanent(l string) {
	if p.stopped {
		cols, _ := p.size()
		fmt.Fprintln(p.w, cut(l, cols))
		return
	}
	p.pending = append(p.pending, l)
}

// Write takes text other parts of the build print (registry progress):
// each line scrolls up above the live area.
func (p *ttyProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	buf := append(p.partial, b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		p.permanent(cleanLine(buf[:i]))
		buf = buf[i+1:]
	}
	p.partial = buf
	return len(b), nil
}

func (p *ttyProgress) startTicker() {
	p.ticking.Add(1)
	go func() {
		defer p.ticking.Done()
		t := time.NewTicker(ttyFrame)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.draw(true)
				p.mu.Unlock()
			}
		}
	}()
}

// finish draws the last frame (no live area) and stops the ticker.
func (p *ttyProgress) finish() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.stop)
	p.mu.Unlock()
	p.ticking.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(false)
}

// draw writes one frame: up over the live area on screen, the finished
// lines, then (live) the live area again, then clears what is below.
func (p *ttyProgress) draw(live bool) {
	cols, rows := p.size()
	if cols <= 0 {
		cols = 80
	}
	if rows <= 0 {
		rows = 24
	}
	if live && len(p.pending) == 0 && len(p.running) == 0 && len(p.drawn) == 0 {
		return
	}
	var b bytes.Buffer
	if up := p.onScreen(cols); up > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r", up)
	}
	for _, l := range p.pending {
		b.WriteString(cut(l, cols))
		b.WriteString("\x1b[K\n")
	}
	p.pending = p.pending[:0]
	p.drawn, p.cols = p.drawn[:0], cols
	if live {
		for _, l := range p.liveLines(rows - 1) {
			l = cut(l, cols)
			p.drawn = append(p.drawn, cells(l))
			b.WriteString(l)
			b.WriteString("\x1b[K\n")
		}
	}
	b.WriteString("\x1b[J")
	_, _ = p.w.Write(b.Bytes())
}

// onScreen is how many rows the live area drawn last takes now: one a
// line, or more when the terminal got narrower and rewrapped them.
func (p *ttyProgress) onScreen(cols int) int {
	n := 0
	for _, w := range p.drawn {
		if cols < p.cols && w > cols {
			n += (w + cols - 1) / cols
			continue
		}
		n++
	}
	return n
}

// liveLines is the live area in at most limit lines: the header, then each
// running step by name with its timer, its miss reason and its output;
// fewer output lines a step when they do not fit.
func (p *ttyProgress) liveLines(limit int) []string {
	ids := make([]int, 0, len(p.running))
	for id := range p.running {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b int) int { return strings.Compare(p.running[a].name, p.running[b].name) })
	now := time.Now()
	head := fmt.Sprintf("[+] Building %.1fs (%d done, %d running)", now.Sub(p.start).Seconds(), p.steps, len(ids))
	tail := ttyTail
	for ; tail > 0; tail-- {
		n := 1
		for _, id := range ids {
			s := p.running[id]
			n += 1 + min(tail, len(s.lines))
			if s.miss != "" {
				n++
			}
		}
		if n <= limit {
			break
		}
	}
	out := []string{head}
	for i, id := range ids {
		s := p.running[id]
		if len(out) >= limit-1 && i < len(ids)-1 {
			out = append(out, fmt.Sprintf("   ... and %d more running", len(ids)-i))
			break
		}
		out = append(out, twoColumns("=> "+s.name, fmt.Sprintf("%.1fs", now.Sub(s.start).Seconds())))
		if s.miss != "" && tail > 0 {
			out = append(out, "   cache miss: "+s.miss)
		}
		for _, l := range s.lines[max(0, len(s.lines)-tail):] {
			out = append(out, " > "+l)
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func (p *ttyProgress) Summary(res *client.BuildResult, d time.Duration) {
	p.finish()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "built in %.1fs: %d steps, %d cached\nimage    %s\nmanifest %s\n", d.Seconds(), p.steps, p.hits, res.ImageID, res.ManifestDigest)
	for _, t := range res.Tags {
		fmt.Fprintf(p.w, "tagged %s\n", t)
	}
}

// FailureTail ends the live view and shows the last output of the step
// that failed again.
func (p *ttyProgress) FailureTail() {
	p.finish()
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tails[p.failed]
	if len(t) == 0 {
		return
	}
	cols, _ := p.size()
	fmt.Fprintln(p.w, cut(fmt.Sprintf("------ last output of %s ------", p.names[p.failed]), cols))
	for _, l := range t {
		fmt.Fprintln(p.w, cut("  "+l, cols))
	}
	fmt.Fprintln(p.w, "------")
}
