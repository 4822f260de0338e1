package snapshot

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
)

// ReadDir lists the merged directory p sorted by name, whiteouts hidden: a
// name is decided by the topmost layer that has it, and a whiteout there
// hides it. Each entry is that layer's lstat, what Lstat of the merged
// path returns: a walk of a tree stats each file once.
func (v View) ReadDir(p string) ([]fs.FileInfo, error) {
	_, n, err := v.walk("readdir", p, true)
	if err != nil {
		return nil, err
	}
	if !n.exists() {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: syscall.ENOENT}
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: syscall.ENOTDIR}
	}
	decided := map[string]bool{}
	var out []fs.FileInfo
	for _, i := range n.dirs {
		dir := filepath.Join(v.Lowers[i], n.rel)
		f, err := os.Open(dir)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: p, Err: err}
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: p, Err: err}
		}
		for _, name := range names {
			if decided[name] {
				continue
			}
			decided[name] = true
			fi, err := os.Lstat(filepath.Join(dir, name))
			if err != nil {
				return nil, &fs.PathError{Op: "readdir", Path: p, Err: err}
			}
			if !isWhiteout(fi) {
				out = append(out, fi)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// HostPath returns the host path of the layer file that provides the merged
// path p (parents resolved inside the root; a final symlink is not followed).
func (v View) HostPath(p string) (string, error) {
	_, n, err := v.walk("open", p, false)
	if err != nil {
		return "", err
	}
	if !n.exists() {
		return "", &fs.PathError{Op: "open", Path: p, Err: syscall.ENOENT}
	}
	return filepath.Join(v.Lowers[n.layer], n.rel), nil
}

// LstatHost is Lstat and HostPath of p with one walk of the layers.
func (v View) LstatHost(p string) (fs.FileInfo, string, error) {
	resolved, n, err := v.walk("lstat", p, false)
	if err != nil {
		return nil, "", err
	}
	if !n.exists() {
		return nil, "", &fs.PathError{Op: "lstat", Path: p, Err: syscall.ENOENT}
	}
	return fileInfo{FileInfo: n.fi, name: path.Base(resolved)}, filepath.Join(v.Lowers[n.layer], n.rel), nil
}

// DirLayers returns, top first, the host dirs merged into the directory p
// (symlinks resolved inside the root): mounted as the lowerdirs of a
// read-only overlay they show exactly the merged subtree of p.
func (v View) DirLayers(p string) ([]string, error) {
	_, n, err := v.walk("lookup", p, true)
	if err != nil {
		return nil, err
	}
	if !n.exists() {
		return nil, &fs.PathError{Op: "lookup", Path: p, Err: syscall.ENOENT}
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "lookup", Path: p, Err: syscall.ENOTDIR}
	}
	out := make([]string, 0, len(n.dirs))
	for _, i := range n.dirs {
		out = append(out, filepath.Join(v.Lowers[i], n.rel))
	}
	return out, nil
}
