package client

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/cache"
)

// LoggedBuild is a build of the store's log (History), LoggedStep one of
// its steps.
type (
	LoggedBuild = cache.LoggedBuild
	LoggedStep  = cache.LoggedStep
)

// Build builds the image (see build) and logs the build, its steps, hits,
// miss reasons and result, in the store's build log (History). A build
// refused before it started (a usage error) is not logged.
func (c *Client) Build(ctx context.Context, opts BuildOptions) (*BuildResult, error) {
	rec := &stepRecorder{next: opts.Reporter, steps: map[int]*LoggedStep{}}
	opts.Reporter = rec
	start := time.Now()
	res, err := c.build(ctx, opts)
	if errors.Is(err, ErrUsage) || err != nil && opts.HitsOnly {
		return res, err // a try from the cache alone is done again for real
	}
	ctxDir, aerr := filepath.Abs(opts.ContextDir)
	if aerr != nil {
		ctxDir = opts.ContextDir
	}
	b := LoggedBuild{Start: start, Duration: time.Since(start), Context: ctxDir, Dockerfile: opts.DockerfileName,
		Target: opts.Target, Steps: rec.list()}
	if b.Dockerfile == "" {
		b.Dockerfile = "Dockerfile"
	}
	if res != nil {
		b.Tags, b.Manifest = res.Tags, res.ManifestDigest.String()
	}
	switch {
	case errors.Is(err, context.Canceled):
		b.Canceled = true
	case err != nil:
		b.Error, _, _ = strings.Cut(err.Error(), "\n")
	}
	if lerr := c.cache.AppendBuild(b); lerr != nil {
		warn(opts.Reporter, "%v", lerr)
	}
	return res, err
}

// History returns the last builds of this store (at most cache.MaxBuilds),
// newest first.
func (c *Client) History(ctx context.Context) ([]LoggedBuild, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	b, err := c.cache.Builds()
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	slices.Reverse(b)
	return b, nil
}

// stepRecorder passes events on and keeps each step's outcome. A build
// the engine runs again (a broken imported cache) numbers its steps from 1
// again: the last run of each number wins.
type stepRecorder struct {
	next  Reporter
	mu    sync.Mutex
	steps map[int]*LoggedStep
}

func (r *stepRecorder) Report(e Event) {
	r.mu.Lock()
	switch e.Kind {
	case StepStart:
		r.steps[e.ID] = &LoggedStep{ID: e.ID, Name: e.Name}
	case CacheMiss:
		if s := r.steps[e.ID]; s != nil {
			s.Miss = e.Text
		}
	case StepDone:
		s := r.steps[e.ID]
		if s == nil {
			s = &LoggedStep{ID: e.ID, Name: e.Name}
			r.steps[e.ID] = s
		}
		s.Duration, s.Cached, s.From = e.Duration, e.Cached, e.From
		if e.Err != nil {
			s.Error, _, _ = strings.Cut(e.Err.Error(), "\n")
		}
	}
	r.mu.Unlock()
	if r.next != nil {
		r.next.Report(e)
	}
}

func (r *stepRecorder) list() []LoggedStep {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]LoggedStep, 0, len(r.steps))
	for _, s := range r.steps {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b LoggedStep) int { return a.ID - b.ID })
	return out
}
