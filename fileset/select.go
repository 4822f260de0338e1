package fileset

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/moby/patternmatcher"
)

// Selection picks COPY/ADD sources from one tree.
//
// Set the fields before the first call and leave them alone after: the
// --exclude patterns are compiled on first use and kept. A Selection is for
// one goroutine at a time (the compiled patterns are not locked); Ignore
// may be shared.
type Selection struct {
	FS FS
	// Ignore is the .dockerignore of the build context, applied only when
	// Context is set. Its patterns are rooted at the tree's "/".
	Ignore *Ignore
	// Context says FS is the build context: ".." sources are refused
	// (ErrOutside), Ignore applies, and errors say "in context".
	Context bool
	// Excludes are COPY --exclude patterns, matched relative to each source.
	Excludes []string

	exclPM *patternmatcher.PatternMatcher // compiled Excludes
}

// Match is one selected source root (a file, dir or link) and where it lands.
type Match struct {
	Path string      // resolved path in the tree
	Info fs.FileInfo // Lstat of Path
	// Matched is the path the argument matched, before a final symlink was
	// followed (for COPY --parents).
	Matched string
	// DestRel is where it lands under the destination dir; "" = the
	// destination itself (a directory's contents land there).
	DestRel string
}

// NoSourceError is ErrNoSource for one source argument.
type NoSourceError struct {
	// Src is the argument as written; "" when the instruction, printed
	// before the error, already names the only source.
	Src string
	// Why explains, with a leading space: " (excluded by .dockerignore)".
	Why string
	// Context says the tree is the build context ("no such file in context").
	Context bool
}

// Error reads "src: no such file in context (why)".
func (e *NoSourceError) Error() string {
	msg := "no such file"
	if e.Context {
		msg = ErrNoSource.Error()
	}
	if e.Src != "" {
		msg = e.Src + ": " + msg
	}
	return msg + e.Why
}

// Unwrap returns ErrNoSource.
func (e *NoSourceError) Unwrap() error { return ErrNoSource }

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// Skip reports whether the tree path p is excluded by .dockerignore (only
// for the context; its patterns are rooted at the context).
func (s *Selection) Skip(p string) bool {
	return s.Context && s.Ignore.Excluded(strings.TrimPrefix(path.Clean(p), "/"))
}

// excluded reports whether COPY --exclude matches rel, a path relative to
// the source being copied (as BuildKit matches it).
func (s *Selection) excluded(rel string) bool {
	if len(s.Excludes) == 0 || rel == "" {
		return false
	}
	if s.exclPM == nil {
		pm, err := patternmatcher.New(s.Excludes)
		if err != nil {
			return false
		}
		s.exclPM = pm
	}
	ok, _ := s.exclPM.MatchesOrParentMatches(rel)
	return ok
}

