package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/builderdev/builder/layer"
	"github.com/moby/patternmatcher"
)

var (
	errNoSource = errors.New("no such file in context")
	errOutside  = errors.New("source is outside the build context")
)

// selection picks COPY/ADD sources from one srcFS.
type selection struct {
	bd        *build
	fsys      srcFS
	ig        *ignorer // .dockerignore (context only)
	isContext bool
	excludes  []string
	exclPM    *patternmatcher.PatternMatcher
}

// walked is one file below a copyItem.
type walked struct {
	src string // path in the fsys
	rel string // relative to the item ("" for the item itself)
	// fi is the file's stat; walk leaves it nil below the item (a cache
	// key needs only the paths) and statWalked fills it.
	fi fs.FileInfo
	de fs.DirEntry
}

// statWalked fills the FileInfo of every walked entry that has none.
func statWalked(ws []walked) error {
	for i := range ws {
		if ws[i].fi != nil {
			continue
		}
		fi, err := ws[i].de.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", ws[i].src, err)
		}
		ws[i].fi = fi
	}
	return nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "git://")
}

// skip reports whether the tree path p is excluded by .dockerignore (its
// patterns are rooted at the context).
func (sel *selection) skip(p string) bool {
	return sel.isContext && sel.ig.excluded(strings.TrimPrefix(path.Clean(p), "/"))
}

// excluded reports whether COPY --exclude matches rel, a path relative to
// the source being copied (as BuildKit matches it).
func (sel *selection) excluded(rel string) bool {
	if len(sel.excludes) == 0 || rel == "" {
		return false
	}
	if sel.exclPM == nil {
		pm, err := patternmatcher.New(sel.excludes)
		if err != nil {
			return false
		}
		sel.exclPM = pm
	}
	ok, _ := sel.exclPM.MatchesOrParentMatches(rel)
	return ok
}

