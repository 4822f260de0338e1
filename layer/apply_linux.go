//go:build linux

package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/builderdev/builder/internal/ctxio"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Apply extracts the (possibly compressed) tar stream r into dir, never
// writing outside dir, and returns the diffID of the uncompressed stream.
//
// Every path is resolved as if dir were the root (openat2 RESOLVE_IN_ROOT):
// symlinks inside the tree, absolute or with "..", cannot lead out of dir.
// Names with ".." components are refused, leading "/" is dropped. A
// non-directory entry replaces whatever is at its path; a directory entry
// over a directory keeps the contents and updates the metadata. Directory
// mtimes are set last. Sparse entries (the GNU sparse formats) are written
// with holes. An archive that unpacks to more than its bounds allow
// (bounds.go) fails with ErrTooLarge. On an error or a diffID mismatch
// the tree is already partly written: extract into a temporary directory
// and discard it on error.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (digest.Digest, error) {
	if opts.DiffID != "" && opts.DiffID.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("verify diffID %s: unsupported algorithm", opts.DiffID)
	}
	compressed := &countReader{r: r}
	dr, err := Decompress(compressed)
	if err != nil {
		return "", err
	}
	defer dr.Close()
	hash := sha256.New()
	stream := &tarStream{r: io.TeeReader(dr, hash), compressed: compressed}

	a, err := newApplier(ctx, dir, opts.Whiteouts)
	if err != nil {
		return "", err
	}
	a.userXattr, a.unmapped = opts.UserXattr, opts.UnmappedOwners
	if a.below = opts.Below; a.below != nil {
		// Into a snapshot: the root's time, unless the tar lists "./",
		// is the one below (else 0), never the time its dir was made.
		a.dirs[""] = a.belowTimes("")
	}
	defer a.close()
	tr := tar.NewReader(stream)
	var b *body
	for {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("apply layer: %w", err)
		}
		if b != nil {
			if err := b.drain(); err != nil {
				return "", fmt.Errorf("read layer: %w", err)
			}
		}
		b, err = next(tr, stream)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		if err := a.entry(b.hdr, b); err != nil {
			return "", fmt.Errorf("apply %q: %w", b.hdr.Name, err)
		}
	}
	if _, err := io.Copy(io.Discard, struct{ io.Reader }{stream}); err != nil {
		return "", fmt.Errorf("read layer: %w", err)
	}
	if err := a.finish(); err != nil {
		return "", err
	}
	got := digest.NewDigest(digest.SHA256, hash)
	if opts.DiffID != "" && got != opts.DiffID {
		return "", fmt.Errorf("verify diffID: got %s, want %s", got, opts.DiffID)
	}
	return got, nil
}

// applier holds the state of one Apply.
type applier struct {
	ctx  context.Context
	root int // O_PATH fd of the target directory
	mode WhiteoutMode
	euid int
	// userXattr: opaque dirs get user.overlay.opaque; unmapped: owners out
	// of the user namespace's map are skipped (ApplyOptions).
	userXattr, unmapped bool
	created             map[string]bool            // paths this layer wrote
	dirs                map[string][]unix.Timespec // directory times, set last
	below               func(name string) (fs.FileInfo, error)
	buf                 []byte
	// apparent adds up the sizes of the files written, holes included.
	apparent int64
	// parent caches the last resolved parent directory; stale after any
	// removal, when the cached fd may name a deleted directory.
	parentName  string
	parentFd    int
	parentValid bool
}

func newApplier(ctx context.Context, dir string, mode WhiteoutMode) (*applier, error) {
	switch mode {
	case WhiteoutOverlay, WhiteoutDelete, WhiteoutReject:
	default:
		return nil, fmt.Errorf("apply layer: unknown whiteout mode %d", mode)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open target %s: %w", dir, err)
	}
	return &applier{
		ctx:      ctx,
		root:     fd,
		mode:     mode,
		euid:     os.Geteuid(),
		created:  make(map[string]bool),
		dirs:     make(map[string][]unix.Timespec),
		buf:      make([]byte, copyBufSize),
		parentFd: -1,
	}, nil
}

func (a *applier) close() {
	if a.parentFd >= 0 {
		unix.Close(a.parentFd)
	}
	unix.Close(a.root)
}

// cleanName turns a tar name into a clean relative path ("" for the root).
// A leading "/" is dropped; ".." components are refused.
func cleanName(name string) (string, error) {
	var parts []string
	for c := range strings.SplitSeq(name, "/") {
		switch c {
		case "", ".":
		case "..":
			return "", errors.New("name escapes the target directory")
		default:
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "/"), nil
}

// splitName returns the parent ("" for the root) and base of a clean name.
func splitName(name string) (string, string) {
	dir, base := path.Split(name)
	return strings.TrimSuffix(dir, "/"), base
}

func (a *applier) entry(hdr *tar.Header, b *body) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("root must be a directory")
		}
		if err := dropXattrs(a.root, ".", hdr); err != nil {
			return err
		}
		return a.meta(a.root, name, ".", hdr)
	}
	dirName, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dirName, base)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont, tar.TypeDir,
		tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	pfd, err := a.parent(dirName)
	if err != nil {
		return err
	}
	isDir := hdr.Typeflag == tar.TypeDir
	kept, err := a.clear(pfd, name, base, isDir)
	if err != nil {
		return err
	}
	a.created[name] = true
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		return a.file(pfd, name, base, hdr, b)
	case tar.TypeDir:
		if kept {
			if err := dropXattrs(pfd, base, hdr); err != nil {
				return err
			}
		} else if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		return a.meta(pfd, name, base, hdr)
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return errors.New("symlink has no target")
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("create symlink: %w", err)
		}
		return a.meta(pfd, name, base, hdr)
	case tar.TypeLink:
		return a.hardlink(pfd, name, base, hdr.Linkname)
	default: // char, block, fifo
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("create device node: %w", err)
		}
		return a.meta(pfd, name, base, hdr)
	}
}