// Match selects the roots a source argument names: one path, or the
// matches of a wildcard pattern (nil, nil when the pattern matches nothing
// in an existing directory, as BuildKit allows). A final symlink is
// followed inside the tree. A file lands under its base name, a directory
// as the destination itself (DestRel ""); archives are the caller's to
// detect.
func (s *Selection) Match(src string) ([]Match, error) {
	if s.FS == nil {
		return nil, fmt.Errorf("%s: no source", src)
	}
	if c := path.Clean(src); s.Context && (c == ".." || strings.HasPrefix(c, "../")) {
		return nil, fmt.Errorf("%s: %w", src, ErrOutside)
	}
	p := path.Clean("/" + src)
	var paths []resolved
	if hasMeta(p) {
		var err error
		if paths, err = s.glob(p); err != nil {
			return nil, err
		}
	} else {
		r, err := s.FS.Resolve(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotDir) {
				return nil, s.noSource(src, p)
			}
			return nil, fmt.Errorf("resolve %s: %w", src, err)
		}
		if s.Skip(p) || s.Skip(r) {
			return nil, &NoSourceError{Src: src, Why: " (excluded by .dockerignore)", Context: s.Context}
		}
		paths = []resolved{{path: r, matched: p}}
	}
	if len(paths) == 0 {
		if hasMeta(p) && s.globDirExists(p) {
			return nil, nil // BuildKit allows a wildcard that matches nothing
		}
		return nil, s.noSource(src, p)
	}
	var ms []Match
	for _, e := range paths {
		fi, err := s.FS.Lstat(e.path)
		if err != nil {
			return nil, s.noSource(src, p)
		}
		m := Match{Path: e.path, Info: fi, Matched: e.matched}
		if !fi.IsDir() {
			m.DestRel = path.Base(e.matched)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// resolved is a path that matched and where its symlinks lead.
type resolved struct{ path, matched string }

// noSource reports the missing source src (cleaned: p). A context path
// reached through a symlink says so: links resolve inside the context,
// never to host files, which is what surprises people.
func (s *Selection) noSource(src, p string) error {
	e := &NoSourceError{Src: src, Context: s.Context}
	if !s.Context {
		return e
	}
	cur := "/"
	for _, name := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		cur = path.Join(cur, name)
		fi, err := s.FS.Lstat(cur)
		if err != nil {
			break
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if t, err := s.FS.Readlink(cur); err == nil {
				e.Why = fmt.Sprintf(" (%s is a symlink to %s; symlinks resolve inside the build context)", strings.TrimPrefix(cur, "/"), t)
			}
			break
		}
	}
	return e
}

// globDirExists reports whether the directory a pattern searches (its
// components before the first wildcard) exists and is not ignored.
func (s *Selection) globDirExists(p string) bool {
	dir := "/"
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if hasMeta(c) {
			break
		}
		dir = path.Join(dir, c)
	}
	r, err := s.FS.Resolve(dir)
	if err != nil || s.Skip(dir) {
		return false
	}
	fi, err := s.FS.Lstat(r)
	return err == nil && fi.IsDir()
}

// glob expands a pattern component by component (never following symlinks
// in the middle). A match that is a symlink is followed, as BuildKit does
// for every source path.
func (s *Selection) glob(p string) ([]resolved, error) {
	comps := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := []string{"/"}
	for i, c := range comps {
		last := i == len(comps)-1
		var next []string
		for _, dir := range cur {
			if !hasMeta(c) {
				q := path.Join(dir, c)
				if _, err := s.FS.Lstat(q); err == nil && !s.Skip(q) {
					next = append(next, q)
				}
				continue
			}
			ents, err := s.FS.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, de := range ents {
				n := de.Name()
				ok, err := path.Match(c, n)
				if err != nil {
					return nil, fmt.Errorf("bad pattern %q: %w", p, err)
				}
				q := path.Join(dir, n)
				if ok && !s.Skip(q) && !(last && s.excluded(n)) {
					next = append(next, q)
				}
			}
		}
		if !last {
			// Only directories can hold the rest of the pattern.
			var dirs []string
			for _, q := range next {
				if fi, err := s.FS.Lstat(q); err == nil && fi.IsDir() {
					dirs = append(dirs, q)
				}
			}
			next = dirs
		}
		cur = next
	}
	out := make([]resolved, 0, len(cur))
	for _, q := range cur {
		r, err := s.FS.Resolve(q)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotDir) {
			// A match that is a dangling symlink (resolved inside the tree).
			return nil, &NoSourceError{Src: strings.TrimPrefix(q, "/"), Why: " (a symlink whose target is missing)", Context: s.Context}
		}
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", strings.TrimPrefix(q, "/"), err)
		}
		if r != q && s.Skip(r) {
			continue
		}
		out = append(out, resolved{path: r, matched: q})
	}
	return out, nil
}

// KeepParents makes each match of a COPY --parents source land at its path
// relative to the tree root, or to the "/./" pivot when src has one
// ("a/./b/c" lands at "b/c").
func KeepParents(src string, ms []Match) {
	pivot := "/"
	full := "/" + strings.TrimPrefix(src, "./")
	if i := strings.Index(full, "/./"); i > 0 {
		pivot = path.Clean(full[:i])
	}
	for i := range ms {
		rel := strings.TrimPrefix(ms[i].Matched, pivot)
		ms[i].DestRel = strings.TrimPrefix(rel, "/")
	}
}
