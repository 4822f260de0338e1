package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/builderdev/builder/client"
)

// progress prints build events.
type progress interface {
	client.Reporter
	Summary(res *client.BuildResult, d time.Duration)
	FailureTail()
	// CheckSummary lists the build checks' warnings at the end (check.go).
	CheckSummary(debug bool, file string, dockerfile []byte)
}

// plainProgress prints, as docker buildx --progress plain, a line when a
// step starts ("#3 [build 2/5] COPY a /b") and one when it ends ("#3 [build
// 2/5] COPY a /b DONE 0.120s" or "... CACHED 0.000s"), each line of RUN
// output with its step number and the seconds since the build started
// ("#3 1.204 compiling"), cache misses and warnings.
type plainProgress struct {
	mu      sync.Mutex
	w       io.Writer
	start   time.Time
	names   map[int]string
	partial map[int][]byte
	tail    map[int][]string // the last lines of each step's output
	failed  int              // the step whose error ended the build
	// checks are the build checks' warnings, for CheckSummary (check.go).
	checks []client.CheckWarning
}

// tailLines is how many lines of a failed RUN's output are shown again.
const tailLines = 6

func newPlainProgress(w io.Writer) *plainProgress {
	return &plainProgress{w: w, start: time.Now(), names: map[int]string{}, partial: map[int][]byte{}, tail: map[int][]string{}}
}

func (p *plainProgress) Report(e client.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case client.StepStart:
		p.names[e.ID] = e.Name
		fmt.Fprintf(p.w, "#%d %s\n", e.ID, e.Name)
	case client.StepLog:
		// Every whole line of the chunk, written at once.
		buf := append(p.partial[e.ID], e.Data...)
		var out bytes.Buffer
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			p.output(&out, e.ID, buf[:i])
			buf = buf[i+1:]
		}
		_, _ = p.w.Write(out.Bytes())
		p.partial[e.ID] = append(p.partial[e.ID][:0], buf...)
	case client.StepDone:
		if rest := p.partial[e.ID]; len(rest) > 0 {
			var out bytes.Buffer
			p.output(&out, e.ID, rest)
			_, _ = p.w.Write(out.Bytes())
		}
		delete(p.partial, e.ID)
		state := stepState(e)
		if state == "ERROR" && p.failed == 0 {
			p.failed = e.ID
		}
		fmt.Fprintf(p.w, "#%d %s %s %.3fs\n", e.ID, e.Name, state, e.Duration.Seconds())
	case client.CacheMiss:
		fmt.Fprintf(p.w, "#%d cache miss: %s\n", e.ID, e.Text)
	case client.Warning:
		fmt.Fprintf(p.w, "WARNING: %s\n", e.Text)
	case client.Lint:
		fmt.Fprintf(p.w, "WARNING: %s\n", e.Check.Short())
		p.checks = append(p.checks, *e.Check)
	}
}

func (p *plainProgress) Summary(res *client.BuildResult, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "built image %s (manifest %s) in %.3fs\n", res.ImageID, res.ManifestDigest, d.Seconds())
	for _, t := range res.Tags {
		fmt.Fprintf(p.w, "tagged %s\n", t)
	}
}

// output adds one line a RUN wrote to out: "#5 0.123 text".
func (p *plainProgress) output(out *bytes.Buffer, id int, line []byte) {
	fmt.Fprintf(out, "#%d %.3f %s\n", id, time.Since(p.start).Seconds(), line)
	p.keep(id, line)
}

func (p *plainProgress) keep(id int, line []byte) {
	t := append(p.tail[id], string(line))
	if len(t) > tailLines {
		t = t[len(t)-tailLines:]
	}
	p.tail[id] = t
}

// FailureTail shows the last output lines of the step that failed again,
// so that the cause is on screen next to the error.
func (p *plainProgress) FailureTail() {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tail[p.failed]
	if len(t) == 0 {
		return
	}
	fmt.Fprintf(p.w, "------ last output of #%d %s ------\n", p.failed, p.names[p.failed])
	for _, l := range t {
		fmt.Fprintf(p.w, "  %s\n", l)
	}
	fmt.Fprintln(p.w, "------")
}

