package main

import (
	"bytes"
	"context"
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
}

// plainProgress prints one line per finished step ("#3 [build 2/5] COPY a /b
// 0.12s" or "... CACHED"), RUN output prefixed by its step number, and warnings.
type plainProgress struct {
	mu      sync.Mutex
	w       io.Writer
	names   map[int]string
	headed  map[int]bool
	partial map[int][]byte
}

func newPlainProgress(w io.Writer) *plainProgress {
	return &plainProgress{w: w, names: map[int]string{}, headed: map[int]bool{}, partial: map[int][]byte{}}
}

func (p *plainProgress) Report(e client.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case client.StepStart:
		p.names[e.ID] = e.Name
	case client.StepLog:
		if !p.headed[e.ID] {
			fmt.Fprintf(p.w, "#%d %s\n", e.ID, p.names[e.ID])
			p.headed[e.ID] = true
		}
		buf := append(p.partial[e.ID], e.Data...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			fmt.Fprintf(p.w, "#%d %s\n", e.ID, buf[:i])
			buf = buf[i+1:]
		}
		p.partial[e.ID] = buf
	case client.StepDone:
		if rest := p.partial[e.ID]; len(rest) > 0 {
			fmt.Fprintf(p.w, "#%d %s\n", e.ID, rest)
		}
		delete(p.partial, e.ID)
		state := "DONE"
		switch {
		case errors.Is(e.Err, context.Canceled):
			state = "CANCELED" // stopped because another stage failed, or Ctrl-C
		case e.Err != nil:
			state = "ERROR"
		case e.Cached && e.From != "":
			state = "CACHED (" + e.From + ")"
		case e.Cached:
			state = "CACHED"
		}
		fmt.Fprintf(p.w, "#%d %s %s %.3fs\n", e.ID, e.Name, state, e.Duration.Seconds())
	case client.CacheMiss:
		fmt.Fprintf(p.w, "#%d cache miss: %s\n", e.ID, e.Text)
	case client.Warning:
		fmt.Fprintf(p.w, "WARNING: %s\n", e.Text)
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