// match selects the items a source argument names.
func (sel *selection) match(src string, unpack bool) ([]copyItem, error) {
	if sel.fsys == nil {
		return nil, fmt.Errorf("%s: no source", src)
	}
	if c := path.Clean(src); sel.isContext && (c == ".." || strings.HasPrefix(c, "../")) {
		return nil, fmt.Errorf("%s: %w", src, errOutside)
	}
	p := path.Clean("/" + src)
	var paths []string
	if hasMeta(p) {
		var err error
		if paths, err = sel.glob(p); err != nil {
			return nil, err
		}
	} else {
		r, err := sel.fsys.Resolve(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
				return nil, sel.noSource(src, p)
			}
			return nil, fmt.Errorf("resolve %s: %w", src, err)
		}
		if sel.skip(p) || sel.skip(r) {
			return nil, &noSourceError{src: src, why: " (excluded by .dockerignore)", context: sel.isContext}
		}
		paths = []string{r + "\x00" + p}
	}
	if len(paths) == 0 {
		if hasMeta(p) && sel.globDirExists(p) {
			return nil, nil // BuildKit allows a wildcard that matches nothing
		}
		return nil, sel.noSource(src, p)
	}
	var items []copyItem
	for _, e := range paths {
		r, matched, _ := strings.Cut(e, "\x00")
		base := path.Base(matched)
		fi, err := sel.fsys.Lstat(r)
		if err != nil {
			return nil, sel.noSource(src, p)
		}
		it := copyItem{fsys: sel.fsys, src: r, fi: fi, matched: matched}
		if !fi.IsDir() {
			it.destRel = base
		}
		if unpack && fi.Mode().IsRegular() {
			host, err := sel.fsys.HostPath(r)
			if err != nil {
				return nil, err
			}
			if ok, _ := layer.IsArchive(host); ok {
				it.archive, it.destRel = true, ""
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// noSourceError is errNoSource for one source argument (src "" when the
// instruction, printed before it, already names the only source).
type noSourceError struct {
	src, why string
	context  bool
}

func (e *noSourceError) Error() string {
	msg := "no such file"
	if e.context {
		msg = errNoSource.Error()
	}
	if e.src != "" {
		msg = e.src + ": " + msg
	}
	return msg + e.why
}

func (e *noSourceError) Unwrap() error { return errNoSource }

// noSource reports the missing source src (cleaned: p). A context path
// reached through a symlink says so: links resolve inside the context,
// never to host files, which is what surprises people.
func (sel *selection) noSource(src, p string) error {
	e := &noSourceError{src: src, context: sel.isContext}
	if !sel.isContext {
		return e
	}
	cur := "/"
	for _, name := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		cur = path.Join(cur, name)
		fi, err := sel.fsys.Lstat(cur)
		if err != nil {
			break
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if t, err := sel.fsys.Readlink(cur); err == nil {
				e.why = fmt.Sprintf(" (%s is a symlink to %s; symlinks resolve inside the build context)", strings.TrimPrefix(cur, "/"), t)
			}
			break
		}
	}
	return e
}

// globDirExists reports whether the directory a pattern searches (its
// components before the first wildcard) exists and is not ignored.
func (sel *selection) globDirExists(p string) bool {
	dir := "/"
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if hasMeta(c) {
			break
		}
		dir = path.Join(dir, c)
	}
	r, err := sel.fsys.Resolve(dir)
	if err != nil || sel.skip(dir) {
		return false
	}
	fi, err := sel.fsys.Lstat(r)
	return err == nil && fi.IsDir()
}

// glob expands a pattern component by component (never following symlinks
// in the middle). A match that is a symlink is followed, as BuildKit does
// for every source path: "path\x00matched" gives the resolved path and the
// path that matched.
func (sel *selection) glob(p string) ([]string, error) {
	comps := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := []string{"/"}
	for i, c := range comps {
		last := i == len(comps)-1
		var next []string
		for _, dir := range cur {
			if !hasMeta(c) {
				q := path.Join(dir, c)
				if _, err := sel.fsys.Lstat(q); err == nil && !sel.skip(q) {
					next = append(next, q)
				}
				continue
			}
			ents, err := sel.fsys.ReadDir(dir)
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
				if ok && !sel.skip(q) && !(last && sel.excluded(n)) {
					next = append(next, q)
				}
			}
		}
		if !last {
			// Only directories can hold the rest of the pattern.
			var dirs []string
			for _, q := range next {
				if fi, err := sel.fsys.Lstat(q); err == nil && fi.IsDir() {
					dirs = append(dirs, q)
				}
			}
			next = dirs
		}
		cur = next
	}
	out := make([]string, 0, len(cur))
	for _, q := range cur {
		r, err := sel.fsys.Resolve(q)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			// A match that is a dangling symlink (resolved inside the tree).
			return nil, &noSourceError{src: strings.TrimPrefix(q, "/"), why: " (a symlink whose target is missing)", context: sel.isContext}
		}
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", strings.TrimPrefix(q, "/"), err)
		}
		if r != q && sel.skip(r) {
			continue
		}
		out = append(out, r+"\x00"+q)
	}
	return out, nil
}

// walk lists an item and, for a directory, everything below it.
func (sel *selection) walk(it copyItem) ([]walked, error) {
	out := []walked{{src: it.src, fi: it.fi}}
	if it.fi == nil || !it.fi.IsDir() {
		return out, nil
	}
	var rec func(dir, rel string) error
	rec = func(dir, rel string) error {
		ents, err := it.fsys.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		for _, de := range ents {
			n := de.Name()
			q := path.Join(dir, n)
			r := path.Join(rel, n)
			if sel.excluded(r) {
				continue
			}
			if sel.skip(q) {
				if de.IsDir() && sel.isContext && sel.ig.mayContainIncluded() {
					// A re-included file may live below an excluded dir.
					before := len(out)
					out = append(out, walked{src: q, rel: r, de: de})
					if err := rec(q, r); err != nil {
						return err
					}
					if len(out) == before+1 {
						out = out[:before]
					}
				}
				continue
			}
			if de.Type()&fs.ModeSocket != 0 {
				continue
			}
			out = append(out, walked{src: q, rel: r, de: de})
			if de.IsDir() {
				if err := rec(q, r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := rec(it.src, ""); err != nil {
		return nil, err
	}
	return out, nil
}
