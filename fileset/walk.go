package fileset

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// Walked is one file of a Match's tree.
type Walked struct {
	Src string // path in the tree
	Rel string // relative to the Match ("" for the Match itself)
	// Info is the file's stat. Walk leaves it nil below the Match (a cache
	// key needs only the paths) and StatAll fills it.
	Info  fs.FileInfo
	Entry fs.DirEntry // nil for the Match itself
}

// StatAll fills the Info of every walked entry that has none.
func StatAll(ws []Walked) error {
	for i := range ws {
		if ws[i].Info != nil {
			continue
		}
		fi, err := ws[i].Entry.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", ws[i].Src, err)
		}
		ws[i].Info = fi
	}
	return nil
}

// Stat returns w.Info, or stats w.Src in s's tree (without following a
// symlink) when Walk left it nil. Unlike StatAll it keeps nothing: a caller
// that turns each file into something else holds one stat at a time, and
// may drop the walk's Entry once it has the paths.
func (s *Selection) Stat(w Walked) (fs.FileInfo, error) {
	if w.Info != nil {
		return w.Info, nil
	}
	var fi fs.FileInfo
	var err error
	if w.Entry != nil {
		fi, err = w.Entry.Info()
	} else {
		fi, err = s.FS.Lstat(w.Src)
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", w.Src, err)
	}
	return fi, nil
}

// Walk lists m and, for a directory, everything below it, depth first in
// name order, without following symlinks. It leaves out --exclude matches,
// sockets and, in the context, .dockerignore matches; an excluded directory
// is still entered when a "!" pattern may re-include a file below it, and
// kept only if something below it is.
//
// In a host directory (Dir) the directories below m are listed ahead of
// the walk by one goroutine per CPU (readahead.go); the result is the same
// as a walk on one goroutine.
func (s *Selection) Walk(m Match) ([]Walked, error) {
	out := []Walked{{Src: m.Path, Info: m.Info}}
	if m.Info == nil || !m.Info.IsDir() {
		return out, nil
	}
	ra := newReadahead(s.FS)
	defer ra.stop()
	top := path.Clean(m.Path)
	// Every Src below m is top + "/" + Rel: Rel is a substring of Src.
	base := top + "/"
	if top == "/" {
		base = "/"
	}
	var rec func(dir string, l *listing) error
	rec = func(dir string, l *listing) error {
		ents, err := ra.list(dir, l)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		prefix := dir + "/"
		if dir == "/" {
			prefix = "/"
		}
		// Subdirectories this walk will enter, listed ahead in the order
		// they are entered.
		var subs []*listing // by index in ents
		var idx []int
		var dirs []string
		for i, de := range ents {
			if !de.IsDir() {
				continue
			}
			q := prefix + de.Name()
			if s.excluded(q[len(base):]) || s.Skip(q) && !(s.Context && s.Ignore.MayContainIncluded()) {
				continue
			}
			idx, dirs = append(idx, i), append(dirs, q)
		}
		if ls := ra.ahead(dirs); ls != nil {
			subs = make([]*listing, len(ents))
			for j, i := range idx {
				subs[i] = ls[j]
			}
		}
		for i, de := range ents {
			q := prefix + de.Name()
			r := q[len(base):]
			var sub *listing
			if subs != nil {
				sub = subs[i]
			}
			if s.excluded(r) {
				continue
			}
			if s.Skip(q) {
				if de.IsDir() && s.Context && s.Ignore.MayContainIncluded() {
					// A re-included file may live below an excluded dir.
					before := len(out)
					out = appendWalked(out, Walked{Src: q, Rel: r, Entry: de})
					if err := rec(q, sub); err != nil {
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
			out = appendWalked(out, Walked{Src: q, Rel: r, Entry: de})
			if de.IsDir() {
				if err := rec(q, sub); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := rec(top, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// appendWalked appends w, doubling the capacity when full: append grows a
// big slice by a quarter at a time, which copied a walk of 50,000 files
// about four times over.
func appendWalked(out []Walked, w Walked) []Walked {
	if len(out) == cap(out) {
		out = slices.Grow(out, len(out))
	}
	return append(out, w)
}
