package fileset

import (
	"fmt"
	"io/fs"
	"path"
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

// Walk lists m and, for a directory, everything below it, depth first in
// name order, without following symlinks. It leaves out --exclude matches,
// sockets and, in the context, .dockerignore matches; an excluded directory
// is still entered when a "!" pattern may re-include a file below it, and
// kept only if something below it is.
func (s *Selection) Walk(m Match) ([]Walked, error) {
	out := []Walked{{Src: m.Path, Info: m.Info}}
	if m.Info == nil || !m.Info.IsDir() {
		return out, nil
	}
	var rec func(dir, rel string) error
	rec = func(dir, rel string) error {
		ents, err := s.FS.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		for _, de := range ents {
			n := de.Name()
			q := path.Join(dir, n)
			r := path.Join(rel, n)
			if s.excluded(r) {
				continue
			}
			if s.Skip(q) {
				if de.IsDir() && s.Context && s.Ignore.MayContainIncluded() {
					// A re-included file may live below an excluded dir.
					before := len(out)
					out = append(out, Walked{Src: q, Rel: r, Entry: de})
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
			out = append(out, Walked{Src: q, Rel: r, Entry: de})
			if de.IsDir() {
				if err := rec(q, r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := rec(m.Path, ""); err != nil {
		return nil, err
	}
	return out, nil
}