// file writes a regular file's content, then its metadata. A sparse
// entry gets its data written at its offsets and the holes left as holes.
func (a *applier) file(pfd int, name, base string, hdr *tar.Header, b *body) error {
	size := hdr.Size
	if b.sparse != nil {
		size = b.sparse.size
	}
	if a.apparent += size; size < 0 || a.apparent > maxApparent {
		return fmt.Errorf("%w: files of more than %s in all", ErrTooLarge, sizeString(maxApparent))
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if b.sparse != nil {
		err = a.sparseData(fd, b)
	} else {
		_, err = io.CopyBuffer(struct{ io.Writer }{f}, ctxio.Reader(a.ctx, b.tr), a.buf)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	return a.meta(pfd, name, base, hdr)
}

// sparseData sizes the file fd and writes the data fragments of b at their
// offsets, read straight from the stream: holes are never written.
func (a *applier) sparseData(fd int, b *body) error {
	if err := unix.Ftruncate(fd, b.sparse.size); err != nil {
		return fmt.Errorf("set size %d: %w", b.sparse.size, err)
	}
	for len(b.sparse.data) > 0 {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		f := &b.sparse.data[0]
		n, err := b.stream.direct(a.buf[:min(int64(len(a.buf)), f.len)])
		if n > 0 {
			if _, werr := unix.Pwrite(fd, a.buf[:n], f.off); werr != nil {
				return werr
			}
			f.off, f.len = f.off+int64(n), f.len-int64(n)
			if f.len == 0 {
				b.sparse.data = b.sparse.data[1:]
			}
		}
		if errors.Is(err, io.EOF) && len(b.sparse.data) > 0 {
			return io.ErrUnexpectedEOF
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	return nil
}

// hardlink links name to target, both resolved inside the root.
func (a *applier) hardlink(pfd int, name, base, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	if target == "" || target == name {
		return fmt.Errorf("hardlink target %q: invalid", linkname)
	}
	tdir, tbase := splitName(target)
	tfd, err := a.openDir(tdir)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	defer unix.Close(tfd)
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hardlink to %q: %w", linkname, err)
	}
	return nil
}

// whiteout handles ".wh.<x>" and ".wh..wh..opq" per the whiteout mode.
// Whiteouts only hide what lower layers made, never this layer's paths.
func (a *applier) whiteout(dirName, base string) error {
	if a.mode == WhiteoutReject {
		return errors.New("whiteouts are not allowed here")
	}
	if base == opaqueMarker {
		return a.opaque(dirName)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other AUFS metadata, meaningless outside AUFS
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return errors.New("invalid whiteout name")
	}
	name := path.Join(dirName, target)
	if a.created[name] {
		return nil
	}
	if a.mode == WhiteoutDelete {
		pfd, err := a.openDir(dirName)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		a.parentValid = false
		return removeAt(pfd, target)
	}
	pfd, err := a.parent(dirName)
	if err != nil {
		return err
	}
	if _, err := a.clear(pfd, name, target, false); err != nil {
		return err
	}
	a.created[name] = true
	if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create whiteout device: %w", err)
	}
	return nil
}

// opaque marks dirName opaque (overlay) or removes what lower layers put in
// it (delete).
func (a *applier) opaque(dirName string) error {
	if a.mode == WhiteoutOverlay {
		fd, err := a.mkdirAll(dirName)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		key := overlayOpaque
		if a.userXattr {
			key = userOverlayOpaque
		}
		if err := unix.Setxattr(procPath(fd, ""), key, []byte("y"), 0); err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
		return nil
	}
	fd, err := unix.Openat2(a.root, dot(dirName), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: resolveFlags,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open opaque directory: %w", err)
	}
	a.parentValid = false
	return a.clearLower(fd, dirName)
}

// clearLower removes the children of the directory fd (named dirName) that
// this layer did not write, recursing into the directories it did. It
// closes fd.
func (a *applier) clearLower(fd int, dirName string) error {
	f := os.NewFile(uintptr(fd), dirName)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list opaque directory: %w", err)
	}
	for _, n := range names {
		child := path.Join(dirName, n)
		if !a.created[child] {
			if err := removeAt(fd, n); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", child, err)
		}
		if err := a.clearLower(cfd, child); err != nil {
			return err
		}
	}
	return nil
}

// finish sets the directory times recorded during the walk.
func (a *applier) finish() error {
	for name, ts := range a.dirs {
		dirName, base := splitName(name)
		if name == "" {
			base = "."
		}
		pfd, err := a.openDir(dirName)
		if err != nil {
			continue // replaced or removed later in the layer
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
			if err != nil {
				unix.Close(pfd)
				return fmt.Errorf("apply %q: set times: %w", name, err)
			}
		}
		unix.Close(pfd)
	}
	return nil
}
