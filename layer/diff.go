package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
)

// Diff compares two trees by walking both, the portable and slow way: it
// returns entries for paths added or changed in newer (type, mode, owner,
// size, content, link target, device numbers, xattrs and, for non
// directories, mtime to the second) and a Whiteout entry for each top-most
// path deleted from lower. A directory whose lower contents are all gone is
// written as Opaque instead of one whiteout per child. It is the reference
// Changes is tested against.
func Diff(lower, newer string) ([]Entry, error) {
	olds, err := DirEntries(lower)
	if err != nil {
		return nil, err
	}
	news, err := DirEntries(newer)
	if err != nil {
		return nil, err
	}
	oldByName := make(map[string]*Entry, len(olds))
	children := make(map[string][]string)
	for i := range olds {
		oldByName[olds[i].Name] = &olds[i]
		dir := path.Dir(olds[i].Name)
		children[dir] = append(children[dir], olds[i].Name)
	}
	newByName := make(map[string]*Entry, len(news))
	for i := range news {
		newByName[news[i].Name] = &news[i]
	}

	var out []Entry
	opaque := make(map[string]bool)
	for _, n := range news {
		o, ok := oldByName[n.Name]
		if !ok {
			out = append(out, n)
			continue
		}
		if n.Mode.IsDir() && o.Mode.IsDir() && len(children[n.Name]) > 0 &&
			!slices.ContainsFunc(children[n.Name], func(c string) bool { return newByName[c] != nil }) {
			n.Opaque = true
			opaque[n.Name] = true
			out = append(out, n)
			continue
		}
		same, err := sameFile(o, &n)
		if err != nil {
			return nil, err
		}
		if !same {
			out = append(out, n)
		}
	}
	for _, o := range olds {
		if newByName[o.Name] != nil {
			continue
		}
		if dir := path.Dir(o.Name); dir != "." {
			// Only the top-most deleted path: the parent must still be the
			// same directory, not deleted, replaced or made opaque.
			if p := newByName[dir]; p == nil || !p.Mode.IsDir() || opaque[dir] {
				continue
			}
		}
		out = append(out, Entry{Name: o.Name, Whiteout: true})
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return comparePaths(a.Name, b.Name) })
	return out, nil
}

// sameFile compares everything a layer records except atime, and mtime of
// directories.
func sameFile(a, b *Entry) (bool, error) {
	if a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || a.Size != b.Size ||
		a.Linkname != b.Linkname || a.Devmajor != b.Devmajor || a.Devminor != b.Devminor ||
		!maps.Equal(a.Xattrs, b.Xattrs) {
		return false, nil
	}
	if a.Mode.IsDir() {
		return true, nil
	}
	if a.ModTime.Unix() != b.ModTime.Unix() {
		return false, nil
	}
	if a.Mode.Type() != 0 || a.Size == 0 {
		return true, nil
	}
	return sameContent(a, b)
}

func sameContent(a, b *Entry) (bool, error) {
	ra, err := a.Open()
	if err != nil {
		return false, fmt.Errorf("compare %q: %w", a.Name, err)
	}
	defer ra.Close()
	rb, err := b.Open()
	if err != nil {
		return false, fmt.Errorf("compare %q: %w", b.Name, err)
	}
	defer rb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, erra := io.ReadFull(ra, ba)
		nb, errb := io.ReadFull(rb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		endA := errors.Is(erra, io.EOF) || errors.Is(erra, io.ErrUnexpectedEOF)
		endB := errors.Is(errb, io.EOF) || errors.Is(errb, io.ErrUnexpectedEOF)
		switch {
		case erra != nil && !endA:
			return false, fmt.Errorf("compare %q: %w", a.Name, erra)
		case errb != nil && !endB:
			return false, fmt.Errorf("compare %q: %w", b.Name, errb)
		case endA || endB:
			return endA == endB, nil
		}
	}
}