// jsonProgress writes one JSON object per event (--progress rawjson); the
// schema is in README.md.
type jsonProgress struct {
	mu    sync.Mutex
	enc   *json.Encoder
	start time.Time
}

// jsonEvent is one line of --progress rawjson.
type jsonEvent struct {
	Time     float64  `json:"time"` // seconds since the build started
	Kind     string   `json:"kind"` // start, log, done, cached, error, canceled, miss, warning, result
	ID       int      `json:"id,omitempty"`
	Name     string   `json:"name,omitempty"`
	Duration *float64 `json:"duration,omitempty"` // seconds (done, cached, error, canceled)
	Data     string   `json:"data,omitempty"`     // log: a chunk of output; miss, warning: the text
	From     string   `json:"from,omitempty"`     // cached: the imported cache it came from
	Error    string   `json:"error,omitempty"`
	Image    string   `json:"image,omitempty"`    // result: the image ID
	Manifest string   `json:"manifest,omitempty"` // result
	Tags     []string `json:"tags,omitempty"`     // result
	File     string   `json:"file,omitempty"`     // failed: the Dockerfile
	Line     int      `json:"line,omitempty"`     // start, done, cached, error, warning, failed: the Dockerfile line
	Layer    string   `json:"layer,omitempty"`    // done, cached: the digest of the step's layer
}

func newJSONProgress(w io.Writer) *jsonProgress {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonProgress{enc: enc, start: time.Now()}
}

func (p *jsonProgress) emit(e jsonEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.Time = float64(time.Since(p.start).Milliseconds()) / 1000
	_ = p.enc.Encode(e)
}

func (p *jsonProgress) Report(e client.Event) {
	je := jsonEvent{ID: e.ID, Name: e.Name, Line: e.Line}
	if e.Layer != "" {
		je.Layer = e.Layer.String()
	}
	switch e.Kind {
	case client.StepStart:
		je.Kind = "start"
	case client.StepLog:
		je.Kind, je.Data = "log", string(e.Data)
	case client.CacheMiss:
		je.Kind, je.Data = "miss", e.Text
	case client.Warning:
		je.Kind, je.Data = "warning", e.Text
	case client.Lint:
		je.Kind, je.Data, je.Line = "warning", e.Check.Short(), e.Check.Line
	case client.StepDone:
		d := e.Duration.Seconds()
		je.Duration = &d
		switch {
		case errors.Is(e.Err, context.Canceled):
			je.Kind = "canceled"
		case e.Err != nil:
			je.Kind, je.Error = "error", e.Err.Error()
		case e.Cached:
			je.Kind, je.From = "cached", e.From
		default:
			je.Kind = "done"
		}
	default:
		return
	}
	p.emit(je)
}

func (p *jsonProgress) Summary(res *client.BuildResult, _ time.Duration) {
	p.emit(jsonEvent{Kind: "result", Image: res.ImageID.String(), Manifest: res.ManifestDigest.String(), Tags: res.Tags})
}

func (p *jsonProgress) FailureTail() {}

func (p *jsonProgress) CheckSummary(bool, string, []byte) {}

// Failed writes the error that ended the build as the last event, with
// the Dockerfile line it names.
func (p *jsonProgress) Failed(err error) {
	ev := jsonEvent{Kind: "failed", Error: err.Error()}
	var loc located
	if errors.As(err, &loc) {
		ev.File, ev.Line = loc.Position()
	}
	p.emit(ev)
}

// stepState is how a finished step ended, as the progress modes say it:
// DONE, CACHED (from an imported cache: "CACHED (registry REF)"), ERROR,
// or CANCELED (another stage failed, or Ctrl-C).
func stepState(e client.Event) string {
	switch {
	case errors.Is(e.Err, context.Canceled):
		return "CANCELED"
	case e.Err != nil:
		return "ERROR"
	case e.Cached && e.From != "":
		return "CACHED (" + e.From + ")"
	case e.Cached:
		return "CACHED"
	}
	return "DONE"
}
