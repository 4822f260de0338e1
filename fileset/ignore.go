package fileset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Ignore is a compiled .dockerignore: it filters context paths. It is safe
// for concurrent use (stages run concurrently). A nil *Ignore ignores nothing.
type Ignore struct {
	// mu serializes matching: patternmatcher compiles each pattern on its
	// first use.
	mu sync.Mutex
	pm *patternmatcher.PatternMatcher

	patterns []string // as given (Patterns)
}

// NewIgnore compiles .dockerignore patterns (as ignorefile.ReadAll returns
// them; none: nothing is ignored).
func NewIgnore(patterns []string) (*Ignore, error) {
	if len(patterns) == 0 {
		return &Ignore{}, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("parse .dockerignore: %w", err)
	}
	return &Ignore{pm: pm, patterns: patterns}, nil
}

// Patterns are the patterns as given (the build checks read them).
func (ig *Ignore) Patterns() []string {
	if ig == nil {
		return nil
	}
	return ig.patterns
}

// ReadIgnore reads and compiles the .dockerignore file at the host path p.
// A missing file has no patterns; read errors name the file.
func ReadIgnore(p string) (*Ignore, error) {
	pats, err := readIgnoreFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return NewIgnore(pats)
}

// readIgnoreFile reads .dockerignore patterns (missing file: none).
func readIgnoreFile(p string) ([]string, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// Excluded reports whether the context path rel ("a/b", no leading slash)
// is ignored, itself or through a parent.
func (ig *Ignore) Excluded(rel string) bool {
	if ig == nil || ig.pm == nil || rel == "" || rel == "." {
		return false
	}
	ig.mu.Lock()
	defer ig.mu.Unlock()
	ok, err := ig.pm.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// Empty reports whether no .dockerignore pattern applies.
func (ig *Ignore) Empty() bool { return ig == nil || ig.pm == nil }

// MayContainIncluded reports whether an excluded dir may hold re-included
// files (some pattern starts with "!").
func (ig *Ignore) MayContainIncluded() bool {
	return ig != nil && ig.pm != nil && ig.pm.Exclusions()
}
