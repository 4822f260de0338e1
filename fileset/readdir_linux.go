package fileset

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// readDir lists the host directory dir sorted by name, with the types
// getdents gives (an entry of unknown type is lstat'ed), as os.ReadDir
// does; but with one allocation for all the names of the directory and one
// for all its entries, where os.ReadDir makes two or three per entry (a
// warm build of a 50,000-file context lists every one of them).
func readDir(dir string) ([]fs.DirEntry, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	var names []byte
	type rec struct {
		off, end int // of the name in names
		typ      fs.FileMode
		unknown  bool
	}
	var recs []rec
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		if recs == nil { // a dirent takes 24 bytes and more
			recs, names = make([]rec, 0, n/24), make([]byte, 0, n)
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return nil, &os.PathError{Op: "readdirent", Path: dir, Err: unix.EIO}
			}
			ino, typ, name := binary.NativeEndian.Uint64(b), b[18], b[19:reclen]
			b = b[reclen:]
			if i := slices.Index(name, 0); i >= 0 {
				name = name[:i]
			}
			if ino == 0 || string(name) == "." || string(name) == ".." {
				continue
			}
			r := rec{off: len(names), end: len(names) + len(name)}
			names = append(names, name...)
			r.typ, r.unknown = direntType(typ)
			recs = append(recs, r)
		}
	}
	all := string(names)
	ents := make([]dirent, len(recs))
	for i, r := range recs {
		ents[i] = dirent{dir: dir, name: all[r.off:r.end], typ: r.typ}
		if r.unknown {
			fi, err := os.Lstat(dir + "/" + ents[i].name)
			if err != nil {
				return nil, err
			}
			ents[i].typ = fi.Mode().Type()
		}
	}
	slices.SortFunc(ents, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	out := make([]fs.DirEntry, len(ents))
	for i := range ents {
		out[i] = &ents[i]
	}
	return out, nil
}

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// direntType maps a d_type to the type bits; unknown says getdents did
// not tell (some file systems never do).
func direntType(t byte) (typ fs.FileMode, unknown bool) {
	switch t {
	case unix.DT_REG:
		return 0, false
	case unix.DT_DIR:
		return fs.ModeDir, false
	case unix.DT_LNK:
		return fs.ModeSymlink, false
	case unix.DT_FIFO:
		return fs.ModeNamedPipe, false
	case unix.DT_SOCK:
		return fs.ModeSocket, false
	case unix.DT_CHR:
		return fs.ModeDevice | fs.ModeCharDevice, false
	case unix.DT_BLK:
		return fs.ModeDevice, false
	}
	return 0, true
}

// dirent is one entry readDir found.
type dirent struct {
	dir, name string
	typ       fs.FileMode
}

func (d *dirent) Name() string               { return d.name }
func (d *dirent) IsDir() bool                { return d.typ.IsDir() }
func (d *dirent) Type() fs.FileMode          { return d.typ }
func (d *dirent) Info() (fs.FileInfo, error) { return os.Lstat(d.dir + "/" + d.name) }
func (d *dirent) String() string             { return fs.FormatDirEntry(d) }
